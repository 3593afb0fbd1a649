"""Simulator scenes for the perception tests: the sim's world, scene files and head camera, plus helpers.

Perception tests render through the simulator (one renderer in the project) and read the sim's ground
truth only to score. The test at the bottom checks that the sim's camera and the perception camera
model agree (a table top back-projects onto its true height), so a camera mismatch shows up here and
not as a mysterious detection error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pybullet as pb
import pytest

from optimus_control.model import RobotModel
from optimus_control.model.colours import NAMED_COLOURS
from optimus_control.perception import PinholeCamera
from optimus_control.perception.pipeline import PerceptionPipeline

pytestmark = pytest.mark.sim

TABLE_TOP_M = 0.75
COLOURS = NAMED_COLOURS  # the sim's named colours as 0..1 RGBA
TABLE_YAML = """
scene: {name: perception_table_only, description: An empty table in front of the robot.}
robot: {position: [0.0, 0.0], yaw_deg: 0.0}
furniture:
  - {name: table, type: table, position: [0.95, 0.0], size: [0.8, 1.3, 0.75], colour: wood}
"""


@dataclass
class SimScene:
    """A sim world with a scene, its head camera, and the robot's configuration q for the render."""

    robot: RobotModel
    world: object  # optimus_control.sim.world.SimWorld
    head: object  # optimus_control.sim.camera.HeadCamera
    q: np.ndarray
    camera: PinholeCamera

    def set_q(self, q: np.ndarray) -> None:
        self.q = q.copy()
        self.world.reset_robot(self.q)

    def look_down(self, neck_pitch_rad: float = 0.7) -> None:
        q = self.q.copy()
        q[7 + self.robot.joint_index("neck_pitch")] = neck_pitch_rad
        self.set_q(q)

    def render(self) -> tuple[np.ndarray, np.ndarray]:
        return self.head.render()

    def add_box(self, class_name: str, xy, yaw_rad: float, size, support_z: float = TABLE_TOP_M) -> int:
        half = [s / 2 for s in size]
        c = self.world.client
        return pb.createMultiBody(0, pb.createCollisionShape(pb.GEOM_BOX, halfExtents=half, physicsClientId=c),
                                  pb.createVisualShape(pb.GEOM_BOX, halfExtents=half, rgbaColor=list(COLOURS[class_name]),
                                                       physicsClientId=c),
                                  [xy[0], xy[1], support_z + size[2] / 2], pb.getQuaternionFromEuler([0, 0, yaw_rad]),
                                  physicsClientId=c)

    def remove(self, body: int) -> None:
        pb.removeBody(body, physicsClientId=self.world.client)

    def camera_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Optical frame rotation and position from the robot model at q (what perception computes)."""
        from optimus_control.perception import RobotViewModel

        view = RobotViewModel(self.robot).view(self.q)
        return view.camera_rotation, view.camera_position_m

    def pipeline(self, t_s: float = 1.0, **params) -> PerceptionPipeline:
        from optimus_control.perception import PerceptionParams

        p = PerceptionPipeline(self.robot, self.camera, PerceptionParams(**params))
        self.feed_state(p, t_s)
        return p

    def feed_state(self, pipeline: PerceptionPipeline, t_s: float) -> None:
        pipeline.state.add_joint_state(t_s, self.robot.joint_names, self.q[7:])
        pipeline.state.add_base_pose(t_s, self.q[:3], self.q[3:7])

    def close(self) -> None:
        self.world.close()


def open_sim_scene(scene_yaml: str, directory: Path, seed: int = 0) -> SimScene:
    """Build a scene file (YAML text) in the simulator, robot at its start pose; skips if the sim lacks a camera."""
    from optimus_control.sim import camera as sim_camera
    from optimus_control.sim.scene_builder import build_scene
    from optimus_control.sim.scene_spec import load_scene
    from optimus_control.sim.world import SimWorld

    path = directory / "perception_scene.yaml"
    path.write_text(scene_yaml)
    robot = RobotModel.load()
    cfg = robot.config.camera
    world = SimWorld(robot)
    head = sim_camera.HeadCamera.on_robot(world)
    built = build_scene(world, load_scene(path), seed)
    return SimScene(robot, world, head, built.robot_q.copy(), cfg.intrinsics)


def test_sim_camera_and_perception_camera_model_agree(tmp_path):
    """The table top, back-projected with the config intrinsics from the FK camera pose, is at its true
    height (within 3 mm; the measured offset is printed) and flat."""
    scene = open_sim_scene(TABLE_YAML, tmp_path)
    try:
        scene.look_down(0.7)
        _, depth = scene.render()
        rot, pos = scene.camera_pose()
        pts = scene.camera.back_project(np.nan_to_num(depth).astype(np.float32)) @ rot.T + pos
        z = pts[..., 2]
        table = np.isfinite(depth) & (np.abs(z - TABLE_TOP_M) < 0.02)
        assert np.count_nonzero(table) > 10000
        offset = float(np.median(z[table]) - TABLE_TOP_M)
        print(f"\ntable top seen at {1000 * offset:+.2f} mm from its true height")
        assert abs(offset) < 0.003
        assert np.percentile(np.abs(z[table] - np.median(z[table])), 90) < 0.002
    finally:
        scene.close()
