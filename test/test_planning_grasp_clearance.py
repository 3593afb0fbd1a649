"""Top grasps next to other boxes: how far the fingers may open, and across which axis they close.

Geometry only (no planner, no robot motion). The sorting-cell case: 0.08 m cubes whose neighbours can stand
0.11-0.13 m away; open to the usual 0.08 m per finger, a pad's outer face (0.095 m out) lands on such a
neighbour, which tipped the robot in seed 18. Planner behaviour with blocked boxes is in
test_planning_planner.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from optimus_control.planning.geometry import (
    Pose,
    convex_polygon_distance_m,
    convex_polygons_overlap,
    crossbar_contact_interval_m,
    rectangle_corners_xy,
    rotation_z,
)
from optimus_control.planning.grasp import GRASP_BLOCKED, GraspParams, choose_grasp, pad_paths_xy
from optimus_control.planning.workspace import ArmWorkspace

CUBE = np.array([0.08, 0.08, 0.08])
Z_M = 0.84  # box centre on a 0.80 m table
CENTRE = np.array([0.40, 0.20, Z_M])


@pytest.fixture(scope="module")
def hand(robot):
    return ArmWorkspace(robot).hands["left"]


def unit(yaw_rad: float) -> np.ndarray:
    return np.array([np.cos(yaw_rad), np.sin(yaw_rad), 0.0])


def natural_box_yaw(hand) -> float:
    """A box yaw that puts a box axis exactly on the hand's natural closing direction."""
    return hand.natural_grasp_yaw_rad


def closing_yaw(hand, grasp) -> float:
    closing = grasp.gripper_pose.rotation @ hand.closing_axis
    return float(np.arctan2(closing[1], closing[0]))


def same_axis(yaw_a: float, yaw_b: float) -> bool:
    return abs(np.sin(yaw_a - yaw_b)) < 1e-9


def neighbour(direction_yaw_rad: float, distance_m: float, yaw_rad: float = 0.0, size=CUBE) -> tuple[Pose, np.ndarray]:
    return Pose(CENTRE + distance_m * unit(direction_yaw_rad), rotation_z(yaw_rad)), np.asarray(size, dtype=float)


def pad_clearance(grasp, hand, obstacles, p: GraspParams) -> float:
    """Smallest distance [m] from both pads' paths (at the grasp's opening) to the obstacles' footprints."""
    yaw = closing_yaw(hand, grasp)
    paths = pad_paths_xy(grasp.gripper_pose.position[:2], yaw, 0.5 * grasp.width_m,
                         grasp.opening_m + p.finger_pad_thickness_m, p)
    return min(convex_polygon_distance_m(path, rectangle_corners_xy(pose.position, pose.yaw_rad, size))
               for path in paths for pose, size in obstacles)


# ---- 2-D geometry --------------------------------------------------------------------------------------
def test_polygon_distance_of_rectangles():
    """Apart: the true gap (edge to edge, or corner to edge for a turned one); overlapping or touching: 0."""
    a = rectangle_corners_xy([0.0, 0.0], 0.0, [0.2, 0.1])
    assert convex_polygon_distance_m(a, rectangle_corners_xy([0.3, 0.0], 0.0, [0.2, 0.1])) == pytest.approx(0.1)
    assert convex_polygon_distance_m(a, rectangle_corners_xy([0.3, 0.2], 0.0, [0.2, 0.1])) == \
        pytest.approx(np.hypot(0.1, 0.1))
    turned = rectangle_corners_xy([0.3, 0.0], np.pi / 4, [0.1, 0.1])  # a corner points at a
    assert convex_polygon_distance_m(a, turned) == pytest.approx(0.2 - 0.05 * np.sqrt(2.0))
    assert convex_polygon_distance_m(a, rectangle_corners_xy([0.15, 0.05], 0.3, [0.1, 0.1])) == 0.0
    assert convex_polygons_overlap(a, rectangle_corners_xy([0.2, 0.0], 0.0, [0.2, 0.1]))  # touching
    # Not separated on the world axes, yet apart: only an edge normal of the turned one shows it.
    diamond = rectangle_corners_xy([0.13, 0.08], np.pi / 4, [0.06, 0.06])
    assert diamond[:, 0].min() < 0.1 and diamond[:, 1].min() < 0.05
    assert not convex_polygons_overlap(a, diamond)
    assert convex_polygon_distance_m(a, diamond) == pytest.approx(0.06 / np.sqrt(2.0) - 0.03, abs=1e-12)


