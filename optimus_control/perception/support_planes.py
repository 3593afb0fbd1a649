"""Support planes: the horizontal surfaces objects stand on (floor, table tops, conveyor belts).

Heights of the pixels (odom z, gravity-aligned) are histogrammed, weighted by the metric area each
pixel would cover on a horizontal plane, so a near and a far patch count by their true size. Each peak
is split into connected image regions (small gaps closed); a region larger than any object is a support.
Box tops are horizontal too, but smaller than ``support_min_area_m2``. Everything at or below a support
inside its image footprint belongs to the support (roller gaps, belt edges), never to an object.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import cv2
import numpy as np

from optimus_control.perception.params import PerceptionParams

_BIN_M = 0.01


def _median(values: np.ndarray) -> float:
    """np.median of a non-empty 1-D array (the mean of the two middle values for an even count) by one
    partial sort, without np.median's overhead."""
    lower, upper = (values.size - 1) // 2, values.size // 2
    parts = np.partition(values, (lower, upper))
    return 0.5 * (float(parts[lower]) + float(parts[upper]))


@dataclass(frozen=True)
class SupportPlane:
    """A horizontal support at ``height_m`` (odom z) and the pixels that see it."""

    height_m: float
    area_m2: float
    footprint: np.ndarray  # (H, W) bool: image region of the support, gaps closed (rollers, slats, belts)
    tolerance_m: float  # half-width of the height band of the plane (grows with depth noise)
    z_m: np.ndarray = field(repr=False, compare=False)  # (H, W) odom z of the frame's pixels
    valid: np.ndarray = field(repr=False, compare=False)  # (H, W) bool: pixels with usable depth

    @functools.cached_property
    def mask(self) -> np.ndarray:
        """(H, W) bool: pixels on the plane (computed on first use; the detector needs only the footprint)."""
        return self.footprint & self.valid & (np.abs(self.z_m - self.height_m) < self.tolerance_m)


def find_support_planes(z_m: np.ndarray, valid: np.ndarray, horizontal_half: np.ndarray, area_factor: np.ndarray,
                        depth_m: np.ndarray, focal_px: float, params: PerceptionParams) -> list[SupportPlane]:
    """Support planes, highest first; found on the half-resolution grid [::2, ::2] (4x cheaper), masks at full
    resolution. ``area_factor`` x depth^2 is each pixel's area if it lies on a horizontal plane.

    Every valid pixel votes for its height, not only those with a horizontal normal: the tops of a roller
    table are narrow curved strips whose normals are mostly tilted, yet half of its points lie within a few
    millimetres of the roller tops. Walls and box sides spread their votes over many heights.
    """
    full_valid, full_z = valid, z_m
    # Contiguous half-resolution copies: every peak below reads them again.
    z_m, valid, horizontal = np.ascontiguousarray(z_m[::2, ::2]), np.ascontiguousarray(valid[::2, ::2]), horizontal_half
    depth_m = np.ascontiguousarray(depth_m[::2, ::2])
    hz = z_m[valid]
    if hz.size == 0:
        return []
    # A half-resolution pixel stands for 4 pixels. Its area if horizontal grows without bound for rays near
    # the horizon; cap it at ten times its fronto-parallel area so far walls cannot outvote the table.
    d2 = depth_m * depth_m
    weights = 4.0 * d2 * np.minimum(area_factor[::2, ::2], 10.0 / (focal_px * focal_px))
    ha = weights[valid]
    lo = np.floor(hz.min() / _BIN_M) * _BIN_M
    n_bins = int(np.ceil((hz.max() - lo) / _BIN_M)) + 2
    hist = np.bincount(((hz - lo) / _BIN_M).astype(np.int64), weights=ha, minlength=n_bins)
    window = np.convolve(hist, np.ones(3), mode="same")
    bins = np.arange(n_bins)
    left, right = window[np.maximum(bins - 1, 0)], window[np.minimum(bins + 1, n_bins - 1)]
    peaks = np.flatnonzero((window >= 0.5 * params.support_min_area_m2) & (window >= left) & (window >= right))
    close_small = np.ones((4, 4), np.uint8)
    close_large = np.ones((8, 8), np.uint8)
    full_size = (full_z.shape[1], full_z.shape[0])
    planes: list[SupportPlane] = []
    for i in peaks[np.argsort(-window[peaks], kind="stable")].tolist():  # largest first
        centre = lo + (i + 0.5) * _BIN_M
        near_z = hz[np.abs(hz - centre) < 1.5 * _BIN_M]
        if near_z.size == 0:
            continue
        near_z = near_z[:: max(1, near_z.size // 4000)]  # a few thousand samples fix the level to well under 1 mm
        # The plane is the densest 2 mm slab of the peak (a roller table: its roller tops, where the
        # curved surface is flattest), refined by the median of the points within 4 mm of it.
        fine = np.bincount(((near_z - near_z.min()) / 0.002).astype(np.int64))
        slab = near_z.min() + (int(np.argmax(fine)) + 0.5) * 0.002
        height = _median(near_z[np.abs(near_z - slab) < 0.004])
        if any(abs(height - p.height_m) < 2 * params.support_height_tolerance_m for p in planes):
            continue
        # Widen the band to the measured depth noise on this plane (3 sigma from the median deviation),
        # at most to 2.5 x the configured band (a wider band would swallow the next level).
        dev = np.abs(near_z[np.abs(near_z - height) < 0.01] - height)
        tol = min(max(3.0 * 1.4826 * _median(dev), params.support_height_tolerance_m),
                  2.5 * params.support_height_tolerance_m)
        on_plane = valid & (np.abs(z_m - height) < tol)
        closed = cv2.morphologyEx(on_plane.astype(np.uint8), cv2.MORPH_CLOSE, close_small)
        n, labels = cv2.connectedComponents(closed, connectivity=8)
        if n <= 1:
            continue
        region_area = np.bincount(labels[on_plane], weights=weights[on_plane], minlength=n)
        flat = on_plane & horizontal
        flat_area = np.bincount(labels[flat], weights=weights[flat], minlength=n)
        # Large, and at least partly flat (roller tops are ~30 % flat; rows of box sides at one height are not).
        keep = np.flatnonzero((region_area >= params.support_min_area_m2) & (flat_area >= 0.15 * region_area))
        keep = keep[keep > 0]
        if keep.size == 0:
            continue
        is_kept = np.zeros(n, dtype=bool)
        is_kept[keep] = True
        region = is_kept[labels].astype(np.uint8)
        footprint_half = cv2.morphologyEx(region, cv2.MORPH_CLOSE, close_large)
        footprint = cv2.resize(footprint_half, full_size, interpolation=cv2.INTER_NEAREST).view(bool)
        planes.append(SupportPlane(height, float(region_area[keep].sum()), footprint, tol, full_z, full_valid))
    planes.sort(key=lambda p: -p.height_m)
    return planes
