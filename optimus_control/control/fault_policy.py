"""What the controller sends when it cannot compute references: hold the last feasible ones, then damp."""

from __future__ import annotations

import numpy as np

from optimus_control.control.controller_status import ControllerState
from optimus_control.control.references import ControlReferences, LoopMode

MAX_MESSAGES = 50


class FaultPolicy:
    """The controller's state machine and message log.

    * ``IDLE``: not started; references request damping.
    * ``RUNNING``: the last update produced references (:meth:`accept`).
    * ``HOLDING``: an update failed (:meth:`fail`): the last feasible references are re-sent, time-stamped
      again, for at most ``hold_time_s``; the next accepted update returns to RUNNING.
    * ``DAMPING``: hold time exceeded, nothing to hold, or damping requested: damping references until
      :meth:`start`.

    Args:
        n_joints / nv: sizes of the damping references' arrays.
        effort_limit: per-joint torque clamp sent with the damping references [N m | N].
        damping_gain: kd of the loop's damping mode [N m s/rad].
        hold_time_s: how long a failure may last before the loop is switched to damping [s].
    """

    def __init__(self, n_joints: int, nv: int, effort_limit: np.ndarray, damping_gain: float, hold_time_s: float):
        self.n_joints, self.nv = n_joints, nv
        self.effort_limit, self.damping_gain, self.hold_time_s = effort_limit, damping_gain, hold_time_s
        self.state = ControllerState.IDLE
        self.fault = ""
        self.messages: list[str] = []
        self._last_good: ControlReferences | None = None
        self._failure_since: float | None = None

    def message(self, text: str, time_s: float) -> None:
        """Log ``text`` at controller time ``time_s`` (the newest ``MAX_MESSAGES`` are kept)."""
        self.messages.append(f"[{time_s:.3f} s] {text}")
        del self.messages[:-MAX_MESSAGES]

    def start(self) -> None:
        """Running, with no fault and nothing to hold yet."""
        self.state, self.fault = ControllerState.RUNNING, ""
        self._failure_since, self._last_good = None, None

    def accept(self, refs: ControlReferences, time_s: float) -> None:
        """An update produced ``refs``: running again, and they are what a later failure holds."""
        if self.state is ControllerState.HOLDING:
            self.message(f"recovered from: {self.fault}", time_s)
        self.state, self.fault, self._failure_since = ControllerState.RUNNING, "", None
        self._last_good = refs

    def fail(self, reason: str, time_s: float) -> ControlReferences:
        """References after a failed update: the last good ones while the hold lasts, damping after."""
        if self._failure_since is None:
            self._failure_since = time_s
            self.message(f"{reason}: holding the last feasible references for {self.hold_time_s:.3f} s", time_s)
        self.fault = reason
        if self._last_good is None or time_s - self._failure_since > self.hold_time_s:
            self.enter_damping(f"{reason}; not recovered within {self.hold_time_s:.3f} s", time_s)
            return self.damping_references(time_s)
        self.state = ControllerState.HOLDING
        return ControlReferences(**{**self._last_good.__dict__, "time_s": time_s, "notes": [reason]})

    def enter_damping(self, reason: str, time_s: float) -> None:
        if self.state is not ControllerState.DAMPING:
            self.message(f"switching the loop to damping: {reason}", time_s)
        self.state, self.fault = ControllerState.DAMPING, reason

    def damping_references(self, time_s: float) -> ControlReferences:
        """References asking the loop to damp every joint."""
        zeros = np.zeros(self.n_joints)
        return ControlReferences(time_s, LoopMode.DAMP, np.zeros(self.nv), (), np.zeros((0, 6)), zeros, zeros, zeros,
                                 zeros, self.effort_limit.copy(), self.damping_gain, [self.fault])
