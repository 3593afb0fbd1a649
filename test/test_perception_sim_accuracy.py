"""Perception accuracy in the simulator: the sim's own scenes, head camera and ground truth.

A scene file written for this test puts a table in front of the standing robot, with box groups of five
sizes (3-8 boxes drawn from the seed, random yaw and colour). The robot looks down at it (neck pitched);
the sim renders its head camera (robot arms in view); the pipeline gets only the images and the robot
state (joint positions + base pose) and computes its camera pose from the robot model. Ground truth
(`SimWorld.ground_truth`) is used to score only. Boxes whose top face is less than 90 % visible (hidden
by another box or the robot's hands) are not required; their partial detections must lie on them.
Bins: the sorting cell's three bins on stands, seen with the robot turned.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from optimus_control.model import RobotModel
from optimus_control.perception import PinholeCamera
from optimus_control.perception.pipeline import PerceptionPipeline

pytestmark = pytest.mark.sim

N_SCENES = 50
VIEWS_PER_SCENE = 2  # two head poses per scene -> 100 frames
NECK_PITCH_RAD = (0.62, 0.78)  # looking 35-45 deg down at the table
MATCH_RADIUS_M = 0.06
NOISE_AT_1M = 0.0015  # [m] depth noise sigma at 1 m for the noisy variant (grows with z^2)

SCENE_YAML = """
scene: {name: perception_table, description: Boxes of five sizes on a table in front of the robot.}
robot: {position: [0.0, 0.0], yaw_deg: 0.0}
furniture:
  - {name: table, type: table, position: [1.05, 0.0], size: [0.8, 1.3, 0.75], colour: wood}
regions:
  - {name: top, furniture: table, x: [-0.3, 0.28], y: [-0.45, 0.45]}
boxes:
  - {name: small, region: top, count: [0, 2], size: [0.06, 0.05, 0.05], mass: 0.1, colours: [COLOURS], yaw_deg: [-90, 90]}
  - {name: brick, region: top, count: [1, 2], size: [0.14, 0.08, 0.09], mass: 0.3, colours: [COLOURS], yaw_deg: [-90, 90]}
  - {name: flat, region: top, count: [0, 2], size: [0.2, 0.13, 0.05], mass: 0.3, colours: [COLOURS], yaw_deg: [-90, 90]}
  - {name: tall, region: top, count: [0, 1], size: [0.08, 0.07, 0.17], mass: 0.3, colours: [COLOURS], yaw_deg: [-90, 90]}
  - {name: cube, region: top, count: [1, 2], size: [0.1, 0.1, 0.1], mass: 0.3, colours: [COLOURS], yaw_deg: [-90, 90]}
""".replace("COLOURS", "red, green, blue, yellow, orange, purple")


def yaw_error_rad(estimate: float, truth: float) -> float:
    e = (estimate - truth) % (np.pi / 2)
    return float(min(e, np.pi / 2 - e))


def _yaw_of(quat_xyzw) -> float:
    x, y, z, w = quat_xyzw
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


def _segmentation(client: int, head, camera: PinholeCamera, rotation, position) -> tuple[np.ndarray, np.ndarray]:
    """Body ids and odom z of every pixel, from a segmentation render with the sim's camera matrices."""
    import pybullet as pb

    from optimus_control.sim.camera import projection_matrix, view_matrix

    k = head.k
    _, _, _, depth_buf, seg = pb.getCameraImage(
        k.width, k.height, viewMatrix=view_matrix(position, rotation).T.flatten().tolist(),
        projectionMatrix=projection_matrix(k).T.flatten().tolist(), renderer=pb.ER_TINY_RENDERER, physicsClientId=client)
    buf = np.reshape(depth_buf, (k.height, k.width))
    depth = (k.far * k.near / (k.far - (k.far - k.near) * buf)).astype(np.float32)
    z = (camera.back_project(depth) @ rotation.T + position)[..., 2]
    return np.reshape(seg, (k.height, k.width)), z


def _top_visibility(seg: np.ndarray, z: np.ndarray, body: int, centre, size, yaw, camera: PinholeCamera, rotation,
                    position) -> float:
    """Seen share of a box's top face: its top pixels in the segmentation over its projected top area."""
    top_z = centre[2] + size[2] / 2
    seen = np.count_nonzero((seg == body) & (np.abs(z - top_z) < 0.003))
    c, s = np.cos(yaw), np.sin(yaw)
    corners = np.array([[sx * size[0] / 2, sy * size[1] / 2, 0.0] for sx, sy in ((1, 1), (-1, 1), (-1, -1), (1, -1))])
    world = np.array([centre[0], centre[1], top_z]) + corners @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]).T
    uv, _ = camera.project((world - position) @ rotation)
    x, y = uv[:, 0], uv[:, 1]
    area = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
    return float(seen / max(area, 1.0))


