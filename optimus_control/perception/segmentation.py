"""Split the pixels above the support planes into objects at depth and colour discontinuities.

Edge pixels are cut out before connected-component labelling (so touching objects separate) and then
given back to the neighbouring object they match in depth and colour (so no object loses its rim,
which would bias its measured size).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from optimus_control.perception.params import PerceptionParams

_OFFSETS = np.array([(-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)])


def channel_weights(l_weight: float) -> np.ndarray:
    """(3,) float32 weights of squared 8-bit Lab channel differences whose sum is the squared L-weighted
    CIE Lab distance. OpenCV's 8-bit Lab stores L x 255/100 and a, b offset by 128; offsets cancel in
    differences."""
    return np.array([(l_weight * 100.0 / 255.0) ** 2, 1.0, 1.0], dtype=np.float32)


def colour_distance2(lab_a: np.ndarray, lab_b: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Squared weighted Lab distance between two equally shaped 8-bit Lab images (..., 3), per pixel.
    One vectorised pass per step, all in numpy: a - b per channel (int16), its square as float32, the weighted
    channel sum. (OpenCV's absdiff and transform on strided neighbour views or (N, 3) pixel lists have returned
    a non-array in long runs, which killed the perception node.)"""
    diff = np.subtract(lab_a, lab_b, dtype=np.int16)
    return np.square(diff, dtype=np.float32) @ weights


def discontinuity_edges(depth_m: np.ndarray, lab_u8: np.ndarray, params: PerceptionParams) -> np.ndarray:
    """(H, W) bool: pixels on either side of a depth jump or a colour change to a right/down neighbour."""
    edges = np.zeros(depth_m.shape, dtype=bool)
    limit2 = np.float32(params.colour_edge_delta_e ** 2)
    weights = channel_weights(params.colour_edge_l_weight)
    for axis in (0, 1):
        if axis == 1:
            d0, d1, c0, c1 = depth_m[:, :-1], depth_m[:, 1:], lab_u8[:, :-1], lab_u8[:, 1:]
        else:
            d0, d1, c0, c1 = depth_m[:-1], depth_m[1:], lab_u8[:-1], lab_u8[1:]
        limit = np.minimum(d0, d1)
        limit *= np.float32(params.depth_edge_ratio)
        limit += np.float32(params.depth_edge_m)
        jump = np.abs(d0 - d1) > limit
        jump |= colour_distance2(c0, c1, weights) > limit2
        if axis == 1:
            edges[:, :-1] |= jump
            edges[:, 1:] |= jump
        else:
            edges[:-1] |= jump
            edges[1:] |= jump
    return edges


def label_objects(mask: np.ndarray, depth_m: np.ndarray, lab_window: Callable[[int, int, int, int], np.ndarray],
                  params: PerceptionParams) -> tuple[np.ndarray, np.ndarray]:
    """Object labels (H, W) int32 (0 = none) and per-label stats rows (x, y, w, h, pixels) as from
    cv2.connectedComponentsWithStats; a label's box is padded by 2 px for the edge pixels given back.
    ``lab_window(y0, y1, x0, x1)`` gives the 8-bit Lab colours of an image window (FrameData.lab_window)."""
    labels = np.zeros(mask.shape, dtype=np.int32)
    # Work in the bounding rectangle of the candidate pixels only.
    x0, y0, bw, bh = cv2.boundingRect(mask.view(np.uint8))
    if bw == 0 or bh == 0:
        return labels, np.zeros((1, 5), dtype=np.int32)
    y1, x1 = y0 + bh, x0 + bw
    m, d = mask[y0:y1, x0:x1], depth_m[y0:y1, x0:x1]
    lab = lab_window(y0, y1, x0, x1)
    edges = discontinuity_edges(d, lab, params) & m
    n, sub, stats, _ = cv2.connectedComponentsWithStats((m & ~edges).astype(np.uint8), connectivity=4)
    stats = stats.copy()
    stats[:, 0] += x0
    stats[:, 1] += y0
    # Give edge pixels back on arrays padded by one pixel of 'no label' (no neighbour outside the window),
    # addressed by flat indices: an edge pixel's 8 neighbours are fixed offsets from it.
    width = bw + 2
    sub_pad = np.pad(sub, 1).ravel()
    d_pad = np.pad(d, 1).ravel()
    lab_pad = np.pad(lab, ((1, 1), (1, 1), (0, 0))).reshape(-1, 3)
    offsets = _OFFSETS[:, 0] * width + _OFFSETS[:, 1]
    ys, xs = np.nonzero(edges)
    here = (ys + 1) * width + (xs + 1)
    weights = channel_weights(params.colour_edge_l_weight)
    for _ in range(2 if n > 1 else 0):  # two passes: an edge two pixels wide is given back from both sides
        if here.size == 0:
            break
        # All 8 neighbours of every edge pixel at once: (n_edges, 8) gathers.
        near = here[:, None] + offsets
        nl = sub_pad[near]
        d_here = d_pad[here][:, None]
        dd = np.abs(d_pad[near] - d_here)
        lab_here = np.repeat(lab_pad[here][:, None, :], near.shape[1], axis=1)  # (n_edges, 8, 3) like the neighbours
        dc = np.sqrt(colour_distance2(lab_pad[near], lab_here, weights))
        limit = params.depth_edge_m + params.depth_edge_ratio * d_here
        cost = dc + params.colour_edge_delta_e * dd / limit
        cost[(nl == 0) | (dd >= limit) | (dc >= params.colour_edge_delta_e)] = np.inf
        best = np.argmin(cost, axis=1)
        rows = np.arange(here.size)
        assigned = np.isfinite(cost[rows, best])
        best_label = nl[rows, best][assigned]
        sub_pad[here[assigned]] = best_label
        np.add.at(stats[:, 4], best_label, 1)
        here = here[~assigned]
    labels[y0:y1, x0:x1] = sub_pad.reshape(bh + 2, width)[1:-1, 1:-1]
    return labels, stats
