"""The robot does not see itself: its arms and hands are masked, and a box held in a closed gripper is not
reported as a loose box. Also occlusion: a half-hidden box is flagged partial or not reported, never
reported whole with a wrong size. Rendered by the simulator's head camera with the robot in view."""

from __future__ import annotations

import numpy as np
import pybullet as pb
import pytest
from scipy.optimize import least_squares

from optimus_control.model import RobotModel
from optimus_control.perception.pipeline import PerceptionPipeline
from optimus_control.perception.robot_view import RobotView
from optimus_control.perception.self_filter import held_by_gripper, robot_pixel_mask

pytestmark = pytest.mark.sim

TABLE_YAML = """
scene: {name: perception_self, description: An empty table in front of the robot.}
robot: {position: [0.0, 0.0], yaw_deg: 0.0}
furniture:
  - {name: table, type: table, position: [0.95, 0.0], size: [0.8, 1.3, 0.75], colour: wood}
"""
TABLE_TOP_M = 0.75


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    from optimus_control.sim import camera as sim_camera
    from optimus_control.sim.scene_builder import build_scene
    from optimus_control.sim.scene_spec import load_scene
    from optimus_control.sim.world import SimWorld

    path = tmp_path_factory.mktemp("scenes") / "perception_self.yaml"
    path.write_text(TABLE_YAML)
    robot = RobotModel.load()
    world = SimWorld(robot)
    head = sim_camera.HeadCamera.on_robot(world)
    built = build_scene(world, load_scene(path), 0)
    yield robot, world, head, built.robot_q.copy()
    world.close()


def _joint(robot, name: str) -> int:
    return 7 + robot.joint_index(name)


def reaching_pose(robot, q0: np.ndarray) -> np.ndarray:
    """Both hands forward over the table edge, fingers down; left gripper closed on a box, right one open."""
    q = q0.copy()
    q[_joint(robot, "neck_pitch")] = 0.75
    for side, y in (("l", 0.15), ("r", -0.2)):
        names = [f"{side}_{n}" for n in ("shoulder_pitch", "shoulder_roll", "shoulder_yaw", "elbow", "wrist_pitch")]
        idx = [robot.joint_index(n) for n in names]
        lo, hi = robot.limits.lower[idx], robot.limits.upper[idx]

        def residual(x, idx=idx, side=side, y=y):
            qq = q.copy()
            qq[[7 + i for i in idx]] = x
            m = robot.frame_placement(qq, f"{side}_gripper")
            return np.concatenate([m.translation - [0.6, y, 0.97], 0.3 * (m.rotation[:, 2] - [0, 0, 1])])

        q[[7 + i for i in idx]] = least_squares(residual, np.clip([-0.6, 0, 0, -0.6, 0], lo, hi), bounds=(lo, hi)).x
    for hand in robot.config.hands:
        pos = 0.04 if hand.name == "left" else robot.config.gripper.open_position
        for j in hand.gripper_joints:
            q[_joint(robot, j)] = pos
    return q


def _box(world, centre, size, rgba=(0.1, 0.25, 0.85, 1.0), yaw: float = 0.0) -> int:
    half = [s / 2 for s in size]
    c = world.client
    return pb.createMultiBody(0, pb.createCollisionShape(pb.GEOM_BOX, halfExtents=half, physicsClientId=c),
                              pb.createVisualShape(pb.GEOM_BOX, halfExtents=half, rgbaColor=list(rgba), physicsClientId=c),
                              list(centre), pb.getQuaternionFromEuler([0, 0, yaw]), physicsClientId=c)


def _segmentation(world, head, pipeline, t):
    from optimus_control.sim.camera import projection_matrix, view_matrix

    view, _ = pipeline.view_at(t)
    k = head.k
    _, _, _, _, seg = pb.getCameraImage(
        k.width, k.height, viewMatrix=view_matrix(view.camera_position_m, view.camera_rotation).T.flatten().tolist(),
        projectionMatrix=projection_matrix(k).T.flatten().tolist(), renderer=pb.ER_TINY_RENDERER, physicsClientId=world.client)
    return np.reshape(seg, (k.height, k.width)) & ((1 << 24) - 1)  # body id (link index in the upper bits)


def _pipeline(robot, q, t=1.0):
    pipeline = PerceptionPipeline(robot, robot.config.camera.intrinsics)
    pipeline.state.add_joint_state(t, robot.joint_names, q[7:])
    pipeline.state.add_base_pose(t, q[:3], q[3:7])
    return pipeline


