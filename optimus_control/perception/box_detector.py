"""Boxes and bins in one RGB-D frame, given the camera pose: the single-frame detection pipeline.

Stages: back-project to odom -> find support planes -> object pixels (valid, above a support, not the
robot) -> split at depth/colour discontinuities -> fit a cuboid or bin to each part -> classify colour.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from optimus_control.errors import SensorDataError
from optimus_control.model.pinhole_camera import PinholeCamera
from optimus_control.perception.box_fitting import fit_object
from optimus_control.perception.colour_classifier import ColourClassifier
from optimus_control.perception.detection import Detection
from optimus_control.perception.frame_data import FrameData, compute_frame_data
from optimus_control.perception.params import PerceptionParams
from optimus_control.perception.segmentation import label_objects
from optimus_control.perception.support_planes import SupportPlane, find_support_planes

_MIN_BIN_PIXELS = 150  # a bin (0.15 m or more across) covers more pixels than this up to ~3 m away


@dataclass
class FrameResult:
    """Detections of one frame plus what the pipeline found along the way (for diagnostics and tests)."""

    detections: list[Detection]
    support_heights_m: list[float]
    frame: FrameData | None = None
    labels: np.ndarray | None = None
    stage_ms: dict[str, float] = field(default_factory=dict)
    rejections: list[str] = field(default_factory=list)


class BoxDetector:
    """Single-frame detector; stateless between frames apart from its configuration."""

    def __init__(self, camera: PinholeCamera, params: PerceptionParams | None = None):
        self.camera = camera
        self.params = params or PerceptionParams()
        p = self.params
        self.classifier = ColourClassifier(p.colour_classes, p.colour_max_distance, p.colour_l_weight, p.unknown_class)

    def check_images(self, rgb: np.ndarray, depth_m: np.ndarray) -> None:
        """Shapes must match the camera: (H, W, 3) uint8 colour and (H, W) float depth."""
        c = self.camera
        if rgb.shape != (c.height, c.width, 3) or rgb.dtype != np.uint8:
            raise SensorDataError(f"colour image is {rgb.shape} {rgb.dtype}, expected ({c.height}, {c.width}, 3) uint8")
        if depth_m.shape != (c.height, c.width) or depth_m.dtype.kind != "f":
            raise SensorDataError(f"depth image is {depth_m.shape} {depth_m.dtype}, expected ({c.height}, {c.width}) float")

    def detect(self, rgb: np.ndarray, depth_m: np.ndarray, camera_rotation: np.ndarray, camera_position_m: np.ndarray,
               robot_mask_fn: Callable[[FrameData], np.ndarray] | None = None, keep_frame: bool = False) -> FrameResult:
        """Detect boxes and bins.

        ``camera_rotation``/``camera_position_m``: optical frame pose in odom. ``robot_mask_fn(frame)``
        returns the (H, W) mask of pixels seeing the robot (the self-filter), or None to skip it.
        """
        self.check_images(rgb, depth_m)
        p = self.params
        stage: dict[str, float] = {}
        t0 = time.perf_counter()
        frame = compute_frame_data(self.camera, rgb, depth_m, camera_rotation, camera_position_m, p.min_depth_m,
                                   p.max_depth_m, p.horizontal_normal_tolerance_deg)
        if robot_mask_fn is not None:
            frame.robot_mask = robot_mask_fn(frame)
        t1 = time.perf_counter()
        stage["geometry"] = 1e3 * (t1 - t0)
        usable = frame.valid & ~frame.robot_mask
        planes = find_support_planes(frame.z_m, usable, frame.horizontal_half,
                                     frame.area_factor, frame.depth_m, self.camera.fx, p)
        t2 = time.perf_counter()
        stage["planes"] = 1e3 * (t2 - t1)
        if not planes:
            return FrameResult([], [], frame if keep_frame else None, None, stage)
        candidates = usable & (frame.z_m > planes[-1].height_m + planes[-1].tolerance_m)
        for plane in planes:
            # On or below a support, inside its footprint: the support itself, its gaps or what is under it.
            candidates &= ~(plane.footprint & (frame.z_m < plane.height_m + plane.tolerance_m))
        labels, stats = label_objects(candidates, frame.depth_m, frame.lab_window, p)
        t3 = time.perf_counter()
        stage["segment"] = 1e3 * (t3 - t2)
        rejections: list[str] = []
        detections = self._fit_all(frame, labels, stats, planes, rejections)
        stage["fit"] = 1e3 * (time.perf_counter() - t3)
        return FrameResult(detections, [pl.height_m for pl in planes], frame if keep_frame else None,
                           labels if keep_frame else None, stage, rejections)

    def _fit_all(self, frame: FrameData, labels: np.ndarray, stats: np.ndarray, planes: list[SupportPlane],
                 rejections: list[str]) -> list[Detection]:
        h, w = labels.shape
        p = self.params
        out = []
        n = stats.shape[0]
        if n <= 1:
            return out
        # Every label's highest and lowest point in one vectorised pass: labels that cannot be an object on
        # any support are dropped before the (per-label, Python-level) fit.
        labelled = labels > 0
        z_max = np.full(n, -np.inf, dtype=np.float32)
        z_min = np.full(n, np.inf, dtype=np.float32)
        np.maximum.at(z_max, labels[labelled], frame.z_m[labelled])
        np.minimum.at(z_min, labels[labelled], frame.z_m[labelled])
        heights = [pl.height_m for pl in planes]
        too_tall = p.max_object_height_m + 0.05
        for label in range(1, n):
            x, y, bw, bh, pixels = (int(v) for v in stats[label])
            if pixels < p.min_component_pixels:
                continue
            below = [hgt for hgt in heights if hgt < z_max[label] - p.min_object_height_m]
            if not below or (z_max[label] - below[0] > too_tall and z_max[label] - z_min[label] > too_tall):
                rejections.append(f"label {label}: top z={z_max[label]:.3f} is no object height above a support")
                continue
            if z_max[label] - below[0] > too_tall and (pixels < _MIN_BIN_PIXELS or max(bw, bh) > 8 * min(bw, bh)
                                                        or z_max[label] - z_min[label] < p.bin_min_height_m):
                # Only a bin on a stand could be this high above the support: too small, thin or flat for one.
                rejections.append(f"label {label}: {pixels} px, {bw}x{bh} px box: too high for a box, not a bin")
                continue
            bbox = (max(x - 2, 0), max(y - 2, 0), min(x + bw + 2, w), min(y + bh + 2, h))
            det = fit_object(frame, labels, label, bbox, planes, self.classifier, self.params, rejections)
            if det is not None:
                out.append(det)
        return out
