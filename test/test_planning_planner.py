"""Planner, grasp geometry, workspace and world belief on synthetic worlds.

The scenes come from ``KinematicWorld``, an exact in-process stand-in for perception: these tests
check planning logic (ordering, hand choice, grasp choice, replanning, skipping), not whether the
robot can physically do it; that is tested against the PyBullet sim.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from optimus_control.planning.geometry import Pose, rotation_z
from optimus_control.planning.grasp import GRASP_BLOCKED, GraspParams, choose_grasp
from optimus_control.planning.job_spec import parse_job
from optimus_control.planning.kinematic_world import KinematicWorld
from optimus_control.planning.planner import CROSS_BODY_COST_PER_M, Planner
from optimus_control.planning.workspace import ArmWorkspace, WorkspaceParams
from optimus_control.planning.world_model import PENDING, SKIPPED, SORTED, WorldModel

TABLE_M = 0.80
BOX = (0.20, 0.16, 0.12)
# These geometry tests check an arm-only workspace and drops over the bin centre, not the shipped planner
# settings (config/task_planner.yaml: the trunk helps reach, drops spread over the bin): simpler numbers.
UNIT_WORKSPACE = WorkspaceParams(reach_fraction=0.92, trunk_range_fraction=0.3, trunk_samples_per_joint=3)
UNIT_GRASP = GraspParams(place_edge_margin_m=0.0, lift_height_m=0.20)


def job_data(**overrides) -> dict:
    data = {
        "name": "unit",
        "bins": {"bin_red": {"class": "bin_red"}, "bin_blue": {"class": "bin_blue"}},
        "goal": {"sort": {"red": "bin_red", "blue": "bin_blue"}},
        "pick_region": {"min_m": [0.1, -0.4, 0.6], "max_m": [1.5, 0.4, 1.3]},
        "constraints": {"max_attempts_per_box": 3, "time_limit_s": 120.0},
    }
    data.update(overrides)
    return data


@pytest.fixture(scope="module")
def workspace(robot):
    return ArmWorkspace(robot, UNIT_WORKSPACE)


@pytest.fixture
def scene(robot):
    world = KinematicWorld.standing(robot, TABLE_M)
    world.add_bin("bin_red", [0.25, 0.45, 0.40], [0.30, 0.30, 0.70])
    world.add_bin("bin_blue", [0.25, -0.45, 0.40], [0.30, 0.30, 0.70])
    return world


def on_table(x: float, y: float, size=BOX) -> list[float]:
    return [x, y, TABLE_M + 0.5 * size[2]]


def plan(workspace, scene, data=None, params=None):
    job = parse_job(data or job_data(), "unit.yaml")
    belief = WorldModel(job)
    belief.update(scene.snapshot())
    planner = Planner(job, workspace, params or UNIT_GRASP)
    return planner, belief, planner.next_pick(belief, scene.base_pose())


# ---- workspace and grasp geometry --------------------------------------------------------------------
def test_workspace_comes_from_the_model(robot, workspace):
    """Approach/closing axes, chain length and sides are read off the kinematic tree."""
    assert set(workspace.hands) == {h.name for h in robot.config.hands}
    for hand in workspace.hands.values():
        np.testing.assert_allclose(hand.approach_axis, [0, 0, -1], atol=1e-9)  # fingers along -z of the gripper
        assert abs(hand.closing_axis @ hand.approach_axis) < 1e-9
        np.testing.assert_allclose(hand.wrist_offset_m, [0, 0, 0.13], atol=1e-9)
        assert hand.chain_length_m == pytest.approx(0.04 + 0.24 + 0.22 + 0.03)  # shoulder_yaw..wrist_pitch offsets
        assert hand.side_sign == (1.0 if hand.shoulder_centres_m[0][1] > 0 else -1.0)
        assert len(hand.shoulder_centres_m) >= 9  # two trunk joints, at least three samples each
        assert len(hand.torso_rotations) == len(hand.torso_origins_m) == len(hand.shoulder_centres_m)
        np.testing.assert_allclose(hand.torso_rotations[0], np.eye(3), atol=1e-9)  # upright pose first
    assert workspace.hands["left"].side_sign == 1.0 and workspace.hands["right"].side_sign == -1.0


def test_reach_limits(workspace):
    """A target near the shoulder's reach is accepted; far, behind or across the body is refused with why."""
    hand = workspace.hands["left"]
    down = hand.home_pose_base.rotation
    assert workspace.check("left", Pose(np.array([0.3, 0.25, 0.0]), down)).ok
    far = workspace.check("left", Pose(np.array([0.9, 0.25, 0.0]), down))
    assert not far.ok and "from the shoulder, reach" in far.reason
    behind = workspace.check("left", Pose(np.array([-0.1, 0.25, 0.0]), down))
    assert not behind.ok and "in front of the torso" in behind.reason
    assert workspace.check("left", Pose(np.array([0.3, -0.1, 0.2]), down)).ok
    across = workspace.check("left", Pose(np.array([0.3, -0.25, 0.2]), down))
    assert not across.ok and "across the body" in across.reason


