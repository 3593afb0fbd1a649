"""Head camera: the rendered image agrees with the pinhole intrinsics published in CameraInfo."""

from __future__ import annotations

import numpy as np
import pinocchio as pin
import pybullet as pb
import pytest

from optimus_control.sim.camera import (
    HeadCamera,
    depth_buffer_to_metres,
    projection_matrix,
    render_rgbd,
)
from optimus_control.sim.world import SimWorld

pytestmark = pytest.mark.sim


def test_projection_matrix_maps_points_like_the_pinhole_model(robot):
    k = robot.config.camera.intrinsics
    proj = projection_matrix(k)
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = np.array([rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(k.near + 0.1, k.far - 0.1)])
        clip = proj @ np.array([p[0], -p[1], -p[2], 1.0])  # optical -> OpenGL eye coordinates
        ndc = clip[:3] / clip[3]
        # The pixel TinyRenderer samples there: column u at NDC x = 2u/W - 1, row v at NDC y = 1 - 2(v + 1)/H.
        u_gl = (ndc[0] + 1) / 2 * k.width
        v_gl = (1 - ndc[1]) / 2 * k.height - 1
        u, v = k.project(p)[0][0]
        assert (u_gl, v_gl) == pytest.approx((u, v), abs=1e-9)
        depth = depth_buffer_to_metres(np.array([(ndc[2] + 1) / 2]), k.near, k.far)[0]
        assert depth == pytest.approx(p[2], rel=1e-5)


def test_rescaled_intrinsics_keep_the_field_of_view(robot):
    cam = robot.config.camera.intrinsics
    half = cam.scaled(cam.width // 2, cam.height // 2)
    assert half.fx == pytest.approx(cam.fx / 2)
    assert (half.cx + 0.5) / half.width == pytest.approx((cam.cx + 0.5) / cam.width)


def test_box_at_known_pose_projects_to_expected_pixels_and_depth(robot):
    """A thin plate facing the camera, off-centre: its edges land on the predicted pixels, depth = its Z."""
    with SimWorld(robot) as world:
        k = robot.config.camera.intrinsics
        cam = HeadCamera.on_robot(world, k)
        position, rotation = cam.optical_pose()
        centre = np.array([0.25, -0.15, 1.2])               # optical frame [m]: right of and above the axis
        half = np.array([0.08, 0.05, 0.002])
        c = world.client
        shape = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=half.tolist(), physicsClientId=c)
        visual = pb.createVisualShape(pb.GEOM_BOX, halfExtents=half.tolist(), rgbaColor=[1, 0, 0, 1], physicsClientId=c)
        pb.createMultiBody(0, shape, visual, basePosition=(position + rotation @ centre).tolist(),
                           baseOrientation=pin.Quaternion(rotation).coeffs().tolist(), physicsClientId=c)
        rgb, depth = cam.render()
    assert rgb.shape == (k.height, k.width, 3) and rgb.dtype == np.uint8
    assert depth.shape == (k.height, k.width) and depth.dtype == np.float32
    red = (rgb[:, :, 0] > 150) & (rgb[:, :, 1] < 80) & (rgb[:, :, 2] < 80)
    rows, cols = np.nonzero(red)
    z_front = centre[2] - half[2]
    (u_lo, v_lo), (u_hi, v_hi) = k.project(np.array([[centre[0] - half[0], centre[1] - half[1], z_front],
                                                     [centre[0] + half[0], centre[1] + half[1], z_front]]))[0]
    # Pixels whose centres fall inside the projected rectangle (one pixel of rasterisation slack).
    assert cols.min() == pytest.approx(np.ceil(u_lo), abs=1)
    assert cols.max() == pytest.approx(np.floor(u_hi), abs=1)
    assert rows.min() == pytest.approx(np.ceil(v_lo), abs=1)
    assert rows.max() == pytest.approx(np.floor(v_hi), abs=1)
    assert np.median(depth[red]) == pytest.approx(z_front, abs=0.005)
    # Sky above the horizon: no hit within range -> NaN (REP-117).
    assert np.isnan(depth[0, :]).any()


