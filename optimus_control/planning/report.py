"""Run report of one episode: ``<runs_dir>/<UTC timestamp>/summary.json`` and ``report.md``.

The summary holds what the planner knows (job, result, per-box outcomes, attempts, times, events)
plus ``metrics``: figures other parts add (falls, max torques, loop deadline misses, QP failures) and
that the demo scores from ground truth. Plots and camera snapshots are written by the demo next to
these files.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from optimus_control.planning.episode import EpisodeRecord, job_progress
from optimus_control.planning.job_spec import JobSpec
from optimus_control.planning.world_model import WorldModel


def episode_summary(job: JobSpec, world: WorldModel, record: EpisodeRecord, now_s: float,
                    metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    """JSON-ready summary of an episode."""
    progress = job_progress(job, world)
    elapsed = record.elapsed_s(now_s)
    wall = None
    if record.wall_start_s is not None:
        wall = (record.wall_end_s or time.time()) - record.wall_start_s
    return {
        "job": {"name": job.name, "source": str(job.source), "kind": job.kind,
                "max_attempts_per_box": job.constraints.max_attempts_per_box,
                "time_limit_s": job.constraints.time_limit_s},
        "result": {"state": record.state, "reason": record.reason, "succeeded": record.state == "succeeded"},
        "times": {"start_s": record.start_s, "end_s": record.end_s, "elapsed_s": elapsed, "wall_s": wall,
                  "boxes_per_minute": 60.0 * progress.sorted / elapsed if elapsed > 0 else None},
        "boxes": {"total": progress.total, "sorted": progress.sorted, "skipped": progress.skipped,
                  "failed": progress.failed, "pending": progress.pending},
        "per_box": [{
            "id": b.box_id, "class": b.object_class, "bin": b.bin, "outcome": b.outcome, "reason": b.reason,
            "attempts": b.attempts, "replans": b.replans, "hand": b.hand,
            "first_seen_s": b.first_seen_s, "finished_s": b.finished_s,
            "last_position_m": [round(float(v), 4) for v in b.position_m], "events": list(b.events),
        } for b in world.boxes.values()],
        "events": [{"t_s": e.t_s, "step": e.step, "message": e.message} for e in record.events],
        "metrics": {**record.metrics, **(metrics or {})},
    }


def write_run_report(summary: dict[str, Any], runs_dir: str | Path, stamp: str | None = None) -> Path:
    """Write summary.json and report.md into a new ``runs_dir/<stamp>/``; returns that folder."""
    stamp = stamp or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    folder = Path(runs_dir) / stamp
    n = 1
    while folder.exists():
        n += 1
        folder = Path(runs_dir) / f"{stamp}_{n}"
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps(summary, indent=2, default=_jsonable) + "\n")
    (folder / "report.md").write_text(render_markdown(summary))
    return folder


def render_markdown(s: dict[str, Any]) -> str:
    t, b, r = s["times"], s["boxes"], s["result"]
    lines = [
        f"# Run report: {s['job']['name']}",
        "",
        f"**Result: {r['state']}**" + (f": {r['reason']}" if r["reason"] else ""),
        "",
        f"- boxes: {b['sorted']}/{b['total']} sorted, {b['skipped']} skipped, {b['failed']} failed, {b['pending']} pending",
        f"- time: {_num(t['elapsed_s'])} s (clock), {_num(t['wall_s'])} s (wall); "
        f"throughput {_num(t['boxes_per_minute'])} boxes/min",
        f"- job file: `{s['job']['source']}` (max {s['job']['max_attempts_per_box']} attempts per box, "
        f"limit {s['job']['time_limit_s']:g} s)",
        "",
        "## Boxes",
        "",
        "| id | class | bin | outcome | attempts | hand | reason |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for box in s["per_box"]:
        lines.append(f"| {box['id']} | {box['class']} | {box['bin'] or ''} | {box['outcome']} | {box['attempts']} | "
                     f"{box['hand'] or ''} | {box['reason'].replace('|', '/')} |")
    if s["metrics"]:
        lines += ["", "## Metrics", ""] + [f"- {k}: {_num(v)}" for k, v in s["metrics"].items()]
    lines += ["", "## Events", ""] + [f"- {_num(e['t_s'])} s [{e['step']}] {e['message']}" for e in s["events"]]
    return "\n".join(lines) + "\n"


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return "n/a" if value is None else str(value)


def _jsonable(value: Any):
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:  # pragma: no cover
        pass
    return str(value)
