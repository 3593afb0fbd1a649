"""Grasp, carry and place poses for a top grasp of an upright box with a parallel gripper.

The fingers come down from above (approach axis vertical), close across one horizontal axis of the
box, and grip the upper part of its sides. The box hangs below the gripper while carried and is
released a little above the bin rim, centred over the bin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimus_control.planning.geometry import Pose, rotation_z, wrap_angle, wrap_half_turn
from optimus_control.planning.workspace import HandGeometry, top_grasp_rotation


@dataclass(frozen=True)
class GraspParams:
    """Distances [m]; the defaults suit boxes up to 0.31 m across and the Optimus gripper (0.16 m per finger)."""

    max_finger_opening_m: float = 0.16  # per finger (config gripper.open_position)
    finger_clearance_m: float = 0.04  # extra opening per finger beyond half the box width, when the stroke allows
    min_finger_clearance_m: float = 0.005  # ... and at least this (else the box does not fit)
    min_grasp_width_m: float = 0.02
    grasp_depth_m: float = 0.06  # fingertips this far below the box top ...
    grasp_depth_fraction: float = 0.6  # ... but no deeper than this fraction of the box height
    fingertip_below_gripper_m: float = 0.04  # fingertips are this far past the gripper frame along the approach
    approach_height_m: float = 0.10  # pre-grasp: this far above the grasp
    lift_height_m: float = 0.20
    place_clearance_m: float = 0.05  # box bottom above the bin rim at release
    carry_clearance_m: float = 0.10  # box bottom above the rim while moving over to the bin
    retreat_height_m: float = 0.12  # up from the release, but no higher than the carry
    # Rest pose of a hand between picks: the standing hand pose moved by this (base_link x back, y outwards
    # for the hand's side, z up) so the hands are off the table and out of the camera's view of it; at the
    # standing height the fingertips stay above the boxes while the hand moves to and from it.
    # > 0: release this far inside the bin's near edge (towards the robot) rather than over its centre, so
    # the arm stretches less sideways with the box; <= 0 (default): over the bin centre.
    place_edge_margin_m: float = 0.0
    # True: while carrying, the hand turns about the vertical by the change of the box's bearing seen from the
    # robot (pick -> drop), so the wrist keeps its pose relative to the swinging arm instead of twisting
    # against it (a held box's yaw does not matter in a bin).
    carry_yaw_follows_arm: bool = True
    rest_offset_m: tuple[float, float, float] = (-0.15, 0.10, 0.0)


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


def choose_grasp(hand: HandGeometry, box_pose: Pose, box_size_m: np.ndarray, p: GraspParams) -> GraspChoice | str:
    """Top grasp of a box (pose of its centre in odom, upright), or the reason none fits."""
    yaw = box_pose.yaw_rad
    options = []
    for axis_yaw, width in ((yaw, box_size_m[0]), (yaw + np.pi / 2.0, box_size_m[1])):
        if width < p.min_grasp_width_m or 0.5 * width + p.min_finger_clearance_m > p.max_finger_opening_m:
            continue
        opening = min(p.max_finger_opening_m, 0.5 * width + p.finger_clearance_m)
        psi = hand.natural_grasp_yaw_rad + wrap_half_turn(axis_yaw - hand.natural_grasp_yaw_rad)
        options.append((abs(psi - hand.natural_grasp_yaw_rad), width, psi, opening))
    if not options:
        widest = 2.0 * (p.max_finger_opening_m - p.min_finger_clearance_m)
        return (f"box {box_size_m[0]:.2f} x {box_size_m[1]:.2f} m does not fit the gripper on either horizontal axis "
                f"(widths {p.min_grasp_width_m:.2f}-{widest:.2f} m)")
    _, width, psi, opening = min(options)
    height = float(box_size_m[2])
    top = box_pose.position[2] + 0.5 * height
    depth = min(p.grasp_depth_m, p.grasp_depth_fraction * height)
    position = np.array([box_pose.position[0], box_pose.position[1], top - depth + p.fingertip_below_gripper_m])
    gripper = Pose(position, top_grasp_rotation(hand, psi))
    return GraspChoice(gripper, float(opening), float(width), box_pose.position - position)


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
