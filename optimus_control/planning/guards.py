"""Guards checked every tick, the recovery branch, and the ends of a job (complete, safe stop).

Guards return FAILURE to stop the job and say why in ``ctx.stop``; the tree then runs
:class:`SafeStop`. Recovery runs after a failed pick-and-place cycle: it books the failure against
the box (giving up at the job's attempt limit), brings the hand back, and lets the cycle start over
from a fresh scan.
"""

from __future__ import annotations

import numpy as np
import py_trees
from py_trees.common import Status

from optimus_control.planning.context import Stop, TaskContext
from optimus_control.planning.episode import CANCELLED, FAILED_STATE, FAULTED, INCOMPLETE, SUCCEEDED, job_result
from optimus_control.planning.interfaces import hand_task
from optimus_control.planning.skill_base import Skill
from optimus_control.planning.world_model import FAILED, PENDING


class Guard(py_trees.behaviour.Behaviour):
    def __init__(self, name: str, ctx: TaskContext):
        super().__init__(name)
        self.ctx = ctx

    def halt_job(self, state: str, reason: str) -> Status:
        if self.ctx.stop is None:
            self.ctx.stop = Stop(state, reason)
        self.feedback_message = reason
        return Status.FAILURE


class NotCancelled(Guard):
    def update(self) -> Status:
        if self.ctx.cancel_reason is not None:
            return self.halt_job(CANCELLED, self.ctx.cancel_reason)
        return Status.SUCCESS


class ControllerHealthy(Guard):
    """FAILURE on a reported controller fault or a status older than ``status_timeout_s``."""

    def update(self) -> Status:
        ctx = self.ctx
        status = ctx.controller.status()
        now, timeout = ctx.now(), ctx.params.status_timeout_s
        if status is not None and status.fault:
            return self.halt_job(FAULTED, f"controller fault: {status.fault}")
        last = status.stamp_s if status is not None else ctx.record.start_s
        if now - last > timeout:
            what = "no controller status" if status is None else f"controller status is {now - last:.1f} s old"
            return self.halt_job(FAULTED, f"{what} (limit {timeout:.1f} s)")
        return Status.SUCCESS


class WithinTimeLimit(Guard):
    def update(self) -> Status:
        limit = self.ctx.job.constraints.time_limit_s
        if self.ctx.record.elapsed_s(self.ctx.now()) > limit:
            return self.halt_job(FAILED_STATE, f"time limit of {limit:.0f} s exceeded")
        return Status.SUCCESS


class JobComplete(Guard):
    """SUCCESS (and the episode finished) once planning found nothing left to do."""

    def update(self) -> Status:
        if not self.ctx.work_done:
            return Status.FAILURE
        ok, reason = job_result(self.ctx.job, self.ctx.world)
        self.ctx.record.finish(self.ctx.now(), SUCCEEDED if ok else INCOMPLETE, reason)
        self.feedback_message = reason
        return Status.SUCCESS


class BookFailure(Skill):
    """Charge the failure to its box; give the box up at the attempt limit. FAILURE stops the job."""

    def step(self) -> Status:
        ctx, failure = self.ctx, self.ctx.failure
        if failure is None:
            self.feedback_message = "no failure recorded"
            return Status.SUCCESS
        if failure.scan:
            ctx.scan_failures += 1
            if ctx.scan_failures >= ctx.params.max_scan_failures:
                ctx.stop = Stop(FAILED_STATE, f"{ctx.scan_failures} scans failed in a row: {failure.reason}")
                return Status.FAILURE
            return Status.SUCCESS
        if failure.box_id is None:
            return Status.SUCCESS
        box = ctx.world.box(failure.box_id)
        box.events.append(failure.reason)
        limit = ctx.job.constraints.max_attempts_per_box
        if failure.replan:
            box.replans += 1
            if box.replans > ctx.params.max_replans_per_box:
                self._give_up(box, f"kept moving: replanned {box.replans} times")
        else:
            if not ctx.attempt_counted:  # failed before closing (e.g. a target not reached): still an attempt
                box.attempts += 1
                ctx.attempt_counted = True
            if box.attempts >= limit and box.outcome == PENDING:
                self._give_up(box, f"gave up after {box.attempts} attempts (last: {failure.reason})")
        self.feedback_message = failure.reason
        return Status.SUCCESS

    def _give_up(self, box, reason: str) -> None:
        box.outcome, box.reason, box.finished_s = FAILED, reason, self.ctx.now()
        self.ctx.log(self.name, f"box {box.box_id}: {reason}")


class RecoverHand(Skill):
    """Open the gripper, lift the hand clear of where it was going, and bring it home."""

    def start(self) -> None:
        ctx = self.ctx
        self.phases = []
        self.phase = 0
        if ctx.plan is None or not ctx.hand_engaged:
            return
        ctx.controller.send_gripper(ctx.plan.hand, ctx.gripper_open_m, ctx.params.grip_force_n, self.started_s)
        last = ctx.last_hand_target or ctx.plan.home
        up = max(ctx.plan.pregrasp.position[2], last.position[2] + 0.1)
        self.phases = [last.translated(np.array([0.0, 0.0, up - last.position[2]])), ctx.plan.home]
        self._send()

    def _send(self) -> None:
        self.sent_s = self.ctx.now()
        self.ctx.controller.send_hand_target(self.ctx.plan.hand, self.phases[self.phase], self.sent_s)
        self.ctx.last_hand_target = self.phases[self.phase]

    def step(self) -> Status:
        ctx = self.ctx
        if not self.phases:
            return self._clear()
        if ctx.goal_reached(hand_task(ctx.plan.hand), self.sent_s, ctx.params.via_tolerance_m) and \
                ctx.now() - self.started_s >= ctx.params.grip_settle_s:
            if self.phase + 1 < len(self.phases):
                self.phase += 1
                self._send()
                return Status.RUNNING
            return self._clear()
        if ctx.now() - self.sent_s > ctx.params.goal_timeout_s:
            ctx.stop = Stop(FAILED_STATE, f"recovery failed: the {ctx.plan.hand} hand did not get back home")
            return Status.FAILURE
        self.feedback_message = "bringing the hand back"
        return Status.RUNNING

    def _clear(self) -> Status:
        self.ctx.plan, self.ctx.failure, self.ctx.hand_engaged = None, None, False
        self.ctx.record.box_id, self.ctx.record.hand = None, None
        return Status.SUCCESS


class SafeStop(Skill):
    """Stop commanding motion and close the episode.

    The hands keep their last (planned, reachable) targets and a held box stays held: opening the
    gripper or moving on after a fault is what would be unsafe. The controller's own fault handling
    (hold, then damping) is not overridden; ``hold_posture`` (a preset that exists in the controller)
    tells it the planner has stopped.
    """

    def start(self) -> None:
        ctx = self.ctx
        stop = ctx.stop or Stop(FAILED_STATE, "job stopped")
        if ctx.params.hold_posture:
            ctx.controller.send_posture(ctx.params.hold_posture, self.started_s)
        ctx.record.finish(self.started_s, stop.state, stop.reason)

    def step(self) -> Status:
        self.feedback_message = "stopped"
        return Status.SUCCESS