@pytest.mark.parametrize("yaw_deg", [0.0, 30.0, -60.0, 90.0])
def test_top_grasp_pose(workspace, yaw_deg):
    """Fingers point down, close across a horizontal box axis that fits, and reach below the box top."""
    hand, params = workspace.hands["left"], UNIT_GRASP
    yaw = np.radians(yaw_deg)
    size = np.array([0.35, 0.20, 0.12])  # only the 0.20 m side fits the 0.30 m stroke
    box = Pose(np.array([0.4, 0.2, 0.86]), rotation_z(yaw))
    g = choose_grasp(hand, box, size, params)
    np.testing.assert_allclose(g.gripper_pose.rotation @ hand.approach_axis, [0, 0, -1], atol=1e-9)
    closing = g.gripper_pose.rotation @ hand.closing_axis
    box_y_axis = rotation_z(yaw)[:, 1]
    assert abs(closing @ box_y_axis) == pytest.approx(1.0)  # across the 0.20 m side
    assert g.width_m == pytest.approx(0.20)
    assert g.opening_m == pytest.approx(0.10 + params.finger_clearance_m)
    tip_z = g.gripper_pose.position[2] - params.fingertip_below_gripper_m
    assert tip_z == pytest.approx(0.86 + 0.06 - params.grasp_depth_m)
    np.testing.assert_allclose(g.gripper_pose.position[:2], box.position[:2])
    np.testing.assert_allclose(g.held_offset_m, box.position - g.gripper_pose.position)


def test_grasp_prefers_least_wrist_twist(workspace):
    """With both sides fitting, the hand closes along the axis nearest its natural closing direction."""
    hand = workspace.hands["right"]
    g = choose_grasp(hand, Pose.from_position_yaw([0.4, -0.2, 0.86]), np.array([0.20, 0.18, 0.12]), UNIT_GRASP)
    closing = g.gripper_pose.rotation @ hand.closing_axis
    natural = np.array([np.cos(hand.natural_grasp_yaw_rad), np.sin(hand.natural_grasp_yaw_rad), 0.0])
    assert closing @ natural > np.cos(np.radians(45))


def test_widest_box_uses_the_full_stroke(workspace):
    """A 0.30 m box still fits the 2 x 0.16 m stroke: the fingers open fully, with less than the usual clearance."""
    params = UNIT_GRASP
    g = choose_grasp(workspace.hands["left"], Pose.from_position_yaw([0.4, 0.2, 0.86]), np.array([0.40, 0.30, 0.12]),
                     params)
    assert g.width_m == pytest.approx(0.30) and g.opening_m == pytest.approx(params.max_finger_opening_m)


def test_too_wide_box_is_refused(workspace):
    reason = choose_grasp(workspace.hands["left"], Pose.from_position_yaw([0.4, 0.2, 0.86]),
                          np.array([0.34, 0.33, 0.12]), UNIT_GRASP)
    assert isinstance(reason, str) and "does not fit the gripper" in reason


# ---- planner ------------------------------------------------------------------------------------------
def test_nearest_box_first(workspace, scene):
    far = scene.add_box("red", on_table(0.45, 0.20), BOX)
    near = scene.add_box("red", on_table(0.30, 0.22), BOX)
    _, belief, decision = plan(workspace, scene)
    assert belief.box(decision.plan.box_id).track_id == near.track_id
    assert far.track_id != near.track_id


def test_class_order_beats_distance(workspace, scene):
    scene.add_box("red", on_table(0.30, 0.20), BOX)
    blue = scene.add_box("blue", on_table(0.45, -0.20), BOX)
    data = job_data(constraints={"max_attempts_per_box": 3, "time_limit_s": 60.0, "order": ["blue", "red"]})
    _, belief, decision = plan(workspace, scene, data)
    assert belief.box(decision.plan.box_id).track_id == blue.track_id


