"""Robot self-filter: pixels that see the robot's own body, and detections held in a closed gripper.

Each collision shape of the robot is bounded by an oriented box (inflated by a margin) and projected
into the image; a pixel inside a box's outline whose depth lies within the box's depth range sees the
robot, not the scene. Bodies outside the view cost nothing.
"""

from __future__ import annotations

import cv2
import numpy as np

from optimus_control.model.pinhole_camera import PinholeCamera
from optimus_control.perception.robot_view import RobotView

_CORNER_SIGNS = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=float)


def robot_pixel_mask(depth_m: np.ndarray, valid: np.ndarray, camera: PinholeCamera, view: RobotView,
                     margin_m: float) -> np.ndarray:
    """(H, W) bool mask of valid pixels that see an inflated robot collision box.

    A pixel sees a body when it lies in the body's projected outline and its depth is between the
    nearest and farthest corner of the body: nearer is something in front of the robot (kept),
    farther is the scene seen past the inflated outline. Bodies around the camera itself (the head)
    are skipped: the camera looks out of them.
    """
    mask = np.zeros(valid.shape, dtype=bool)
    if not view.bodies:
        return mask
    height, width = depth_m.shape
    fx, fy, cx, cy = camera.fx, camera.fy, camera.cx, camera.cy
    r_cam, t_cam = view.camera_rotation, view.camera_position_m
    # All bodies at once: (B, 3, 3) axes, (B, 3) centres and inflated half extents, (B, 8, 3) corners.
    rot, centre, half = view.body_arrays()
    half = half + margin_m
    cam_local = np.einsum("bji,bj->bi", rot, t_cam - centre)
    around_camera = np.all(np.abs(cam_local) <= half, axis=1)  # the head: the camera looks out of it
    corners = centre[:, None, :] + np.einsum("bkj,bij->bki", _CORNER_SIGNS[None] * half[:, None, :], rot)
    c = (corners - t_cam) @ r_cam  # (B, 8, 3) optical frame
    z_near, z_far = c[..., 2].min(axis=1), c[..., 2].max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        us = fx * c[..., 0] / c[..., 2] + cx
        vs = fy * c[..., 1] / c[..., 2] + cy
    seen = ~around_camera & (z_far > 0.0)
    straddling = seen & (z_near <= 1e-3)
    if straddling.any():
        # Straddles the image plane: its outline is unbounded; take every pixel in its depth range.
        mask |= depth_m <= z_far[straddling].max()
    # Pixel rectangles of the remaining bodies' outlines, all at once, then one convex fill per body.
    ahead = np.flatnonzero(seen & ~straddling)
    u_lo, u_hi = us[ahead].min(axis=1), us[ahead].max(axis=1)
    v_lo, v_hi = vs[ahead].min(axis=1), vs[ahead].max(axis=1)
    u0s = np.maximum(np.floor(u_lo), 0).astype(int)
    u1s = np.minimum(np.ceil(u_hi) + 1, width).astype(int)
    v0s = np.maximum(np.floor(v_lo), 0).astype(int)
    v1s = np.minimum(np.ceil(v_hi) + 1, height).astype(int)
    in_view = np.flatnonzero((u0s < u1s) & (v0s < v1s))
    corners_px = np.stack([us[ahead] - u0s[:, None], vs[ahead] - v0s[:, None]], axis=2)
    corners_fixed = np.round(corners_px * 16).astype(np.int32)  # 4 fractional bits for cv2 shift=4
    for k in in_view.tolist():
        b = ahead[k]
        u0, u1, v0, v1 = int(u0s[k]), int(u1s[k]), int(v0s[k]), int(v1s[k])
        outline = np.zeros((v1 - v0, u1 - u0), dtype=np.uint8)
        cv2.fillConvexPoly(outline, cv2.convexHull(corners_fixed[k]), 1, lineType=cv2.LINE_8, shift=4)
        d = depth_m[v0:v1, u0:u1]
        inside = (d >= z_near[b]) & (d <= z_far[b])
        inside &= outline.view(bool)
        mask[v0:v1, u0:u1] |= inside
    mask &= valid
    return mask


def held_by_gripper(position_m: np.ndarray, view: RobotView, radius_m: float) -> bool:
    """True when a detection centre is within radius of a closed gripper: the robot is holding it."""
    return any(float(np.linalg.norm(position_m - g)) <= radius_m for g in view.closed_gripper_positions_m)
