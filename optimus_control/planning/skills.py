"""The skills of a pick-and-place cycle as py_trees behaviours.

Each skill sends its goal in ``initialise()`` (entry), and in ``update()`` (non-blocking, every tick)
checks completion from the controller status and, where it matters, from perception: a grasp counts
only when the box is seen hanging under the hand, a carried box seen away from the hand is dropped.
Failures leave a :class:`~optimus_control.planning.context.Failure` in the context for the recovery
branch, and every update sets ``feedback_message``.
"""

from __future__ import annotations

import numpy as np
from py_trees.common import Status

from optimus_control.planning.geometry import Pose
from optimus_control.planning.interfaces import GAZE_TASK, hand_task
from optimus_control.planning.skill_base import HandMotion, Skill
from optimus_control.planning.world_model import FAILED, SORTED


class ClearView(Skill):
    """Once per episode, before the first scan: bring every hand to its rest pose, off the table.

    In the standing posture the hands hover over the table, so the camera sees boxes under them only
    in part (perception does not start tracks on partly hidden boxes). A hand that does not report its
    rest pose reached within ``goal_timeout_s`` is not an error here: the scan goes ahead anyway.
    """

    def start(self) -> None:
        ctx = self.ctx
        self.targets = {}
        base = ctx.controller.base_pose()
        if ctx.view_cleared or base is None:
            return
        for hand in ctx.planner.workspace.hands:
            self.targets[hand] = ctx.planner.rest_pose(hand, base)
            ctx.controller.send_hand_target(hand, self.targets[hand], self.started_s)

    def step(self) -> Status:
        ctx = self.ctx
        if ctx.view_cleared:
            return Status.SUCCESS
        if not self.targets:  # no base pose yet: the rest poses are unknown, scan with the hands where they are
            ctx.view_cleared = True
            ctx.log(self.name, "no robot base pose: hands not moved off the table before the scan")
            return Status.SUCCESS
        waiting = [h for h in self.targets if not ctx.goal_reached(hand_task(h), self.started_s)]
        timed_out = self.elapsed_s() > ctx.params.goal_timeout_s
        if not waiting or timed_out:
            ctx.view_cleared = True
            if waiting:
                ctx.log(self.name, f"hands {waiting} did not report their rest pose; scanning anyway")
            return Status.SUCCESS
        self.feedback_message = f"moving the hands {waiting} off the table"
        return Status.RUNNING


class LookAt(Skill):
    """Point the head at the work cell (the job's look-at point, else the pick region and bins)."""

    def start(self) -> None:
        self.target = self._target()
        self.ctx.controller.send_gaze(self.target, self.started_s)

    def _target(self) -> np.ndarray:
        job = self.ctx.job
        if job.look_at_m is not None:
            return np.asarray(job.look_at_m, dtype=float)
        points = [b.pose.position for b in self.ctx.world.bins.values() if b.pose is not None]
        if job.pick_region is not None:
            points.append(job.pick_region.centre_m)
        if points:
            return np.mean(points, axis=0)
        base = self.ctx.controller.base_pose() or Pose.from_position_yaw([0.0, 0.0, 1.0])
        return base.transform_point([0.6, 0.0, -0.3])

    def step(self) -> Status:
        p, t = self.ctx.params, self.elapsed_s()
        reached = self.ctx.goal_reached(GAZE_TASK, self.started_s)
        if t >= p.gaze_settle_s and (reached or t >= p.gaze_timeout_s):
            self.feedback_message = "looking at the cell" if reached else "gaze not confirmed; carrying on"
            return Status.SUCCESS
        self.feedback_message = "turning the head"
        return Status.RUNNING


class Detect(Skill):
    """Wait for a perception snapshot taken after the head settled (the world model folds it in)."""

    def step(self) -> Status:
        p, world = self.ctx.params, self.ctx.world
        fresh = world.last_stamp_s is not None and world.last_stamp_s >= self.started_s + p.detect_settle_s
        if fresh and self.ctx.controller.base_pose() is not None:
            self.ctx.scan_failures = 0
            self.feedback_message = f"{len(world.boxes)} boxes known"
            return Status.SUCCESS
        if self.elapsed_s() > p.detect_timeout_s:
            what = "robot base pose" if fresh else "perception snapshot"
            return self.fail(f"no {what} within {p.detect_timeout_s:.1f} s", scan=True)
        self.feedback_message = "waiting for perception"
        return Status.RUNNING