@pytest.mark.parametrize("cls, y, hand", [("red", 0.22, "left"), ("blue", -0.22, "right"), ("blue", 0.06, "right"),
                                          ("red", -0.06, "left")])
def test_hand_choice_by_side_and_reach(workspace, scene, cls, y, hand):
    """The hand on the box's side picks it, unless only the other hand can also reach the box's bin."""
    scene.add_box(cls, on_table(0.35, y), BOX)
    _, _, decision = plan(workspace, scene)
    assert decision.plan is not None and decision.plan.hand == hand


@pytest.mark.parametrize("y, hand", [(-0.1, "right"), (0.1, "left")])
def test_hand_on_the_box_side_wins_when_both_can(robot, y, hand):
    """Into a bin straight ahead, both hands reach a box just off the midline (the waist may turn and lean, as
    in config/task_planner.yaml); the hand on the box's side takes it."""
    workspace = ArmWorkspace(robot, WorkspaceParams(reach_fraction=0.95, trunk_range_fraction=0.8,
                                                    trunk_samples_per_joint=5))
    world = KinematicWorld.standing(robot, TABLE_M)
    world.add_bin("bin_red", [0.30, 0.0, 0.45], [0.30, 0.30, 0.70])
    world.add_box("red", on_table(0.40, y), BOX)
    data = job_data(bins={"bin_red": {"class": "bin_red"}}, goal={"sort": {"red": "bin_red"}})
    planner, belief, decision = plan(workspace, world, data)
    other = "left" if hand == "right" else "right"
    hands, workspace.hands = workspace.hands, {other: workspace.hands[other]}
    try:
        cross_plan, reason = planner.plan_for_box(belief, belief.box(decision.plan.box_id), world.base_pose())
    finally:
        workspace.hands = hands
    assert cross_plan is not None, f"the other hand should reach too, else this test shows nothing: {reason}"
    assert decision.plan.hand == hand
    # Working across the midline costs CROSS_BODY_COST_PER_M per metre on top of the geometric cost.
    across_m = abs(cross_plan.grasp.position[1]) - 0.01
    assert cross_plan.cost - decision.plan.cost > CROSS_BODY_COST_PER_M * across_m


def test_plan_poses_are_consistent(workspace, scene):
    """Pre-grasp above grasp, lift higher, release over the bin centre above the rim, all reachable."""
    scene.add_box("red", on_table(0.35, 0.2), BOX)
    _, belief, decision = plan(workspace, scene)
    p, params = decision.plan, UNIT_GRASP
    assert p.pregrasp.position[2] == pytest.approx(p.grasp.position[2] + params.approach_height_m)
    assert p.lift.position[2] == pytest.approx(p.grasp.position[2] + params.lift_height_m)
    box_centre_at_place = p.place.position + p.held_offset_m
    np.testing.assert_allclose(box_centre_at_place[:2], [0.25, 0.45], atol=1e-9)
    rim = 0.40 + 0.35
    assert box_centre_at_place[2] - 0.5 * BOX[2] == pytest.approx(rim + params.place_clearance_m)
    # out of the bin straight up, to the carry height at most (the arm was just there)
    np.testing.assert_allclose(p.retreat.position[:2], p.place.position[:2])
    assert p.place.position[2] < p.retreat.position[2] <= p.carry.position[2] + 1e-9
    to_base = scene.base_pose().inverse()
    for pose in (p.pregrasp, p.grasp, p.lift, p.carry, p.place, p.retreat):
        assert workspace.check(p.hand, to_base.compose(pose)).ok


def test_boxes_are_dropped_at_different_spots_of_a_bin(workspace, scene):
    """With an edge margin, the first box goes to the reachable spot nearest the robot and each next one to
    another spot, away from the earlier drops (one spot for all stacked the boxes above the rim), inside the walls."""
    small = (0.08, 0.08, 0.08)
    params = replace(UNIT_GRASP, place_edge_margin_m=0.02)
    scene.add_box("red", on_table(0.35, 0.2, small), small)
    planner, belief, decision = plan(workspace, scene, params=params)
    bin_red = belief.bins["bin_red"]
    robot_xy = scene.base_pose().position[:2]
    drops = []
    for _ in range(3):  # three spots of this bin are within the left hand's reach
        p = planner.plan_for_box(belief, belief.box(decision.plan.box_id), scene.base_pose())[0]
        drop = p.drop_xy_m
        np.testing.assert_allclose((p.place.position + p.held_offset_m)[:2], drop, atol=1e-9)
        local = np.abs(bin_red.pose.inverse().transform_point([*drop, 0.0])[:2])
        assert np.all(local + 0.5 * np.hypot(0.08, 0.08) + 0.02 <= 0.5 * bin_red.size_m[:2] + 1e-9)
        for earlier in drops:
            assert np.linalg.norm(drop - earlier) > 0.05
        drops.append(drop)
        bin_red.drops_xy_m.append(drop)
    # The first drop is the spot nearest the robot of the ones reached.
    first = drops[0]
    assert np.linalg.norm(first - robot_xy) < np.linalg.norm(bin_red.pose.position[:2] - robot_xy)


