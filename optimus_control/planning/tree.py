"""The task behaviour tree.

::

    [?] task
        [-] job                         (no memory: the guards are re-checked every tick)
            --> not cancelled
            --> controller healthy
            --> within time limit
            [?] work
                --> job complete
                (SuccessIsRunning) cycle forever
                    [?] attempt             (memory)
                        [-] pick and place  (memory)
                            clear_view, look_at, detect, plan, approach_pregrasp, grasp, lift,
                            transfer, place, release, retreat, verify_place
                        [-] recover         (memory)
                            book_failure, recover_hand
        --> safe stop                   (runs when a guard or the recovery stops the job)
"""

from __future__ import annotations

import py_trees
from py_trees.composites import Selector, Sequence

from optimus_control.planning import guards, skills
from optimus_control.planning.context import TaskContext


def build_task_tree(ctx: TaskContext) -> py_trees.behaviour.Behaviour:
    """The root behaviour of one episode (construction only: no I/O until ticked)."""
    pick_and_place = Sequence("pick_and_place", memory=True, children=[
        skills.ClearView("clear_view", ctx),
        skills.LookAt("look_at", ctx),
        skills.Detect("detect", ctx),
        skills.PlanNextPick("plan", ctx),
        skills.ApproachPregrasp("approach_pregrasp", ctx),
        skills.Grasp("grasp", ctx),
        skills.Lift("lift", ctx),
        skills.Transfer("transfer", ctx),
        skills.Place("place", ctx),
        skills.Release("release", ctx),
        skills.Retreat("retreat", ctx),
        skills.VerifyPlace("verify_place", ctx),
    ])
    recover = Sequence("recover", memory=True, children=[
        guards.BookFailure("book_failure", ctx),
        guards.RecoverHand("recover_hand", ctx),
    ])
    attempt = Selector("attempt", memory=True, children=[pick_and_place, recover])
    work = Selector("work", memory=False, children=[
        guards.JobComplete("job_complete", ctx),
        py_trees.decorators.SuccessIsRunning("cycle", attempt),
    ])
    job = Sequence("job", memory=False, children=[
        guards.NotCancelled("not_cancelled", ctx),
        guards.ControllerHealthy("controller_healthy", ctx),
        guards.WithinTimeLimit("within_time_limit", ctx),
        work,
    ])
    return Selector("task", memory=False, children=[job, guards.SafeStop("safe_stop", ctx)])
