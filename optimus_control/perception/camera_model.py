"""Pinhole camera: back-projection of a depth image to 3D points and projection of points to pixels.

Optical frame per REP-103: z forward, x right, y down. Depth images hold z (not ray length) in metres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimus_control.errors import SensorDataError


@dataclass(frozen=True)
class PinholeCamera:
    """Intrinsics of an undistorted pinhole camera [px]."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0 or not (self.fx > 0 and self.fy > 0):
            raise SensorDataError(f"invalid camera intrinsics {self}: sizes and focal lengths must be > 0")
        u = (np.arange(self.width, dtype=np.float32) - self.cx) / self.fx
        v = (np.arange(self.height, dtype=np.float32) - self.cy) / self.fy
        # Ray slopes x/z per column and y/z per row, and as (H, W) grids, computed once per camera.
        object.__setattr__(self, "_slope_x", u)
        object.__setattr__(self, "_slope_y", v)
        object.__setattr__(self, "_ray_x", np.ascontiguousarray(np.broadcast_to(u[None, :], (self.height, self.width))))
        object.__setattr__(self, "_ray_y", np.ascontiguousarray(np.broadcast_to(v[:, None], (self.height, self.width))))

    @classmethod
    def from_config(cls, camera) -> PinholeCamera:
        """From the robot config's ``camera`` entry (optimus_control.model.robot_config.CameraConfig)."""
        return cls(int(camera.width), int(camera.height), float(camera.fx), float(camera.fy), float(camera.cx), float(camera.cy))

    @classmethod
    def from_k(cls, width: int, height: int, k: np.ndarray) -> PinholeCamera:
        """From a row-major 3x3 K matrix (sensor_msgs/CameraInfo.k)."""
        k = np.asarray(k, dtype=float).reshape(3, 3)
        return cls(int(width), int(height), k[0, 0], k[1, 1], k[0, 2], k[1, 2])

    @property
    def ray_slopes(self) -> tuple[np.ndarray, np.ndarray]:
        """(x/z, y/z) of every pixel's ray, each (H, W)."""
        return self._ray_x, self._ray_y

    def ray_combination(self, a: float, b: float, c: float, out: np.ndarray | None = None) -> np.ndarray:
        """(H, W) float32 a x/z + b y/z + c of every pixel's ray, e.g. one odom axis of the unit-depth ray.

        One broadcast sum of a row and a column vector: the x slope depends on the column only, the y slope
        on the row only.
        """
        row = np.float32(a) * self._slope_x
        col = np.float32(b) * self._slope_y + np.float32(c)
        return np.add(row[None, :], col[:, None], out=out)

    def back_project(self, depth_m: np.ndarray) -> np.ndarray:
        """(H, W, 3) points in the optical frame from a z-depth image; invalid depth gives NaN/inf points."""
        if depth_m.shape != (self.height, self.width):
            raise SensorDataError(f"depth image is {depth_m.shape[1]}x{depth_m.shape[0]}, camera is {self.width}x{self.height}")
        out = np.empty((self.height, self.width, 3), dtype=np.float32)
        out[..., 0] = self._ray_x * depth_m
        out[..., 1] = self._ray_y * depth_m
        out[..., 2] = depth_m
        return out

    def project(self, points_optical: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (N, 2) of optical-frame points (N, 3) and a mask of points in front of the camera."""
        p = np.asarray(points_optical, dtype=float).reshape(-1, 3)
        z = p[:, 2]
        front = z > 1e-6
        safe_z = np.where(front, z, 1.0)
        uv = np.stack([self.fx * p[:, 0] / safe_z + self.cx, self.fy * p[:, 1] / safe_z + self.cy], axis=1)
        return uv, front
