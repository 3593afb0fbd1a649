"""One object for the robot: URDF + config -> Pinocchio model with a free-flyer root, names and limits.

Actuated joints are ordered as Pinocchio orders them (depth-first over the URDF tree); this order is
the order of every joint array in the stack (joint bus, C core, /joint_states).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pinocchio as pin

from optimus_control.errors import ConfigError, FrameError, ModelError, suggest
from optimus_control.model.robot_config import RobotConfig, load_robot_config
from optimus_control.model.urdf_checks import validate_urdf


@dataclass(frozen=True)
class JointLimits:
    """Per actuated joint, in bus order: position [rad|m], velocity [rad/s|m/s], effort [N m|N]."""

    lower: np.ndarray
    upper: np.ndarray
    velocity: np.ndarray
    effort: np.ndarray


class RobotModel:
    """The robot model every library shares; build it with ``RobotModel.load()``."""

    def __init__(self, config: RobotConfig):
        self.config = config
        self.urdf_path = config.urdf_path
        self._xml = validate_urdf(self.urdf_path)
        try:
            self.model: pin.Model = pin.buildModelFromUrdf(str(self.urdf_path), pin.JointModelFreeFlyer())
        except (RuntimeError, ValueError) as exc:
            raise ModelError(f"{self.urdf_path}: Pinocchio cannot build the model: {exc}") from exc
        self.data = self.model.createData()
        m = self.model
        if m.joints[1].shortname() != "JointModelFreeFlyer":
            raise ModelError(f"{self.urdf_path}: the root joint is not a free flyer")
        self.joint_names: tuple[str, ...] = tuple(m.names[j] for j in range(2, m.njoints))
        for j in range(2, m.njoints):
            if m.joints[j].nv != 1:
                raise ModelError(f"{self.urdf_path}: joint '{m.names[j]}' has {m.joints[j].nv} DoF; "
                                 "only 1-DoF revolute/prismatic joints are supported")
        self.n_joints = len(self.joint_names)
        self._joint_index = {name: i for i, name in enumerate(self.joint_names)}
        self.limits = JointLimits(
            lower=m.lowerPositionLimit[7:].copy(), upper=m.upperPositionLimit[7:].copy(),
            velocity=m.velocityLimit[6:].copy(), effort=m.effortLimit[6:].copy(),
        )
        self.joint_damping, self.joint_friction = self._joint_dynamics()
        self.total_mass = float(sum(inertia.mass for inertia in m.inertias))
        self._validate_names()
        self.groups: dict[str, np.ndarray] = {
            g: np.array([self._joint_index[j] for j in joints], dtype=int) for g, joints in config.joint_groups.items()
        }
        self.kp = np.zeros(self.n_joints)
        self.kd = np.zeros(self.n_joints)
        for group, gains in config.gains.items():
            self.kp[self.groups[group]] = gains.kp
            self.kd[self.groups[group]] = gains.kd

    @classmethod
    def load(cls, config: str | os.PathLike = "optimus.yaml", urdf: str | os.PathLike | None = None) -> RobotModel:
        """Load a robot config (name under config/ or a path); ``urdf`` overrides the config's URDF path."""
        cfg = load_robot_config(config)
        if urdf is not None:
            from dataclasses import replace

            cfg = replace(cfg, urdf_path=Path(urdf))
        return cls(cfg)

    # ---- names -------------------------------------------------------------------------------
    def joint_index(self, name: str) -> int:
        """Index of an actuated joint in bus order."""
        try:
            return self._joint_index[name]
        except KeyError:
            raise FrameError(f"joint '{name}' is not an actuated joint of {self.urdf_path.name}"
                             f"{suggest(name, self.joint_names)}") from None

    def frame_id(self, name: str) -> int:
        if not self.model.existFrame(name):
            names = [f.name for f in self.model.frames]
            raise FrameError(f"frame '{name}' is not in {self.urdf_path.name}{suggest(name, names)}")
        return self.model.getFrameId(name)

    @property
    def frame_names(self) -> list[str]:
        return [f.name for f in self.model.frames]

    def _validate_names(self) -> None:
        cfg, src = self.config, self.config.source
        frames = set(self.frame_names)

        def need_joint(name: str, where: str) -> None:
            if name not in self._joint_index:
                raise ConfigError(f"{src}: {where}: joint '{name}' is not an actuated joint of "
                                 f"{self.urdf_path}{suggest(name, self.joint_names)}")

        def need_frame(name: str, where: str) -> None:
            if name not in frames:
                raise ConfigError(f"{src}: {where}: frame '{name}' is not in {self.urdf_path}{suggest(name, frames)}")

        seen: dict[str, str] = {}
        for group, joints in cfg.joint_groups.items():
            for i, joint in enumerate(joints):
                need_joint(joint, f"joint_groups.{group}[{i}]")
                if joint in seen:
                    raise ConfigError(f"{src}: joint_groups.{group}[{i}]: joint '{joint}' is already in group '{seen[joint]}'")
                seen[joint] = group
        missing = [j for j in self.joint_names if j not in seen]
        if missing:
            raise ConfigError(f"{src}: joint_groups: actuated joints {missing} belong to no group")
        for key, frame in (("robot.base_frame", cfg.base_frame), ("robot.torso_frame", cfg.torso_frame),
                           ("robot.imu_frame", cfg.imu_frame), ("gaze_frame", cfg.gaze_frame),
                           ("camera.link", cfg.camera.link), ("camera.optical_frame", cfg.camera.optical_frame)):
            need_frame(frame, key)
        for foot in cfg.feet:
            need_frame(foot.frame, f"feet.{foot.name}.frame")
        for hand in cfg.hands:
            need_frame(hand.wrist_frame, f"hands.{hand.name}.wrist_frame")
            need_frame(hand.gripper_frame, f"hands.{hand.name}.gripper_frame")
            for i, joint in enumerate(hand.gripper_joints):
                need_joint(joint, f"hands.{hand.name}.gripper_joints[{i}]")
        for joint, value in cfg.standing_posture.items():
            need_joint(joint, f"standing_posture.{joint}")
            i = self._joint_index[joint]
            if not self.limits.lower[i] <= value <= self.limits.upper[i]:
                raise ConfigError(f"{src}: standing_posture.{joint}: {value} is outside the joint limits "
                                 f"[{self.limits.lower[i]}, {self.limits.upper[i]}]")

    def _joint_dynamics(self) -> tuple[np.ndarray, np.ndarray]:
        damping, friction = np.zeros(self.n_joints), np.zeros(self.n_joints)
        for joint in self._xml.iter("joint"):
            name = joint.get("name")
            dyn = joint.find("dynamics")
            if name in self._joint_index and dyn is not None:
                damping[self._joint_index[name]] = float(dyn.get("damping", 0.0))
                friction[self._joint_index[name]] = float(dyn.get("friction", 0.0))
        return damping, friction

    # ---- configurations ----------------------------------------------------------------------
    def joint_vector(self, values: dict[str, float], default: float = 0.0) -> np.ndarray:
        out = np.full(self.n_joints, default, dtype=float)
        for name, value in values.items():
            out[self.joint_index(name)] = value
        return out

    def standing_joint_positions(self) -> np.ndarray:
        return self.joint_vector(self.config.standing_posture)

    def standing_configuration(self) -> np.ndarray:
        """Full q (nq): the standing posture with the soles flat on z = 0, centred between the feet."""
        q = pin.neutral(self.model)
        q[7:] = self.standing_joint_positions()
        pin.framesForwardKinematics(self.model, self.data, q)
        soles = [self.data.oMf[self.frame_id(f.frame)] for f in self.config.feet]
        # Base orientation that makes the soles level (they are symmetric, so use their mean rotation).
        rotation = soles[0].rotation.T
        q[3:7] = pin.Quaternion(rotation).coeffs()
        pin.framesForwardKinematics(self.model, self.data, q)
        soles = [self.data.oMf[self.frame_id(f.frame)].translation for f in self.config.feet]
        mid = np.mean(soles, axis=0)
        q[0] -= mid[0]
        q[1] -= mid[1]
        q[2] -= min(s[2] for s in soles)
        return q

    def frame_placement(self, q: np.ndarray, frame: str) -> pin.SE3:
        pin.framesForwardKinematics(self.model, self.data, q)
        return self.data.oMf[self.frame_id(frame)].copy()

    def center_of_mass(self, q: np.ndarray) -> np.ndarray:
        return pin.centerOfMass(self.model, self.data, q).copy()
