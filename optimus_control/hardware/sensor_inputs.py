"""Sensors that reach a robot's controller beside its actuator buses: the IMU (its vendor's ROS 2 driver) and,
where fitted, the foot force/torque sensors. Turns their samples into the fields of the joint bus's state
packet (what the simulator's bus carries), so the estimator sees one kind of sample on every robot.

No rclpy: the node hands over the numbers of each message and its arrival time on the monotonic clock.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pinocchio as pin

from optimus_control.errors import ConfigError
from optimus_control.estimation.attitude_filter import AttitudeFilter
from optimus_control.hardware.description import ImuConfig


def imu_mounting_rotation(robot, imu: ImuConfig, source: str = "hardware description") -> np.ndarray:
    """Rotation taking sensor-frame vectors to the robot's IMU frame (``robot.config.imu_frame``).

    The sensor sits at ``imu.rpy`` in ``imu.frame``; that frame must ride on the same body as the robot's
    IMU frame, otherwise the rotation between them would change with the joints."""
    model = robot.model
    mount, imu_frame = robot.frame_id(imu.frame), robot.frame_id(robot.config.imu_frame)
    if model.frames[mount].parentJoint != model.frames[imu_frame].parentJoint:
        raise ConfigError(f"{source}: imu.frame '{imu.frame}' moves relative to the robot's imu_frame "
                          f"'{robot.config.imu_frame}' (they are on different bodies): give a frame of the body the "
                          "robot config's imu_frame is on")
    r_mount = model.frames[mount].placement.rotation       # parent joint <- mounting frame
    r_imu = model.frames[imu_frame].placement.rotation     # parent joint <- robot IMU frame
    return r_imu.T @ r_mount @ pin.rpy.rpyToMatrix(*imu.rpy)


class ImuInput:
    """The newest IMU sample, expressed in the robot's IMU frame.

    A message with an orientation (``orientation_covariance[0] != -1``) gives it directly; one without
    (``imu/data_raw`` by REP-145) is run through an :class:`AttitudeFilter`. ``age_s`` is measured from the
    arrival of the newest sample on the caller's monotonic clock, so a silent driver is noticed whatever the
    stamps say.
    """

    def __init__(self, rotation_imu_sensor: np.ndarray, attitude_filter: AttitudeFilter | None = None):
        self.rotation = np.asarray(rotation_imu_sensor, dtype=float)
        self.filter = attitude_filter or AttitudeFilter()
        self.orientation_xyzw = np.array([0.0, 0.0, 0.0, 1.0])
        self.angular_velocity = np.zeros(3)
        self.linear_acceleration = np.zeros(3)
        self.received_s: float | None = None
        self.samples = 0
        self.rejected = 0
        self._stamp_s: float | None = None

    def update(self, orientation_xyzw: np.ndarray | None, gyro_radps: np.ndarray, accel_mps2: np.ndarray,
               stamp_s: float, received_s: float) -> bool:
        """One driver sample (sensor frame); False (and counted in ``rejected``) for a non-finite one."""
        gyro, accel = np.asarray(gyro_radps, dtype=float), np.asarray(accel_mps2, dtype=float)
        if not (np.all(np.isfinite(gyro)) and np.all(np.isfinite(accel))
                and (orientation_xyzw is None or np.all(np.isfinite(orientation_xyzw)))):
            self.rejected += 1
            return False
        r = self.rotation
        if orientation_xyzw is None:
            dt = 0.0 if self._stamp_s is None else min(max(stamp_s - self._stamp_s, 0.0), 0.1)
            world_sensor = self.filter.update(gyro, accel, dt)
        else:
            world_sensor = np.asarray(orientation_xyzw, dtype=float)
            if not 0.9 < np.linalg.norm(world_sensor) < 1.1:
                self.rejected += 1
                return False
        rot_world_sensor = pin.Quaternion(world_sensor).normalized().toRotationMatrix()
        self.orientation_xyzw = pin.Quaternion(rot_world_sensor @ r.T).coeffs().copy()
        self.angular_velocity, self.linear_acceleration = r @ gyro, r @ accel
        self._stamp_s, self.received_s = stamp_s, received_s
        self.samples += 1
        return True

    def age_s(self, now_s: float) -> float:
        return float("inf") if self.received_s is None else now_s - self.received_s

    def apply(self, state):
        """The state packet with this IMU's newest sample in its IMU fields."""
        return dataclasses.replace(state, imu_orientation_xyzw=self.orientation_xyzw.copy(),
                                   imu_angular_velocity=self.angular_velocity.copy(),
                                   imu_linear_acceleration=self.linear_acceleration.copy())


class FootWrenchInput:
    """The newest wrench of each foot's force/torque sensor, [force; torque] in the foot's sole frame (the
    frame the joint bus's foot wrenches use)."""

    def __init__(self, foot_names: list[str]):
        self.foot_names = list(foot_names)
        self.wrenches = np.zeros((len(foot_names), 6))
        self.received_s = np.full(len(foot_names), -np.inf)
        self.rejected = 0

    def update(self, foot: int, wrench: np.ndarray, received_s: float) -> bool:
        w = np.asarray(wrench, dtype=float)
        if w.shape != (6,) or not np.all(np.isfinite(w)):
            self.rejected += 1
            return False
        self.wrenches[foot], self.received_s[foot] = w, received_s
        return True

    def oldest_age_s(self, now_s: float) -> tuple[float, str]:
        """The age of the stalest foot's newest sample, and that foot's name."""
        k = int(np.argmin(self.received_s))
        return now_s - float(self.received_s[k]), self.foot_names[k]

    def apply(self, state):
        return dataclasses.replace(state, foot_wrench=self.wrenches.copy())
