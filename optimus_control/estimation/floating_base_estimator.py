r"""Kinematic-inertial floating-base estimator: base pose and twist from IMU, encoders and foot contacts.

* Orientation and angular velocity come from the IMU (attitude filter output and gyro), rotated from
  the IMU frame to the base frame.
* Each foot in contact is an anchor: its world position is frozen when the contact starts. Leg
  kinematics from the encoders give the foot relative to the base, so every anchor yields a
  measurement of the base position :math:`p_b = a_k - R\, {}^b p_{k}` and velocity
  :math:`v_b = -(\omega \times R\, {}^b p_k + R\, {}^b \dot p_k)`.
* A complementary filter fuses them with the IMU acceleration: prediction
  :math:`v \leftarrow v + (R f + g) \Delta t`, :math:`p \leftarrow p + v \Delta t`, then correction
  towards the force-weighted mean of the anchor measurements with gains ``position_gain`` and
  ``velocity_gain`` per step (time constants of a few ms to tens of ms).

Without any contact the filter integrates the IMU only (ballistic). The odom frame: z = 0 on the
ground the feet stand on at start-up, x/y = 0 at the start-up base position, yaw from the IMU.
Never reads simulator ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pinocchio as pin

from optimus_control.estimation.contact_detector import ContactDetector
from optimus_control.model import RobotModel

GRAVITY = np.array([0.0, 0.0, -9.81])


@dataclass
class EstimatorSettings:
    """Gains and thresholds.

    Attributes:
        position_gain / velocity_gain: correction fraction per update towards the kinematic measurement.
        contact_on_n / contact_off_n: normal-force hysteresis for contact detection [N].
        max_step_s: longest time step integrated at once; longer gaps are treated as stale input [s].
    """

    position_gain: float = 0.05
    velocity_gain: float = 0.1
    contact_on_n: float = 40.0
    contact_off_n: float = 20.0
    max_step_s: float = 0.02


@dataclass
class BaseState:
    """Estimated floating-base state in the odom frame.

    Attributes:
        position_m: base origin (3) in odom.
        orientation_xyzw: base orientation quaternion (4).
        linear_velocity_mps: base origin velocity (3), odom axes.
        angular_velocity_radps: (3), odom axes.
        contacts: per foot in-contact flags.
        time_s: time of the sensor sample it was computed from.
    """

    position_m: np.ndarray
    orientation_xyzw: np.ndarray
    linear_velocity_mps: np.ndarray
    angular_velocity_radps: np.ndarray
    contacts: np.ndarray
    time_s: float

    @property
    def rotation(self) -> np.ndarray:
        return pin.Quaternion(np.asarray(self.orientation_xyzw)).normalized().toRotationMatrix()

    def configuration(self, joint_positions: np.ndarray) -> np.ndarray:
        """Full Pinocchio q (nq): base pose then joints."""
        return np.concatenate([self.position_m, self.orientation_xyzw, joint_positions])

    def velocity(self, joint_velocities: np.ndarray) -> np.ndarray:
        """Full Pinocchio v (nv): base twist in the base frame then joints."""
        R = self.rotation
        return np.concatenate([R.T @ self.linear_velocity_mps, R.T @ self.angular_velocity_radps, joint_velocities])


class FloatingBaseEstimator:
    """Fuse IMU + leg kinematics; call ``update`` with every sensor sample (1 kHz)."""

    def __init__(self, robot: RobotModel, settings: EstimatorSettings | None = None):
        self.robot = robot
        self.settings = settings or EstimatorSettings()
        self.model = robot.model
        self.data = robot.model.createData()
        self.foot_frames = [robot.frame_id(f.frame) for f in robot.config.feet]
        imu_placement = robot.model.frames[robot.frame_id(robot.config.imu_frame)].placement
        base_placement = robot.model.frames[robot.frame_id(robot.config.base_frame)].placement
        # Rotation taking IMU-frame vectors to the base (root joint) frame.
        self.imu_to_base = base_placement.rotation.T @ imu_placement.rotation
        self.detector = ContactDetector(len(self.foot_frames), self.settings.contact_on_n, self.settings.contact_off_n)
        self.anchors = np.zeros((len(self.foot_frames), 3))
        self.position = np.zeros(3)
        self.velocity = np.zeros(3)
        self.rotation = np.eye(3)
        self.angular_velocity = np.zeros(3)
        self.time_s: float | None = None
        self.initialised = False

    def reset(self) -> None:
        self.initialised, self.time_s = False, None
        self.detector.in_contact[:] = False

    def _foot_kinematics(self, joint_q: np.ndarray, joint_v: np.ndarray, omega_base: np.ndarray):
        """Feet relative to the base origin (world axes) and their velocities with a motionless base origin."""
        q = np.concatenate([np.zeros(3), pin.Quaternion(self.rotation).coeffs(), joint_q])
        v = np.concatenate([np.zeros(3), omega_base, joint_v])
        pin.forwardKinematics(self.model, self.data, q, v)
        rel, vel = [], []
        for fid in self.foot_frames:
            rel.append(pin.updateFramePlacement(self.model, self.data, fid).translation.copy())
            vel.append(pin.getFrameVelocity(self.model, self.data, fid, pin.ReferenceFrame.LOCAL_WORLD_ALIGNED).linear)
        return np.array(rel), np.array(vel)

    def update(self, joint_q: np.ndarray, joint_v: np.ndarray, imu_orientation_xyzw: np.ndarray,
               imu_angular_velocity_radps: np.ndarray, imu_specific_force_mps2: np.ndarray,
               foot_wrenches: np.ndarray, time_s: float) -> BaseState:
        """One filter step from a sensor sample; returns the new estimate."""
        s = self.settings
        R_imu = pin.Quaternion(np.asarray(imu_orientation_xyzw, dtype=float)).normalized().toRotationMatrix()
        self.rotation = R_imu @ self.imu_to_base.T
        omega_base = self.imu_to_base @ np.asarray(imu_angular_velocity_radps, dtype=float)
        self.angular_velocity = self.rotation @ omega_base
        contacts = self.detector.update(np.asarray(foot_wrenches)[:, 2])
        rel, rel_vel = self._foot_kinematics(joint_q, joint_v, omega_base)
        if not self.initialised:
            self._initialise(rel, contacts, time_s)
        dt = float(np.clip(time_s - self.time_s, 0.0, s.max_step_s))
        self.time_s = time_s
        # Prediction with the IMU.
        accel = R_imu @ np.asarray(imu_specific_force_mps2, dtype=float) + GRAVITY
        self.position = self.position + self.velocity * dt + 0.5 * accel * dt**2
        self.velocity = self.velocity + accel * dt
        # New contacts anchor where the filter believes the foot is now.
        for k in np.flatnonzero(contacts & ~self._previous_contacts):
            self.anchors[k] = self.position + rel[k]
        self._previous_contacts = contacts.copy()
        if contacts.any():
            weights = np.clip(np.asarray(foot_wrenches)[contacts, 2], 1.0, None)
            weights = weights / weights.sum()
            p_meas = weights @ (self.anchors[contacts] - rel[contacts])
            v_meas = weights @ (-rel_vel[contacts])
            self.position += s.position_gain * (p_meas - self.position)
            self.velocity += s.velocity_gain * (v_meas - self.velocity)
        return self.state(contacts)

    def _initialise(self, rel: np.ndarray, contacts: np.ndarray, time_s: float) -> None:
        """Odom origin: base above x = y = 0, the lowest (or the loaded) soles on z = 0."""
        support = rel[contacts] if contacts.any() else rel
        self.position = np.array([0.0, 0.0, -float(np.min(support[:, 2]))])
        self.velocity = np.zeros(3)
        self.anchors = self.position + rel
        self._previous_contacts = contacts.copy()
        self.time_s = time_s
        self.initialised = True

    def state(self, contacts: np.ndarray | None = None) -> BaseState:
        return BaseState(self.position.copy(), pin.Quaternion(self.rotation).coeffs().copy(), self.velocity.copy(),
                         self.angular_velocity.copy(),
                         self.detector.in_contact.copy() if contacts is None else contacts, float(self.time_s or 0.0))