class PlanNextPick(Skill):
    """Choose the next box and hand; RUNNING with ``work_done`` set when nothing is left to do.

    Boxes the job still needs but perception does not see now are waited for (``lost_timeout_s``,
    while nothing else can be done), then given up as lost.
    """

    def step(self) -> Status:
        ctx, p = self.ctx, self.ctx.params
        now = ctx.now()
        decision = ctx.planner.next_pick(ctx.world, ctx.controller.base_pose())
        for box_id, reason in decision.skipped:
            ctx.world.box(box_id).finished_s = now
            ctx.log(self.name, f"box {box_id} skipped: {reason}")
        if decision.plan is None:
            missing = [b for b in ctx.world.pending() if not b.visible and ctx.planner.needed(ctx.world, b)]
            if missing and self.elapsed_s() < p.lost_timeout_s:
                self.feedback_message = f"waiting for boxes {[b.box_id for b in missing]} to be seen again"
                return Status.RUNNING
            for box in missing:
                box.outcome, box.finished_s = FAILED, now
                box.reason = f"lost: not seen for {now - box.last_seen_s:.1f} s"
                ctx.log(self.name, f"box {box.box_id}: {box.reason}")
            ctx.work_done = True
            self.feedback_message = "nothing left to do"
            return Status.RUNNING
        plan = decision.plan
        ctx.plan, ctx.record.box_id, ctx.record.hand = plan, plan.box_id, plan.hand
        ctx.attempt_counted = False
        box = ctx.world.box(plan.box_id)
        box.hand, box.bin = plan.hand, plan.bin
        ctx.controller.send_gaze(plan.box_position_m, now)
        self.feedback_message = f"box {plan.box_id} ({box.object_class}) with the {plan.hand} hand to {plan.bin}"
        waiting = f"; boxes {[b for b, _ in decision.blocked]} wait for room for the fingers" if decision.blocked else ""
        ctx.log(self.name, f"{self.feedback_message}; box at {np.round(plan.box_position_m, 3).tolist()} m, "
                           f"grasp at {np.round(plan.grasp.position, 3).tolist()} m, fingers open "
                           f"{plan.opening_m:.3f} m{waiting}")
        return Status.SUCCESS


class ApproachPregrasp(HandMotion):
    """Open the gripper for the box and bring the hand above it, stopped there (the descent is vertical)."""

    settle_final = True

    def targets(self) -> list[Pose]:
        ctx = self.ctx
        ctx.controller.send_gripper(ctx.plan.hand, ctx.plan.opening_m, ctx.params.grip_force_n, ctx.now())
        return [ctx.plan.pregrasp]

    def watch(self) -> str | None:
        return self.box_moved()


class Grasp(HandMotion):
    """Lower the open fingers around the box, then close them (this uses one attempt)."""

    def targets(self) -> list[Pose]:
        self.closing_since = None
        return [self.ctx.plan.grasp]

    def watch(self) -> str | None:
        return self.box_moved() if self.closing_since is None else None

    def arrived(self) -> Status:
        ctx = self.ctx
        if self.closing_since is None:
            self.closing_since = ctx.now()
            box = self.box()
            box.attempts += 1
            ctx.attempt_counted = True
            ctx.controller.send_gripper(ctx.plan.hand, ctx.params.closed_position_m, ctx.params.grip_force_n,
                                        self.closing_since)
            ctx.log(self.name, f"closing on box {box.box_id} (attempt {box.attempts})")
        if ctx.now() - self.closing_since >= ctx.params.grip_settle_s:
            return Status.SUCCESS
        self.feedback_message = "closing the gripper"
        return Status.RUNNING


class Lift(HandMotion):
    """Lift the box; succeed only when perception shows it hanging under the hand.

    The lift pose is a via-point (``loose_final``): it only has to take the box clear of the table. A box
    close to the body on the inner lanes is lifted with the shoulder at its roll and yaw limits, where the
    hand stops ~4 cm short of the pose straight above the grasp; waiting for the exact pose there timed out.
    """

    loose_final = True

    def targets(self) -> list[Pose]:
        self.reached_s = None
        return [self.ctx.plan.lift]

    def arrived(self) -> Status:
        """Judge the grasp: seen hanging under the hand (at once), or after ``grasp_confirm_wait_s``:
        seen elsewhere (failed) or gone from its place (held, when perception hides held objects)."""
        ctx, p = self.ctx, self.ctx.params
        if self.reached_s is None:
            self.reached_s = ctx.now()
        box, plan = self.box(), ctx.plan
        expected = plan.lift.position + plan.held_offset_m
        off = float(np.linalg.norm(box.position_m - expected))
        if box.visible and box.last_seen_s > self.reached_s and \
                (off <= p.held_tolerance_m or (box.held and off <= p.drop_distance_m)):
            return self._held(f"box {box.box_id} is moving with the hand")
        settled = ctx.world.last_stamp_s is not None and ctx.world.last_stamp_s >= self.reached_s + p.grasp_confirm_wait_s
        if settled and box.visible:
            return self.fail(f"grasp failed: box {box.box_id} seen {off:.2f} m from the hand after the lift")
        if settled and p.accept_hidden_held and box.last_seen_s < self.reached_s:
            return self._held(f"box {box.box_id} left its place with the hand (not reported while held)")
        if ctx.now() - self.reached_s > p.confirm_timeout_s:
            return self.fail(f"grasp not confirmed: box {box.box_id} not seen under the hand "
                             f"within {p.confirm_timeout_s:.1f} s of the lift")
        self.feedback_message = "checking the grasp"
        return Status.RUNNING

    def _held(self, message: str) -> Status:
        self.feedback_message = message
        self.ctx.log(self.name, message)
        return Status.SUCCESS


