"""The retry path in the simulated cell: a box knocked out of the gripper is re-detected and picked again.

The whole job runs in one process (optimus_control.apps.episode: sim, estimator, whole-body QP,
perception on rendered frames, the planner's behaviour tree), on the fixed 2-box cell of the factory
demo test. When the first box has been lifted and the carry has begun, the test pulls it down out of the
fingers with a short force on the box (a knock: physical contact, nothing else moves it). Perception
must see it back on the table, the planner must notice the drop, re-detect and pick it again, and the
job must still end with both boxes in their bins by ground truth, with no fall.
"""

from __future__ import annotations

import numpy as np
import pybullet as pb
import pytest
from conftest import two_box_scene

from optimus_control.apps.episode import run_episode

pytestmark = pytest.mark.sim

KNOCK_FORCE_N = (0.0, 0.0, -250.0)  # on the box, for KNOCK_STEPS physics steps of 1 ms
KNOCK_STEPS = 60
LIFTED_M = 0.04  # the box counts as lifted when its centre is this far above where it started


@pytest.fixture(scope="module")
def knocked_episode(robot, tmp_path_factory):
    scene_path = two_box_scene(tmp_path_factory.mktemp("retry"))
    state = {"target": None, "start_z": {}, "steps_left": KNOCK_STEPS, "knocked_at_s": None}

    def on_tick(world, runner, executive, scene):
        rec = executive.record
        if state["target"] is None and rec.step == "transfer" and rec.box_id is not None:
            # The scene object the planner is carrying: the one nearest the hand now (ground truth, test only).
            hand = runner.controller.hand_pose(rec.hand).translation
            objects = world.ground_truth().objects
            obj = min(scene.objects, key=lambda o: np.linalg.norm(objects[o.id][0] - hand))
            state["target"] = obj

    def on_step(world, scene):
        if not state["start_z"]:
            state["start_z"] = {o.id: float(world.ground_truth().objects[o.id][0][2]) for o in scene.objects}
        obj = state["target"]
        if obj is None or state["steps_left"] <= 0:
            return
        position = world.ground_truth().objects[obj.id][0]
        if state["knocked_at_s"] is None and position[2] < state["start_z"][obj.id] + LIFTED_M:
            return
        state["knocked_at_s"] = state["knocked_at_s"] or world.time_s
        body = world.objects[obj.id]
        pb.applyExternalForce(body, -1, KNOCK_FORCE_N, list(position), pb.WORLD_FRAME, physicsClientId=world.client)
        state["steps_left"] -= 1

    result = run_episode(robot, scene_path, "sort_two_boxes", 0, time_limit_s=110.0, verbose=False,
                         on_tick=on_tick, on_step=on_step)
    return result, state


def test_the_box_was_knocked_out_of_the_gripper(knocked_episode):
    result, state = knocked_episode
    assert state["knocked_at_s"] is not None, f"the carry never began with a lifted box: {result.events}"


def test_the_drop_is_noticed_and_the_box_picked_again(knocked_episode):
    result, _ = knocked_episode
    text = "\n".join(result.events)
    assert "dropped" in text, text
    assert max(result.attempts.values()) >= 2, (result.attempts, text)


def test_job_still_succeeds_by_ground_truth_without_a_fall(knocked_episode):
    result, _ = knocked_episode
    text = "\n".join(result.events)
    assert not result.fell, text
    assert result.state == "succeeded", text
    assert result.boxes_sorted_truth == result.boxes_total == 2, (result.truth, text)
    assert result.succeeded, (result.truth, text)
