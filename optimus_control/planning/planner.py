"""Job + perceived world -> the next pick-and-place: which box, which hand, which poses.

Called again after every scan, so a moved box, a dropped one or a newly seen one is planned from
where it is now (replanning is "plan from the latest belief", not patching an old plan). A box no
hand can pick and place is skipped with the reason; boxes are taken nearest first (or by the
job's class order, nearest within a class). A box whose neighbours leave no room for the open fingers
waits (stays pending) while other boxes are picked, since taking those away may free it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from optimus_control.planning.geometry import Pose
from optimus_control.planning.grasp import GRASP_BLOCKED, GraspParams, choose_grasp, drop_points, place_poses
from optimus_control.planning.job_spec import ORDER_NEAREST, JobSpec
from optimus_control.planning.workspace import ArmWorkspace
from optimus_control.planning.world_model import PENDING, SKIPPED, SORTED, BoxRecord, WorldModel

BIN_NOT_LOCATED = "bin not located"
CROSS_BODY_COST_PER_M = 2.0  # plan cost per metre a hand works across the pelvis' sagittal plane


@dataclass(frozen=True)
class PickPlan:
    """Everything the skills need for one box; poses are gripper-frame targets in odom."""

    box_id: int
    hand: str
    bin: str
    opening_m: float
    pregrasp: Pose
    grasp: Pose
    lift: Pose
    carry: Pose
    place: Pose
    retreat: Pose
    home: Pose
    held_offset_m: np.ndarray  # box centre minus gripper position while held [m]
    box_position_m: np.ndarray  # where the box was when planned [m]
    cost: float
    drop_xy_m: np.ndarray  # where over the bin the box is released (odom xy) [m]


@dataclass
class PlanDecision:
    plan: PickPlan | None = None
    skipped: list[tuple[int, str]] = field(default_factory=list)  # boxes newly skipped, with reasons
    blocked: list[tuple[int, str]] = field(default_factory=list)  # boxes left pending for now: neighbours in the way
    done: bool = False  # nothing the job still needs is pickable


class Planner:
    def __init__(self, job: JobSpec, workspace: ArmWorkspace, params: GraspParams | None = None):
        self.job = job
        self.workspace = workspace
        self.params = params or GraspParams()

    def rest_pose(self, hand: str, base_pose: Pose) -> Pose:
        """Gripper target (odom) where ``hand`` waits between picks: off the table, out of the camera's view."""
        geom = self.workspace.hands[hand]
        dx, dy, dz = self.params.rest_offset_m
        return base_pose.compose(geom.home_pose_base.translated([dx, geom.side_sign * dy, dz]))

    def needed(self, world: WorldModel, box: BoxRecord) -> bool:
        """Does the job still want this box moved (class in the goal, count not yet met)?"""
        rule = self.job.rule_for(box.object_class)
        if rule is None:
            return False
        if rule.count is None:
            return True
        done = sum(1 for b in world.boxes.values() if b.object_class == box.object_class and b.outcome == SORTED)
        return done < rule.count

    def next_pick(self, world: WorldModel, base_pose: Pose) -> PlanDecision:
        """Plan the best next box; boxes that cannot be done are marked skipped (with reasons) on the way.

        A box whose neighbours leave the open fingers no room (:data:`GRASP_BLOCKED`) is no candidate this
        time but stays pending: picking the others first may free it. Only when no box at all can be planned
        are the blocked ones skipped, with the reason, and the decision done. They are not grasped anyway
        with the fingers set down on or against a neighbour: that is the collision the margin is there to
        avoid (in the sorting cell it tipped the robot and lost the whole episode, not one box). A skipped
        blocked box is considered again once its neighbours no longer block it (or it moved).
        """
        decision = PlanDecision()
        for box in world.boxes.values():  # a bin that turned up makes its boxes possible again
            if box.outcome == SKIPPED and box.reason.startswith(BIN_NOT_LOCATED):
                rule = self.job.rule_for(box.object_class)
                if rule is not None and world.bins[rule.bin].pose is not None:
                    box.outcome, box.reason = PENDING, ""
            elif box.outcome == SKIPPED and box.reason.startswith(GRASP_BLOCKED) and box.visible and \
                    not self.blocked_by_neighbours(world, box):
                box.outcome, box.reason, box.skipped_at_m = PENDING, "", None
                box.events.append("its neighbours no longer block the fingers: considered again")
        candidates: list[tuple[tuple, PickPlan]] = []
        blocked: list[tuple[BoxRecord, str]] = []
        for box in world.pending():
            if not box.visible or box.held or not self.needed(world, box):
                continue
            inside = world.bin_containing(box.position_m)
            if inside is not None:  # e.g. dropped on the way: boxes are not picked out of bins
                if inside == box.bin:
                    box.outcome, box.reason = SORTED, f"landed in {inside} (not released there by the planner)"
                else:
                    box.outcome, box.reason = SKIPPED, f"in the wrong bin '{inside}': boxes are not picked out of bins"
                    decision.skipped.append((box.box_id, box.reason))
                box.events.append(box.reason)
                continue
            plan, reason = self.plan_for_box(world, box, base_pose)
            if plan is None and reason.startswith(GRASP_BLOCKED):
                blocked.append((box, reason))
            elif plan is None:
                self._skip(box, reason, decision)
            else:
                candidates.append((self._order_key(box, plan), plan))
        decision.blocked = [(box.box_id, reason) for box, reason in blocked]
        if candidates:
            decision.plan = min(candidates, key=lambda c: c[0])[1]
        else:  # nothing will move the blocking boxes away
            for box, reason in blocked:
                self._skip(box, reason, decision)
            decision.done = True
        return decision

    @staticmethod
    def _skip(box: BoxRecord, reason: str, decision: PlanDecision) -> None:
        box.outcome, box.reason, box.skipped_at_m = SKIPPED, reason, box.position_m.copy()
        box.events.append(f"skipped: {reason}")
        decision.skipped.append((box.box_id, reason))

    def neighbours(self, world: WorldModel, box: BoxRecord) -> list[tuple[Pose, np.ndarray]]:
        """(Pose, size) of the other boxes whose footprint an open finger pad could reach at ``box``.

        Every box standing there counts, whatever its outcome (a skipped or failed box is still in the way);
        not those out of sight (where they are is not known now), in a gripper, or in a bin. The radius is
        the farthest a pad reaches at full stroke plus the margin, so no box that matters is left out.
        """
        p = self.params
        reach_m = p.max_finger_opening_m + p.finger_pad_thickness_m + 0.5 * p.finger_pad_width_m + p.obstacle_margin_m
        out = []
        for other in world.boxes.values():
            if other.box_id == box.box_id or not other.visible or other.held:
                continue
            gap_m = float(np.linalg.norm(other.position_m[:2] - box.position_m[:2])) - \
                0.5 * float(np.hypot(other.size_m[0], other.size_m[1]))
            if gap_m <= reach_m and world.bin_containing(other.position_m) is None:
                out.append((other.pose, other.size_m))
        return out

    def blocked_by_neighbours(self, world: WorldModel, box: BoxRecord) -> bool:
        """Do the other boxes leave no room for the open fingers at ``box`` (on either closing axis)?"""
        hand = next(iter(self.workspace.hands.values()))  # the same gripper on both hands
        grasp = choose_grasp(hand, box.pose, box.size_m, self.params, self.neighbours(world, box))
        return isinstance(grasp, str) and grasp.startswith(GRASP_BLOCKED)

    def _order_key(self, box: BoxRecord, plan: PickPlan) -> tuple:
        order = self.job.constraints.order
        rank = 0 if order == ORDER_NEAREST else order.index(box.object_class) if box.object_class in order else len(order)
        return (rank, round(plan.cost, 6), box.box_id)

    def plan_for_box(self, world: WorldModel, box: BoxRecord, base_pose: Pose) -> tuple[PickPlan | None, str]:
        """Best hand and poses for one box, or (None, reason); a reason starting with :data:`GRASP_BLOCKED`:
        other boxes are in the way of the open fingers for now (see :meth:`next_pick`)."""
        rule = self.job.rule_for(box.object_class)
        if rule is None:
            return None, f"class '{box.object_class}' is not part of the job"
        target = world.bins[rule.bin]
        if target.pose is None:
            return None, f"{BIN_NOT_LOCATED}: '{rule.bin}' has not been seen by perception and has no fixed pose"
        footprint = max(box.size_m[0], box.size_m[1])
        if footprint > min(target.size_m[0], target.size_m[1]):
            return None, f"box ({footprint:.2f} m) is larger than the opening of bin '{rule.bin}'"
        to_base = base_pose.inverse()
        best: tuple[float, PickPlan] | None = None
        reasons = []
        obstacles = self.neighbours(world, box)
        for hand, geom in self.workspace.hands.items():
            grasp = choose_grasp(geom, box.pose, box.size_m, self.params, obstacles)
            if isinstance(grasp, str):
                return None, grasp  # the same gripper on both hands
            p = self.params
            pregrasp = grasp.gripper_pose.translated([0.0, 0.0, p.approach_height_m])
            lift = grasp.gripper_pose.translated([0.0, 0.0, p.lift_height_m])
            failed, margin = self._check(hand, to_base, {"pre-grasp": pregrasp, "grasp": grasp.gripper_pose, "lift": lift})
            if failed is None:
                # The best drop point this hand reaches (the carry, place and retreat poses depend on it).
                for drop_xy in drop_points(box.size_m, target.pose, target.size_m, base_pose.position[:2],
                                           target.drops_xy_m, p):
                    placing = place_poses(grasp, box.size_m, drop_xy, target.rim_height_m, lift.position[2], p,
                                          base_pose.position[:2])
                    failed, place_margin = self._check(hand, to_base, {
                        "carry": placing.carry, "place": placing.place, "retreat": placing.retreat})
                    if failed is None:
                        margin = min(margin, place_margin)
                        break
            if failed:
                reasons.append(failed)
                continue
            wrist_base = to_base.compose(grasp.gripper_pose).transform_point(geom.wrist_offset_m)
            # Reaching across the body is where the arm runs out of wrist (and sweeps past other boxes): a
            # hand works across the midline only when the hand on that side cannot do the job.
            across_m = max(0.0, *(-geom.side_sign * to_base.compose(pose).position[1]
                                  for pose in (grasp.gripper_pose, placing.place)))
            cost = self.workspace.shoulder_distance_m(hand, wrist_base) - 0.5 * margin + CROSS_BODY_COST_PER_M * across_m
            plan = PickPlan(box.box_id, hand, rule.bin, grasp.opening_m, pregrasp, grasp.gripper_pose, lift,
                            placing.carry, placing.place, placing.retreat, self.rest_pose(hand, base_pose),
                            grasp.held_offset_m, box.position_m.copy(), cost, np.asarray(drop_xy, dtype=float))
            if best is None or cost < best[0]:
                best = (cost, plan)
        if best is None:
            return None, "unreachable: " + "; ".join(reasons)
        return best[1], ""

    def _check(self, hand: str, to_base: Pose, poses: dict[str, Pose]) -> tuple[str | None, float]:
        """(why the hand cannot take one of the poses (odom) or None, smallest workspace margin [m])."""
        margin = np.inf
        for name, pose in poses.items():
            check = self.workspace.check(hand, to_base.compose(pose))
            if not check.ok:
                return f"{name}: {check.reason}", margin
            margin = min(margin, check.margin_m)
        return None, margin
