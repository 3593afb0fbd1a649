r"""3D cuboid fit of one segmented object: top face from depth, height from the support plane.

The top face is the set of object pixels at the object's highest flat level. Its yaw comes from the
minimum-area rectangle of the top-face points (robust for square faces, where second moments are
isotropic). Its centre and side lengths come from area-weighted moments along that rectangle's axes:
for a uniform rectangle of side a, the variance along that side is a^2 / 12, so a = \sqrt{12 \sigma^2}.
Weighting each pixel by the metric area it covers removes the perspective bias of counting pixels, and
the pixel's own extent is added back to the variance (each pixel is a patch, not a point).
An open container (bin) has a thin rim at its top level: its rim covers a small part of its footprint.
"""

from __future__ import annotations

import cv2
import numpy as np

from optimus_control.perception.colour_classifier import ColourClassifier
from optimus_control.perception.detection import Detection
from optimus_control.perception.frame_data import FrameData, lab_to_float
from optimus_control.perception.params import PerceptionParams
from optimus_control.perception.support_planes import SupportPlane


def _median(values: np.ndarray) -> float:
    """Median of a 1-D array by one partial sort (np.median's overhead dominates on the small arrays here)."""
    m = values.size // 2
    return float(np.partition(values, m)[m])


def _median_rows(values: np.ndarray) -> np.ndarray:
    """Per-column median of (N, k) values, as np.median(values, axis=0) (the mean of the two middle values
    for an even count) from one partial sort of the k columns together."""
    n = values.shape[0]
    lower, upper = (n - 1) // 2, n // 2
    parts = np.partition(values.T, (lower, upper), axis=1)
    return 0.5 * (parts[:, lower].astype(np.float64) + parts[:, upper])


def _span(values: np.ndarray) -> float:
    """max - min of a 1-D float32 array (one OpenCV pass; numpy's two reductions cost more on small arrays)."""
    low, high, _, _ = cv2.minMaxLoc(values)
    return high - low


def _wrap_half_pi(yaw: float) -> float:
    """Yaw of a box about z modulo pi, in (-pi/2, pi/2]."""
    y = (yaw + np.pi / 2) % np.pi - np.pi / 2
    return float(np.pi / 2 if y <= -np.pi / 2 + 1e-12 else y)


_K3 = np.ones((3, 3), np.uint8)
_K5 = np.ones((5, 5), np.uint8)


def _on_border(mask: np.ndarray, bbox: tuple[int, int, int, int], frame: FrameData) -> bool:
    x0, y0, x1, y1 = bbox
    h, w = frame.depth_m.shape
    return bool((y0 == 0 and mask[0].any()) or (y1 == h and mask[-1].any()) or (x0 == 0 and mask[:, 0].any())
                or (x1 == w and mask[:, -1].any()))


def _occlusion(frame: FrameData, top: np.ndarray, own: np.ndarray, bbox: tuple[int, int, int, int],
               params: PerceptionParams) -> float:
    """Share of the top face's outline next to something that may hide it (1.0: cut by the image border):
    a nearer surface, or a large hole in the depth."""
    x0, y0, x1, y1 = bbox
    h, w = frame.depth_m.shape
    if _on_border(top, bbox, frame):
        return 1.0
    ring = cv2.dilate(top.view(np.uint8), _K3).view(bool) & ~own
    if not ring.any():
        return 0.0
    depth = frame.depth_m[y0:y1, x0:x1]
    top_depth = np.where(top, depth, np.float32(np.inf))
    nearest_top = cv2.erode(top_depth, _K3)[ring]  # min depth of adjacent top pixels
    ring_depth = depth[ring]
    thr = params.depth_edge_m + params.depth_edge_ratio * nearest_top
    # Missing depth next to the face hides it only where the hole is large (a 3x3 block or more).
    big_hole = frame.large_depth_holes[y0:y1, x0:x1][ring]
    # The robot's own pixels count like any surface: occluding only when nearer (its mask is inflated).
    occluded = ((ring_depth < nearest_top - thr) & frame.valid[y0:y1, x0:x1][ring]) | big_hole
    return float(np.count_nonzero(occluded) / ring_depth.size)


