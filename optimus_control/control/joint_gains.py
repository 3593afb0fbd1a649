"""Joint PD gains that an explicit, loop-rate PD applies stably.

The torque loop applies ``tau = kp (q_ref - q) + kd (v_ref - v)`` once per period from the state at the
period's start. A joint of apparent inertia ``I`` under ``kd`` at period ``dt`` is unstable once
``kd dt / I > 2``: light distal joints (wrist yaw, ankle roll) with their group's gains get there. Two
caps keep the loop inside its stability region:

* :func:`capped_joint_gains`, once: ``kd <= a I / dt`` and ``kp <= b I / dt^2`` with ``I`` each joint's
  own inertia (the mass-matrix diagonal) at the standing posture;
* :class:`JointGainSchedule`, while running: the same gains scaled down per joint group by
  :class:`~optimus_control.control.coupled_gain_limit.CoupledGainLimit` at the current posture, which
  sees the modes that move several joints at once.
"""

from __future__ import annotations

import numpy as np
import pinocchio as pin

from optimus_control.control.coupled_gain_limit import CoupledGainLimit
from optimus_control.control.dynamics_snapshot import symmetric_from_upper
from optimus_control.model import RobotModel

GAIN_LIMIT_PERIOD_S = 0.01  # how often the coupled-inertia cap is recomputed [s]


def capped_joint_gains(robot: RobotModel, kp: np.ndarray, kd: np.ndarray, loop_period_s: float,
                       max_damping_ratio: float = 0.5, max_stiffness_ratio: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """``(kp, kd)`` capped at ``kp <= max_stiffness_ratio I / dt^2`` and ``kd <= max_damping_ratio I / dt``.

    ``I`` is the joint-space mass-matrix diagonal at the standing posture [kg m^2 | kg] (the base fixed:
    the heaviest a joint appears, so the cap is the loosest that is safe at that posture).
    """
    inertia = np.diag(pin.crba(robot.model, robot.model.createData(), robot.standing_configuration()))[6:]
    return (np.minimum(kp, max_stiffness_ratio * inertia / loop_period_s**2),
            np.minimum(kd, max_damping_ratio * inertia / loop_period_s))


class JointGainSchedule:
    """The loop's joint gains at the current posture: start-up caps times the coupled-inertia factors.

    The factors are recomputed at most every ``refresh_period_s``: the inertia changes with the posture
    only, slowly next to the ~0.1 ms its inverse costs.

    Attributes:
        kp / kd: the start-up-capped gains (n_joints), before the coupled-inertia factors.
        factor_min: smallest factor the coupled-inertia cap put on any gain at its last computation.
    """

    def __init__(self, robot: RobotModel, kp: np.ndarray, kd: np.ndarray, loop_period_s: float,
                 max_stiffness_ratio: float = 0.1, refresh_period_s: float = GAIN_LIMIT_PERIOD_S):
        self.model = robot.model
        self.n_joints = robot.n_joints
        self.kp, self.kd = capped_joint_gains(robot, kp, kd, loop_period_s, max_stiffness_ratio=max_stiffness_ratio)
        self.refresh_period_s = refresh_period_s
        self.factor_min = 1.0
        self._limit = CoupledGainLimit(robot.groups, robot.n_joints, loop_period_s)
        self._data = robot.model.createData()
        self._factors: tuple[float, np.ndarray, np.ndarray] | None = None  # (time computed, kp, kd factors)

    def reset(self) -> None:
        """Forget the factors: the next :meth:`gains` call recomputes them."""
        self._factors = None

    def gains(self, q: np.ndarray, time_s: float) -> tuple[np.ndarray, np.ndarray]:
        """``(kp, kd)`` for the full configuration ``q`` (nq) at controller time ``time_s``."""
        if self._factors is None or not 0.0 <= time_s - self._factors[0] < self.refresh_period_s:
            inverse_mass = symmetric_from_upper(pin.computeMinverse(self.model, self._data, q))
            nj = self.n_joints
            kp_factor, kd_factor = self._limit.factors(inverse_mass[-nj:, -nj:], self.kp, self.kd)
            self._factors = (time_s, kp_factor, kd_factor)
            self.factor_min = float(min(kp_factor.min(), kd_factor.min()))
        return self.kp * self._factors[1], self.kd * self._factors[2]