def test_crossbar_contact_interval_matches_the_polygon_distance():
    """The closed-form contact range agrees with the polygon distance: at its ends the crossbar is exactly the
    margin away, inside it closer, outside farther (random rectangles in the crossbar's frame)."""
    rng = np.random.default_rng(7)
    half, margin = 0.03, 0.015

    def bar(u: float) -> np.ndarray:
        return np.array([[u, -half], [u, half]])

    def gap(u: float, poly: np.ndarray) -> float:
        return convex_polygon_distance_m(np.vstack([bar(u), bar(u + 1e-12)[::-1]]), poly)

    checked = 0
    for _ in range(200):
        poly = rectangle_corners_xy(rng.uniform(-0.15, 0.15, 2), rng.uniform(-np.pi, np.pi), rng.uniform(0.01, 0.1, 2))
        contact = crossbar_contact_interval_m(poly, half, margin)
        if contact is None:
            assert all(gap(u, poly) > margin for u in np.linspace(-0.3, 0.3, 25))
            continue
        checked += 1
        lo, hi = contact
        assert gap(lo, poly) == pytest.approx(margin, abs=1e-9) and gap(hi, poly) == pytest.approx(margin, abs=1e-9)
        assert gap(0.5 * (lo + hi), poly) <= margin + 1e-12
        assert gap(lo - 1e-4, poly) > margin and gap(hi + 1e-4, poly) > margin
    assert checked > 50


# ---- choose_grasp with neighbours ----------------------------------------------------------------------
def test_lone_box_gets_the_full_opening_on_the_natural_axis(hand):
    """No neighbours, or only ones out of the fingers' way: today's grasp (natural axis, full opening)."""
    p = GraspParams()
    box = Pose(CENTRE, rotation_z(natural_box_yaw(hand)))
    alone = choose_grasp(hand, box, CUBE, p)
    far = [neighbour(natural_box_yaw(hand), 0.30), neighbour(natural_box_yaw(hand) + np.pi / 2, -0.30)]
    low = [(Pose(CENTRE + 0.12 * unit(natural_box_yaw(hand)) - [0, 0, 0.08], np.eye(3)), CUBE)]  # below the tips
    for grasp in (alone, choose_grasp(hand, box, CUBE, p, far), choose_grasp(hand, box, CUBE, p, low)):
        assert grasp.opening_m == pytest.approx(0.5 * 0.08 + p.finger_clearance_m)
        assert same_axis(closing_yaw(hand, grasp), hand.natural_grasp_yaw_rad)
        np.testing.assert_allclose(grasp.gripper_pose.position, alone.gripper_pose.position)


def test_neighbour_on_the_closing_axis_narrows_the_opening(hand):
    """A neighbour 0.13 m away along the only closing axis the box allows: the pad's outer face stays exactly
    the margin short of the neighbour's near face (0.13 - 0.04 - margin - pad thickness = 0.06 m)."""
    p = GraspParams()
    yaw = natural_box_yaw(hand)
    long_box = np.array([0.35, 0.08, 0.08])  # only the 0.08 m side fits the stroke: closes along the box's y axis
    box = Pose(CENTRE, rotation_z(yaw - np.pi / 2))
    obstacles = [neighbour(yaw, 0.13, yaw)]
    grasp = choose_grasp(hand, box, long_box, p, obstacles)
    assert same_axis(closing_yaw(hand, grasp), yaw)
    near_face_m = 0.13 - 0.04
    assert grasp.opening_m == pytest.approx(near_face_m - p.obstacle_margin_m - p.finger_pad_thickness_m)
    assert grasp.opening_m == pytest.approx(0.06)
    assert grasp.opening_m + p.finger_pad_thickness_m <= near_face_m - p.obstacle_margin_m + 1e-12
    assert pad_clearance(grasp, hand, obstacles, p) == pytest.approx(p.obstacle_margin_m)
    assert grasp.opening_m >= 0.5 * 0.08 + p.min_finger_clearance_m