def _in_view(camera: PinholeCamera, rotation, position, centre, size, yaw, margin_px: int = 3) -> bool:
    c, s = np.cos(yaw), np.sin(yaw)
    corners = np.array([[sx * size[0] / 2, sy * size[1] / 2, sz * size[2] / 2]
                        for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    world = centre + corners @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]).T
    uv, front = camera.project((world - position) @ rotation)
    return bool(np.all(front) and uv[:, 0].min() >= margin_px and uv[:, 1].min() >= margin_px
                and uv[:, 0].max() <= camera.width - 1 - margin_px and uv[:, 1].max() <= camera.height - 1 - margin_px)


@pytest.fixture(scope="module")
def both_figures(tmp_path_factory):
    from optimus_control.sim import camera as sim_camera
    from optimus_control.sim.scene_builder import build_scene
    from optimus_control.sim.scene_spec import load_scene
    from optimus_control.sim.world import SimWorld

    path = tmp_path_factory.mktemp("scenes") / "perception_table.yaml"
    path.write_text(SCENE_YAML)
    robot = RobotModel.load()
    cam_cfg = robot.config.camera
    camera = cam_cfg.intrinsics
    world = SimWorld(robot)
    head = sim_camera.HeadCamera.on_robot(world)
    spec = load_scene(path)
    clean, noisy = Scorer(robot, camera), Scorer(robot, camera)
    neck = 7 + robot.joint_index("neck_pitch")
    noise_rng = np.random.default_rng(7)
    try:
        for seed, view_k in ((s, k) for s in range(N_SCENES) for k in range(VIEWS_PER_SCENE)):
            if view_k == 0:
                built = build_scene(world, spec, seed)
            q = built.robot_q.copy()
            rng = np.random.default_rng(100 * seed + view_k)
            q[neck] = float(rng.uniform(*NECK_PITCH_RAD))
            q[7 + robot.joint_index("neck_yaw")] = float(rng.uniform(-0.12, 0.12))
            world.reset_robot(q)
            rgb, depth = head.render()
            t = 10.0 * (VIEWS_PER_SCENE * seed + view_k + 1)
            truth = [(built.objects[i], p, _yaw_of(qq), world.objects[i]) for i, (p, qq) in world.ground_truth().objects.items()]
            view_rot, view_pos = clean.camera_pose(q, t)
            seg, seg_z = _segmentation(world.client, head, camera, view_rot, view_pos)
            required = [_in_view(camera, view_rot, view_pos, p, obj.size, yaw)
                        and _top_visibility(seg, seg_z, body, p, obj.size, yaw, camera, view_rot, view_pos) >= 0.9
                        for obj, p, yaw, body in truth]
            clean.score(rgb, depth, q, t, truth, required)
            if view_k == 0:
                # Depth noise like a structured-light sensor: sigma = NOISE_AT_1M x z^2.
                noisy_depth = depth + (NOISE_AT_1M * depth ** 2 * noise_rng.standard_normal(depth.shape)).astype(np.float32)
                noisy.score(rgb, noisy_depth, q, t, truth, required)
    finally:
        world.close()
    f, f_noisy = clean.figures(), noisy.figures()
    print("\nperception accuracy in the sim:", f)
    print(f"perception accuracy in the sim with depth noise {1000 * NOISE_AT_1M:.1f} mm x z^2:", f_noisy)
    return f, f_noisy