def test_unreachable_box_is_skipped_with_reason(workspace, scene):
    scene.add_box("red", on_table(1.20, 0.2), BOX)
    ok = scene.add_box("blue", on_table(0.35, -0.2), BOX)
    _, belief, decision = plan(workspace, scene)
    assert belief.box(decision.plan.box_id).track_id == ok.track_id
    (skipped_id, reason), = decision.skipped
    assert belief.box(skipped_id).outcome == SKIPPED
    assert reason.startswith("unreachable:") and "left hand" in reason and "right hand" in reason
    assert belief.box(skipped_id).reason == reason


def test_too_large_for_bin_is_skipped(workspace, scene):
    scene.add_box("red", on_table(0.35, 0.2, (0.28, 0.32, 0.1)), (0.28, 0.32, 0.1))
    _, _, decision = plan(workspace, scene)
    assert decision.plan is None and decision.done
    assert "larger than the opening of bin 'bin_red'" in decision.skipped[0][1]


def test_replans_after_a_box_moves(workspace, scene):
    """Planning again from the latest belief targets the box where it is now."""
    box = scene.add_box("red", on_table(0.35, 0.20), BOX)
    planner, belief, first = plan(workspace, scene)
    scene.move_box(box, on_table(0.30, 0.28))
    scene.step(0.1)
    belief.update(scene.snapshot())
    second = planner.next_pick(belief, scene.base_pose())
    assert second.plan.box_id == first.plan.box_id
    np.testing.assert_allclose(second.plan.grasp.position[:2], [0.30, 0.28])
    assert np.linalg.norm(second.plan.grasp.position - first.plan.grasp.position) > 0.05


def test_skipped_box_that_moves_into_reach_is_planned(workspace, scene):
    box = scene.add_box("red", on_table(1.10, 0.20), BOX)
    planner, belief, decision = plan(workspace, scene)
    assert decision.plan is None and belief.box(1).outcome == SKIPPED
    scene.move_box(box, on_table(0.35, 0.20))
    scene.step(0.1)
    belief.update(scene.snapshot())
    assert belief.box(1).outcome == PENDING
    assert planner.next_pick(belief, scene.base_pose()).plan.box_id == 1


def test_box_waits_for_its_bin_to_be_seen(workspace, robot):
    world = KinematicWorld.standing(robot, TABLE_M)
    world.add_box("red", on_table(0.35, 0.2), BOX)
    planner, belief, decision = plan(workspace, world)
    assert decision.plan is None and "bin not located" in decision.skipped[0][1]
    world.add_bin("bin_red", [0.25, 0.45, 0.40], [0.30, 0.30, 0.70])
    world.step(0.1)
    belief.update(world.snapshot())
    assert planner.next_pick(belief, world.base_pose()).plan.bin == "bin_red"


def test_fixed_bin_pose_from_the_job(workspace, robot):
    world = KinematicWorld.standing(robot, TABLE_M)
    world.add_box("red", on_table(0.35, 0.2), BOX)
    data = job_data(bins={"bin_red": {"position_m": [0.25, 0.45, 0.40], "size_m": [0.3, 0.3, 0.7]},
                          "bin_blue": {"class": "bin_blue"}})
    _, _, decision = plan(workspace, world, data)
    assert decision.plan is not None and decision.plan.bin == "bin_red"


def test_pick_place_count_limits_the_work(workspace, scene):
    scene.add_box("red", on_table(0.30, 0.2), BOX)
    scene.add_box("red", on_table(0.45, 0.2), BOX)  # 0.15 m apart: room for the fingers (0.12 m: the 0.20 m boxes overlap)
    data = job_data(goal={"pick_place": [{"class": "red", "bin": "bin_red", "count": 1}]})
    planner, belief, decision = plan(workspace, scene, data)
    belief.box(decision.plan.box_id).outcome = SORTED
    after = planner.next_pick(belief, scene.base_pose())
    assert after.plan is None and after.done


