"""State shared by the behaviours of one task tree.

A plain object passed to each behaviour instead of the py_trees blackboard: the blackboard is
process-global, and several executives (tests, dry runs) must not see each other's keys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from optimus_control.model.settings_schema import setting
from optimus_control.planning.episode import EpisodeRecord
from optimus_control.planning.interfaces import ControllerClient, PerceptionClient, TaskStatus
from optimus_control.planning.job_spec import JobSpec
from optimus_control.planning.planner import PickPlan, Planner
from optimus_control.planning.world_model import WorldModel


@dataclass(frozen=True)
class SkillParams:
    """Timeouts [s], tolerances [m], gripper force [N]; defaults suit a 10 Hz tick against the sim."""

    goal_timeout_s: float = setting(15.0, "s", "a hand goal not reached by then fails the skill")
    reach_tolerance_m: float = setting(
        0.04, "m",
        "a hand this close to its goal counts as there (the fingers' clearance absorbs the rest)")
    via_tolerance_m: float = setting(0.08, "m", "a via-point (and a rest pose) counts as passed this close: no "
                                     "intermediate target of a motion needs the grasp's precision")
    settle_window_s: float = setting(
        0.3, "s",
        "a hand whose goal error changed less than settle_motion_m over this long ...")
    settle_motion_m: float = setting(0.003, "m", "... has stopped (the pregrasp waits for it: see HandMotion)")
    status_settle_s: float = setting(
        0.3, "s",
        "without a goal-stamp echo, trust statuses this much newer than the goal")
    status_timeout_s: float = setting(2.0, "s", "no controller status for this long while running -> fault")
    gaze_settle_s: float = setting(0.5, "s", "time for the head to turn to a scan point")
    gaze_timeout_s: float = setting(2.0, "s", "gaze not reported reached by then: carry on (perception still checks)")
    detect_settle_s: float = setting(0.3, "s", "a scan uses snapshots this much newer than its start")
    detect_timeout_s: float = setting(5.0, "s", "a scan seeing nothing new by then fails")
    grip_settle_s: float = setting(1.0, "s", "time for the fingers to close or open")
    grip_force_n: float = setting(60.0, "N", "finger force limit when closing on a box")
    closed_position_m: float = setting(0.0, "m", "per-finger command when closing on a box")
    replan_distance_m: float = setting(0.03, "m", "the target box moved this far before the grasp: plan again")
    held_tolerance_m: float = setting(0.05, "m", "box centre within this of where it should hang: it is held")
    drop_distance_m: float = setting(0.10, "m", "box this far from the hand's path while carried: dropped")
    confirm_timeout_s: float = setting(3.0, "s", "perception must confirm a grasp or a placement within this")
    grasp_confirm_wait_s: float = setting(
        1.5, "s",
        "judge a grasp from snapshots this long after the lift (> perception's lost time)")
    accept_hidden_held: bool = setting(
        True, "",
        "a box gone from its place after the lift counts as held (perception leaves out objects in a closed "
        "gripper); false: only a box seen under the hand counts")
    lost_timeout_s: float = setting(3.0, "s", "a pending box unseen for this long after a scan is given up as lost")
    max_replans_per_box: int = setting(5, "", "plans for one box before it is skipped")
    max_scan_failures: int = setting(3, "", "consecutive failed scans before the job stops")
    hold_posture: str = setting("standing", "", "controller posture preset sent when a job stops ('' = none)")


@dataclass
class Failure:
    reason: str
    box_id: int | None = None
    replan: bool = False  # the world changed before a grasp: plan again without using an attempt
    scan: bool = False  # look/detect/plan failed: no box involved


@dataclass
class Stop:
    state: str  # episode state to finish with
    reason: str


class TaskContext:
    """Everything the behaviours of one episode read and write."""

    def __init__(self, job: JobSpec, planner: Planner, world: WorldModel, record: EpisodeRecord,
                 controller: ControllerClient, perception: PerceptionClient, clock: Callable[[], float],
                 params: SkillParams, gripper_open_m: float):
        self.job, self.planner, self.world, self.record = job, planner, world, record
        self.controller, self.perception, self.clock, self.params = controller, perception, clock, params
        self.gripper_open_m = gripper_open_m
        self.plan: PickPlan | None = None
        self.failure: Failure | None = None
        self.stop: Stop | None = None
        self.cancel_reason: str | None = None
        self.work_done = False
        self.hand_engaged = False  # the plan's hand has left home this cycle (recovery must bring it back)
        self.attempt_counted = False  # this cycle's attempt on the planned box has been counted
        self.last_hand_target = None  # last gripper target sent for the plan's hand
        self.scan_failures = 0
        self.view_cleared = False  # the hands have been moved off the table once this episode

    def now(self) -> float:
        return self.clock()

    def task_status(self, task: str, sent_s: float) -> TaskStatus | None:
        """The controller's status of ``task`` once it refers to the goal sent at ``sent_s`` (else None)."""
        status = self.controller.status()
        if status is None:
            return None
        t = status.tasks.get(task)
        if t is None:
            return None
        if t.goal_stamp_s is not None:
            return t if t.goal_stamp_s >= sent_s - 1e-6 else None
        return t if status.stamp_s >= sent_s + self.params.status_settle_s else None

    def goal_reached(self, task: str, sent_s: float, tolerance_m: float | None = None) -> bool:
        """Has the controller reported ``task`` at a goal sent at ``sent_s`` (not an older one), or within
        ``tolerance_m`` of it (default ``reach_tolerance_m``)?"""
        t = self.task_status(task, sent_s)
        if t is None or t.clamped:
            return False
        tolerance = self.params.reach_tolerance_m if tolerance_m is None else tolerance_m
        return t.goal_reached or bool(t.error_m <= tolerance)

    def log(self, step: str, message: str) -> None:
        self.record.log(self.now(), step, message)