def _open_container(frame: FrameData, own: np.ndarray, bbox: tuple[int, int, int, int], rim_xy: np.ndarray,
                    centre, sides, angle_deg: float, z_top: float, params: PerceptionParams) -> tuple[bool, bool]:
    """Is a thin top level the rim of an open container? Its points run along at least three sides of
    their rectangle, and the object's own pixels inside the rectangle lie well below the rim.
    Returns (is a container, all four rim sides seen)."""
    x0, y0, x1, y1 = bbox
    yaw = np.radians(angle_deg)
    axes = np.array([[np.cos(yaw), np.sin(yaw)], [-np.sin(yaw), np.cos(yaw)]])
    half = 0.5 * np.asarray(sides, dtype=float)
    local = (rim_xy - np.asarray(centre, dtype=float)) @ axes.T
    wall = params.bin_max_wall_m
    sides_seen = 0
    for axis in (0, 1):
        other = 1 - axis
        for sign in (-1.0, 1.0):
            on_side = local[(half[axis] - sign * local[:, axis]) < wall]
            if on_side.shape[0] and np.ptp(on_side[:, other]) >= 1.0 * half[other]:  # half the side's length
                sides_seen += 1
    if sides_seen < 3 or np.mean(np.min(half - np.abs(local), axis=1) < wall) < 0.8:
        return False, False
    pts = frame.points_odom[:, y0:y1, x0:x1][:, own]
    inner = (pts[:2].T - np.asarray(centre, dtype=float)) @ axes.T
    inside = np.all(np.abs(inner) < half - wall, axis=1)
    hollow = int(np.count_nonzero(inside & (pts[2] < z_top - params.min_object_height_m))) >= params.min_component_pixels
    return hollow, sides_seen == 4