class Scorer:
    """Runs the pipeline on frames and scores its detections against the sim's ground truth."""

    def __init__(self, robot: RobotModel, camera: PinholeCamera):
        self.robot = robot
        self.pipeline = PerceptionPipeline(robot, camera)
        self.rec = dict(frames=0, boxes=0, required=0, found=0, fp=0, partial=0, wrong_class=0)
        self.pos_err, self.yaw_err, self.size_err, self.proc_ms = [], [], [], []

    def camera_pose(self, q: np.ndarray, t: float):
        self.pipeline.state.add_joint_state(t, self.robot.joint_names, q[7:])
        self.pipeline.state.add_base_pose(t, q[:3], q[3:7])
        view, _ = self.pipeline.view_at(t)
        return view.camera_rotation, view.camera_position_m

    def score(self, rgb, depth, q, t, truth, required) -> None:
        rec = self.rec
        self.camera_pose(q, t)
        self.pipeline.tracker.tracks.clear()
        out = self.pipeline.process(rgb, depth, t)
        assert not out.skipped, out.skipped
        self.proc_ms.append(out.processing_ms)
        rec["frames"] += 1
        rec["boxes"] += len(truth)
        dets = [d for d in out.detections if not d.partial]
        partial = [d for d in out.detections if d.partial]
        rec["partial"] += len(partial)
        # A partial detection (flagged as cut by an occluder) is honest when it lies on a true box.
        rec["fp"] += sum(not any(np.linalg.norm(d.position_m[:2] - p[:2]) < 0.5 * np.hypot(*obj.size[:2]) + 0.02
                                 for obj, p, _, _ in truth) for d in partial)
        cost = np.full((len(truth), len(dets)), 1e6)
        for i, (_, p, _, _) in enumerate(truth):
            for j, d in enumerate(dets):
                dist = float(np.linalg.norm(d.position_m[:2] - p[:2]))
                if dist < MATCH_RADIUS_M:
                    cost[i, j] = dist
        rows, cols = linear_sum_assignment(cost) if truth and dets else ([], [])
        match = {i: j for i, j in zip(rows, cols) if cost[i, j] < 1e6}
        rec["fp"] += len(dets) - len(match)
        for i, (obj, p, yaw, _) in enumerate(truth):
            rec["required"] += int(required[i])
            if i not in match or not required[i]:
                continue
            rec["found"] += 1
            d = dets[match[i]]
            rec["wrong_class"] += int(d.class_name != obj.colour)
            self.pos_err.append(float(np.linalg.norm(d.position_m - p)))
            self.yaw_err.append(yaw_error_rad(d.yaw_rad, yaw))
            self.size_err.extend(np.abs(np.sort(d.size_m[:2]) - np.sort(obj.size[:2])).tolist())
            self.size_err.append(abs(d.size_m[2] - obj.size[2]))

    def figures(self) -> dict:
        rec = self.rec
        f = dict(rec)
        f["recall"] = rec["found"] / max(rec["required"], 1)
        f["fp_per_100_frames"] = 100.0 * rec["fp"] / rec["frames"]
        f["pos_median_m"], f["pos_p95_m"] = float(np.median(self.pos_err)), float(np.percentile(self.pos_err, 95))
        f["yaw_median_deg"] = float(np.degrees(np.median(self.yaw_err)))
        f["size_median_m"], f["size_p95_m"] = float(np.median(self.size_err)), float(np.percentile(self.size_err, 95))
        f["class_accuracy"] = 1.0 - rec["wrong_class"] / max(rec["found"], 1)
        f["processing_ms_median"] = float(np.median(self.proc_ms))
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in f.items()}


@pytest.fixture(scope="module")
def sim_figures(both_figures):
    return both_figures[0]


@pytest.fixture(scope="module")
def noisy_figures(both_figures):
    return both_figures[1]


def test_sim_scenes_cover_the_target_population(sim_figures):
    """>= 50 seeded scenes (100 frames) with 3-8 boxes in view each (on average), so the figures mean something."""
    assert sim_figures["frames"] >= 100 and sim_figures["required"] >= 3 * sim_figures["frames"]


def test_sim_recall(sim_figures):
    assert sim_figures["recall"] >= 0.95


def test_sim_false_positives(sim_figures):
    assert sim_figures["fp_per_100_frames"] <= 1.0


def test_sim_position_error(sim_figures):
    assert sim_figures["pos_median_m"] <= 0.015 and sim_figures["pos_p95_m"] <= 0.03


def test_sim_yaw_error(sim_figures):
    assert sim_figures["yaw_median_deg"] <= 5.0


def test_sim_size_error(sim_figures):
    assert sim_figures["size_median_m"] <= 0.01 and sim_figures["size_p95_m"] <= 0.02


def test_sim_colour_classes(sim_figures):
    assert sim_figures["class_accuracy"] >= 0.97


def test_sim_targets_hold_with_depth_noise(noisy_figures):
    """With 1.5 mm x z^2 Gaussian depth noise (50 frames) the issue's targets still hold."""
    f = noisy_figures
    assert f["frames"] >= 50 and f["recall"] >= 0.95 and f["fp_per_100_frames"] <= 2.0
    assert f["pos_median_m"] <= 0.015 and f["pos_p95_m"] <= 0.03 and f["yaw_median_deg"] <= 5.0
    assert f["size_median_m"] <= 0.01 and f["class_accuracy"] >= 0.97


BIN_SCENE_YAML = """
scene: {name: bins_around, description: "Three bins on stands: the robot's left, right and back-left."}
robot: {position: [0.0, 0.0], yaw_deg: 0.0}
furniture:
  - {name: bin_red, type: bin, position: [0.15, 0.58], size: [0.34, 0.30, 0.22], elevation: 0.55, colour: red}
  - {name: bin_blue, type: bin, position: [0.15, -0.58], size: [0.34, 0.30, 0.22], elevation: 0.55, colour: blue}
  - {name: bin_green, type: bin, position: [-0.25, 0.58], size: [0.34, 0.30, 0.22], elevation: 0.55, colour: green}
"""


