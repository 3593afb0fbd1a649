"""The factory demo's run folder: merged summary.json, report.md, matplotlib plots, camera snapshots.

No ROS here: :mod:`optimus_control.apps.demo` records the samples (``DemoRecording``) from topics and
calls :func:`write_run_report`. Ground truth (``/sim/...``) only scores the run, through
:mod:`optimus_control.apps.evaluation`; it never reaches the robot.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from optimus_control.apps.evaluation import FallCriteria, evaluate_episode
from optimus_control.hardware.actuator_report import bus_figures
from optimus_control.planning.job_spec import JobSpec
from optimus_control.planning.report import render_markdown


@dataclass
class DemoRecording:
    """Samples gathered while the demo runs (sim time [s] first in every tuple)."""

    com_cop: list[tuple[float, float, float, float, float]] = field(default_factory=list)  # t, com xy, cop xy (odom)
    support: list[np.ndarray] = field(default_factory=list)  # sole corner polygons (odom xy) at the start
    hand_error: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # hand -> (t, position error m)
    update_time_ms: list[float] = field(default_factory=list)  # controller update (QP) times from /diagnostics
    clock_wall_ms_per_sim_ms: list[float] = field(default_factory=list)  # wall time per 1 ms of sim time
    base_truth: list[tuple[float, float, float]] = field(default_factory=list)  # t, pelvis height m, tilt rad
    max_torque_ratio: dict[str, float] = field(default_factory=dict)  # joint -> max |tau| / effort limit
    max_torque_nm: dict[str, float] = field(default_factory=dict)
    controller: dict[str, str] = field(default_factory=dict)  # last whole_body_controller diagnostics values
    actuators: dict[str, str] = field(default_factory=dict)  # hardware / HIL: its last actuators' status values
    objects_truth: dict[str, tuple[str, list[float]]] = field(default_factory=dict)  # name -> (colour, xyz)
    snapshots: list[tuple[str, np.ndarray]] = field(default_factory=list)  # (label, rgb image)


def write_run_report(folder: Path, job: JobSpec, planner_summary: dict[str, Any] | None, rec: DemoRecording,
                     run: dict[str, Any], criteria: FallCriteria, failure: str = "") -> dict[str, Any]:
    """Write summary.json, report.md, plots and snapshots into ``folder``; returns the summary.

    ``failure`` is what stopped the run early (a launched process's own error message), shown as the
    result when the planner wrote no report.
    """
    folder.mkdir(parents=True, exist_ok=True)
    planner_succeeded = bool(planner_summary and planner_summary["result"]["succeeded"])
    evaluation = evaluate_episode(job, rec.objects_truth, [(z, tilt) for _, z, tilt in rec.base_truth],
                                  planner_succeeded, criteria)
    truth = [b.as_dict() for b in evaluation.boxes]
    metrics = {
        "falls": evaluation.falls,
        "boxes_in_right_bin_truth": evaluation.boxes_in_right_bin,
        "boxes_total_truth": evaluation.boxes_total,
        "min_base_height_m_truth": evaluation.min_base_height_m,
        "max_base_tilt_rad_truth": evaluation.max_base_tilt_rad,
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
        "result": {"state": "failed" if failure else "no report", "reason": failure or "the planner wrote no report",
                   "succeeded": False},
        "times": {"start_s": None, "end_s": None, "elapsed_s": None, "wall_s": None, "boxes_per_minute": None},
        "boxes": {"total": 0, "sorted": 0, "skipped": 0, "failed": 0, "pending": 0},
        "per_box": [], "events": [], "metrics": {}}
    summary["metrics"] = {**summary.get("metrics", {}), **metrics}
    summary["max_torques_nm"] = {k: round(v, 2) for k, v in sorted(rec.max_torque_nm.items())}
    summary["ground_truth_boxes"] = truth
    summary["fall_criteria"] = {"min_base_height_m": round(criteria.min_base_height_m, 4),
                                "max_base_tilt_rad": round(criteria.max_base_tilt_rad, 4)}
    summary["run"] = run
    if rec.actuators:
        summary["buses"] = bus_figures(rec.actuators)
    summary["demo_succeeded"] = evaluation.succeeded
    (folder / "summary.json").write_text(json.dumps(summary, indent=2, default=_jsonable) + "\n")
    plots = _plots(folder, rec)
    shots = _snapshots(folder, rec)
    md = render_markdown(summary)
    md += "\n## Ground truth (scoring only)\n\n| box | colour | bin | in bin | position [m] |\n| --- | --- | --- | --- | --- |\n"
    md += "".join(f"| {b['name']} | {b['colour']} | {b['bin']} | {'yes' if b['in_bin'] else 'NO'} | {b['position_m']} |\n"
                  for b in truth)
    if run.get("gantry"):
        md += f"\n## Gantry\n\n{run['gantry']}\n"
    if summary.get("buses"):
        md += ("\n## CAN buses (the controller's driver, whole run)\n\n| bus | cycles | missing | late | reconnects | "
               "round trip p99 [us] | max [us] |\n| --- | --- | --- | --- | --- | --- | --- |\n")
        md += "".join(f"| {name} | {b['cycles']} | {b['missing']} | {b['late']} | {b['reconnects']} | "
                      f"{b['round_trip_p99_us']} | {b['round_trip_max_us']} |\n" for name, b in summary["buses"].items())
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
