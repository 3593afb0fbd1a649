"""Split the pixels above the support planes into objects at depth and colour discontinuities.

Edge pixels are cut out before connected-component labelling (so touching objects separate) and then
given back to the neighbouring object they match in depth and colour (so no object loses its rim,
which would bias its measured size).
"""

from __future__ import annotations

import cv2
import numpy as np

from optimus_control.perception.params import PerceptionParams

_OFFSETS = np.array([(-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)])


def weighted_colour_planes(lab_u8: np.ndarray, l_weight: float) -> np.ndarray:
    """(3, H, W) float32 colour planes in which Euclidean distance is the L-weighted CIE Lab distance.

    OpenCV's 8-bit Lab stores L x 255/100 and a, b offset by 128; offsets cancel in differences.
    """
    planes = np.empty((3,) + lab_u8.shape[:2], dtype=np.float32)
    for k, channel in enumerate(cv2.split(np.ascontiguousarray(lab_u8))):
        planes[k] = channel
    planes[0] *= np.float32(l_weight * 100.0 / 255.0)
    return planes


def _colour_distance2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared distance between colour planes a and b (3 along the first axis)."""
    d0, d1, d2 = a[0] - b[0], a[1] - b[1], a[2] - b[2]
    return d0 * d0 + d1 * d1 + d2 * d2


def discontinuity_edges(depth_m: np.ndarray, colour: np.ndarray, params: PerceptionParams) -> np.ndarray:
    """(H, W) bool: pixels on either side of a depth jump or a colour change to a right/down neighbour.
    ``colour``: weighted colour planes (weighted_colour_planes)."""
    edges = np.zeros(depth_m.shape, dtype=bool)
    limit2 = np.float32(params.colour_edge_delta_e ** 2)
    for axis in (0, 1):
        if axis == 1:
            d0, d1, c0, c1 = depth_m[:, :-1], depth_m[:, 1:], colour[:, :, :-1], colour[:, :, 1:]
        else:
            d0, d1, c0, c1 = depth_m[:-1], depth_m[1:], colour[:, :-1], colour[:, 1:]
        jump = np.abs(d1 - d0) > params.depth_edge_m + params.depth_edge_ratio * np.minimum(d0, d1)
        jump |= _colour_distance2(c0, c1) > limit2
        if axis == 1:
            edges[:, :-1] |= jump
            edges[:, 1:] |= jump
        else:
            edges[:-1] |= jump
            edges[1:] |= jump
    return edges


def label_objects(mask: np.ndarray, depth_m: np.ndarray, lab_u8: np.ndarray,
                  params: PerceptionParams) -> tuple[np.ndarray, np.ndarray]:
    """Object labels (H, W) int32 (0 = none) and per-label stats rows (x, y, w, h, pixels) as from
    cv2.connectedComponentsWithStats; a label's box is padded by 2 px for the edge pixels given back."""
    labels = np.zeros(mask.shape, dtype=np.int32)
    ys_m, xs_m = np.nonzero(mask)
    if ys_m.size == 0:
        return labels, np.zeros((1, 5), dtype=np.int32)
    # Work in the bounding rectangle of the candidate pixels only.
    y0, y1, x0, x1 = int(ys_m.min()), int(ys_m.max()) + 1, int(xs_m.min()), int(xs_m.max()) + 1
    m, d = mask[y0:y1, x0:x1], depth_m[y0:y1, x0:x1]
    c = weighted_colour_planes(lab_u8[y0:y1, x0:x1], params.colour_edge_l_weight)
    edges = discontinuity_edges(d, c, params) & m
    n, sub, stats, _ = cv2.connectedComponentsWithStats((m & ~edges).astype(np.uint8), connectivity=4)
    stats = stats.copy()
    stats[:, 0] += x0
    stats[:, 1] += y0
    ys, xs = np.nonzero(edges)
    h, w = m.shape
    dy, dx = _OFFSETS[:, 0], _OFFSETS[:, 1]
    for _ in range(2 if n > 1 else 0):  # two passes: an edge two pixels wide is given back from both sides
        if ys.size == 0:
            break
        # All 8 neighbours of every edge pixel at once: (n_edges, 8) gathers.
        ny = np.clip(ys[:, None] + dy, 0, h - 1)
        nx = np.clip(xs[:, None] + dx, 0, w - 1)
        nl = sub[ny, nx]
        d_here = d[ys, xs][:, None]
        dd = np.abs(d[ny, nx] - d_here)
        here = c[:, ys, xs][:, :, None]
        dc = np.sqrt(_colour_distance2(c[:, ny, nx], here))
        limit = params.depth_edge_m + params.depth_edge_ratio * d_here
        cost = dc + params.colour_edge_delta_e * dd / limit
        cost[(nl == 0) | (dd >= limit) | (dc >= params.colour_edge_delta_e)] = np.inf
        best = np.argmin(cost, axis=1)
        rows = np.arange(ys.size)
        assigned = np.isfinite(cost[rows, best])
        best_label = nl[rows, best][assigned]
        sub[ys[assigned], xs[assigned]] = best_label
        np.add.at(stats[:, 4], best_label, 1)
        ys, xs = ys[~assigned], xs[~assigned]
    labels[y0:y1, x0:x1] = sub
    return labels, stats