@pytest.fixture(scope="module")
def bin_views(tmp_path_factory):
    """Bins on stands (as in a sorting cell), seen with the robot turned towards them: (bin specs, detections
    per view)."""
    import pinocchio as pin

    from optimus_control.sim.camera import HeadCamera
    from optimus_control.sim.scene_builder import build_scene
    from optimus_control.sim.scene_spec import load_scene
    from optimus_control.sim.world import SimWorld

    robot = RobotModel.load()
    cfg = robot.config.camera
    world = SimWorld(robot)
    head = HeadCamera.on_robot(world)
    scene_file = tmp_path_factory.mktemp("bins") / "bins_around.yaml"
    scene_file.write_text(BIN_SCENE_YAML)
    spec = load_scene(scene_file)
    built = build_scene(world, spec, 0)
    pipeline = PerceptionPipeline(robot, cfg.intrinsics)
    views = []
    try:
        for k, yaw_deg in enumerate((75.0, -75.0, 110.0)):
            q = built.robot_q.copy()
            q[7 + robot.joint_index("neck_pitch")] = 0.8
            turn = pin.utils.rpyToMatrix(0.0, 0.0, np.radians(yaw_deg))
            q[3:7] = pin.Quaternion(turn @ pin.Quaternion(q[6], q[3], q[4], q[5]).toRotationMatrix()).coeffs()
            q[:3] = turn @ q[:3]
            world.reset_robot(q)
            rgb, depth = head.render()
            t = 1.0 + k
            pipeline.state.add_joint_state(t, robot.joint_names, q[7:])
            pipeline.state.add_base_pose(t, q[:3], q[3:7])
            views.append(pipeline.process(rgb, depth, t).detections)
    finally:
        world.close()
    return [f for f in spec.furniture if f.type == "bin"], views


def test_sim_bins_are_found_as_bins(bin_views):
    """Every fully seen bin is found (class 'bin', centre within 2 cm, outer size within 2 cm); bins cut by the
    image border or a hand are flagged partial; nothing else is called a bin."""
    bins, views = bin_views
    fully_seen = 0
    for dets in views:
        for d in dets:
            assert d.is_bin and d.class_name == "bin", f"not a bin: {d}"
            truth = min(bins, key=lambda b: np.linalg.norm(np.array(b.position) - d.position_m[:2]))
            assert np.linalg.norm(np.array(truth.position) - d.position_m[:2]) < (0.2 if d.partial else 0.02), d
            if not d.partial:
                fully_seen += 1
                assert np.abs(np.sort(d.size_m[:2]) - np.sort(truth.size[:2])).max() < 0.02
                assert abs(d.position_m[2] + d.size_m[2] / 2 - (truth.elevation + truth.size[2])) < 0.01  # rim height
    assert fully_seen >= 3


def test_sim_boxes_on_the_roller_table(tmp_path):
    """The sorting cell's roller table (rollers with gaps, not a flat top) supports its boxes: every fully
    seen box is found, with the issue's accuracy, over 8 seeds looking down at the table (arms lowered: with the
    hands above the table, boxes whose outline they touch are honestly reported partial, see the README)."""
    from optimus_control.sim.camera import HeadCamera
    from optimus_control.sim.scene_builder import build_scene
    from optimus_control.sim.scene_spec import load_scene
    from optimus_control.sim.world import SimWorld

    robot = RobotModel.load()
    cfg = robot.config.camera
    camera = cfg.intrinsics
    world = SimWorld(robot)
    head = HeadCamera.on_robot(world)
    spec = load_scene("sorting_cell.yaml")
    scorer = Scorer(robot, camera)
    try:
        for seed in range(8):
            built = build_scene(world, spec, seed)
            q = built.robot_q.copy()
            q[7 + robot.joint_index("neck_pitch")] = 0.9
            for side in ("l", "r"):  # arms hanging down: the hands do not hover over the table's sides
                for joint in ("shoulder_pitch", "elbow"):
                    q[7 + robot.joint_index(f"{side}_{joint}")] = 0.0
            world.reset_robot(q)
            rgb, depth = head.render()
            t = 1.0 + seed
            truth = [(built.objects[i], p, _yaw_of(qq), world.objects[i]) for i, (p, qq) in world.ground_truth().objects.items()]
            rot, pos = scorer.camera_pose(q, t)
            seg, seg_z = _segmentation(world.client, head, camera, rot, pos)
            required = [_in_view(camera, rot, pos, p, obj.size, yaw)
                        and _top_visibility(seg, seg_z, body, p, obj.size, yaw, camera, rot, pos) >= 0.9
                        for obj, p, yaw, body in truth]
            scorer.score(rgb, depth, q, t, truth, required)
    finally:
        world.close()
    f = scorer.figures()
    print("\nroller table:", f)
    assert f["required"] >= 15 and f["recall"] >= 0.95 and f["fp"] == 0
    assert f["pos_median_m"] <= 0.015 and f["size_median_m"] <= 0.01 and f["class_accuracy"] == 1.0