def fit_object(frame: FrameData, labels: np.ndarray, label: int, bbox: tuple[int, int, int, int],
               planes: list[SupportPlane], classifier: ColourClassifier, params: PerceptionParams,
               rejections: list[str] | None = None) -> Detection | None:
    """Cuboid (or bin) fitted to the pixels of one label; None when the pixels are not a plausible object
    (the reason is appended to ``rejections`` when given)."""

    def reject(why: str) -> None:
        if rejections is not None:
            rejections.append(f"label {label}: {why}")
    x0, y0, x1, y1 = bbox
    own = labels[y0:y1, x0:x1] == label
    z = frame.z_m[y0:y1, x0:x1]
    zc = z[own]
    k = int(0.98 * (zc.size - 1))
    z_hi = float(np.partition(zc, k)[k])
    z_top = _median(zc[zc > z_hi - 0.015])
    support = next((p.height_m for p in planes if p.height_m < z_top - params.min_object_height_m), None)
    if support is None:
        return reject(f"no support plane below z={z_top:.3f}")
    height = z_top - support
    # Too tall to be a box on the support: it can still be a bin on a stand (its stand hidden under it).
    bin_only = height > params.max_object_height_m
    # The top-face band adapts to the depth noise seen on the flat top: a wide band also takes in the
    # upper rows of the side faces, whose points sit on the rim and inflate the measured size.
    off_top = np.abs(z - z_top)
    band = own & frame.horizontal[y0:y1, x0:x1] & (off_top < params.top_face_tolerance_m)
    dz = z[band] - z_top
    if dz.size >= 5:
        sigma = 1.4826 * _median(np.abs(dz - _median(dz)))
        tol = min(max(3.0 * sigma + 0.0005, 0.001), params.top_face_tolerance_m)  # scalar clip (np.clip is slow)
    else:
        tol = params.top_face_tolerance_m
    top = own & (off_top < tol)
    n_top = int(np.count_nonzero(top))
    if n_top < params.min_component_pixels // 2:
        return reject(f"top face of {n_top} px")

    xy_rows = frame.points_odom[:2, y0:y1, x0:x1][:, top]  # (2, n_top)
    extent = max(_span(xy_rows[0]), _span(xy_rows[1]))  # cheap bounds before the fit: a diagonal limits any side
    if extent > np.sqrt(2.0) * params.max_object_side_m or (bin_only and extent < params.bin_min_side_m):
        return reject(f"top extent {extent:.3f} m out of range" + (" for a bin" if bin_only else ""))
    depth_top = frame.depth_m[y0:y1, x0:x1][top]
    weight = (depth_top * depth_top * frame.area_factor[y0:y1, x0:x1][top]).astype(np.float64)
    top_area = float(weight.sum())
    xy = xy_rows.T.astype(np.float64)
    rect_centre, (rw, rh), angle_deg = cv2.minAreaRect(xy.astype(np.float32))
    pixel_side = float(np.sqrt(top_area / n_top))  # typical pixel footprint on the top [m]
    rim_fill = top_area / (max(float(rw * rh), 1e-9) + 2.0 * pixel_side * (rw + rh))
    could_be_bin = rim_fill < params.bin_max_rim_fill_ratio and max(rw, rh) >= params.bin_min_side_m
    if bin_only and not could_be_bin:
        return reject(f"height {height:.3f} m above the support is too tall for a box")
    yaw = np.radians(angle_deg)
    axes = np.array([[np.cos(yaw), np.sin(yaw)], [-np.sin(yaw), np.cos(yaw)]])  # rows: rectangle axes
    centre = (weight @ xy) / top_area
    local = (xy - centre) @ axes.T
    pixel_var = top_area / n_top / 12.0  # each pixel is a patch of about this variance along any axis
    var = (weight @ (local * local)) / top_area + pixel_var
    sides = np.sqrt(12.0 * var)
    is_bin, rim_complete = False, False
    if could_be_bin:
        is_bin, rim_complete = _open_container(frame, own, bbox, xy, rect_centre, (rw, rh), angle_deg, z_top, params)
    if bin_only and not is_bin:
        return reject(f"height {height:.3f} m above the support is too tall for a box")
    if is_bin:
        # A bin's bottom is its lowest visible point when that is above the support (a bin on a stand).
        k_low = int(0.02 * (zc.size - 1))
        support = max(support, float(np.partition(zc, k_low)[k_low]))
        height = z_top - support
        if not params.min_object_height_m <= height <= params.max_object_height_m:
            return reject(f"bin height {height:.3f} m out of range")
        sides = np.array([rw + pixel_side, rh + pixel_side])  # the rectangle through pixel centres misses half a pixel per side
        # The hull's centre, not the rim's centroid (one rim side may be hidden by the near wall).
        centre = np.asarray(rect_centre, dtype=np.float64)
    else:
        # Normals are unknown within the stencil half-width of the rim, so grow the flat area by that much.
        flat = cv2.dilate(frame.horizontal[y0:y1, x0:x1].astype(np.uint8), _K5).view(bool)
        if np.count_nonzero(top & flat) < 0.6 * n_top:
            return reject("highest level is not flat")  # a slanted or vertical surface, not a box top
        fill = top_area / max(float(sides[0] * sides[1]), 1e-9)
        if fill < params.min_top_fill_ratio:
            return reject(f"top fill {fill:.2f}, rim fill {rim_fill:.2f}")
    if not (params.min_object_side_m <= min(sides) and max(sides) <= params.max_object_side_m):
        return reject(f"sides {sides.round(3).tolist()} out of range")
    if sides[0] < sides[1]:
        sides = sides[::-1]
        yaw += np.pi / 2
    # Partial view: a nearer object merely touching the face's outline in the image (standing beside or in front
    # of the box) shares a short stretch of it; one that hides part of the face shares more. A straight cut
    # leaves a clean rectangle, so the shape cannot tell: the outline share decides.
    partial = _occlusion(frame, top, own, bbox, params) >= params.partial_min_occluded_fraction
    if is_bin:
        partial = partial or not rim_complete or _on_border(own, bbox, frame)
    if is_bin:
        name, distance = params.bin_class, 0.0
    else:
        lab = lab_to_float(_median_rows(frame.lab_of(frame.rgb[y0:y1, x0:x1][top])))
        name, distance = classifier.classify(lab)
    return Detection(
        class_name=name, position_m=np.array([centre[0], centre[1], support + 0.5 * height]), yaw_rad=_wrap_half_pi(yaw),
        size_m=np.array([sides[0], sides[1], height]), is_bin=is_bin, partial=partial, top_area_m2=top_area,
        colour_distance=distance, pixels=int(np.count_nonzero(own)),
    )
