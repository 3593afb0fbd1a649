"""Head camera: the rendered image agrees with the pinhole intrinsics published in CameraInfo."""

from __future__ import annotations

import numpy as np
import pinocchio as pin
import pybullet as pb
import pytest

from optimus_control.sim.camera import HeadCamera, PinholeIntrinsics, depth_buffer_to_metres, projection_matrix
from optimus_control.sim.world import SimWorld


def test_projection_matrix_maps_points_like_the_pinhole_model(robot):
    k = PinholeIntrinsics.from_config(robot.config.camera)
    proj = projection_matrix(k)
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = np.array([rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(k.near + 0.1, k.far - 0.1)])
        clip = proj @ np.array([p[0], -p[1], -p[2], 1.0])  # optical -> OpenGL eye coordinates
        ndc = clip[:3] / clip[3]
        u_gl = (ndc[0] + 1) / 2 * k.width - 0.5           # pixel-centre coordinates, row 0 at the top
        v_gl = (1 - ndc[1]) / 2 * k.height - 0.5
        u, v, z = k.project(p)
        assert (u_gl, v_gl) == pytest.approx((u, v), abs=1e-9)
        depth = depth_buffer_to_metres(np.array([(ndc[2] + 1) / 2]), k.near, k.far)[0]
        assert depth == pytest.approx(z, rel=1e-5)


def test_rescaled_intrinsics_keep_the_field_of_view(robot):
    cam = robot.config.camera
    half = PinholeIntrinsics.from_config(cam, cam.width // 2, cam.height // 2)
    assert half.fx == pytest.approx(cam.fx / 2)
    assert (half.cx + 0.5) / half.width == pytest.approx((cam.cx + 0.5) / cam.width)


def test_box_at_known_pose_projects_to_expected_pixels_and_depth(robot):
    """A thin plate facing the camera, off-centre: its edges land on the predicted pixels, depth = its Z."""
    with SimWorld(robot) as world:
        k = PinholeIntrinsics.from_config(robot.config.camera)
        cam = HeadCamera(world.client, world.robot_id, world.link_ids[robot.config.camera.optical_frame], k)
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
    u_lo, v_lo, _ = k.project(np.array([centre[0] - half[0], centre[1] - half[1], z_front]))
    u_hi, v_hi, _ = k.project(np.array([centre[0] + half[0], centre[1] + half[1], z_front]))
    # Pixels whose centres fall inside the projected rectangle (one pixel of rasterisation slack).
    assert cols.min() == pytest.approx(np.ceil(u_lo), abs=1)
    assert cols.max() == pytest.approx(np.floor(u_hi), abs=1)
    assert rows.min() == pytest.approx(np.ceil(v_lo), abs=1)
    assert rows.max() == pytest.approx(np.floor(v_hi), abs=1)
    assert np.median(depth[red]) == pytest.approx(z_front, abs=0.005)
    # Sky above the horizon: no hit within range -> NaN (REP-117).
    assert np.isnan(depth[0, :]).any()


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
        assert np.nanmax(np.abs(depth - depth_here)) < 0.01
        runner.renderer._proc.kill()
        for _ in range(200):
            runner.tick()                      # the physics goes on without the camera
        assert runner.camera_error is not None and "render process is gone" in runner.camera_error
        assert runner.world.time_s == pytest.approx(0.301)
    finally:
        runner.close()
