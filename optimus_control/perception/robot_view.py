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
        self._bodies = [(obj.parentJoint, obj.placement.copy(), _half_extents(obj.geometry))
                        for obj in self.geometry.geometryObjects]
        self._grippers = [(robot.frame_id(h.gripper_frame), np.array([robot.joint_index(j) for j in h.gripper_joints]))
                          for h in cfg.hands]
        # Fingers are prismatic: a finger below this position is closing on something (or closed).
        span = cfg.gripper.open_position - cfg.gripper.closed_position
        self._closed_below = cfg.gripper.closed_position + gripper_closed_fraction * span

    def view(self, q: np.ndarray) -> RobotView:
        """Robot view at full configuration q (base pose in odom, then joints in bus order)."""
        pin.forwardKinematics(self.model, self.data, q)
        pin.updateFramePlacements(self.model, self.data)
        cam = self.data.oMf[self.camera_frame]
        bodies = []
        for joint, placement, half in self._bodies:
            world = self.data.oMi[joint] * placement
            bodies.append(BodyBox(world.rotation.copy(), world.translation.copy(), half))
        closed = []
        joints = q[7:]
        for frame, finger_idx in self._grippers:
            if np.all(joints[finger_idx] < self._closed_below):
                closed.append(self.data.oMf[frame].translation.copy())
        return RobotView(cam.rotation.copy(), cam.translation.copy(), tuple(bodies), tuple(closed))
