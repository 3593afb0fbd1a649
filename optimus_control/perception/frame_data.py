"""Per-image arrays shared by the pipeline stages (computed once per frame)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from optimus_control.model.pinhole_camera import PinholeCamera

_LAB_SCALE = np.array([100.0 / 255.0, 1.0, 1.0], dtype=np.float32)
_LAB_OFFSET = np.array([0.0, 128.0, 128.0], dtype=np.float32)


@dataclass
class FrameData:
    """Everything derived from one RGB-D image and the camera pose; all arrays (H, W[, k])."""

    camera: PinholeCamera
    depth_m: np.ndarray  # float32, 0 where invalid
    valid: np.ndarray  # bool: finite depth within range
    points_odom: np.ndarray  # float32 (3, H, W): x, y, z planes (planar layout keeps per-axis maths contiguous)
    rgb: np.ndarray  # uint8 (H, W, 3); lab_window() converts the windows the stages look at
    horizontal: np.ndarray  # bool: surface normal within tolerance of odom +z
    horizontal_half: np.ndarray  # the same on the half-resolution grid [::2, ::2] where it is computed
    area_factor: np.ndarray  # float32: area [m^2] a pixel covers on a horizontal plane = depth^2 x this
    robot_mask: np.ndarray  # bool: pixels seeing the robot itself

    @property
    def z_m(self) -> np.ndarray:
        return self.points_odom[2]

    def lab_window(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """OpenCV 8-bit Lab (uint8, (y1 - y0, x1 - x0, 3)) of an image window; lab_to_float() gives CIE units.

        Only the window of candidate pixels is converted, not the whole frame (walls, floor and robot are
        never looked at in colour). 8-bit Lab is 4x faster than float Lab and precise enough for colour classes.
        """
        return cv2.cvtColor(self.rgb[y0:y1, x0:x1], cv2.COLOR_RGB2Lab)

    @functools.cached_property
    def large_depth_holes(self) -> np.ndarray:
        """(H, W) bool: invalid depth pixels in 3x3 blocks or larger (isolated dropouts removed)."""
        invalid = (~self.valid).view(np.uint8)
        return cv2.morphologyEx(invalid, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)).view(bool)

    @staticmethod
    def lab_of(rgb_pixels: np.ndarray) -> np.ndarray:
        """OpenCV 8-bit Lab (N, 3) of (N, 3) uint8 RGB pixels, e.g. one object's face."""
        return cv2.cvtColor(rgb_pixels[:, None, :], cv2.COLOR_RGB2Lab)[:, 0, :]

    def area_if_horizontal_m2(self, rows: slice | None = None, cols: slice | None = None) -> np.ndarray:
        """Metric area each pixel (of an optional sub-window) covers if its surface is horizontal."""
        rows, cols = rows or slice(None), cols or slice(None)
        d = self.depth_m[rows, cols]
        return d * d * self.area_factor[rows, cols]


def compute_frame_data(camera: PinholeCamera, rgb: np.ndarray, depth_m: np.ndarray, camera_rotation: np.ndarray,
                       camera_position_m: np.ndarray, min_depth_m: float, max_depth_m: float,
                       horizontal_tolerance_deg: float) -> FrameData:
    """Back-project, transform to odom, estimate which pixels are horizontal and their metric areas."""
    depth = np.asarray(depth_m, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        valid = (depth > min_depth_m) & (depth < max_depth_m)  # false for NaN and +-inf too
    depth = np.where(valid, depth, np.float32(0.0))
    # Isolated invalid pixels (sensor dropouts) with at least 5 valid neighbours out of 8 take the median of
    # their 3x3 window, so dropouts neither split objects nor read as occluders; larger holes stay invalid.
    valid_u8 = valid.view(np.uint8)
    n_valid = cv2.boxFilter(valid_u8, cv2.CV_16U, (3, 3), normalize=False, borderType=cv2.BORDER_CONSTANT)
    fill = ~valid & (n_valid >= 5)
    if fill.any():
        median = cv2.medianBlur(depth, 3)
        fill &= median > min_depth_m
        depth[fill] = median[fill]
        valid = valid | fill
    rot = np.asarray(camera_rotation, dtype=np.float32)
    pos = np.asarray(camera_position_m, dtype=np.float32)
    points = np.empty((3,) + depth.shape, dtype=np.float32)
    for k in range(3):
        camera.ray_combination(rot[k, 0], rot[k, 1], rot[k, 2], out=points[k])  # odom axis k of the unit-depth ray
        points[k] *= depth
        points[k] += pos[k]
    # Horizontal surfaces, on a half-resolution grid (4x cheaper; the stencil spans 2 px each side at full
    # resolution): both image-direction tangents of the surface rise less than tan(tolerance).
    hx, hy, hz = points[0, ::2, ::2], points[1, ::2, ::2], points[2, ::2, ::2]
    tan2 = np.float32(np.tan(np.radians(horizontal_tolerance_deg)) ** 2)
    flat = np.zeros(hz.shape, dtype=bool)
    ux, uy, uz = (a[1:-1, 2:] - a[1:-1, :-2] for a in (hx, hy, hz))
    vx, vy, vz = (a[2:, 1:-1] - a[:-2, 1:-1] for a in (hx, hy, hz))
    flat[1:-1, 1:-1] = (uz * uz <= tan2 * (ux * ux + uy * uy)) & (vz * vz <= tan2 * (vx * vx + vy * vy))
    valid_half = cv2.erode(valid[::2, ::2].astype(np.uint8), np.ones((3, 3), np.uint8))  # stencil inside valid depth
    flat &= valid_half.view(bool)
    horizontal = cv2.resize(flat.view(np.uint8), (depth.shape[1], depth.shape[0]),
                            interpolation=cv2.INTER_NEAREST).view(bool) & valid
    # Area a pixel covers on a horizontal plane: its solid angle times range^2 over the cosine of incidence,
    # which simplifies to z^2 / (fx fy |n . r|), n = odom +z in the optical frame, r = (x/z, y/z, 1).
    dot = camera.ray_combination(rot[2, 0], rot[2, 1], rot[2, 2])
    np.abs(dot, out=dot)
    np.maximum(dot, np.float32(1e-3), out=dot)
    area_factor = np.float32(1.0 / (camera.fx * camera.fy)) / dot
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    return FrameData(camera, depth, valid, points, rgb, horizontal, flat, area_factor, np.zeros(depth.shape, dtype=bool))


def lab_to_float(lab_u8: np.ndarray) -> np.ndarray:
    """OpenCV 8-bit Lab -> float32 CIE Lab (L 0..100, a and b signed), any shape (..., 3)."""
    lab = lab_u8.astype(np.float32)
    lab *= _LAB_SCALE
    lab -= _LAB_OFFSET
    return lab
