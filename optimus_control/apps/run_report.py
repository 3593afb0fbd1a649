"""The factory demo's run folder: merged summary.json, report.md, matplotlib plots, camera snapshots.

No ROS here: :mod:`optimus_control.demo` records the samples (``DemoRecording``) from topics and calls
:func:`write_demo_report`. Ground truth (``/sim/...``) is used only to score the run (boxes in the
right bins, falls), never fed back to the robot.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from optimus_control.planning.job_spec import JobSpec
from optimus_control.planning.report import render_markdown

FALL_BASE_HEIGHT_M = 0.6  # ground-truth pelvis below this = fallen
FALL_TILT_DEG = 30.0


@dataclass
class DemoRecording:
    """Samples gathered while the demo runs (sim time [s] first in every tuple)."""

    com_cop: list[tuple[float, float, float, float, float]] = field(default_factory=list)  # t, com xy, cop xy (odom)
    support: list[np.ndarray] = field(default_factory=list)  # sole corner polygons (odom xy) at the start
    hand_error: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # hand -> (t, position error m)
    update_time_ms: list[float] = field(default_factory=list)  # controller update (QP) times from /diagnostics
    clock_wall_ms_per_sim_ms: list[float] = field(default_factory=list)  # wall time per 1 ms of sim time
    base_truth: list[tuple[float, float, float]] = field(default_factory=list)  # t, pelvis height m, tilt deg
    max_torque_ratio: dict[str, float] = field(default_factory=dict)  # joint -> max |tau| / effort limit
    max_torque_nm: dict[str, float] = field(default_factory=dict)
    controller: dict[str, str] = field(default_factory=dict)  # last whole_body_controller diagnostics values
    objects_truth: dict[str, tuple[str, list[float]]] = field(default_factory=dict)  # name -> (colour, xyz)
    snapshots: list[tuple[str, np.ndarray]] = field(default_factory=list)  # (label, rgb image)


def score_with_ground_truth(job: JobSpec, objects: dict[str, tuple[str, list[float]]]) -> list[dict[str, Any]]:
    """Each ground-truth box of a job class: its target bin and whether it lies inside it."""
    out = []
    for name, (colour, xyz) in sorted(objects.items()):
        rule = job.rule_for(colour)
        if rule is None:
            continue
        spec = job.bins[rule.bin]
        inside = False
        if spec.position_m is not None and spec.size_m is not None:
            centre, half = np.asarray(spec.position_m), 0.5 * np.asarray(spec.size_m)
            d = np.abs(np.asarray(xyz) - centre)
            inside = bool(d[0] <= half[0] and d[1] <= half[1] and xyz[2] <= centre[2] + half[2])
        out.append({"name": name, "colour": colour, "bin": rule.bin, "in_bin": inside,
                    "position_m": [round(float(v), 4) for v in xyz]})
    return out


def falls(rec: DemoRecording) -> int:
    """Number of times the ground-truth pelvis went below the fall height or tilted past the limit."""
    count, down = 0, False
    for _, z, tilt in rec.base_truth:
        fallen = z < FALL_BASE_HEIGHT_M or tilt > FALL_TILT_DEG
        if fallen and not down:
            count += 1
        down = fallen
    return count


def write_demo_report(folder: Path, job: JobSpec, planner_summary: dict[str, Any] | None, rec: DemoRecording,
                      run: dict[str, Any]) -> dict[str, Any]:
    """Write summary.json, report.md, plots and snapshots into ``folder``; returns the summary."""
    folder.mkdir(parents=True, exist_ok=True)
    truth = score_with_ground_truth(job, rec.objects_truth)
    metrics = {
        "falls": falls(rec),
        "boxes_in_right_bin_truth": sum(b["in_bin"] for b in truth),
        "boxes_total_truth": len(truth),
        "max_torque_ratio": max(rec.max_torque_ratio.values(), default=None),
        "max_torque_joint": max(rec.max_torque_ratio, key=rec.max_torque_ratio.get, default=None),
        "loop_deadline_misses": _int(rec.controller.get("loop_deadline_misses")),
        "loop_ticks": _int(rec.controller.get("loop_ticks")),
        "loop_waits_for_qp": _int(rec.controller.get("loop_sync_waits")),
        "loop_wait_for_qp_s": _float(rec.controller.get("loop_sync_wait_s")),
        "qp_failures": _int(rec.controller.get("qp_failures")),
        "controller_state_at_end": rec.controller.get("controller_state"),
        "sim_time_s": run.get("sim_time_s"),
        "wall_time_s": run.get("wall_time_s"),
        "wall_per_sim": (run["wall_time_s"] / run["sim_time_s"]) if run.get("sim_time_s") else None,
    }
    summary = dict(planner_summary) if planner_summary else {
        "job": {"name": job.name, "source": str(job.source), "kind": job.kind,
                "max_attempts_per_box": job.constraints.max_attempts_per_box,
                "time_limit_s": job.constraints.time_limit_s},
        "result": {"state": "no report", "reason": "the planner wrote no report", "succeeded": False},
        "times": {"start_s": None, "end_s": None, "elapsed_s": None, "wall_s": None, "boxes_per_minute": None},
        "boxes": {"total": 0, "sorted": 0, "skipped": 0, "failed": 0, "pending": 0},
        "per_box": [], "events": [], "metrics": {}}
    summary["metrics"] = {**summary.get("metrics", {}), **metrics}
    summary["max_torques_nm"] = {k: round(v, 2) for k, v in sorted(rec.max_torque_nm.items())}
    summary["ground_truth_boxes"] = truth
    summary["run"] = run
    summary["demo_succeeded"] = bool(summary["result"]["succeeded"] and metrics["falls"] == 0 and truth
                                     and all(b["in_bin"] for b in truth))
    (folder / "summary.json").write_text(json.dumps(summary, indent=2, default=_jsonable) + "\n")
    plots = _plots(folder, rec)
    shots = _snapshots(folder, rec)
    md = render_markdown(summary)
    md += "\n## Ground truth (scoring only)\n\n| box | colour | bin | in bin | position [m] |\n| --- | --- | --- | --- | --- |\n"
    md += "".join(f"| {b['name']} | {b['colour']} | {b['bin']} | {'yes' if b['in_bin'] else 'NO'} | {b['position_m']} |\n"
                  for b in truth)
    md += f"\n**Demo {'succeeded' if summary['demo_succeeded'] else 'FAILED'}**\n"
    if plots or shots:
        md += "\n## Plots and snapshots\n\n" + "".join(f"![{p.stem}]({p.name})\n" for p in plots + shots)
    (folder / "report.md").write_text(md)
    return summary


def _plots(folder: Path, rec: DemoRecording) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    if rec.com_cop:
        a = np.array(rec.com_cop)
        fig, ax = plt.subplots(figsize=(6, 5))
        for poly in rec.support:
            closed = np.vstack([poly, poly[:1]])
            ax.plot(closed[:, 0], closed[:, 1], "k-", lw=1)
        ax.plot(a[:, 3], a[:, 4], ".", ms=2, alpha=0.4, label="CoP (feet)")
        ax.plot(a[:, 1], a[:, 2], "-", lw=1.5, label="CoM (ground projection)")
        ax.set_xlabel("x [m] (odom)")
        ax.set_ylabel("y [m] (odom)")
        ax.set_aspect("equal")
        ax.legend()
        ax.set_title("CoM and CoP against the support polygon (soles)")
        out.append(_save(fig, folder / "com_cop_support.png"))
    if rec.hand_error:
        fig, ax = plt.subplots(figsize=(8, 4))
        for hand, samples in sorted(rec.hand_error.items()):
            if samples:
                s = np.array(samples)
                ax.plot(s[:, 0], 1e3 * s[:, 1], lw=1, label=hand)
        ax.set_xlabel("sim time [s]")
        ax.set_ylabel("position error to goal [mm]")
        ax.set_yscale("symlog", linthresh=10.0)
        ax.legend()
        ax.set_title("Hand tracking error (to the final goal)")
        out.append(_save(fig, folder / "hand_tracking_error.png"))
    if rec.update_time_ms or rec.clock_wall_ms_per_sim_ms:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        if rec.update_time_ms:
            axes[0].hist(rec.update_time_ms, bins=30)
        axes[0].set_xlabel("controller update (QP) time [ms]")
        axes[0].set_ylabel("count")
        if rec.clock_wall_ms_per_sim_ms:
            axes[1].hist(np.clip(rec.clock_wall_ms_per_sim_ms, 0, 50), bins=40)
        axes[1].set_xlabel("wall time per 1 ms of sim time [ms] (lockstep)")
        fig.suptitle("Loop timing")
        out.append(_save(fig, folder / "loop_timing.png"))
    return out


def _snapshots(folder: Path, rec: DemoRecording) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    for k, (label, rgb) in enumerate(rec.snapshots):
        path = folder / f"camera_{k:02d}_{label}.png"
        plt.imsave(path, rgb)
        out.append(path)
    return out


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def _int(text: str | None) -> int | None:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def _float(text: str | None) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _jsonable(value: Any):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