class Transfer(HandMotion):
    """Carry the box over its bin (the controller uses arm and waist); look at the bin for the placement."""

    def targets(self) -> list[Pose]:
        ctx = self.ctx
        ctx.controller.send_gaze(ctx.world.bins[ctx.plan.bin].pose.position, ctx.now())
        return [ctx.plan.carry]

    def watch(self) -> str | None:
        return self.box_dropped()


class Place(HandMotion):
    """Lower the box to just above the bin rim (reached within the skill's reach tolerance).

    A hand that has not got there by the goal timeout still holds the box; failing the attempt then sends
    it through the recovery with the box in hand. If the box, centred anywhere within the hand's reported
    error of its drop point, is still over the bin, it is released there instead; otherwise the place fails.
    The release does not wait for the hand to stop (no ``settle_final``): tried, the 2-box episode through the
    launcher fell in the retreat from the bin (the arm settles short of the place pose at its limits and was
    thrown upwards on the way out), while releasing on arrival within the reach tolerance it succeeds.
    """

    def targets(self) -> list[Pose]:
        return [self.ctx.plan.place]

    def watch(self) -> str | None:
        return self.box_dropped()

    def accept_at_timeout(self, status) -> bool:
        ctx, plan = self.ctx, self.ctx.plan
        if status is None or not np.isfinite(status.error_m):
            return False
        if not ctx.world.bins[plan.bin].contains_xy([*plan.drop_xy_m, 0.0], margin_m=status.error_m):
            return False
        ctx.log(self.name, f"{plan.hand} hand {status.error_m:.3f} m from its place pose after "
                           f"{ctx.params.goal_timeout_s:.1f} s, but over {plan.bin}: releasing there")
        return True


class Release(Skill):
    """Open the fingers and let the box go."""

    def start(self) -> None:
        ctx = self.ctx
        ctx.controller.send_gripper(ctx.plan.hand, ctx.plan.opening_m, ctx.params.grip_force_n, self.started_s)
        ctx.world.bins[ctx.plan.bin].drops_xy_m.append(ctx.plan.drop_xy_m.copy())

    def step(self) -> Status:
        if self.elapsed_s() >= self.ctx.params.grip_settle_s:
            return Status.SUCCESS
        self.feedback_message = "opening the gripper"
        return Status.RUNNING


class Retreat(HandMotion):
    """Move the hand up out of the bin, back over the pick (the way it came), then to its rest pose.

    Going straight from over the bin to the rest pose turns the hand a quarter turn with the arm out to the
    side, which runs the wrist into its limits and the elbow straight (a singular arm the controller does
    not leave); retracing the carry keeps the arm in postures it has just been through."""

    loose_final = True

    def targets(self) -> list[Pose]:
        return [self.ctx.plan.retreat, self.ctx.plan.lift, self.ctx.plan.home]

    def arrived(self) -> Status:
        self.ctx.hand_engaged = False
        return Status.SUCCESS


class VerifyPlace(Skill):
    """Check the box ended up in its bin; a box seen elsewhere is a failed attempt."""

    def step(self) -> Status:
        ctx, p = self.ctx, self.ctx.params
        box, plan = self.box(), ctx.plan
        target = ctx.world.bins[plan.bin]
        if box.visible and box.last_seen_s >= self.started_s + p.detect_settle_s:
            # Over the footprint is enough: a box cannot hover, and a partly hidden box in a bin may
            # keep the height perception last measured.
            if target.contains_xy(box.position_m) and box.position_m[2] < target.rim_height_m + 0.3:
                return self._done(f"box {box.box_id} is in {plan.bin}")
            return self.fail(f"box {box.box_id} missed {plan.bin}: seen at {np.round(box.position_m, 2).tolist()}")
        if self.elapsed_s() > p.confirm_timeout_s:
            return self._done(f"box {box.box_id} not seen after release; taken as in {plan.bin} (unverified)")
        self.feedback_message = "checking the placement"
        return Status.RUNNING

    def _done(self, reason: str) -> Status:
        box = self.box()
        box.outcome, box.reason, box.finished_s = SORTED, reason, self.ctx.now()
        self.ctx.log(self.name, reason)
        self.ctx.plan, self.ctx.record.box_id, self.ctx.record.hand = None, None, None
        self.feedback_message = reason
        return Status.SUCCESS

