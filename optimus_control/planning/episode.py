"""The record of one job run (an episode): state, events, per-box outcomes, and whether the job succeeded.

States: ``idle`` -> ``running`` -> one of ``succeeded`` (goal met), ``incomplete`` (every box got a final
outcome but the goal's success criteria were not met), ``failed`` (stopped: time limit, a recovery
that failed, no perception), ``faulted`` (controller fault), ``cancelled`` (by request).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from optimus_control.planning.job_spec import JobSpec
from optimus_control.planning.world_model import FAILED, PENDING, SKIPPED, SORTED, WorldModel

IDLE, RUNNING = "idle", "running"
SUCCEEDED, INCOMPLETE, FAILED_STATE, FAULTED, CANCELLED = "succeeded", "incomplete", "failed", "faulted", "cancelled"
FINAL_STATES = (SUCCEEDED, INCOMPLETE, FAILED_STATE, FAULTED, CANCELLED)


@dataclass(frozen=True)
class EpisodeEvent:
    t_s: float  # clock time (sim time when the sim runs) [s]
    step: str
    message: str


@dataclass
class EpisodeRecord:
    job_name: str
    job_source: str
    state: str = IDLE
    reason: str = ""
    start_s: float | None = None
    end_s: float | None = None
    wall_start_s: float | None = None  # time.time() at start [s]
    wall_end_s: float | None = None
    step: str = ""
    box_id: int | None = None
    hand: str | None = None
    events: list[EpisodeEvent] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)  # figures added by others (falls, torques, ...)

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    def elapsed_s(self, now_s: float) -> float:
        if self.start_s is None:
            return 0.0
        return (self.end_s if self.end_s is not None else now_s) - self.start_s

    def log(self, t_s: float, step: str, message: str) -> None:
        self.events.append(EpisodeEvent(t_s, step, message))

    def begin(self, now_s: float) -> None:
        self.state, self.reason, self.start_s, self.end_s = RUNNING, "", now_s, None
        self.wall_start_s, self.wall_end_s = time.time(), None
        self.log(now_s, "job", f"started job '{self.job_name}'")

    def finish(self, now_s: float, state: str, reason: str) -> None:
        if self.finished:
            return
        self.state, self.reason, self.end_s, self.wall_end_s = state, reason, now_s, time.time()
        self.log(now_s, "job", f"{state}: {reason}")


@dataclass(frozen=True)
class JobProgress:
    total: int
    sorted: int
    skipped: int
    failed: int
    pending: int


def job_progress(job: JobSpec, world: WorldModel) -> JobProgress:
    boxes = [b for b in world.boxes.values() if job.rule_for(b.object_class) is not None]
    count = {o: sum(1 for b in boxes if b.outcome == o) for o in (SORTED, SKIPPED, FAILED, PENDING)}
    return JobProgress(len(boxes), count[SORTED], count[SKIPPED], count[FAILED], count[PENDING])


def job_result(job: JobSpec, world: WorldModel) -> tuple[bool, str]:
    """Has the job's goal been met by the boxes' outcomes? (success, explanation)"""
    progress = job_progress(job, world)
    c = job.constraints
    if job.kind == "pick_place" and all(r.count is not None for r in job.rules):
        short = [f"{r.object_class}: {n}/{r.count}" for r in job.rules
                 if (n := sum(1 for b in world.boxes.values() if b.object_class == r.object_class
                              and b.outcome == SORTED)) < r.count]
        if short:
            return False, "not enough boxes placed (" + ", ".join(short) + ")"
        return True, f"placed every requested box ({progress.sorted})"
    if progress.total == 0:
        return False, "no box of the job's classes was seen"
    if c.expected_boxes is not None and progress.total < c.expected_boxes:
        return False, f"only {progress.total} boxes seen, the job expects {c.expected_boxes}"
    fraction = progress.sorted / progress.total
    summary = f"{progress.sorted}/{progress.total} boxes sorted, {progress.skipped} skipped, {progress.failed} failed"
    if fraction + 1e-9 < c.required_success_fraction:
        return False, f"{summary} (needs {c.required_success_fraction:.0%})"
    return True, summary