def _look_down_pose(height_m: float, pitch_deg: float, roll_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Optical frame looking along world +x, pitched down, rolled about its axis (so rows and columns both tilt)."""
    pitch, roll = np.radians(pitch_deg), np.radians(roll_deg)
    forward = np.array([np.cos(pitch), 0.0, -np.sin(pitch)])
    right = np.array([0.0, -1.0, 0.0])
    level = np.column_stack([right, np.cross(forward, right), forward])  # columns: optical x, y, z in the world
    roll_about_z = np.array([[np.cos(roll), -np.sin(roll), 0.0], [np.sin(roll), np.cos(roll), 0.0], [0.0, 0.0, 1.0]])
    return np.array([0.1, -0.05, height_m]), level @ roll_about_z


def _static_box(client: int, centre, half, quat=(0.0, 0.0, 0.0, 1.0), rgba=(0.6, 0.6, 0.6, 1.0)) -> int:
    shape = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=list(half), physicsClientId=client)
    visual = pb.createVisualShape(pb.GEOM_BOX, halfExtents=list(half), rgbaColor=list(rgba), physicsClientId=client)
    return pb.createMultiBody(0, shape, visual, basePosition=list(centre), baseOrientation=list(quat),
                              physicsClientId=client)


@pytest.mark.parametrize("scale", [1, 2])
def test_flat_surface_back_projects_to_its_height_across_the_image(robot, scale):
    """Depth pixels back-projected with the published intrinsics (u = fx X/Z + cx) land on the surface they
    saw, to 0.3 mm everywhere (a half-pixel offset in the renderer shows as millimetres of height here)."""
    cam = robot.config.camera.intrinsics
    k = cam.scaled(cam.width * scale, cam.height * scale)
    top_z = 0.8
    position, rotation = _look_down_pose(top_z + 0.65, pitch_deg=55.0, roll_deg=20.0)
    client = pb.connect(pb.DIRECT)
    try:
        _static_box(client, [1.0, 0.0, top_z - 0.01], [3.0, 3.0, 0.01])
        _, depth = render_rgbd(client, k, position, rotation)
    finally:
        pb.disconnect(client)
    assert np.isfinite(depth).all(), "the surface should fill the whole image"
    v, u = np.mgrid[0:k.height, 0:k.width]
    ray = np.stack([(u - k.cx) / k.fx, (v - k.cy) / k.fy, np.ones_like(depth, dtype=float)])
    points_world = position[:, None] + rotation @ (ray * depth).reshape(3, -1)
    height_error = points_world[2] - top_z
    assert np.abs(height_error).max() < 3e-4, (
        f"back-projected height off by up to {1e3 * np.abs(height_error).max():.2f} mm "
        f"(mean {1e3 * height_error.mean():+.2f} mm)")


def _edge_crossings(mask: np.ndarray, along_rows: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sub-pixel crossings of a convex blob's outline, scanning rows (or columns): (scan index, first, last).

    The outline crosses a scan line between the last pixel outside and the first inside; the midpoint of
    the two is the unbiased estimate. Returns (index, low crossing, index, high crossing) arrays.
    """
    m = mask if along_rows else mask.T
    idx = np.nonzero(m.any(axis=1))[0]
    first = np.array([np.argmax(m[i]) for i in idx], dtype=float) - 0.5
    last = np.array([m.shape[1] - 1 - np.argmax(m[i][::-1]) for i in idx], dtype=float) + 0.5
    return idx, first, idx, last


def _fit_line(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares line through (u, v) points: (point on it, unit direction)."""
    centre = points.mean(axis=0)
    _, _, vt = np.linalg.svd(points - centre)
    return centre, vt[0]


def _intersect(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    (pa, da), (pb_, db) = a, b
    t = np.linalg.solve(np.column_stack([da, -db]), pb_ - pa)
    return pa + t[0] * da


def test_box_corners_project_to_the_expected_pixels(robot):
    """A box face turned 20 deg about the optical axis: its four edges, fitted from the rendered outline to
    sub-pixel precision, meet within 0.5 px of where the pinhole model puts the corners."""
    k = robot.config.camera.intrinsics
    position, rotation = np.zeros(3), np.eye(3)            # optical frame = world frame
    centre = np.array([0.12, 0.06, 1.1])                    # [m] face-on plate, off-centre
    half = np.array([0.2, 0.13, 0.005])
    spin = np.radians(20.0)
    rot_plate = np.array([[np.cos(spin), -np.sin(spin), 0.0], [np.sin(spin), np.cos(spin), 0.0], [0.0, 0.0, 1.0]])
    client = pb.connect(pb.DIRECT)
    try:
        _static_box(client, centre, half, pb.getQuaternionFromEuler([0.0, 0.0, spin]), rgba=(1.0, 0.0, 0.0, 1.0))
        _, depth = render_rgbd(client, k, position, rotation)
    finally:
        pb.disconnect(client)
    mask = np.isfinite(depth)
    front_z = centre[2] - half[2]
    signs = [(-1, -1), (1, -1), (1, 1), (-1, 1)]            # corners in order around the face
    expected = k.project(np.array([centre + rot_plate @ np.array([sx * half[0], sy * half[1], -half[2]])
                                   for sx, sy in signs]))[0]
    assert np.median(depth[mask]) == pytest.approx(front_z, abs=1e-3)
    # Outline crossings: rows for the steep edges, columns for the flat ones; each goes to its nearest edge.
    crossings = []
    for along_rows in (True, False):
        i_lo, lo, i_hi, hi = _edge_crossings(mask, along_rows)
        for idx, pos in ((i_lo, lo), (i_hi, hi)):
            pts = np.column_stack([pos, idx]) if along_rows else np.column_stack([idx, pos])
            crossings.append((along_rows, pts))
    edges = []
    for e in range(4):
        a, b = expected[e], expected[(e + 1) % 4]
        steep = abs(b[1] - a[1]) > abs(b[0] - a[0])
        direction = (b - a) / np.linalg.norm(b - a)
        normal = np.array([-direction[1], direction[0]])
        chosen = []
        for along_rows, pts in crossings:
            if along_rows != steep:
                continue
            t = (pts - a) @ direction
            near = (np.abs((pts - a) @ normal) < 2.0) & (t > 4.0) & (t < np.linalg.norm(b - a) - 4.0)
            chosen.append(pts[near])
        pts = np.concatenate(chosen)
        assert len(pts) > 20, f"edge {e}: too few outline crossings ({len(pts)})"
        edges.append(_fit_line(pts))
    measured = np.array([_intersect(edges[(e - 1) % 4], edges[e]) for e in range(4)])
    error_px = np.linalg.norm(measured - expected, axis=1)
    assert error_px.max() < 0.5, f"corners off by {np.round(error_px, 3)} px: measured {measured}, expected {expected}"


class _Frames:
    def __init__(self):
        self.frames = []

    def on_camera(self, time_s, rgb, depth):
        self.frames.append((time_s, rgb, depth))

    def on_clock(self, time_s):
        pass

    def on_ground_truth(self, *args):
        pass


def test_render_process_mirrors_the_world_and_its_loss_does_not_stop_physics():
    from optimus_control.sim.runner import SimRunner, SimSettings

    out = _Frames()
    runner = SimRunner(SimSettings(scene="sorting_cell", seed=2, mode="realtime"), None, out)
    try:
        for _ in range(101):
            runner.tick()
        while runner.renderer.busy:  # let the frame of t = 0.1 s finish
            done = runner.renderer.poll(timeout_s=30.0)
            if done is not None:
                out.on_camera(*done)
        time_s, rgb, depth = out.frames[-1]
        assert time_s == pytest.approx(0.1)
        # Re-render in this process from the state the frame was taken at (the robot is held still).
        rgb_here, depth_here = runner.camera.render()
        assert np.mean(np.abs(rgb.astype(int) - rgb_here.astype(int))) < 1.0
        # Same scene and pose: depth agrees to 1 mm except for a few pixels whose rays graze an edge (the mirror
        # is posed from q and object poses rather than stepped; a tiny pose difference flips such a ray).
        valid = np.isfinite(depth) & np.isfinite(depth_here)
        assert np.mean(np.isfinite(depth) != np.isfinite(depth_here)) < 1e-3
        assert np.mean(np.abs(depth[valid] - depth_here[valid]) > 1e-3) < 1e-3
        print("render process vs in-process depth: pixels differing by > 1 mm:",
              np.count_nonzero(np.abs(depth[valid] - depth_here[valid]) > 1e-3), "of", valid.size)
        runner.renderer._proc.kill()
        for _ in range(200):
            runner.tick()                      # the physics goes on without the camera
        assert runner.camera_error is not None and "render process is gone" in runner.camera_error
        assert runner.world.time_s == pytest.approx(0.301)
    finally:
        runner.close()
