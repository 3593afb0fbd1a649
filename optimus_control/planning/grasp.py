"""Grasp, carry and place poses for a top grasp of an upright box with a parallel gripper.

The fingers come down from above (approach axis vertical), close across one horizontal axis of the
box, and grip the upper part of its sides. The box hangs below the gripper while carried and is
released a little above the bin rim, centred over the bin. The open fingers come down beside the box,
so other boxes standing close to it limit how far they may open (:func:`choose_grasp`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from optimus_control.model.settings_schema import setting
from optimus_control.planning.geometry import (
    Pose,
    convex_polygon_distance_m,
    crossbar_contact_interval_m,
    rectangle_corners_xy,
    rotation_z,
    wrap_angle,
    wrap_half_turn,
)
from optimus_control.planning.workspace import HandGeometry, top_grasp_rotation


@dataclass(frozen=True)
class GraspParams:
    """Distances [m]; the defaults suit boxes up to 0.31 m across and the Optimus gripper (0.16 m per finger)."""

    max_finger_opening_m: float = setting(
        0.16, "m",
        "per finger; the node takes it from the robot config (gripper.open_position)", parameter=False)
    finger_clearance_m: float = setting(
        0.04, "m",
        "extra opening per finger beyond half the box width, when the stroke allows")
    min_finger_clearance_m: float = setting(0.005, "m", "... and at least this (else the box does not fit)")
    # Finger pads (URDF finger links): across the closing axis, and outwards from the inner face (which sits at
    # the opening). Open to 0.08 m by a 0.08 m box, a pad's outer face is 0.095 m out: on a neighbour 0.13 m away.
    finger_pad_width_m: float = setting(0.06, "m", "finger pad size across the closing axis")
    finger_pad_thickness_m: float = setting(0.015, "m", "finger pad size outwards from its inner face")
    # The pads' path stays this far from other boxes' footprints (perception and hand tracking error); the
    # opening shrinks towards min_finger_clearance_m to keep it, and a box that cannot keep it waits.
    obstacle_margin_m: float = setting(0.015, "m", "the open pads' path stays this far from neighbouring boxes")
    min_grasp_width_m: float = setting(0.02, "m", "narrower boxes are not grasped")
    grasp_depth_m: float = setting(0.06, "m", "fingertips this far below the box top ...")
    grasp_depth_fraction: float = setting(0.6, "", "... but no deeper than this fraction of the box height")
    fingertip_below_gripper_m: float = setting(
        0.04, "m",
        "fingertips are this far past the gripper frame along the approach")
    approach_height_m: float = setting(0.10, "m", "pre-grasp: this far above the grasp")
    lift_height_m: float = setting(0.15, "m", "lift after the grasp (> perception's held_object_radius_m)")
    place_clearance_m: float = setting(0.05, "m", "box bottom above the bin rim at release")
    carry_clearance_m: float = setting(0.10, "m", "box bottom above the rim while moving over to the bin")
    retreat_height_m: float = setting(0.12, "m", "up from the release, but no higher than the carry")
    # Rest pose of a hand between picks: the standing hand pose moved by this (base_link x back, y outwards
    # for the hand's side, z up) so the hands are off the table and out of the camera's view of it; at the
    # standing height the fingertips stay above the boxes while the hand moves to and from it.
    # Release spots spread over the bin this far inside its walls, the free spot nearest the robot first (a
    # shorter, less sideways reach; no stacking).
    place_edge_margin_m: float = setting(
        0.02, "m",
        "> 0: release spots spread over the bin this far inside its walls; <= 0: over the bin centre")
    # True: while carrying, the hand turns about the vertical by the change of the box's bearing seen from the
    # robot (pick -> drop), so the wrist keeps its pose relative to the swinging arm instead of twisting
    # against it (a held box's yaw does not matter in a bin).
    carry_yaw_follows_arm: bool = setting(
        True, "",
        "while carrying, the hand turns with the box's bearing from the robot")
    rest_offset_m: tuple[float, float, float] = setting(
        (-0.15, 0.10, 0.0), "m",
        "hand rest pose between picks: the standing hand pose moved by this (x back, y outwards, z up)")


@dataclass(frozen=True)
class GraspChoice:
    gripper_pose: Pose  # gripper frame at the grasp, odom
    opening_m: float  # per-finger opening for the approach [m]
    width_m: float  # box extent along the closing axis [m]
    held_offset_m: np.ndarray  # box centre minus gripper position while held (odom axes) [m]


@dataclass(frozen=True)
class PlacePoses:
    carry: Pose
    place: Pose
    retreat: Pose


GRASP_BLOCKED = "blocked by neighbouring boxes"  # reason prefix: fits the gripper, other boxes in the way


def choose_grasp(hand: HandGeometry, box_pose: Pose, box_size_m: np.ndarray, p: GraspParams,
                 obstacles: Sequence[tuple[Pose, np.ndarray]] = ()) -> GraspChoice | str:
    """Top grasp of a box (pose of its centre in odom, upright), or the reason none fits.

    ``obstacles``: (pose of the centre in odom, size xyz [m]) of other upright boxes standing near it. The
    fingers open ``finger_clearance_m`` beyond the box sides (within the stroke) unless a pad would then come
    down within ``obstacle_margin_m`` of an obstacle's footprint; then only as far as keeps the margin, but at
    least ``min_finger_clearance_m``: a pad set down on a neighbour presses on it hard enough to tip the
    robot. Of the two horizontal closing axes, one that cannot keep the margin even at the smallest opening
    is out; of the others, the one needing the least wrist twist from the hand's natural grasp yaw wins, then
    the wider opening: the other axis is up to 90 deg of wrist turn away, which the arm may not reach over the
    sorting cell's lanes, so it is taken only when the natural one is blocked.
    A reason starting with :data:`GRASP_BLOCKED` means the box fits the gripper but neighbours are in the way
    (it may be free once they are gone); others are for good.
    """
    yaw = box_pose.yaw_rad
    height = float(box_size_m[2])
    top = box_pose.position[2] + 0.5 * height
    depth = min(p.grasp_depth_m, p.grasp_depth_fraction * height)
    centre_xy = np.asarray(box_pose.position[:2], dtype=float)
    # An obstacle whose top is below the fingertips at the grasp is passed over.
    near = [(pose, size) for pose, size in obstacles if pose.position[2] + 0.5 * float(size[2]) > top - depth]
    footprints = [rectangle_corners_xy(pose.position, pose.yaw_rad, size) for pose, size in near]
    options, blocked = [], []
    for axis_yaw, width in ((yaw, float(box_size_m[0])), (yaw + np.pi / 2.0, float(box_size_m[1]))):
        smallest = 0.5 * width + p.min_finger_clearance_m
        if width < p.min_grasp_width_m or smallest > p.max_finger_opening_m:
            continue
        wanted = min(p.max_finger_opening_m, 0.5 * width + p.finger_clearance_m)
        opening = min(wanted, opening_limit_m(centre_xy, axis_yaw, 0.5 * width, footprints, p))
        if opening < smallest:
            clearance, nearest = pad_clearance_m(centre_xy, axis_yaw, 0.5 * width, smallest, footprints, p)
            at = np.round(near[nearest][0].position[:2], 3).tolist()
            blocked.append(f"closing at yaw {np.degrees(wrap_half_turn(axis_yaw)):.0f} deg (across the {width:.2f} m "
                           f"side), a pad would pass {clearance:.3f} m from the box at {at} m")
            continue
        psi = hand.natural_grasp_yaw_rad + wrap_half_turn(axis_yaw - hand.natural_grasp_yaw_rad)
        options.append((abs(psi - hand.natural_grasp_yaw_rad), -opening, width, psi, opening))
    if not options and blocked:
        return (f"{GRASP_BLOCKED}: even at the smallest opening, " + "; ".join(blocked) +
                f" (needs {p.obstacle_margin_m:.3f} m)")
    if not options:
        widest = 2.0 * (p.max_finger_opening_m - p.min_finger_clearance_m)
        return (f"box {box_size_m[0]:.2f} x {box_size_m[1]:.2f} m does not fit the gripper on either horizontal axis "
                f"(widths {p.min_grasp_width_m:.2f}-{widest:.2f} m)")
    _, _, width, psi, opening = min(options)
    position = np.array([box_pose.position[0], box_pose.position[1], top - depth + p.fingertip_below_gripper_m])
    gripper = Pose(position, top_grasp_rotation(hand, psi))
    return GraspChoice(gripper, float(opening), float(width), box_pose.position - position)


def pad_paths_xy(centre_xy: np.ndarray, axis_yaw_rad: float, inner_m: float, outer_m: float,
                 p: GraspParams) -> list[np.ndarray]:
    """Footprints (4, 2) in odom xy of the space each of the two finger pads passes through.

    A pad comes straight down at the opening and then closes in to the box side, so its path spans
    ``inner_m`` (the box side) to ``outer_m`` (the open pad's outer face) from the grasp centre along the
    closing axis, half the pad width either side of it. Taking the closing stroke in as well means a box
    between the open finger and the grasped one counts as in the way, as it is. Used to say how close a
    blocked pad would come (:func:`pad_clearance_m`); :func:`opening_limit_m` finds the limit in closed form.
    """
    u = np.array([np.cos(axis_yaw_rad), np.sin(axis_yaw_rad)])
    v = np.array([-u[1], u[0]])
    half = 0.5 * p.finger_pad_width_m
    return [np.array([centre_xy + s * inner_m * u - half * v, centre_xy + s * outer_m * u - half * v,
                      centre_xy + s * outer_m * u + half * v, centre_xy + s * inner_m * u + half * v])
            for s in (1.0, -1.0)]


def pad_clearance_m(centre_xy: np.ndarray, axis_yaw_rad: float, half_width_m: float, opening_m: float,
                    footprints: list[np.ndarray], p: GraspParams) -> tuple[float, int]:
    """(Smallest distance [m] between the pads' paths at this per-finger opening and the footprints, index of
    the nearest footprint); (inf, -1) without footprints."""
    paths = pad_paths_xy(centre_xy, axis_yaw_rad, half_width_m, opening_m + p.finger_pad_thickness_m, p)
    best = (np.inf, -1)
    for i, footprint in enumerate(footprints):
        best = min(best, (min(convex_polygon_distance_m(path, footprint) for path in paths), i))
    return best


def opening_limit_m(centre_xy: np.ndarray, axis_yaw_rad: float, half_width_m: float,
                    footprints: list[np.ndarray], p: GraspParams) -> float:
    """Largest per-finger opening [m] at which both pads' paths (:func:`pad_paths_xy`) keep ``obstacle_margin_m``
    from every footprint; inf if none is near, below ``half_width_m`` if one is in the way even closed.

    A path's outer end, the open pad's outer face, moves out along the closing axis as the fingers open, so the
    limit is where that face first comes within the margin of a footprint (exact, see
    :func:`crossbar_contact_interval_m`); a footprint it would reach only past the box side (behind the pad's
    path) or never does not limit it.
    """
    limit = np.inf
    c, s = np.cos(axis_yaw_rad), np.sin(axis_yaw_rad)
    for side in (1.0, -1.0):
        frame = np.array([[side * c, side * s], [-s, c]])  # rows: out along the closing axis, across it
        for footprint in footprints:
            contact = crossbar_contact_interval_m((footprint - centre_xy) @ frame.T, 0.5 * p.finger_pad_width_m,
                                                  p.obstacle_margin_m)
            if contact is not None and contact[1] >= half_width_m:
                limit = min(limit, max(contact[0], half_width_m) - p.finger_pad_thickness_m)
    return float(limit)


def drop_points(box_size_m: np.ndarray, bin_pose: Pose, bin_size_m: np.ndarray | None, robot_xy_m: np.ndarray | None,
                occupied_xy_m: list[np.ndarray], p: GraspParams) -> list[np.ndarray]:
    """Where over the bin to release the box (odom xy), best first.

    Without ``place_edge_margin_m`` (or the bin size or robot position): the bin centre. Otherwise the
    spots of a 3 x 3 grid over the part of the footprint that keeps the box ``place_edge_margin_m`` inside
    the walls and is not farther from the robot than the bin centre, ranked by how much a box dropped there
    would land on the boxes dropped before (footprint overlap, in box areas: a bin filled at one spot stacks
    its boxes above the rim), then by distance from the robot. The far half is left out: reaching over it
    stretches the arm towards its straight singularity, and letting go of the box there whipped the arm out
    and tipped the robot.
    """
    centre = np.asarray(bin_pose.position[:2], dtype=float).copy()
    if bin_size_m is None or robot_xy_m is None or p.place_edge_margin_m <= 0.0:
        return [centre]
    half_box = 0.5 * float(np.hypot(box_size_m[0], box_size_m[1]))
    room = np.maximum(0.5 * np.asarray(bin_size_m[:2], dtype=float) - half_box - p.place_edge_margin_m, 0.0)
    spots = sorted({(round(float(i * room[0]), 6), round(float(j * room[1]), 6)) for i in (-1, 0, 1) for j in (-1, 0, 1)})
    robot = np.asarray(robot_xy_m, dtype=float)[:2]
    reach_limit = float(np.linalg.norm(centre - robot)) + 1e-6
    points = [pt for pt in (bin_pose.transform_point([x, y, 0.0])[:2] for x, y in spots)
              if np.linalg.norm(pt - robot) <= reach_limit]
    side = float(max(box_size_m[0], box_size_m[1]))  # a dropped box may land turned: its footprint, squared

    def rank(point: np.ndarray) -> tuple[float, float]:
        overlap = sum(float(np.prod(np.maximum(side - np.abs(np.asarray(o)[:2] - point), 0.0))) for o in occupied_xy_m)
        return round(overlap / side**2, 2), round(float(np.linalg.norm(point - robot)), 6)

    return sorted(points, key=rank)


def place_poses(grasp: GraspChoice, box_size_m: np.ndarray, drop_xy_m: np.ndarray, rim_height_m: float,
                lift_z_m: float, p: GraspParams, robot_xy_m: np.ndarray | None = None) -> PlacePoses:
    """Gripper poses to carry the held box over its drop point (see :func:`drop_points`), lower it and
    retreat upwards (to the carry height at most)."""
    hang = -grasp.held_offset_m[2] + 0.5 * float(box_size_m[2])  # gripper height above the box bottom
    drop = np.asarray(drop_xy_m, dtype=float)[:2]
    rot, offset_xy = grasp.gripper_pose.rotation, grasp.held_offset_m[:2]
    if p.carry_yaw_follows_arm and robot_xy_m is not None:
        pick_xy = grasp.gripper_pose.position[:2] - np.asarray(robot_xy_m)[:2]
        drop_xy = drop - np.asarray(robot_xy_m)[:2]
        turn = wrap_angle(np.arctan2(drop_xy[1], drop_xy[0]) - np.arctan2(pick_xy[1], pick_xy[0]))
        rot = rotation_z(turn) @ rot
        offset_xy = rotation_z(turn)[:2, :2] @ offset_xy
    xy = drop - offset_xy
    place_z = rim_height_m + p.place_clearance_m + hang
    carry_z = max(lift_z_m, rim_height_m + p.carry_clearance_m + hang)
    place_z = min(place_z, carry_z)
    # Up out of the bin no higher than the carry: the arm has just been there with this hand orientation.
    # Higher, with the arm out to the side over a bin, it reached its limits and was thrown upwards.
    retreat_z = min(place_z + p.retreat_height_m, carry_z)
    return PlacePoses(carry=Pose(np.array([xy[0], xy[1], carry_z]), rot),
                      place=Pose(np.array([xy[0], xy[1], place_z]), rot),
                      retreat=Pose(np.array([xy[0], xy[1], retreat_z]), rot))
