"""Joint position and velocity references for the loop's PD at the end of each control period."""

from __future__ import annotations

import numpy as np

from optimus_control.control.wbc_settings import WbcSettings
from optimus_control.errors import ConfigError, suggest
from optimus_control.model import RobotModel


class JointReferenceIntegrator:
    """q_ref / v_ref from the QP's joint accelerations.

    Joints of ``integrated_reference_groups`` (light arms, neck, waist) follow references integrated from
    the QP accelerations (v_ref += q_dd T, q_ref += v_ref T), kept within ``max_reference_deviation_rad`` /
    ``max_velocity_deviation_radps`` of the measurement: a persistent error (static friction, an unmodelled
    load) then builds up PD torque, which an acceleration-level QP alone cannot do. Other joints (legs, in a
    closed kinematic chain through the ground) use a one-period prediction from the measurement so their PD
    never fights the contacts.
    """

    def __init__(self, robot: RobotModel, settings: WbcSettings):
        self.period_s = 1.0 / settings.rate_hz
        self.max_position_deviation_rad = settings.max_reference_deviation_rad
        self.max_velocity_deviation_radps = settings.max_velocity_deviation_radps
        self.integrated = np.zeros(robot.n_joints, dtype=bool)
        for group in settings.integrated_reference_groups:
            if group not in robot.groups:
                raise ConfigError(f"integrated_reference_groups: unknown joint group '{group}'{suggest(group, robot.groups)}")
            self.integrated[robot.groups[group]] = True
        self._q: np.ndarray | None = None
        self._v: np.ndarray | None = None

    def reset(self) -> None:
        """Start again from the next measurement."""
        self._q = self._v = None

    def step(self, q: np.ndarray, v: np.ndarray, qdd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(q_ref, v_ref) (n_joints each, copies) from measured joint ``q``, ``v`` and the QP's ``qdd``."""
        T = self.period_s
        if self._q is None:
            self._q, self._v = q.copy(), v.copy()
        v_int = self._v + qdd * T
        q_int = self._q + v_int * T
        dv, dq = self.max_velocity_deviation_radps, self.max_position_deviation_rad
        v_int = v + np.clip(v_int - v, -dv, dv)
        q_int = q + np.clip(q_int - q, -dq, dq)
        predicted_v = v + qdd * T
        predicted_q = q + v * T + 0.5 * qdd * T**2
        self._q = np.where(self.integrated, q_int, predicted_q)
        self._v = np.where(self.integrated, v_int, predicted_v)
        return self._q.copy(), self._v.copy()
