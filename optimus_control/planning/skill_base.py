"""Base behaviours of the task tree: the skill lifecycle and hand motions checked against the controller.

Lifecycle (py_trees): ``initialise()`` on entry sends the goal (``start()``); ``update()`` runs every
tick, must not block, and returns RUNNING / SUCCESS / FAILURE (``step()``); every update sets
``feedback_message``. A failure leaves a :class:`~optimus_control.planning.context.Failure` in the
context for the recovery branch.
"""

from __future__ import annotations

import numpy as np
import py_trees
from py_trees.common import Status

from optimus_control.planning.context import Failure, TaskContext
from optimus_control.planning.geometry import Pose, distance_to_segment
from optimus_control.planning.interfaces import hand_task


class Skill(py_trees.behaviour.Behaviour):
    """Common entry bookkeeping and failure reporting; subclasses implement ``start()`` and ``step()``."""

    def __init__(self, name: str, ctx: TaskContext):
        super().__init__(name)
        self.ctx = ctx
        self.started_s = 0.0

    def initialise(self) -> None:
        self.started_s = self.ctx.now()
        self.ctx.record.step = self.name
        self.feedback_message = ""
        self.start()

    def start(self) -> None:
        """Entry action (send goals). Called once each time the skill starts."""

    def update(self) -> Status:
        return self.step()

    def step(self) -> Status:
        raise NotImplementedError

    def elapsed_s(self) -> float:
        return self.ctx.now() - self.started_s

    def fail(self, reason: str, **kind) -> Status:
        box_id = self.ctx.plan.box_id if self.ctx.plan is not None else None
        self.ctx.failure = Failure(reason, box_id, **kind)
        self.feedback_message = reason
        self.ctx.log(self.name, f"failed: {reason}")
        return Status.FAILURE

    def box(self):
        return self.ctx.world.box(self.ctx.plan.box_id)


class HandMotion(Skill):
    """Move the plan's hand through gripper targets (one per phase); subclasses add watches.

    Every target but the last is a via-point, passed within ``via_tolerance_m``; so is the last when
    ``loose_final`` (a rest pose, say), since an arm that ends a few centimetres off there loses nothing.
    With ``settle_final`` the last target counts only once the hand has stopped there (the controller
    reports its goal reached, or the hand is within ``reach_tolerance_m`` and its error stopped changing):
    a motion that starts from a hand still moving begins where the reference was, not where the hand goes
    on to, so a descent onto a box started from a moving pregrasp comes in sideways onto the box.
    """

    loose_final = False
    settle_final = False

    def targets(self) -> list[Pose]:
        raise NotImplementedError

    def start(self) -> None:
        self.phases = self.targets()
        self.phase = 0
        self.path_start = self.ctx.last_hand_target.position if self.ctx.last_hand_target is not None else None
        self._send()

    def _send(self) -> None:
        ctx = self.ctx
        target = self.phases[self.phase]
        self.sent_s = ctx.now()
        self.errors: list[tuple[float, float]] = []  # (time [s], goal error [m]) of this phase
        ctx.controller.send_hand_target(ctx.plan.hand, target, self.sent_s)
        ctx.last_hand_target = target
        ctx.hand_engaged = True

    def watch(self) -> str | None:
        """Reason to abort now, or None."""
        return None

    def arrived(self) -> Status:
        return Status.SUCCESS

    def accept_at_timeout(self, status) -> bool:
        """Subclasses: may the last target count as reached when the goal timeout has passed, at this
        controller status of the hand (None: none yet)? Default: no, the skill fails."""
        return False

    def step(self) -> Status:
        ctx = self.ctx
        problem = self.watch()
        if problem is not None:
            return self.fail(problem)
        status = ctx.task_status(hand_task(ctx.plan.hand), self.sent_s)
        if status is not None and status.clamped:
            return self.fail(f"the controller clamped the {ctx.plan.hand} hand's {self.name} target: out of its reach")
        final = self.phase + 1 == len(self.phases)
        if self._reached(final, status):
            if not final:
                self.path_start = self.phases[self.phase].position
                self.phase += 1
                self._send()
                return Status.RUNNING
            return self.arrived()
        if ctx.now() - self.sent_s > ctx.params.goal_timeout_s:
            if final and self.accept_at_timeout(status):
                return self.arrived()
            which = f" {self.phase + 1}/{len(self.phases)}" if len(self.phases) > 1 else ""
            return self.fail(f"{ctx.plan.hand} hand did not reach its {self.name} target{which} within "
                             f"{ctx.params.goal_timeout_s:.1f} s")
        self.feedback_message = f"moving the {ctx.plan.hand} hand ({self.phase + 1}/{len(self.phases)})"
        return Status.RUNNING

    def _reached(self, final: bool, status) -> bool:
        ctx, task = self.ctx, hand_task(self.ctx.plan.hand)
        if not final or self.loose_final:
            return ctx.goal_reached(task, self.sent_s, ctx.params.via_tolerance_m)
        if not self.settle_final:
            return ctx.goal_reached(task, self.sent_s)
        if status is None or status.clamped:
            return False
        if status.goal_reached:
            return True
        now, p = ctx.now(), ctx.params
        self.errors.append((now, float(status.error_m)))
        if status.error_m > p.reach_tolerance_m or self.errors[0][0] > now - p.settle_window_s:
            return False  # too far, or not watched for a whole window yet
        window = [e for t, e in self.errors if t >= now - p.settle_window_s - 1e-9]
        return max(window) - min(window) < p.settle_motion_m

    def box_moved(self) -> str | None:
        box = self.box()
        moved = float(np.linalg.norm(box.position_m - self.ctx.plan.box_position_m))
        if box.visible and moved > self.ctx.params.replan_distance_m:
            return f"replan: box {box.box_id} moved {moved:.2f} m"
        return None

    def box_dropped(self) -> str | None:
        box, plan = self.box(), self.ctx.plan
        if not box.visible or self.path_start is None:
            return None  # perception may hide a held box; the place check catches a silent drop
        target = self.ctx.world.bins.get(plan.bin)
        if target is not None and target.pose is not None and target.contains_xy(box.position_m):
            return None  # over (or in) its bin already: the place check judges it
        hand_point = box.position_m - plan.held_offset_m
        off = distance_to_segment(hand_point, self.path_start, self.phases[self.phase].position)
        if off > self.ctx.params.drop_distance_m:
            return f"box {box.box_id} dropped: seen {off:.2f} m from the {plan.hand} hand's path"
        return None

    def fail(self, reason: str, **kind) -> Status:
        if reason.startswith("replan:"):
            kind["replan"] = True
        return super().fail(reason, **kind)
