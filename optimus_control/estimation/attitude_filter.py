"""Attitude from a gyro and an accelerometer, for IMUs that publish no orientation.

A vendor driver's ``imu/data_raw`` carries angular velocity and specific force only (REP-145:
``orientation_covariance[0] = -1``). The estimator needs the sensor's orientation; this complementary
filter integrates the gyro and pulls roll and pitch towards the gravity direction the accelerometer
measures (Mahony's filter, proportional term only). Yaw is the gyro's integral: it drifts with the
gyro's bias, which the odom frame tolerates (yaw is arbitrary at start-up and only drift rate matters).
"""

from __future__ import annotations

import numpy as np
import pinocchio as pin

GRAVITY_MPS2 = 9.81


class AttitudeFilter:
    """Orientation of the sensor in a gravity-aligned world frame (z up), from gyro [rad/s] and specific
    force [m/s²] in the sensor frame.

    Args:
        accel_gain_per_s: how fast roll/pitch follow the accelerometer (1/time constant [1/s]); the
            correction is skipped while |specific force| is outside ``accel_trust`` × g (the sensor is
            accelerating and the vector is not gravity).
    """

    def __init__(self, accel_gain_per_s: float = 1.0, accel_trust: tuple[float, float] = (0.8, 1.2)):
        if not accel_gain_per_s >= 0:
            raise ValueError(f"AttitudeFilter: accel_gain_per_s must be >= 0 (got {accel_gain_per_s})")
        self.accel_gain_per_s = float(accel_gain_per_s)
        self.accel_trust = accel_trust
        self.rotation: np.ndarray | None = None  # world <- sensor

    def reset(self) -> None:
        self.rotation = None

    def update(self, gyro_radps: np.ndarray, accel_mps2: np.ndarray, dt_s: float) -> np.ndarray:
        """One sample; returns the orientation quaternion (x, y, z, w). The first sample levels the filter on
        the accelerometer (yaw 0)."""
        gyro, accel = np.asarray(gyro_radps, dtype=float), np.asarray(accel_mps2, dtype=float)
        norm = float(np.linalg.norm(accel))
        if self.rotation is None:
            self.rotation = _level_from(accel / norm) if norm > 1e-6 else np.eye(3)
            return self.orientation_xyzw
        omega = gyro.copy()
        lo, hi = self.accel_trust
        if lo * GRAVITY_MPS2 <= norm <= hi * GRAVITY_MPS2:
            up_measured = accel / norm                    # at rest the specific force points up
            up_estimated = self.rotation.T[:, 2]          # world z in the sensor frame
            omega += self.accel_gain_per_s * np.cross(up_measured, up_estimated)
        self.rotation = self.rotation @ pin.exp3(omega * max(float(dt_s), 0.0))
        return self.orientation_xyzw

    @property
    def orientation_xyzw(self) -> np.ndarray:
        return pin.Quaternion(self.rotation).normalized().coeffs().copy()


def _level_from(up_in_sensor: np.ndarray) -> np.ndarray:
    """The rotation (world <- sensor) with yaw 0 whose world z is ``up_in_sensor`` seen from the sensor."""
    z = up_in_sensor
    x = np.array([1.0, 0.0, 0.0]) - z[0] * z       # the sensor's x axis, made horizontal
    if np.linalg.norm(x) < 1e-6:
        x = np.array([0.0, 1.0, 0.0]) - z[1] * z
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.vstack([x, y, z])                     # rows: world axes in sensor coordinates