def test_gripper_stroke_comes_from_params(workspace, scene):
    """A narrower stroke makes the same box ungraspable."""
    scene.add_box("red", on_table(0.35, 0.2), BOX)
    _, _, decision = plan(workspace, scene, params=replace(UNIT_GRASP, max_finger_opening_m=0.07))
    assert decision.plan is None and "does not fit the gripper" in decision.skipped[0][1]


def test_blocked_box_waits_while_a_free_one_is_picked(workspace, scene):
    """Three 0.08 m wide boxes: A with neighbours 0.11 m away on both of its axes, B beside it along x, C along y.
    A is the nearest (first without neighbours) but its fingers have no room: it stays pending, not skipped,
    and a free box goes first; once that one is gone, A is picked next."""
    cube = (0.08, 0.08, 0.12)
    a = scene.add_box("red", on_table(0.33, 0.20, cube), cube)
    b = scene.add_box("red", on_table(0.44, 0.20, cube), cube)
    c = scene.add_box("red", on_table(0.33, 0.09, cube), cube)
    planner, belief, decision = plan(workspace, scene)
    box_a = next(box for box in belief.boxes.values() if box.track_id == a.track_id)
    with pytest.MonkeyPatch.context() as patch:  # A, were it not for B and C
        patch.setattr(planner, "neighbours", lambda world, box: [])
        assert planner.next_pick(belief, scene.base_pose()).plan.box_id == box_a.box_id
    assert decision.plan is not None and decision.plan.box_id != box_a.box_id and not decision.done
    assert decision.skipped == [] and box_a.outcome == PENDING
    (blocked_id, reason), = decision.blocked
    assert blocked_id == box_a.box_id and reason.startswith(GRASP_BLOCKED)
    first = next(k for k in (b, c) if k.track_id == belief.box(decision.plan.box_id).track_id)
    assert decision.plan.opening_m == pytest.approx(0.04 + UNIT_GRASP.finger_clearance_m)  # free: full opening
    scene.move_box(first, [0.25, 0.45, 0.2])  # into bin_red
    scene.step(0.1)
    belief.update(scene.snapshot())
    second = planner.next_pick(belief, scene.base_pose())
    assert second.plan.box_id == box_a.box_id and second.blocked == [] and second.skipped == []


def test_boxes_blocked_for_good_are_skipped_once_nothing_else_can_be_done(workspace, scene):
    """A red cube between two blue slabs too large for their bin (skipped, but still standing there): with
    nothing else to pick, the cube is skipped with the reason and the job done; it is considered again once
    a slab has gone (e.g. taken away by an operator)."""
    cube, slab_x, slab_y = (0.08, 0.08, 0.12), (0.10, 0.32, 0.10), (0.32, 0.10, 0.10)
    scene.add_box("red", on_table(0.35, 0.15, cube), cube)
    slab = scene.add_box("blue", on_table(0.47, 0.15, slab_x), slab_x)  # near face 0.07 m from the cube along x
    scene.add_box("blue", on_table(0.25, 0.27, slab_y), slab_y)  # ... and along y
    planner, belief, decision = plan(workspace, scene)
    assert decision.plan is None and decision.done and decision.blocked
    reasons = dict(decision.skipped)
    assert len(reasons) == 3 and reasons[1].startswith(GRASP_BLOCKED) and "0.010 m" in reasons[1]
    assert belief.box(1).outcome == SKIPPED and belief.box(1).reason == reasons[1]
    again = planner.next_pick(belief, scene.base_pose())  # nothing changed: no new skips to report
    assert again.plan is None and again.done and again.skipped == []
    scene.move_box(slab, on_table(0.45, -0.30, slab_x))
    scene.step(0.1)
    belief.update(scene.snapshot())
    after = planner.next_pick(belief, scene.base_pose())
    assert after.plan is not None and after.plan.box_id == 1 and belief.box(1).outcome == PENDING


# ---- world belief -------------------------------------------------------------------------------------
def test_retracked_box_keeps_its_identity(workspace, scene):
    """A dropped box that perception re-detects under a new track id keeps its planner id and attempts."""
    box = scene.add_box("red", on_table(0.35, 0.2), BOX)
    _, belief, _ = plan(workspace, scene)
    belief.box(1).attempts = 2
    scene.retrack(box)
    scene.move_box(box, on_table(0.40, 0.1))
    scene.step(0.1)
    belief.update(scene.snapshot())
    assert list(belief.boxes) == [1]
    assert belief.box(1).track_id == box.track_id and belief.box(1).attempts == 2
    assert "re-detected as track" in belief.box(1).events[-1]