def test_narrowed_natural_axis_is_kept(hand):
    """Neighbours 0.13 m away on both sides along the natural axis, none on the other: the fingers still close
    along the natural axis, opened less (0.06 m), rather than with the wrist turned by 90 deg."""
    p = GraspParams()
    yaw = natural_box_yaw(hand)
    box = Pose(CENTRE, rotation_z(yaw))
    obstacles = [neighbour(yaw, 0.13, yaw), neighbour(yaw, -0.13, yaw)]
    grasp = choose_grasp(hand, box, CUBE, p, obstacles)
    assert same_axis(closing_yaw(hand, grasp), yaw) and grasp.opening_m == pytest.approx(0.06)
    assert pad_clearance(grasp, hand, obstacles, p) == pytest.approx(p.obstacle_margin_m)


def test_blocked_natural_axis_switches_the_axis(hand):
    """Neighbours 0.11 m away on both sides along the natural axis (no room even at the smallest opening), none
    on the other: the fingers close across the other axis with the full opening."""
    p = GraspParams()
    yaw = natural_box_yaw(hand)
    box = Pose(CENTRE, rotation_z(yaw))
    obstacles = [neighbour(yaw, 0.11, yaw), neighbour(yaw, -0.11, yaw)]
    grasp = choose_grasp(hand, box, CUBE, p, obstacles)
    assert same_axis(closing_yaw(hand, grasp), yaw + np.pi / 2)
    assert grasp.opening_m == pytest.approx(0.04 + p.finger_clearance_m)
    assert pad_clearance(grasp, hand, obstacles, p) >= p.obstacle_margin_m


def test_crowded_on_both_axes_gives_the_reason(hand):
    """Neighbours 0.11 m away on both axes: even the smallest opening (0.045 m) brings a pad's outer face
    (0.06 m) within 0.01 m of a neighbour's face (0.07 m), less than the margin."""
    p = GraspParams()
    yaw = natural_box_yaw(hand)
    box = Pose(CENTRE, rotation_z(yaw))
    reason = choose_grasp(hand, box, CUBE, p, [neighbour(yaw, -0.11, yaw), neighbour(yaw + np.pi / 2, 0.11, yaw)])
    assert isinstance(reason, str) and reason.startswith(GRASP_BLOCKED)
    assert reason.count("a pad would pass 0.010 m from the box at") == 2
    assert f"needs {p.obstacle_margin_m:.3f} m" in reason
    # Too wide for the gripper stays a reason of its own (for good, not "blocked").
    wide = choose_grasp(hand, box, np.array([0.34, 0.33, 0.1]), p, [neighbour(yaw, 0.11, yaw)])
    assert "does not fit the gripper" in wide and not wide.startswith(GRASP_BLOCKED)


def test_turned_neighbour_is_kept_clear_by_its_corners(hand):
    """A neighbour turned by 20 deg reaches towards the box with a corner (0.04 (cos 20 + sin 20) = 0.051 m from
    its centre along the axis, within the pad's width): the opening keeps the margin from that corner, where the
    unturned footprint would have allowed 0.06 m."""
    p = GraspParams()
    yaw = natural_box_yaw(hand)
    long_box = np.array([0.35, 0.08, 0.08])
    box = Pose(CENTRE, rotation_z(yaw - np.pi / 2))
    turn = np.radians(20.0)
    obstacles = [neighbour(yaw, 0.13, yaw + turn)]
    grasp = choose_grasp(hand, box, long_box, p, obstacles)
    corner_m = 0.04 * (np.cos(turn) + np.sin(turn))
    assert grasp.opening_m == pytest.approx(0.13 - corner_m - p.obstacle_margin_m - p.finger_pad_thickness_m)
    assert grasp.opening_m < 0.06 - 0.01
    assert pad_clearance(grasp, hand, obstacles, p) == pytest.approx(p.obstacle_margin_m)
    # Moved sideways so that corner is beside the pad: the limit comes from the corner's distance to the pad's
    # outer edge (rounded), still exactly the margin.
    obstacles = [(Pose(obstacles[0][0].position + 0.05 * unit(yaw + np.pi / 2), obstacles[0][0].rotation), CUBE)]
    grasp = choose_grasp(hand, box, long_box, p, obstacles)
    assert pad_clearance(grasp, hand, obstacles, p) == pytest.approx(p.obstacle_margin_m)
    assert 0.045 < grasp.opening_m < 0.5 * 0.08 + p.finger_clearance_m
