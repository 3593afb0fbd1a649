"""Lockstep driver: simulator tick -> estimator -> (every N ticks) whole-body QP -> torque law -> simulator.

Used by the library tests and benchmarks to run the full control stack against a simulated robot
deterministically, without ROS or the C loop. The world is anything with ``read_sensors()`` (a
:class:`optimus_control.sim.world.RobotSensors`), ``step(tau)`` and ``params.time_step_s``; nothing
here reads ground truth.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from optimus_control.control.control_step import ControlStep
from optimus_control.control.reference_tracker import ReferenceTracker
from optimus_control.control.references import ControlReferences
from optimus_control.control.wbc_settings import WbcSettings
from optimus_control.control.whole_body_controller import WholeBodyController
from optimus_control.errors import ConfigError
from optimus_control.estimation import BaseState, FloatingBaseEstimator
from optimus_control.model import RobotModel

if TYPE_CHECKING:
    from optimus_control.sim.world import RobotSensors


class LockstepRunner:
    """Owns the estimator, controller and tracker for one simulated robot.

    Without ``settings`` the controller runs :class:`WbcSettings` defaults, which are the shipped
    ``config/whole_body_controller.yaml``: what the node runs.

    ``reference_delay_ticks``: references computed from the state of tick k apply from tick k + delay. The
    default (None) is the whole_body_controller node's lockstep timing, one QP period (its C loop holds each
    update for one period while the QP runs beside the simulator); 0 applies them at tick k (no latency).
    The first references apply at once either way: there is nothing older to hold.
    ``contacts_from_plan``: the estimator takes the planned contact wrenches, as on a robot without foot
    force/torque sensors (see :class:`ControlStep`).

    The estimator and controller are stepped by the node's :class:`ControlStep`; the torque law is the
    Python :class:`ReferenceTracker` instead of the C loop.

    Attributes:
        max_torque_ratio: largest |tau_unclamped| / effort limit seen since start (> 1 = clamp engaged).
        freeze_state: test hook; when True the estimator output stops updating (stale input).
    """

    def __init__(self, world, robot: RobotModel, settings: WbcSettings | None = None,
                 reference_delay_ticks: int | None = None, contacts_from_plan: bool = False):
        self.world, self.robot = world, robot
        self.estimator = FloatingBaseEstimator(robot)
        self.controller = WholeBodyController(robot, settings)
        self.control_step = ControlStep(robot, self.controller, self.estimator, contacts_from_plan)
        self.tracker = ReferenceTracker(robot.model, robot.limits.effort, robot.config.damping_gain)
        loop_period_s = self.controller.settings.loop_period_s
        if abs(world.params.time_step_s - loop_period_s) > 1e-12:
            raise ConfigError(f"LockstepRunner: the world steps {world.params.time_step_s} s but the controller's "
                              f"loop_period_s is {loop_period_s} s; one physics step must be one loop tick")
        self.ticks_per_update = self.controller.settings.ticks_per_update
        if reference_delay_ticks is None:
            reference_delay_ticks = self.ticks_per_update
        if reference_delay_ticks < 0:
            raise ValueError(f"reference_delay_ticks must be >= 0, got {reference_delay_ticks}")
        self.reference_delay_ticks = int(reference_delay_ticks)
        self._pending_refs: deque[tuple[int, ControlReferences]] = deque()  # (tick to apply from, references)
        self.tick = 0
        self.refs: ControlReferences | None = None
        self.max_torque_ratio = 0.0
        self.freeze_state = False
        self.base: BaseState | None = None
        self._sensors = None

    def _estimate(self) -> BaseState:
        self._sensors = self.world.read_sensors()
        if not self.freeze_state or self.base is None:
            self.base = self.control_step.estimate(self._sensors)
        return self.base

    @property
    def sensors(self) -> RobotSensors | None:
        """The robot's sensor readings of the current tick (what the estimator saw); None before start()."""
        return self._sensors

    def full_state(self) -> tuple[np.ndarray, np.ndarray]:
        """Estimated full (q, v); joint values are the latest encoder readings unless frozen."""
        base, s = self.base, self._sensors
        return base.configuration(s.q), base.velocity(s.v)

    def start(self) -> None:
        self._estimate()
        q, v = self.full_state()
        self._frozen_q, self._frozen_v = self._sensors.q, self._sensors.v
        self.controller.start(q, v, self._sensors.time_s)

    def run(self, duration_s: float, callback: Callable[[LockstepRunner], None] | None = None) -> None:
        """Run for duration_s; ``callback(self)`` is called at every tick before the torque is applied."""
        n = int(round(duration_s / self.world.params.time_step_s))
        for _ in range(n):
            self.step(callback)

    def step(self, callback: Callable[[LockstepRunner], None] | None = None) -> None:
        self._estimate()
        if self.freeze_state:
            q, v = self.base.configuration(self._frozen_q), self.base.velocity(self._frozen_v)
        else:
            q, v = self.full_state()
            self._frozen_q, self._frozen_v = self._sensors.q, self._sensors.v
        if self.tick % self.ticks_per_update == 0:
            refs = self.control_step.control(q, v, self._sensors.time_s, self.base.time_s).references
            if self.refs is None or self.reference_delay_ticks == 0:
                self.refs = refs
            else:
                self._pending_refs.append((self.tick + self.reference_delay_ticks, refs))
        while self._pending_refs and self._pending_refs[0][0] <= self.tick:
            self.refs = self._pending_refs.popleft()[1]
        if callback is not None:
            callback(self)
        q_now, v_now = self.full_state() if not self.freeze_state else (q, v)
        cmd = self.tracker.torque(self.refs, q_now, v_now)
        self.max_torque_ratio = max(self.max_torque_ratio, float(np.max(np.abs(cmd.unclamped_torque) / self.robot.limits.effort)))
        self.world.step(cmd.torque)
        self.tick += 1
