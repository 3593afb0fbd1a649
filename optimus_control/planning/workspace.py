"""Where each hand can reach and how its gripper is built, derived from the robot model (no names in code).

The workspace is deliberately simple and conservative: a spherical shell around each shoulder for
the arm's last joint (the wrist), where the shoulder may move over a fraction of the trunk joints'
range (and down, if the controller may bend the knees), plus "in front of the torso" and "not far
across the body" limits taken in the turned torso's frame. A target is reachable if one sampled
trunk pose satisfies all of them. The whole-body controller
does the real inverse kinematics; this only keeps the planner from choosing hopeless targets and
gives a readable reason when a box is skipped.

Gripper geometry (from the kinematic tree): the approach axis is the direction from the wrist joint
to the gripper frame (the way the fingers point); the closing axis is the travel of the first finger.
For the Optimus URDF these are -z and +y of ``l_gripper``/``r_gripper``, so a top grasp has the
gripper frame's z axis pointing *up* and its y axis horizontal across the box.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pinocchio as pin

from optimus_control.errors import ModelError
from optimus_control.model import RobotModel
from optimus_control.model.settings_schema import setting
from optimus_control.planning.geometry import Pose


@dataclass(frozen=True)
class WorkspaceParams:
    """Reach limits; lengths [m], fractions of model quantities."""

    reach_fraction: float = setting(0.95, "", "reach: this fraction of the shoulder-to-wrist chain length (fully stretched)")
    min_reach_m: float = setting(0.18, "m", "closer than this to the shoulder the arm folds into the body")
    trunk_range_fraction: float = setting(0.8, "", "fraction of each trunk joint's range the controller may use to help reach")
    trunk_samples_per_joint: int = setting(5, "", "trunk poses sampled per trunk joint over that range (odd: includes 0)")
    base_drop_m: float = setting(0.0, "m", "how far the controller may lower the body (bent knees) to help reach")
    min_forward_m: float = setting(0.12, "m", "wrist at least this far in front of the torso (x of the turned torso)")
    max_cross_m: float = setting(0.12, "m", "wrist not further than this across the torso's sagittal plane")


@dataclass(frozen=True)
class HandGeometry:
    """One hand, all vectors from the model. Gripper-frame vectors are unit length unless said otherwise."""

    name: str
    gripper_frame: str
    approach_axis: np.ndarray  # (3,) gripper frame: the way the fingers point
    closing_axis: np.ndarray  # (3,) gripper frame: travel of the first finger (the grasp axis)
    wrist_offset_m: np.ndarray  # (3,) origin of the last arm joint, in the gripper frame [m]
    shoulder_centres_m: np.ndarray  # (k, 3) shoulder joint origins in base_link over sampled trunk poses [m]
    torso_origins_m: np.ndarray  # (k, 3) origin of the arm's branching joint (the torso) for the same poses [m]
    torso_rotations: np.ndarray  # (k, 3, 3) its orientation in base_link for the same poses
    chain_length_m: float  # shoulder to wrist joint, fully stretched [m]
    side_sign: float  # +1 if the shoulder is on base_link's +y side (left), -1 otherwise
    home_pose_base: Pose  # gripper frame in base_link in the standing posture
    natural_grasp_yaw_rad: float  # yaw of the closing axis in the home pose, about base_link z


@dataclass(frozen=True)
class ReachCheck:
    ok: bool
    reason: str = ""
    margin_m: float = 0.0  # > 0 inside the shell: distance to its nearest boundary


class ArmWorkspace:
    """Reachability of gripper targets for every hand of the robot config."""

    def __init__(self, robot: RobotModel, params: WorkspaceParams | None = None):
        self.params = params or WorkspaceParams()
        self.hands: dict[str, HandGeometry] = {h.name: _hand_geometry(robot, h, self.params) for h in robot.config.hands}

    def check(self, hand: str, gripper_pose_base: Pose) -> ReachCheck:
        """Can ``hand`` put its gripper frame at ``gripper_pose_base`` (a pose in base_link)?"""
        g, p = self.hands[hand], self.params
        wrist = gripper_pose_base.transform_point(g.wrist_offset_m)
        # The wrist in each sampled torso frame: x forward, y towards the hand's own side when side_sign > 0.
        local = np.einsum("kji,kj->ki", g.torso_rotations, wrist - g.torso_origins_m)  # (k, 3)
        forward = local[:, 0] - p.min_forward_m
        across = p.max_cross_m + g.side_sign * local[:, 1]
        r_max = p.reach_fraction * g.chain_length_m
        dist = np.linalg.norm(g.shoulder_centres_m - wrist, axis=1)
        reach = np.minimum(dist - p.min_reach_m, r_max - dist)
        margins = np.minimum(reach, np.minimum(forward, across))
        best = int(np.argmax(margins))
        if margins[best] >= 0.0:
            return ReachCheck(True, "", float(margins[best]))
        # Explain with the best pose's tightest limit.
        if forward[best] < 0.0 and forward[best] <= min(reach[best], across[best]):
            why = f"target is {local[best, 0]:.2f} m in front of the torso, needs >= {p.min_forward_m:.2f} m"
        elif across[best] < 0.0 and across[best] <= reach[best]:
            why = f"target is {-g.side_sign * local[best, 1]:.2f} m across the body, limit {p.max_cross_m:.2f} m"
        elif dist[best] > r_max:
            why = f"wrist would be {float(dist[best]):.2f} m from the shoulder, reach {r_max:.2f} m"
        else:
            why = f"wrist would be {float(dist[best]):.2f} m from the shoulder, closer than {p.min_reach_m:.2f} m"
        return ReachCheck(False, f"{hand} hand: {why}", float(margins[best]))

    def shoulder_distance_m(self, hand: str, point_base: np.ndarray) -> float:
        """Distance from the hand's nominal (trunk upright) shoulder to a point in base_link [m]."""
        return float(np.linalg.norm(self.hands[hand].shoulder_centres_m[0] - np.asarray(point_base)))


