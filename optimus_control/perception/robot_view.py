"""What the camera needs to know about the robot at one configuration: where the camera is, where the
robot's own bodies are (to mask them) and which grippers are closed (to ignore what they hold).

Everything comes from the shared robot model (URDF + config): no frame or joint name is written here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pinocchio as pin

from optimus_control.errors import ModelError
from optimus_control.model import RobotModel


@dataclass(frozen=True)
class BodyBox:
    """An oriented box bounding one collision shape of the robot, in the odom frame."""

    rotation: np.ndarray  # (3, 3) box axes in odom
    center_m: np.ndarray  # (3,)
    half_extents_m: np.ndarray  # (3,)


@dataclass(frozen=True)
class RobotView:
    """The robot at one instant, as the perception pipeline uses it (odom frame)."""

    camera_rotation: np.ndarray  # (3, 3) optical frame axes in odom
    camera_position_m: np.ndarray  # (3,)
    bodies: tuple[BodyBox, ...]
    closed_gripper_positions_m: tuple[np.ndarray, ...]  # gripper frames whose fingers are closed

    # The same bodies as arrays ((B, 3, 3) axes, (B, 3) centres, (B, 3) half extents) when computed together.
    stacked_bodies: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def body_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All bodies stacked: (B, 3, 3) axes, (B, 3) centres [m], (B, 3) half extents [m]."""
        if self.stacked_bodies is not None:
            return self.stacked_bodies
        if not self.bodies:
            return np.zeros((0, 3, 3)), np.zeros((0, 3)), np.zeros((0, 3))
        return (np.stack([b.rotation for b in self.bodies]), np.stack([b.center_m for b in self.bodies]),
                np.stack([b.half_extents_m for b in self.bodies]))


def _half_extents(geometry) -> np.ndarray:
    name = type(geometry).__name__
    if hasattr(geometry, "halfSide"):
        return np.asarray(geometry.halfSide, dtype=float)
    if name in ("Cylinder", "Capsule"):
        r, h = float(geometry.radius), float(geometry.halfLength)
        return np.array([r, r, h + (r if name == "Capsule" else 0.0)])
    if name == "Sphere":
        return np.full(3, float(geometry.radius))
    # Meshes and other shapes: the local axis-aligned bounding box about the shape origin.
    geometry.computeLocalAABB()
    box = geometry.aabb_local
    return np.maximum(np.abs(np.asarray(box.min_)), np.abs(np.asarray(box.max_)))


class RobotViewModel:
    """Forward kinematics of the camera, collision bodies and grippers for a configuration q."""

    def __init__(self, robot: RobotModel, gripper_closed_fraction: float = 0.85):
        self.robot = robot
        self.model = robot.model
        self.data = self.model.createData()
        cfg = robot.config
        self.camera_frame = robot.frame_id(cfg.camera.optical_frame)
        try:
            self.geometry = pin.buildGeomFromUrdf(self.model, str(robot.urdf_path), pin.GeometryType.COLLISION)
        except (RuntimeError, ValueError) as exc:
            raise ModelError(f"{robot.urdf_path}: cannot read collision geometry for the self-filter: {exc}") from exc
        objects = self.geometry.geometryObjects
        body_joint = [int(obj.parentJoint) for obj in objects]
        self._joints = sorted(set(body_joint))  # joints carrying bodies; their placements are read once each
        joint_slot = {j: k for k, j in enumerate(self._joints)}
        self._body_slot = np.array([joint_slot[j] for j in body_joint], dtype=int)
        self._body_rotation = np.array([obj.placement.rotation for obj in objects]).reshape(-1, 3, 3)
        self._body_translation = np.array([obj.placement.translation for obj in objects]).reshape(-1, 3)
        self._body_half = np.array([_half_extents(obj.geometry) for obj in objects]).reshape(-1, 3)
        self._grippers = [(robot.frame_id(h.gripper_frame), np.array([robot.joint_index(j) for j in h.gripper_joints]))
                          for h in cfg.hands]
        # Fingers are prismatic: a finger below this position is closing on something (or closed).
        span = cfg.gripper.open_position - cfg.gripper.closed_position
        self._closed_below = cfg.gripper.closed_position + gripper_closed_fraction * span

    def view(self, q: np.ndarray) -> RobotView:
        """Robot view at full configuration q (base pose in odom, then joints in bus order)."""
        pin.forwardKinematics(self.model, self.data, q)
        cam = pin.updateFramePlacement(self.model, self.data, self.camera_frame)  # only the frames used here
        # Body placements in odom for all bodies at once: joint placement x the body's fixed placement.
        joint_placements = self.data.oMi
        joint_h = np.array([joint_placements[j].homogeneous for j in self._joints]).reshape(-1, 4, 4)[self._body_slot]
        joint_rot, joint_pos = joint_h[:, :3, :3], joint_h[:, :3, 3]
        rotation = joint_rot @ self._body_rotation
        centre = np.einsum("bij,bj->bi", joint_rot, self._body_translation) + joint_pos
        bodies = tuple(BodyBox(r, c, h) for r, c, h in zip(rotation, centre, self._body_half))
        closed = []
        joints = q[7:]
        for frame, finger_idx in self._grippers:
            if np.all(joints[finger_idx] < self._closed_below):
                closed.append(pin.updateFramePlacement(self.model, self.data, frame).translation.copy())
        return RobotView(cam.rotation.copy(), cam.translation.copy(), bodies, tuple(closed),
                         (rotation, centre, self._body_half))
