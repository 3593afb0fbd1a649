"""The head RGB-D camera: a pinhole model rendered with PyBullet's software renderer.

The OpenGL projection is built from the pinhole intrinsics (fx, fy, cx, cy, near, far) so that a
point at optical-frame coordinates (X, Y, Z) lands on pixel (u, v) = (fx X/Z + cx, fy Y/Z + cy) (pixel
centres at integer coordinates, OpenCV/ROS convention) with depth Z [m]: exactly what the published
CameraInfo says (the projection compensates for TinyRenderer sampling pixel corners, see
projection_matrix). The view matrix comes from the optical frame of the URDF (REP-103: x right, y down,
z forward), looked up in PyBullet every frame.
"""

from __future__ import annotations

import math

import numpy as np
import pybullet as pb

from optimus_control.errors import SimulationError
from optimus_control.model.pinhole_camera import PinholeCamera

# Optical frame (x right, y down, z forward) -> OpenGL eye frame (x right, y up, z backward).
_OPTICAL_TO_GL = np.diag([1.0, -1.0, -1.0])


def projection_matrix(k: PinholeCamera) -> np.ndarray:
    """4x4 OpenGL projection matrix for PyBullet's TinyRenderer equivalent to the pinhole intrinsics (row-major).

    TinyRenderer does not sample pixel centres: it rasterises at integer window coordinates
    (x_win = (x_ndc + 1) W/2 = i) and flips the rows into the image (row v = H - 1 - j), so image
    column u samples NDC x = 2u/W - 1 and row v samples NDC y = 1 - 2(v + 1)/H. With X_gl = X,
    Y_gl = -Y, Z_gl = -Z and w_clip = Z, asking those rays to be the pinhole rays
    u = fx X/Z + cx, v = fy Y/Z + cy gives the off-centre terms below (the textbook pixel-centre terms
    1 - (2cx + 1)/W and (2cy + 1)/H - 1 shift the image by half a pixel: a table top seen from the head
    back-projects ~2 mm too high). Depth uses the standard near/far mapping of z to [-1, 1].
    Callers pass it to PyBullet transposed and flattened (OpenGL's column-major order).
    """
    w, h, n, f = k.width, k.height, k.near, k.far
    if not (n > 0.0 and math.isfinite(f)):
        raise SimulationError(f"rendering needs a depth range 0 < near < far < inf, the camera has [{n}, {f}] m")
    return np.array([
        [2 * k.fx / w, 0.0, 1.0 - 2 * k.cx / w, 0.0],
        [0.0, 2 * k.fy / h, (2 * k.cy + 2) / h - 1.0, 0.0],
        [0.0, 0.0, -(f + n) / (f - n), -2 * f * n / (f - n)],
        [0.0, 0.0, -1.0, 0.0],
    ])


def view_matrix(position_world: np.ndarray, rotation_world_optical: np.ndarray) -> np.ndarray:
    """4x4 world -> OpenGL eye transform for an optical frame at the given pose (row-major)."""
    rot_cam_world = _OPTICAL_TO_GL @ rotation_world_optical.T
    out = np.eye(4)
    out[:3, :3] = rot_cam_world
    out[:3, 3] = -rot_cam_world @ position_world
    return out


def depth_buffer_to_metres(buffer: np.ndarray, near: float, far: float) -> np.ndarray:
    """Convert an OpenGL depth buffer (0..1, non-linear) to optical-axis depth Z [m]; far plane -> NaN."""
    d = np.asarray(buffer, dtype=np.float64)
    z = far * near / (far - (far - near) * d)
    z[d >= 1.0] = np.nan  # nothing hit within range (REP-117: invalid depth is NaN)
    return z.astype(np.float32)


class HeadCamera:
    """Renders RGB (uint8 HxWx3) and depth (float32 HxW, metres) from a robot link's optical frame."""

    def __init__(self, client: int, body_id: int, link_index: int, intrinsics: PinholeCamera):
        if link_index < 0:
            raise SimulationError("the camera optical frame must be a link of the robot, not its base")
        self.client, self.body_id, self.link_index, self.k = client, body_id, link_index, intrinsics
        self._projection = projection_matrix(intrinsics).T.flatten().tolist()  # OpenGL wants column-major

    @classmethod
    def on_robot(cls, world, intrinsics: PinholeCamera | None = None) -> HeadCamera:
        """The robot config's head camera in a :class:`~optimus_control.sim.world.SimWorld`, with the
        configured intrinsics unless others (e.g. another resolution) are given."""
        cam = world.robot.config.camera
        return cls(world.client, world.robot_id, world.link_ids[cam.optical_frame], intrinsics or cam.intrinsics)

    def optical_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Optical frame position [m] and rotation matrix in the world (ground truth, used to render only)."""
        st = pb.getLinkState(self.body_id, self.link_index, computeForwardKinematics=1, physicsClientId=self.client)
        return np.array(st[4]), np.array(pb.getMatrixFromQuaternion(st[5])).reshape(3, 3)

    def render(self) -> tuple[np.ndarray, np.ndarray]:
        position, rotation = self.optical_pose()
        return render_rgbd(self.client, self.k, position, rotation, self._projection)


def render_rgbd(client: int, k: PinholeCamera, position_world: np.ndarray, rotation_world_optical: np.ndarray,
                projection: list[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """RGB (uint8 HxWx3) and depth (float32 HxW, optical-axis Z [m], NaN = no hit) seen from an optical frame pose.

    ``projection`` is ``projection_matrix(k)`` in PyBullet's column-major list form (computed if omitted).
    """
    if projection is None:
        projection = projection_matrix(k).T.flatten().tolist()
    view = view_matrix(position_world, rotation_world_optical).T.flatten().tolist()
    _, _, rgba, depth, _ = pb.getCameraImage(
        k.width, k.height, viewMatrix=view, projectionMatrix=projection, renderer=pb.ER_TINY_RENDERER,
        flags=pb.ER_NO_SEGMENTATION_MASK, shadow=0, physicsClientId=client,
    )
    rgb = np.asarray(rgba, dtype=np.uint8).reshape(k.height, k.width, 4)[:, :, :3]
    depth_m = depth_buffer_to_metres(np.asarray(depth).reshape(k.height, k.width), k.near, k.far)
    return np.ascontiguousarray(rgb), depth_m
