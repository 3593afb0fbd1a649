"""The shipped jobs and planner parameters fit the demo scene (config/scenes/sorting_cell.yaml).

Geometry only: each job bin's prior matches the scene bin of its colour, and with the workspace of
config/task_planner.yaml the planner plans every corner of the pick zone into every bin. Whether the
controller really reaches those poses is for the simulated episodes to show; this catches a job, a
scene or a parameter file drifting apart.
"""

from __future__ import annotations

from dataclasses import fields, replace

import numpy as np
import pytest
import yaml
from conftest import REPO

from optimus_control.planning import GraspParams, WorkspaceParams, load_job
from optimus_control.planning.kinematic_world import KinematicWorld
from optimus_control.planning.planner import Planner
from optimus_control.planning.workspace import ArmWorkspace
from optimus_control.planning.world_model import WorldModel

SCENE = yaml.safe_load((REPO / "config" / "scenes" / "sorting_cell.yaml").read_text())
PARAMS = yaml.safe_load((REPO / "config" / "task_planner.yaml").read_text())["/**/task_planner"]["ros__parameters"]


def scene_bins() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Colour -> (centre [m], size [m]) of the scene's bins."""
    bins = {}
    for f in SCENE["furniture"]:
        if f["type"] == "bin":
            size = np.array(f["size"], dtype=float)
            centre = np.array([*f["position"], f.get("elevation", 0.0) + 0.5 * size[2]])
            bins[f["colour"]] = (centre, size)
    return bins


def lane_corners() -> list[tuple[list[str], list[np.ndarray], np.ndarray]]:
    """Per box group: its colours, box centres at the corners and middle of its region, and the box size."""
    out = []
    for group in SCENE["boxes"]:
        region = next(r for r in SCENE["regions"] if r["name"] == group["region"])
        table = next(f for f in SCENE["furniture"] if f["name"] == region["furniture"])
        size = np.array(group["size"], dtype=float)
        z = table["size"][2] + 0.5 * size[2]
        xs = [table["position"][0] + x for x in region["x"]]
        ys = [table["position"][1] + y for y in region["y"]]
        points = [np.array([x, y, z]) for x in xs for y in ys]
        points.append(np.array([np.mean(xs), np.mean(ys), z]))
        out.append((list(group["colours"]), points, size))
    return out


@pytest.mark.parametrize("job_name", ["sort_by_colour", "sort_two_boxes"])
def test_job_bins_match_the_scene(job_name):
    job = load_job(job_name)
    bins = scene_bins()
    for rule in job.rules:
        spec = job.bins[rule.bin]
        centre, _ = bins[rule.object_class]  # the scene has a bin of each colour the job sorts
        prior = np.array(spec.position_m)
        assert np.linalg.norm(prior[:2] - centre[:2]) < 0.05, f"{job_name}: {rule.bin} prior {prior} vs scene {centre}"
        others = [c for colour, (c, _) in bins.items() if colour != rule.object_class]
        assert all(np.linalg.norm(prior[:2] - c[:2]) > spec.match_radius_m for c in others)


def test_scene_boxes_are_in_the_pick_region():
    job = load_job("sort_by_colour")
    for colours, points, _ in lane_corners():
        assert all(job.pick_region.contains(p) for p in points)
        assert set(colours) <= set(job.box_classes)


def test_every_lane_corner_is_planned_into_its_bins(robot):
    """With the parameter file's workspace, no box the scene can put on a lane would be skipped as unreachable."""
    ws_values = PARAMS["workspace"]
    known = {f.name for f in fields(WorkspaceParams)}
    assert set(ws_values) <= known
    workspace = ArmWorkspace(robot, replace(WorkspaceParams(), **ws_values))
    grasp = replace(GraspParams(max_finger_opening_m=robot.config.gripper.open_position), **PARAMS["grasp"])
    job = load_job("sort_by_colour")
    failures = []
    lanes = lane_corners()
    assert {c for colours, _, _ in lanes for c in colours} == {r.object_class for r in job.rules}
    for colours, points, size in lanes:
        for rule, point in ((r, pt) for r in job.rules if r.object_class in colours for pt in points):
            world = KinematicWorld.standing(robot, 0.0)
            for centre, bin_size in scene_bins().values():
                world.add_bin("bin", centre, bin_size)
            world.add_box(rule.object_class, point, size)
            belief = WorldModel(job)
            belief.update(world.snapshot())
            decision = Planner(job, workspace, grasp).next_pick(belief, world.base_pose())
            if decision.plan is None:
                failures.append(f"{rule.object_class} box at {np.round(point, 2).tolist()}: {decision.skipped}")
    assert not failures, "\n".join(failures)
