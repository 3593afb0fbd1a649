r"""Minimum-jerk point-to-point trajectories in SE3 with velocity limits, for hand (and other) targets.

Profile :math:`s(\tau) = 10\tau^3 - 15\tau^4 + 6\tau^5`, :math:`\tau = t / T`; position
:math:`p = p_0 + s (p_1 - p_0)`, orientation :math:`R = R_0 \exp(s \log(R_0^T R_1))`. The peak speed of
the profile is :math:`1.875\, d / T`, so the duration is chosen as the smallest T that keeps the peak
linear and angular speeds under their limits (and at least ``min_duration_s``): a far target simply
takes longer instead of producing a violent motion.
"""

from __future__ import annotations

import numpy as np
import pinocchio as pin

PEAK_SPEED_FACTOR = 1.875  # max of ds/dtau for the quintic min-jerk profile


def min_jerk_profile(tau: float) -> tuple[float, float, float]:
    """(s, ds/dtau, d2s/dtau2) at normalised time tau (clamped to [0, 1])."""
    t = min(max(tau, 0.0), 1.0)
    s = t**3 * (10 - 15 * t + 6 * t**2)
    ds = 30 * t**2 * (1 - t) ** 2
    dds = 60 * t * (1 - t) * (1 - 2 * t)
    return s, ds, dds


class MinJerkSe3Trajectory:
    """A min-jerk move from ``start`` to ``goal`` starting at ``start_time_s``.

    Args:
        max_linear_speed_mps / max_angular_speed_radps: peak speed limits.
        min_duration_s: floor on the duration [s].
    """

    def __init__(self, start: pin.SE3, goal: pin.SE3, start_time_s: float, max_linear_speed_mps: float,
                 max_angular_speed_radps: float, min_duration_s: float = 0.5):
        self.start, self.goal = start.copy(), goal.copy()
        self.start_time_s = float(start_time_s)
        self._delta_p = goal.translation - start.translation
        self._delta_r_local = pin.log3(start.rotation.T @ goal.rotation)
        distance, angle = np.linalg.norm(self._delta_p), np.linalg.norm(self._delta_r_local)
        self.duration_s = max(min_duration_s, PEAK_SPEED_FACTOR * distance / max_linear_speed_mps,
                              PEAK_SPEED_FACTOR * angle / max_angular_speed_radps)

    def sample(self, time_s: float) -> tuple[pin.SE3, np.ndarray, np.ndarray]:
        """(pose, twist (6), acceleration (6)) at time_s, world-aligned [linear; angular]."""
        T = self.duration_s
        s, ds, dds = min_jerk_profile((time_s - self.start_time_s) / T)
        rotation = self.start.rotation @ pin.exp3(s * self._delta_r_local)
        pose = pin.SE3(rotation, self.start.translation + s * self._delta_p)
        omega_world = self.start.rotation @ self._delta_r_local
        twist = np.concatenate([self._delta_p, omega_world]) * (ds / T)
        accel = np.concatenate([self._delta_p, omega_world]) * (dds / T**2)
        return pose, twist, accel

    def finished(self, time_s: float) -> bool:
        return time_s >= self.start_time_s + self.duration_s


class MinJerkVectorTrajectory:
    """Min-jerk move between two vectors (CoM, joint postures) with a peak-speed limit per component."""

    def __init__(self, start: np.ndarray, goal: np.ndarray, start_time_s: float, max_speed: float,
                 min_duration_s: float = 0.5):
        self.start, self.goal = np.array(start, dtype=float), np.array(goal, dtype=float)
        self.start_time_s = float(start_time_s)
        span = float(np.max(np.abs(self.goal - self.start))) if self.start.size else 0.0
        self.duration_s = max(min_duration_s, PEAK_SPEED_FACTOR * span / max_speed)

    def sample(self, time_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        T = self.duration_s
        s, ds, dds = min_jerk_profile((time_s - self.start_time_s) / T)
        delta = self.goal - self.start
        return self.start + s * delta, delta * ds / T, delta * dds / T**2

    def finished(self, time_s: float) -> bool:
        return time_s >= self.start_time_s + self.duration_s