def _hand_geometry(robot: RobotModel, hand, params: WorkspaceParams) -> HandGeometry:
    model = robot.model
    frame = model.frames[robot.frame_id(hand.gripper_frame)]
    wrist_joint = frame.parentJoint
    placement = frame.placement  # gripper frame in the wrist joint frame
    wrist_offset = -placement.rotation.T @ placement.translation
    if np.linalg.norm(wrist_offset) < 1e-6:
        raise ModelError(f"hands.{hand.name}: gripper frame '{hand.gripper_frame}' sits on its joint; "
                         "cannot infer the approach direction of the fingers")
    approach = -wrist_offset / np.linalg.norm(wrist_offset)

    children: dict[int, int] = {}
    for j in range(1, model.njoints):
        children[model.parents[j]] = children.get(model.parents[j], 0) + 1
    path = [wrist_joint]  # wrist ... shoulder (joint below the first branching ancestor)
    while model.parents[path[-1]] > 1 and children.get(model.parents[path[-1]], 0) < 2:
        path.append(model.parents[path[-1]])
    shoulder = path[-1]
    trunk = []
    j = model.parents[shoulder]
    while j > 1:  # joints between the base (free flyer = 1) and the shoulder
        trunk.append(j)
        j = model.parents[j]
    chain = float(sum(np.linalg.norm(model.jointPlacements[k].translation) for k in path[:-1]))

    q0 = robot.standing_configuration()
    q0[:7] = pin.neutral(model)[:7]  # base at the origin: world == base_link
    data = model.createData()
    n = max(1, params.trunk_samples_per_joint)
    ranges = []
    for k in trunk:
        iq = model.idx_qs[k]
        lo, hi = model.lowerPositionLimit[iq], model.upperPositionLimit[iq]
        f = params.trunk_range_fraction
        spread = np.linspace(q0[iq] + f * (lo - q0[iq]), q0[iq] + f * (hi - q0[iq]), n)
        values = np.unique(np.round(np.concatenate([[q0[iq]], spread]), 9))
        ranges.append(sorted(values, key=lambda v, c=q0[iq]: (abs(v - c), v)))  # the upright pose first
    centres, origins, rotations = [], [], []
    drops = [0.0] if params.base_drop_m <= 0.0 else [0.0, params.base_drop_m]
    for drop in drops:
        for values in itertools.product(*ranges) if ranges else [()]:
            q = q0.copy()
            for k, v in zip(trunk, values):
                q[model.idx_qs[k]] = v
            pin.forwardKinematics(model, data, q)
            down = np.array([0.0, 0.0, drop])
            centres.append(data.oMi[shoulder].translation - down)
            branch = model.parents[shoulder]
            origins.append(data.oMi[branch].translation - down)
            rotations.append(data.oMi[branch].rotation.copy())

    pin.framesForwardKinematics(model, data, q0)
    base = data.oMf[robot.frame_id(robot.config.base_frame)]
    home = base.actInv(data.oMf[robot.frame_id(hand.gripper_frame)])
    closing = _finger_direction(robot, hand, q0)
    home_closing = home.rotation @ closing
    return HandGeometry(
        name=hand.name, gripper_frame=hand.gripper_frame, approach_axis=approach, closing_axis=closing,
        wrist_offset_m=wrist_offset, shoulder_centres_m=np.array(centres), torso_origins_m=np.array(origins),
        torso_rotations=np.array(rotations), chain_length_m=chain,
        side_sign=1.0 if centres[0][1] >= 0.0 else -1.0,
        home_pose_base=Pose(home.translation.copy(), home.rotation.copy()),
        natural_grasp_yaw_rad=float(np.arctan2(home_closing[1], home_closing[0])),
    )


def _finger_direction(robot: RobotModel, hand, q0: np.ndarray) -> np.ndarray:
    """Opening direction of the hand's first finger joint, in the gripper frame."""
    model, data = robot.model, robot.model.createData()
    joint = model.getJointId(hand.gripper_joints[0])
    iq = model.idx_qs[joint]
    positions = []
    for delta in (0.0, 0.01):
        q = q0.copy()
        q[iq] = model.lowerPositionLimit[iq] + delta
        pin.framesForwardKinematics(model, data, q)
        grip = data.oMf[robot.frame_id(hand.gripper_frame)]
        positions.append(grip.actInv(data.oMi[joint].translation))
    d = positions[1] - positions[0]
    if np.linalg.norm(d) < 1e-6:
        raise ModelError(f"hands.{hand.name}: finger joint '{hand.gripper_joints[0]}' does not move its finger")
    return d / np.linalg.norm(d)


def top_grasp_rotation(hand: HandGeometry, grasp_axis_yaw_rad: float) -> np.ndarray:
    """Gripper orientation (3, 3) with the fingers pointing down and the closing axis at the given yaw."""
    a_g, c_g = hand.approach_axis, hand.closing_axis
    g = np.column_stack([a_g, c_g, np.cross(a_g, c_g)])
    a_w = np.array([0.0, 0.0, -1.0])
    c_w = np.array([np.cos(grasp_axis_yaw_rad), np.sin(grasp_axis_yaw_rad), 0.0])
    w = np.column_stack([a_w, c_w, np.cross(a_w, c_w)])
    return w @ g.T