def test_robot_arms_and_hands_are_masked(sim):
    """>= 97 % of the pixels that see the robot are masked, and < 3 % of the others."""
    robot, world, head, q0 = sim
    q = reaching_pose(robot, q0)
    world.reset_robot(q)
    rgb, depth = head.render()
    pipeline = _pipeline(robot, q)
    view, _ = pipeline.view_at(1.0)
    seg = _segmentation(world, head, pipeline, 1.0)
    valid = np.isfinite(depth)
    mask = robot_pixel_mask(np.where(valid, depth, 0).astype(np.float32), valid, pipeline.detector.camera, view, 0.03)
    robot_px = (seg == world.robot_id) & valid
    assert np.count_nonzero(robot_px) > 3000, "the arms should be well in view in this pose"
    assert np.count_nonzero(mask & robot_px) >= 0.97 * np.count_nonzero(robot_px)
    assert np.count_nonzero(mask & ~robot_px) <= 0.03 * np.count_nonzero(~robot_px & valid)


def test_held_box_and_the_robot_are_not_reported(sim):
    """Boxes on the table are found; the box in the closed left gripper and the robot's own parts are not."""
    robot, world, head, q0 = sim
    q = reaching_pose(robot, q0)
    world.reset_robot(q)
    wrist = robot.frame_placement(q, "l_wrist")
    held = _box(world, wrist.translation + wrist.rotation @ np.array([0, 0, -0.07]), [0.08, 0.08, 0.08])
    loose = [(_box(world, [0.95, y, TABLE_TOP_M + 0.04], [0.1, 0.08, 0.08], (0.85, 0.1, 0.1, 1.0), 0.3), y)
             for y in (-0.05, 0.25)]
    try:
        rgb, depth = head.render()
        pipeline = _pipeline(robot, q)
        out = pipeline.process(rgb, depth, 1.0)
        grippers = [robot.frame_placement(q, h.gripper_frame).translation for h in robot.config.hands]
        for d in out.detections:
            assert min(np.linalg.norm(d.position_m - g) for g in grippers) > 0.1, f"reported a held object: {d}"
            if not d.partial:
                assert any(np.linalg.norm(d.position_m[:2] - [0.95, y]) < 0.02 for _, y in loose), f"false detection {d}"
        found = [d for d in out.detections if not d.partial and d.class_name == "red"]
        assert len(found) == 2
    finally:
        for body in [held] + [b for b, _ in loose]:
            pb.removeBody(body, physicsClientId=world.client)


def test_held_rule_needs_a_closed_gripper_nearby():
    gripper = np.array([0.5, 0.2, 1.0])
    closed = RobotView(np.eye(3), np.zeros(3), (), (gripper,))
    opened = RobotView(np.eye(3), np.zeros(3), (), ())
    assert held_by_gripper(gripper + [0.0, 0.0, -0.06], closed, 0.08)
    assert not held_by_gripper(gripper + [0.0, 0.0, -0.12], closed, 0.08)
    assert not held_by_gripper(gripper + [0.0, 0.0, -0.06], opened, 0.08)


def test_half_hidden_box_is_partial_or_unreported_and_its_track_holds(sim):
    """A tall box slides in front of a seen box: the hidden box is never reported whole with a wrong size;
    its track keeps its id and pose while half hidden."""
    robot, world, head, q0 = sim
    q = q0.copy()
    q[_joint(robot, "neck_pitch")] = 0.7
    world.reset_robot(q)
    target_xy, size = np.array([1.05, 0.0]), np.array([0.12, 0.1, 0.06])
    target = _box(world, [*target_xy, TABLE_TOP_M + size[2] / 2], size, (0.1, 0.7, 0.2, 1.0))
    pipeline = _pipeline(robot, q, 0.0)
    try:
        rgb, depth = head.render()
        first = pipeline.process(rgb, depth, 0.0)
        track = next(t for t in first.tracks if t.class_name == "green")
        assert np.linalg.norm(track.position_m[:2] - target_xy) < 0.015
        # An occluder between the camera (at x ~0.1, z ~1.5) and the target: tall, shifted half a box sideways.
        occluder = _box(world, [0.93, 0.06, TABLE_TOP_M + 0.11], [0.06, 0.1, 0.22], (0.85, 0.1, 0.1, 1.0))
        seen_partial = 0
        for k in range(1, 6):
            t = 0.2 * k
            pipeline.state.add_joint_state(t, robot.joint_names, q[7:])
            pipeline.state.add_base_pose(t, q[:3], q[3:7])
            rgb, depth = head.render()
            out = pipeline.process(rgb, depth, t)
            for d in out.detections:
                if d.class_name == "green":
                    assert d.partial or np.abs(np.sort(d.size_m[:2]) - np.sort(size[:2])).max() < 0.01
                    seen_partial += int(d.partial)
        assert seen_partial >= 1, "the half-hidden box should be seen as partial"
        kept = pipeline.tracker.tracks[track.track_id]
        assert kept.state == "visible" and np.linalg.norm(kept.position_m[:2] - target_xy) < 0.015
        pb.removeBody(occluder, physicsClientId=world.client)
    finally:
        pb.removeBody(target, physicsClientId=world.client)
