"""The robot side of the joint bus: one state packet out and one command packet in per physics step.

lockstep  : publish the state of tick k, wait until the controller answered tick k, apply that command,
            step. Physics never advances without an answer, so runs are deterministic and a missing
            controller freezes the robot (safe).
realtime  : paced by the caller to the wall clock; publish, apply the latest command whatever tick it
            answers (zero-order hold), step. The support harness (support_harness.py) holds the robot
            until a controller controls it: attached, answering, and its loop RUNNING (a loop that
            answers with damping in INIT, DAMPING or FAULT drives nothing). When control is lost
            later, the harness catches the robot again if ``catch`` is set; otherwise the robot gets
            the controller's (damping) answer and may fall, as a robot without a gantry would.

Both modes report every change of who controls the robot (``control_changes``), with the loop's state
and reason, so the sim can say when nobody controls the robot any more.

The bus object is ``optimus_control.rt.bus.RobotBus`` (see the joint-bus contract); anything with the
same attributes works, e.g. a bus created in a test.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from optimus_control.errors import RealTimeError
from optimus_control.rt.loop import LoopState, Reason
from optimus_control.sim.support_harness import SupportHarness
from optimus_control.sim.world import SimWorld

MODES = ("lockstep", "realtime")
REALTIME_COMMAND_WAIT_S = 0.0003  # realtime: how long a step waits for the answer to its state


class RealTimeFactor:
    """Sim seconds per wall second over a sliding window of recent steps."""

    def __init__(self, window: int = 1000):
        self._samples: deque[tuple[float, float]] = deque(maxlen=window)

    def add(self, sim_time_s: float, wall_time_s: float | None = None) -> None:
        self._samples.append((sim_time_s, time.perf_counter() if wall_time_s is None else wall_time_s))

    def reset(self) -> None:
        self._samples.clear()

    @property
    def value(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (s0, w0), (s1, w1) = self._samples[0], self._samples[-1]
        return (s1 - s0) / (w1 - w0) if w1 > w0 else 0.0


@dataclass(frozen=True)
class ControlChange:
    """Who drives the robot changed at sim time ``time_s``: ``controlled`` by a RUNNING loop or not."""

    time_s: float
    controlled: bool
    detail: str          # the controller's loop state and reason, or why there is no controller


class BusServer:
    def __init__(self, world: SimWorld, bus, harness: SupportHarness | None = None, catch: bool = True):
        self.world, self.bus = world, bus
        self.harness = harness
        self.catch = catch
        self.tick = -1                     # tick of the last published state
        self._published_at_time = None     # sim time of the last published state
        self.rtf = RealTimeFactor()
        self.steps_without_command = 0     # realtime: steps run under the harness or on a stale command
        self.controlled = False            # a RUNNING controller loop drove the last step
        self.answering = False             # a controller answered (whatever its loop state)
        self.commands_applied = 0          # realtime: steps driven by a controlling loop's command ...
        self.commands_late = 0             # ... of which the answer to the step's own state had not come in time
        self.commands_unreadable = 0       # reads that found the packet busy for 5 ms (writer stalled mid-write)
        self._last_command = np.zeros(len(world.robot.joint_names))
        self.ever_controlled = False
        self.control_changes: deque[ControlChange] = deque(maxlen=100)  # drained by the runner

    # ---- state out -------------------------------------------------------------------------------
    def publish(self) -> int:
        """Write the current sensor sample into the bus and publish it; returns its tick."""
        s = self.world.read_sensors()
        b = self.bus
        b.q[:] = s.q
        b.v[:] = s.v
        b.tau_measured[:] = s.tau_measured
        b.imu_orientation_xyzw[:] = s.imu_orientation_xyzw
        b.imu_angular_velocity[:] = s.imu_angular_velocity
        b.imu_linear_acceleration[:] = s.imu_linear_acceleration
        b.foot_wrench[:, :] = s.foot_wrench
        self.tick = b.publish_state(s.time_s)
        self._published_at_time = s.time_s
        return self.tick

    def _command(self) -> np.ndarray:
        """The latest command, or the previous one if the writer stalled in the middle of writing it (a
        loaded machine): holding one step's torques beats stopping the physics."""
        try:
            self._last_command = self.bus.read_command()
        except RealTimeError:
            self.commands_unreadable += 1
        return self._last_command

    def _step(self, tau: np.ndarray) -> None:
        self.world.step(tau)
        self.rtf.add(self.world.time_s)

    # ---- lockstep ----------------------------------------------------------------------------------
    def lockstep_tick(self, timeout_s: float) -> bool:
        """Publish (once per physics step), wait for the answer to this tick, apply it and step.

        Returns False (nothing stepped) if the controller did not answer within ``timeout_s``; call
        again to keep waiting for the same tick.
        """
        if self._published_at_time != self.world.time_s or self.tick < 0:
            self.publish()
        if not self.bus.wait_command(self.tick, timeout_s):
            return False
        self._observe_control()
        self._step(self._command())
        return True

    # ---- real time ---------------------------------------------------------------------------------
    def controller_active(self) -> bool:
        """A controller is attached and answers (whatever its loop does)."""
        return bool(self.bus.controller_connected) and self.bus.command_tick >= 0

    def _observe_control(self) -> bool:
        """Whether a controller controls the robot now (answering, loop RUNNING, or FAULT for joint limits
        only, where the other joints stay controlled); records a change."""
        connected, command_tick, state, reason = self.bus.controller()
        answering = self.answering = connected and command_tick >= 0
        controlled = answering and (state == LoopState.RUNNING or (state == LoopState.FAULT and reason == Reason.JOINT_LIMIT))
        if controlled != self.controlled:
            detail = "no controller answers on the joint bus"
            if answering:
                try:
                    detail = f"controller loop {LoopState(state).name}" + (f" ({Reason(reason).name})" if reason else "")
                except ValueError:
                    detail = f"controller loop in state {state}, reason {reason}"
            self.controlled = controlled
            self.ever_controlled |= controlled
            self.control_changes.append(ControlChange(self.world.time_s, controlled, detail))
        return controlled

    def realtime_tick(self, command_wait_s: float = REALTIME_COMMAND_WAIT_S) -> None:
        """Apply the answer to the published state (waiting up to ``command_wait_s`` for it) or the harness,
        step once, publish the new state.

        The state goes out right after the step, so the controller answers it while the caller sleeps until
        the next deadline, and the physics is still in that state when the answer is applied: no delay on
        top of the loop's own, as a motor driver applies each command within its cycle. A command that is
        late by more than ``command_wait_s`` is replaced by the previous one (zero-order hold, counted in
        ``steps_without_command``): a steady one-tick delay would destabilise the 1 kHz joint PD.
        """
        if self.tick < 0 or self._published_at_time != self.world.time_s:
            self.publish()
        h = self.harness
        controlled = self._observe_control()
        answering = self.answering
        if answering and self.bus.command_tick < self.tick and command_wait_s > 0:
            self.bus.wait_command(self.tick, command_wait_s)
        if controlled:
            if h is not None and h.engaged:
                h.release()
            tau = self._command()
            self.commands_applied += 1
            if self.bus.command_tick < self.tick:
                self.commands_late += 1
                self.steps_without_command += 1
        elif h is not None and (self.catch or not self.ever_controlled):
            if not h.engaged:
                h.engage()
            tau = h.torque()
            self.steps_without_command += 1
        elif answering:
            tau = self._command()   # the controller's damping answer: nobody holds the robot
            self.steps_without_command += 1
        else:
            tau = -self.world.robot.config.damping_gain * self.world._joint_state()[1]
            self.steps_without_command += 1
        self._step(tau)
        self.publish()

    def invalidate(self) -> None:
        """Forget the published state (after a reset): the next tick publishes again."""
        self._published_at_time = None