def test_boxes_in_bins_or_outside_the_region_are_not_the_jobs(workspace, scene):
    scene.add_box("red", [0.25, 0.45, 0.2], BOX)  # already in a bin
    scene.add_box("blue", on_table(0.35, 0.9), BOX)  # outside the pick region
    _, belief, decision = plan(workspace, scene)
    assert belief.boxes == {} and decision.done


def test_bins_of_one_class_are_told_apart_by_their_prior_position(workspace, robot):
    """Perception reports every bin as class 'bin'; each job bin takes the one nearest its prior."""
    world = KinematicWorld.standing(robot, TABLE_M)
    world.add_bin("bin", [0.27, -0.43, 0.40], [0.30, 0.30, 0.70])
    world.add_bin("bin", [0.24, 0.46, 0.40], [0.30, 0.30, 0.70])
    world.add_bin("bin", [1.50, 0.00, 0.40], [0.30, 0.30, 0.70])  # some other bin, far from both priors
    world.add_box("blue", on_table(0.35, -0.2), BOX)
    data = job_data(bins={"bin_red": {"class": "bin", "position_m": [0.25, 0.45, 0.4]},
                          "bin_blue": {"class": "bin", "position_m": [0.25, -0.45, 0.4], "match_radius_m": 0.1}})
    _, belief, decision = plan(workspace, world, data)
    np.testing.assert_allclose(belief.bins["bin_red"].pose.position, [0.24, 0.46, 0.40])
    np.testing.assert_allclose(belief.bins["bin_blue"].pose.position, [0.27, -0.43, 0.40])
    assert decision.plan.bin == "bin_blue"
    np.testing.assert_allclose((decision.plan.place.position + decision.plan.held_offset_m)[:2], [0.27, -0.43])


def test_bin_seen_in_part_does_not_move_the_bin(workspace, robot):
    """A perceived bin whose footprint is far from the job's size (a partial view: shrunken, centre shifted)
    leaves the bin where it was; one that matches the size (either way round) relocates it."""
    world = KinematicWorld.standing(robot, TABLE_M)
    partial = world.add_bin("bin", [0.25, -0.50, 0.40], [0.16, 0.22, 0.70])  # outer part only: centre 5 cm out
    whole = world.add_bin("bin", [0.26, 0.44, 0.40], [0.26, 0.22, 0.70])  # turned a quarter: same footprint
    world.add_box("blue", on_table(0.35, -0.2), BOX)
    data = job_data(bins={"bin_red": {"class": "bin", "position_m": [0.25, 0.45, 0.4], "size_m": [0.22, 0.26, 0.7]},
                          "bin_blue": {"class": "bin", "position_m": [0.25, -0.45, 0.4], "size_m": [0.22, 0.26, 0.7]}})
    _, belief, _ = plan(workspace, world, data)
    np.testing.assert_allclose(belief.bins["bin_blue"].pose.position, [0.25, -0.45, 0.4])
    assert not belief.bins["bin_blue"].seen
    np.testing.assert_allclose(belief.bins["bin_red"].pose.position, whole.position_m)
    assert belief.bins["bin_red"].seen
    partial.size_m = np.array([0.23, 0.25, 0.70])  # seen whole (within 3 cm of the job's size)
    world.step(0.1)
    belief.update(world.snapshot())
    np.testing.assert_allclose(belief.bins["bin_blue"].pose.position, [0.25, -0.50, 0.40])


def test_bin_beyond_its_match_radius_is_not_located(workspace, robot):
    world = KinematicWorld.standing(robot, TABLE_M)
    world.add_bin("bin", [0.25, 0.70, 0.40], [0.30, 0.30, 0.70])
    world.add_box("red", on_table(0.35, 0.2), BOX)
    data = job_data(bins={"bin_red": {"class": "bin", "position_m": [0.25, 0.45, 0.4], "match_radius_m": 0.2},
                          "bin_blue": {"class": "bin", "position_m": [0.25, -0.45, 0.4]}})
    _, belief, decision = plan(workspace, world, data)
    assert belief.bins["bin_red"].pose is None
    assert "bin not located" in decision.skipped[0][1]
