"""The one pinhole camera model: intrinsics, projection of points to pixels and back-projection of depth.

Optical frame per REP-103: z forward, x right, y down; pixel centres at integer coordinates (OpenCV/ROS
convention), so a point (X, Y, Z) lands on (u, v) = (fx X/Z + cx, fy Y/Z + cy). Depth images hold z (not
ray length) in metres. The robot config, the simulator's renderer and perception all use this class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from optimus_control.errors import SensorDataError


@dataclass(frozen=True)
class PinholeCamera:
    """Intrinsics of an undistorted pinhole camera [px] and its depth range [m].

    ``near`` / ``far`` bound the depth a sensor measures (a renderer's clip planes); a camera known
    only from its CameraInfo has the unbounded range (0, inf).
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    near: float = 0.0
    far: float = math.inf

    def __post_init__(self) -> None:
        # float64 scalars: arithmetic with float32 images then runs in float64 (NumPy 2 keeps float32 for a
        # Python float), the same whether the camera came from a CameraInfo or from the robot config.
        for name in ("fx", "fy", "cx", "cy", "near", "far"):
            object.__setattr__(self, name, np.float64(getattr(self, name)))
        if self.width <= 0 or self.height <= 0 or not (self.fx > 0 and self.fy > 0):
            raise SensorDataError(f"invalid camera intrinsics {self}: sizes and focal lengths must be > 0")
        if not 0.0 <= self.near < self.far:
            raise SensorDataError(f"invalid camera depth range [{self.near}, {self.far}] m: need 0 <= near < far")

    @classmethod
    def from_k(cls, width: int, height: int, k: np.ndarray) -> PinholeCamera:
        """From a row-major 3x3 K matrix (sensor_msgs/CameraInfo.k)."""
        k = np.asarray(k, dtype=float).reshape(3, 3)
        return cls(int(width), int(height), k[0, 0], k[1, 1], k[0, 2], k[1, 2])

    def scaled(self, width: int | None = None, height: int | None = None) -> PinholeCamera:
        """The same field of view at another resolution (None keeps a size)."""
        w, h = width or self.width, height or self.height
        sx, sy = w / self.width, h / self.height
        # Scale about the pixel-grid edge: u_edge = u_centre + 0.5 scales linearly.
        return PinholeCamera(w, h, self.fx * sx, self.fy * sy, (self.cx + 0.5) * sx - 0.5, (self.cy + 0.5) * sy - 0.5,
                             self.near, self.far)

    @property
    def k(self) -> list[float]:
        """Row-major 3x3 camera matrix (sensor_msgs/CameraInfo.k)."""
        return [self.fx, 0.0, self.cx, 0.0, self.fy, self.cy, 0.0, 0.0, 1.0]

    # Ray slopes x/z per column and y/z per row (float64), and as (H, W) grids: computed once per camera, when
    # first used.
    @cached_property
    def _slope_x(self) -> np.ndarray:
        return (np.arange(self.width, dtype=np.float64) - self.cx) / self.fx

    @cached_property
    def _slope_y(self) -> np.ndarray:
        return (np.arange(self.height, dtype=np.float64) - self.cy) / self.fy

    @cached_property
    def ray_slopes(self) -> tuple[np.ndarray, np.ndarray]:
        """(x/z, y/z) of every pixel's ray, each (H, W)."""
        shape = (self.height, self.width)
        return (np.ascontiguousarray(np.broadcast_to(self._slope_x[None, :], shape)),
                np.ascontiguousarray(np.broadcast_to(self._slope_y[:, None], shape)))

    def ray_combination(self, a: float, b: float, c: float, out: np.ndarray | None = None) -> np.ndarray:
        """(H, W) a x/z + b y/z + c of every pixel's ray (into ``out`` if given), e.g. one odom axis of the
        unit-depth ray.

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
        ray_x, ray_y = self.ray_slopes
        out = np.empty((self.height, self.width, 3), dtype=np.float32)
        out[..., 0] = ray_x * depth_m
        out[..., 1] = ray_y * depth_m
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
