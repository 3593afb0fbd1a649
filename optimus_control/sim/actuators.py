"""Actuator and sensor imperfections of the simulated robot: what separates it from an oracle.

Torque path: command -> effort clamp -> optional first-order torque bandwidth (motor current loop) ->
joint, minus gear friction (regularised Coulomb, so it is stable at 1 kHz without a constraint solver row).
Measurement path: encoder quantisation and noise, velocity and torque noise, IMU noise and constant bias.
Every noise option defaults to zero, so a default-built sim is deterministic and exact.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from optimus_control.errors import ConfigError
from optimus_control.model.settings_schema import build, setting


@dataclass
class ActuatorParams:
    """Actuator and sensor model settings (all zero = ideal actuators and sensors)."""

    torque_bandwidth_hz: float = setting(0.0, "Hz", "first-order lag of the applied torque (0: instantaneous)")
    gear_friction_scale: float = setting(1.0, "", "factor on the URDF joint friction")
    friction_velocity_min: float = setting(1e-4, "rad/s", "lower bound of the Coulomb regularisation band")
    encoder_resolution_rad: float = setting(0.0, "rad", "position quantisation step (0: continuous)")
    encoder_noise_std_rad: float = setting(0.0, "rad", "white position noise")
    velocity_noise_std_rps: float = setting(0.0, "rad/s", "white velocity noise")
    torque_noise_std_nm: float = setting(0.0, "N m", "white measured-torque noise")
    imu_gyro_noise_std_rps: float = setting(0.0, "rad/s", "white gyro noise")
    imu_gyro_bias_rps: tuple[float, float, float] = setting((0.0, 0.0, 0.0), "rad/s", "constant gyro bias")
    imu_accel_noise_std_mps2: float = setting(0.0, "m/s²", "white accelerometer noise")
    imu_accel_bias_mps2: tuple[float, float, float] = setting((0.0, 0.0, 0.0), "m/s²", "constant accelerometer bias")
    imu_orientation_noise_std_rad: float = setting(0.0, "rad", "small-angle noise on the IMU attitude estimate")
    seed: int = setting(0, "", "noise generator seed (the sim sets it from its own seed)", parameter=False)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not value >= 0.0:
                raise ConfigError(f"actuator parameter '{f.name}' must be >= 0, got {value}")

    @classmethod
    def from_dict(cls, values: dict, where: str = "actuator parameters") -> ActuatorParams:
        """Build from a mapping (e.g. ROS parameters); unknown keys and wrong types are errors naming ``where``."""
        return build(cls, values, where)

    @property
    def noisy(self) -> bool:
        return any((self.encoder_noise_std_rad, self.velocity_noise_std_rps, self.torque_noise_std_nm,
                    self.imu_gyro_noise_std_rps, self.imu_accel_noise_std_mps2, self.imu_orientation_noise_std_rad))


class ActuatorModel:
    """Turns commanded torques into applied joint torques, and true joint state into measurements."""

    def __init__(self, params: ActuatorParams, effort_limit: np.ndarray, friction: np.ndarray,
                 joint_inertia: np.ndarray, time_step_s: float):
        """``joint_inertia`` is each joint's effective inertia [kg m^2 | kg] (1 / diag(M^-1)) at a nominal
        posture; it sets the friction regularisation band: the friction torque is the one that would stop
        the joint within one step, clamped to the Coulomb level (what a stiction constraint does), so the
        explicit friction never overshoots zero velocity."""
        self.params = params
        self.effort_limit = np.asarray(effort_limit, dtype=float)
        self.friction = np.asarray(friction, dtype=float) * params.gear_friction_scale
        # An explicit damping b is stable at step dt if b dt / m < 1: b = F / v_band => v_band > F dt / m.
        self.friction_band = np.maximum(params.friction_velocity_min,
                                        self.friction * time_step_s / np.maximum(joint_inertia, 1e-6))
        bandwidth = params.torque_bandwidth_hz
        self.alpha = 1.0 if bandwidth <= 0 else 1.0 - np.exp(-2 * np.pi * bandwidth * time_step_s)
        self.rng = np.random.default_rng(params.seed)
        self.tau_motor = np.zeros_like(self.effort_limit)

    def reset(self) -> None:
        self.tau_motor[:] = 0.0
        self.rng = np.random.default_rng(self.params.seed)

    def motor_torque(self, tau_command: np.ndarray) -> np.ndarray:
        """Clamp to the effort limits (NaN -> 0) and pass through the torque bandwidth; returns the motor torque."""
        if not np.isfinite(tau_command).all():
            tau_command = np.where(np.isfinite(tau_command), tau_command, 0.0)
        tau = np.minimum(np.maximum(tau_command, -self.effort_limit),
                         self.effort_limit)  # (np.clip is ~10x slower on small arrays)
        if self.alpha >= 1.0:
            self.tau_motor = tau
        else:
            self.tau_motor = self.tau_motor + self.alpha * (tau - self.tau_motor)
        return self.tau_motor

    def friction_torque(self, v: np.ndarray) -> np.ndarray:
        """Gear friction opposing the joint velocity [N m | N] (saturated-viscous Coulomb model)."""
        return -self.friction * np.minimum(np.maximum(v / self.friction_band, -1.0), 1.0)

    def measure_joints(self, q: np.ndarray, v: np.ndarray, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p = self.params
        if p.encoder_noise_std_rad:
            q = q + self.rng.normal(0.0, p.encoder_noise_std_rad, q.shape)
        if p.encoder_resolution_rad:
            q = np.round(q / p.encoder_resolution_rad) * p.encoder_resolution_rad
        if p.velocity_noise_std_rps:
            v = v + self.rng.normal(0.0, p.velocity_noise_std_rps, v.shape)
        if p.torque_noise_std_nm:
            tau = tau + self.rng.normal(0.0, p.torque_noise_std_nm, tau.shape)
        return q, v, tau

    def measure_imu(self, quat_xyzw: np.ndarray, gyro: np.ndarray, accel: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p = self.params
        gyro = gyro + np.asarray(p.imu_gyro_bias_rps)
        accel = accel + np.asarray(p.imu_accel_bias_mps2)
        if p.imu_gyro_noise_std_rps:
            gyro = gyro + self.rng.normal(0.0, p.imu_gyro_noise_std_rps, 3)
        if p.imu_accel_noise_std_mps2:
            accel = accel + self.rng.normal(0.0, p.imu_accel_noise_std_mps2, 3)
        if p.imu_orientation_noise_std_rad:
            quat_xyzw = _perturb_quaternion(quat_xyzw, self.rng.normal(0.0, p.imu_orientation_noise_std_rad, 3))
        return quat_xyzw, gyro, accel


def _perturb_quaternion(q_xyzw: np.ndarray, rotvec: np.ndarray) -> np.ndarray:
    """q * exp(rotvec / 2) for a small rotation vector [rad] in the body frame."""
    angle = float(np.linalg.norm(rotvec))
    if angle < 1e-12:
        return q_xyzw
    axis = rotvec / angle
    dx, dy, dz = axis * np.sin(angle / 2)
    dw = np.cos(angle / 2)
    x, y, z, w = q_xyzw
    out = np.array([
        w * dx + x * dw + y * dz - z * dy,
        w * dy - x * dz + y * dw + z * dx,
        w * dz + x * dy - y * dx + z * dw,
        w * dw - x * dx - y * dy - z * dz,
    ])
    return out / np.linalg.norm(out)
