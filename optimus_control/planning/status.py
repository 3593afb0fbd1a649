"""The task status as plain entries (name, level, message, key/values), ready for DiagnosticArray.

``/task/status`` carries one entry for the job and one per box. Job entry ``task_planner: job``:

================  ===========================================================================
key               value
================  ===========================================================================
job               job name
state             idle | running | succeeded | incomplete | failed | faulted | cancelled
step              current skill (look_at, detect, plan, approach_pregrasp, grasp, lift, ...)
box               planner id of the box being handled ('' if none)
hand              hand in use ('' if none)
boxes_total       boxes of the job's classes seen so far
boxes_sorted      ... placed in their bin
boxes_skipped     ... skipped (unreachable, does not fit, bin not located)
boxes_failed      ... given up (attempt limit, lost)
boxes_pending     ... still to do
elapsed_s         time since start [s] (sim time when the sim runs)
time_limit_s      the job's limit [s]
reason            why the job ended ('' while running)
================  ===========================================================================

Box entries ``task_planner: box <id>``: class, bin, outcome (pending | sorted | skipped | failed),
attempts, hand, position_m ("x y z" in odom), reason. Levels: OK while running or succeeded, WARN for
skipped or failed boxes and incomplete jobs, ERROR for failed, faulted or cancelled jobs.
"""

from __future__ import annotations

from dataclasses import dataclass

from optimus_control.planning.episode import (
    CANCELLED,
    FAILED_STATE,
    FAULTED,
    INCOMPLETE,
    EpisodeRecord,
    job_progress,
)
from optimus_control.planning.job_spec import JobSpec
from optimus_control.planning.world_model import FAILED, SKIPPED, WorldModel

OK, WARN, ERROR = 0, 1, 2
JOB_ENTRY = "task_planner: job"


@dataclass(frozen=True)
class StatusEntry:
    name: str
    level: int  # OK | WARN | ERROR, as diagnostic_msgs/DiagnosticStatus
    message: str
    values: dict[str, str]


def task_status(job: JobSpec, world: WorldModel, record: EpisodeRecord, now_s: float) -> list[StatusEntry]:
    progress = job_progress(job, world)
    level = {INCOMPLETE: WARN, FAILED_STATE: ERROR, FAULTED: ERROR, CANCELLED: ERROR}.get(record.state, OK)
    message = f"{record.state}: {progress.sorted}/{progress.total} boxes sorted"
    if record.reason:
        message += f" ({record.reason})"
    elif record.step:
        message += f", {record.step}"
    entries = [StatusEntry(JOB_ENTRY, level, message, {
        "job": job.name, "state": record.state, "step": record.step,
        "box": "" if record.box_id is None else str(record.box_id), "hand": record.hand or "",
        "boxes_total": str(progress.total), "boxes_sorted": str(progress.sorted),
        "boxes_skipped": str(progress.skipped), "boxes_failed": str(progress.failed),
        "boxes_pending": str(progress.pending), "elapsed_s": f"{record.elapsed_s(now_s):.2f}",
        "time_limit_s": f"{job.constraints.time_limit_s:g}", "reason": record.reason,
    })]
    for box in world.boxes.values():
        entries.append(StatusEntry(
            f"task_planner: box {box.box_id}", WARN if box.outcome in (SKIPPED, FAILED) else OK,
            f"{box.object_class} box: {box.outcome}" + (f" ({box.reason})" if box.reason else ""),
            {"class": box.object_class, "bin": box.bin or "", "outcome": box.outcome, "attempts": str(box.attempts),
             "hand": box.hand or "", "position_m": " ".join(f"{v:.3f}" for v in box.position_m), "reason": box.reason},
        ))
    return entries
