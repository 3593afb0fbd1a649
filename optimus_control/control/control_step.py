"""One control period, shared by the whole_body_controller node and the in-process runner.

sensor sample -> floating-base estimator -> whole-body controller (started or reset on request) ->
what the 1 kHz loop needs: the estimated base state and the references, with the contact wrenches
packed per foot as the loop takes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from optimus_control.control.controller_status import ControllerState
from optimus_control.control.references import ControlReferences, LoopMode
from optimus_control.control.whole_body_controller import WholeBodyController
from optimus_control.estimation import BaseState, FloatingBaseEstimator
from optimus_control.model import RobotModel


class SensorSample(Protocol):
    """One joint-bus state packet (the C loop's ``RobotState``, the simulator's ``RobotSensors``)."""

    q: np.ndarray
    v: np.ndarray
    imu_orientation_xyzw: np.ndarray
    imu_angular_velocity: np.ndarray
    imu_linear_acceleration: np.ndarray
    foot_wrench: np.ndarray
    time_s: float


class ReferenceSink(Protocol):
    """Where a :class:`LoopCommand` goes: the C loop (:class:`optimus_control.rt.Loop`)."""

    def set_base_state(self, base_pose, base_twist) -> None: ...

    def set_references(self, *, qdd=None, q=None, v=None, kp=None, kd=None, contact_wrenches=None,
                       contacts_active=None, base_pose=None, base_twist=None) -> None: ...


@dataclass
class LoopCommand:
    """What one control step hands to the 1 kHz loop.

    Attributes:
        base_pose: estimated base pose (7: x y z qx qy qz qw) in odom.
        base_twist: estimated base twist (6: linear; angular), as the estimator's full velocity.
        references: the controller's references (DAMP: the loop damps by itself once they stop coming).
        foot_wrenches: f_ref per configured foot (n_feet, 6), zero for a foot without an active contact.
        feet_active: which feet carry a contact (n_feet) bool.
        started / reset: this step started balancing / cleared the faults and restarted.
    """

    base_pose: np.ndarray
    base_twist: np.ndarray
    references: ControlReferences
    foot_wrenches: np.ndarray
    feet_active: np.ndarray
    started: bool = False
    reset: bool = False

    def send(self, loop: ReferenceSink, gain_scale: float = 1.0, damping_kd: float = 0.0) -> None:
        """Base state always; references only while tracking (stale references make the loop damp).

        ``gain_scale`` < 1 ramps the joint gains in: kp × s, kd blended from ``damping_kd`` to the reference's."""
        loop.set_base_state(self.base_pose, self.base_twist)
        refs = self.references
        if refs.mode is LoopMode.DAMP:
            return
        kp, kd = refs.kp, refs.kd
        if gain_scale < 1.0:
            s = max(gain_scale, 0.0)
            kp, kd = kp * s, kd * s + damping_kd * (1.0 - s)
        loop.set_references(qdd=refs.joint_accelerations, q=refs.joint_positions, v=refs.joint_velocities,
                            kp=kp, kd=kd, contact_wrenches=self.foot_wrenches, contacts_active=self.feet_active)


def pack_foot_wrenches(refs: ControlReferences, foot_frame_ids: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(wrenches (n_feet, 6), active (n_feet) bool) in the order of ``foot_frame_ids``; contacts on other
    frames (a hand on a table) are not the loop's to compensate and are left out."""
    wrenches = np.zeros((len(foot_frame_ids), 6))
    active = np.zeros(len(foot_frame_ids), dtype=bool)
    for frame_id, wrench in zip(refs.contact_frame_ids, refs.contact_wrenches):
        if frame_id in foot_frame_ids:
            k = foot_frame_ids.index(frame_id)
            wrenches[k], active[k] = wrench, True
    return wrenches, active


class ControlStep:
    """Estimator + controller for one robot, stepped once per control period.

    :meth:`estimate` and :meth:`control` are separate so a caller can hold its own lock around the
    controller only (goals arrive on other threads), or estimate at every loop tick and control at
    every QP period. :meth:`__call__` does both.

    ``contacts_from_plan``: a robot without foot force/torque sensors gives the estimator the controller's
    planned contact wrenches instead of measured ones, so a foot counts as a contact (an anchor of the base
    position) exactly while the plan loads it; until the first plan, the standing assumption: every foot
    carries an equal share of the weight.

    Attributes:
        base: the estimator's last output (None before the first sample).
        planned_foot_wrench: (n_feet, 6) the wrenches the estimator takes with ``contacts_from_plan``.
    """

    def __init__(self, robot: RobotModel, controller: WholeBodyController, estimator: FloatingBaseEstimator,
                 contacts_from_plan: bool = False):
        self.robot, self.controller, self.estimator = robot, controller, estimator
        self.foot_frame_ids = tuple(robot.frame_id(f.frame) for f in robot.config.feet)
        self.base: BaseState | None = None
        self.contacts_from_plan = contacts_from_plan
        n_feet = len(self.foot_frame_ids)
        self.planned_foot_wrench = np.zeros((n_feet, 6))
        if n_feet:
            self.planned_foot_wrench[:, 2] = robot.total_mass * 9.81 / n_feet
        self._start_requested = False
        self._reset_requested = False

    def request_start(self) -> None:
        """Start balancing at the next :meth:`control` if the controller is idle."""
        self._start_requested = True

    def request_reset(self) -> None:
        """Clear the faults and restart balancing from the state of the next :meth:`control`."""
        self._reset_requested = True

    def estimate(self, sample: SensorSample) -> BaseState:
        wrench = self.planned_foot_wrench if self.contacts_from_plan else sample.foot_wrench
        self.base = self.estimator.update(sample.q, sample.v, sample.imu_orientation_xyzw, sample.imu_angular_velocity,
                                          sample.imu_linear_acceleration, wrench, sample.time_s)
        return self.base

    def control(self, q: np.ndarray, v: np.ndarray, time_s: float, state_time_s: float) -> LoopCommand:
        """Handle a pending reset or start, then update the controller from the full state (q, v)."""
        ctl, started, reset = self.controller, False, False
        if self._reset_requested:
            ctl.reset_faults(q, v, time_s)
            reset = True
        elif self._start_requested and ctl.state is ControllerState.IDLE:
            ctl.start(q, v, time_s)
            started = True
        self._reset_requested = self._start_requested = False
        refs = ctl.update(q, v, time_s, state_time_s)
        wrenches, active = pack_foot_wrenches(refs, self.foot_frame_ids)
        if refs.mode is not LoopMode.DAMP:  # a damped robot keeps its last plan: nothing new is known
            self.planned_foot_wrench = wrenches.copy()
        return LoopCommand(q[:7], v[:6], refs, wrenches, active, started, reset)

    def __call__(self, sample: SensorSample) -> LoopCommand:
        base = self.estimate(sample)
        return self.control(base.configuration(sample.q), base.velocity(sample.v), sample.time_s, base.time_s)
