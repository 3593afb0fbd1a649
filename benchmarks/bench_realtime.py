"""Real-time mode vs lockstep: the same launched stack run both ways, its figures side by side.

What is measured: `optimus-launch sim.launch.xml camera_enabled:=false`, and the same with camera_enabled:=true, each
once with mode:=realtime and once with mode:=lockstep, one stack at a time in its own session on the benchmark's
own ROS domain, over a fixed wall-clock window that starts once the controller has taken the robot (realtime:
its log says "the loop takes the robot"; lockstep: /diagnostics controller_state is "running"). Per run, from an
rclpy probe and /proc:
the 1 kHz loop's ticks, deadline misses, states received and ticks without a state over the window (the
/diagnostics counters of /whole_body_controller at the window's end minus those at its start), its wake-up
latency and compute percentiles (histograms since the loop started; in real time the loop is state-triggered:
one tick per state plus one per period without a state, so a lagging sim gives more than 1000 ticks per wall
second, and the latency is the wait beyond one period); the sim's real-time factor
(/sim/real_time_factor, published once per wall second: sim seconds per wall second over the last 1000 steps)
and sim time advanced / wall time from /clock; CPU time of the sim, its render process and the controller in %
of one core.

Judged by: real-time mode holds real time when the sim's real-time factor is >= 0.98 in every one-second sample
of the window and the loop's deadline misses are <= 0.5 % of its ticks. Lockstep is not paced: its factor is
how fast this machine runs the stack (reported for comparison, no goal). A shared or loaded machine lowers both.
Options: --seconds (default env OPTIMUS_BENCH_REALTIME_S, else 30), --camera both|off|on (default both),
--domain (default 91; the next free one if a test holds it), --json PATH (the figures as JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

from optimus_control.hardware.actuator_report import bus_figures
from optimus_control.launch.isolation import LaunchedStack, claim_free_ros_domain
from optimus_control.model import share_dir

REPO = Path(__file__).resolve().parents[1]
START_S = 150.0          # bring-up of a stack on a loaded 2-core machine: generous, never reached when things work
DIAG_TIMEOUT_S = 30.0    # /diagnostics come once per sim second: slower than 1 Hz only when lockstep runs slowly
RTF_GOAL = 0.98
MISSES_GOAL_PCT = 0.5
CLK_TCK = os.sysconf("SC_CLK_TCK")
CONTROLLER = "/whole_body_controller"
COUNTERS = ("loop_ticks", "loop_deadline_misses", "loop_states_received", "loop_ticks_without_state", "loop_sync_waits")
SINCE_START = ("loop_latency_p50_us", "loop_latency_p99_us", "loop_latency_max_us", "loop_compute_p99_us")


# ---- the launched stack -----------------------------------------------------------------------------------
class Stack(LaunchedStack):
    """optimus-launch sim.launch.xml on its own domain and session (optimus_control.launch.isolation)."""

    @classmethod
    def sim(cls, domain_id: int, workdir: Path, *arguments: str, file: str = "sim.launch.xml") -> Stack:
        return cls.launch(share_dir() / "launch" / file, domain_id, workdir / "launch.log", *arguments, cwd=REPO)

    def check_alive(self, what: str) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"the launch ended (code {self.proc.returncode}) while {what}:\n{self.output()[-4000:]}")


# ---- the probe ----------------------------------------------------------------------------------------------
class Probe:
    """An rclpy node in its own context on the stack's domain, spun by a background thread: keeps the
    controller's last /diagnostics values, every /sim/real_time_factor sample and the last /clock."""

    def __init__(self, domain_id: int):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rosgraph_msgs.msg import Clock
        from std_msgs.msg import Float64

        self.context = rclpy.Context()
        self.context.init(domain_id=domain_id)
        self.node = rclpy.create_node("bench_realtime_probe", namespace="/bench", context=self.context)
        self.lock = threading.Lock()
        self.diag: dict[str, str] | None = None   # values of the controller's status in the last message
        self.actuators: dict[str, str] = {}       # hardware mode: values of its actuators' status (per-bus counters)
        self.diag_n = 0
        self.rtf: list[tuple[float, float]] = []  # (monotonic receipt time, factor)
        self.clock: list[tuple[float, float]] = []  # (monotonic receipt time, sim time [s]), 50 Hz of sim time
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        self.node.create_subscription(Float64, "/sim/real_time_factor", self._on_rtf, 10)
        self.node.create_subscription(Clock, "/clock", self._on_clock, 10)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.1)
            except Exception:  # noqa: BLE001 - the context is shutting down
                break

    def _on_diag(self, msg) -> None:
        for status in msg.status:
            if status.name == CONTROLLER:
                with self.lock:
                    self.diag = {kv.key: kv.value for kv in status.values}
                    self.diag_n += 1
            elif status.name == f"{CONTROLLER}: actuators":
                with self.lock:
                    self.actuators = {kv.key: kv.value for kv in status.values}

    def _on_rtf(self, msg) -> None:
        with self.lock:
            self.rtf.append((time.monotonic(), float(msg.data)))

    def _on_clock(self, msg) -> None:
        with self.lock:
            self.clock.append((time.monotonic(), msg.clock.sec + 1e-9 * msg.clock.nanosec))

    def next_diag(self, stack: Stack, what: str, condition=lambda d: True) -> dict[str, str]:
        """The first controller status received after this call that satisfies `condition`."""
        with self.lock:
            seen = self.diag_n
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            with self.lock:
                if self.diag_n > seen:
                    seen = self.diag_n
                    if condition(self.diag):
                        return dict(self.diag)
            stack.check_alive(f"waiting for {what}")
            time.sleep(0.02)
        raise RuntimeError(f"timed out waiting for {what}:\n{stack.output()[-4000:]}")

    def wait_topics(self, stack: Stack, timeout_s: float = DIAG_TIMEOUT_S, clock: bool = True) -> None:
        """Until /clock (unless not used) and /sim/real_time_factor have both come (discovery on a loaded machine
        can match them seconds after /diagnostics)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if (self.clock or not clock) and self.rtf:
                    return
            stack.check_alive("waiting for /clock and /sim/real_time_factor")
            time.sleep(0.05)
        raise RuntimeError(f"no /clock or /sim/real_time_factor within {timeout_s:.0f} s:\n{stack.output()[-3000:]}")

    def close(self) -> None:
        import rclpy

        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=5.0)


# ---- CPU time from /proc ------------------------------------------------------------------------------------
def cpu_ticks(pid: int) -> int | None:
    """utime + stime of a process (all its threads) in clock ticks; None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state is field 3, utime 14, stime 15
    return int(fields[11]) + int(fields[12])


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children of each of its threads, recursively)."""
    out, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for children in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                found = [int(c) for c in children.read_text().split()]
            except OSError:
                continue
            out += found
            todo += found
    return out


def cpu_snapshot(pids: dict[str, int]) -> dict[str, dict[int, int]]:
    """{group: {pid: ticks}} for the sim, the sim's child processes (render) and the controller."""
    groups = {"sim": [pids["sim"]], "sim children (render)": descendants(pids["sim"]),
              "controller": [pids["whole_body_controller"], *descendants(pids["whole_body_controller"])]}
    if "hil_emulator" in pids:
        groups["rig (hil_emulator)"] = [pids["hil_emulator"]]
    return {g: {p: t for p in ps if (t := cpu_ticks(p)) is not None} for g, ps in groups.items()}


def cpu_percent(start: dict[str, dict[int, int]], end: dict[str, dict[int, int]], wall_s: float) -> dict[str, float]:
    """CPU % of one core per group over the window (processes alive at both ends)."""
    out = {}
    for group, ticks in end.items():
        used = sum(t - start[group][p] for p, t in ticks.items() if p in start[group])
        out[group] = 100.0 * used / CLK_TCK / wall_s
    return out


# ---- one run ------------------------------------------------------------------------------------------------
def _num(values: dict[str, str], key: str) -> float | None:
    try:
        return float(values[key])
    except (KeyError, ValueError):
        return None


def run(mode: str, camera: bool, seconds: float, domain_id: int, workdir: Path) -> dict:
    """One run: mode realtime or lockstep (sim.launch.xml) or hil (hil.launch.xml: the controller in hardware
    mode on the rig's emulated CAN motors, on the wall clock)."""
    workdir.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    launched = time.monotonic()
    camera_arg = f"camera_enabled:={'true' if camera else 'false'}"
    if mode == "hil":
        stack = Stack.sim(domain_id, workdir, camera_arg, file="hil.launch.xml")
    else:
        stack = Stack.sim(domain_id, workdir, f"mode:={mode}", camera_arg)
    probe = None
    try:
        probe = Probe(domain_id)
        if mode in ("realtime", "hil"):
            stack.wait_log(r"\[whole_body_controller\].*the loop takes the robot", START_S, "the hand-over")
        else:
            probe.next_diag(stack, "controller_state running", lambda d: d.get("controller_state") == "running")
        handover_s = time.monotonic() - launched
        pids = stack.child_pids()
        missing = {"sim", "whole_body_controller"} - pids.keys()
        if missing:
            raise RuntimeError(f"no pid for {sorted(missing)} in the launch output:\n{stack.output()[-3000:]}")

        probe.wait_topics(stack, clock=mode != "hil")  # HIL runs on the wall clock: nothing uses /clock
        # window start: at a fresh /diagnostics message (its counters), CPU times read at once
        d0 = probe.next_diag(stack, "the first /diagnostics of the window")
        with probe.lock:
            buses0 = bus_figures(probe.actuators)
        t0 = time.monotonic()
        cpu0 = cpu_snapshot(pids)
        log0 = len(stack.output().splitlines())
        while time.monotonic() < t0 + seconds:
            stack.check_alive("measuring")
            time.sleep(0.2)
        d1 = probe.next_diag(stack, "the last /diagnostics of the window")
        t1 = time.monotonic()
        with probe.lock:
            buses1 = bus_figures(probe.actuators)
        cpu1 = cpu_snapshot(pids)
        log = stack.output().splitlines()[log0:]  # the window's lines (stopping makes the nodes complain)
        with probe.lock:
            clock = [c for c in probe.clock if t0 <= c[0] <= t1]
            rtf = [f for t, f in probe.rtf if t0 <= t <= t1]
    finally:
        if probe is not None:
            probe.close()
        code = stack.stop()
    wall = t1 - t0
    delta = {k: (None if _num(d1, k) is None or _num(d0, k) is None else _num(d1, k) - _num(d0, k)) for k in COUNTERS}
    ticks, misses = delta["loop_ticks"], delta["loop_deadline_misses"]
    cpu = cpu_percent(cpu0, cpu1, wall)
    sim_wall = None  # between the first and the last /clock received in the window
    if len(clock) >= 2 and clock[-1][0] > clock[0][0]:
        sim_wall = (clock[-1][1] - clock[0][1]) / (clock[-1][0] - clock[0][0])
    errors = [line for line in log if re.search(r"\[(ERROR|FATAL)\]", line)]
    warnings = [line for line in log if re.search(r"\[WARN(ING)?\]", line)]
    result = {
        "mode": mode, "camera_enabled": camera, "window_wall_s": wall, "handover_after_launch_s": handover_s,
        "load_average_1min_at_launch": load, "launch_exit_code": code,
        **{f"{k}_window": v for k, v in delta.items()},
        "loop_ticks_per_wall_s": None if ticks is None else ticks / wall,
        "loop_deadline_misses_pct": None if not ticks or misses is None else 100.0 * misses / ticks,
        **{f"{k}_since_loop_start": _num(d1, k) for k in SINCE_START},
        "controller_state_at_end": d1.get("controller_state"), "loop_state_at_end": d1.get("loop_state"),
        "fault_at_end": d1.get("fault"), "loop_message_at_end": d1.get("loop_message"),
        "window_log_warn_lines": len(warnings), "window_log_error_lines": len(errors),
        "window_log_problems": (errors + warnings)[:10],
        "rtf_samples": rtf, "rtf_mean": sum(rtf) / len(rtf) if rtf else None, "rtf_min": min(rtf) if rtf else None,
        "rtf_seconds_below_goal": sum(f < RTF_GOAL for f in rtf),
        "sim_time_per_wall_time_clock": sim_wall,
        "cpu_pct_of_one_core": {**cpu, "total": sum(cpu.values())},
    }
    if buses1:  # HIL: per bus over the window (counters) and since the start (round trip percentiles)
        result["buses"] = {b: {k: (v - buses0.get(b, c1)[k] if k in ("cycles", "missing", "late", "reconnects") else v)
                               for k, v in c1.items()} for b, c1 in buses1.items()}
    if mode in ("realtime", "hil"):
        result["real_time_held"] = bool(rtf) and min(rtf) >= RTF_GOAL and result["loop_deadline_misses_pct"] is not None \
            and result["loop_deadline_misses_pct"] <= MISSES_GOAL_PCT
    return result


# ---- report -------------------------------------------------------------------------------------------------
def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


ROWS = (  # label, figure of one run
    ("window (wall) [s]", lambda r: _fmt(r["window_wall_s"], ".1f")),
    ("hand-over after launch [s]", lambda r: _fmt(r["handover_after_launch_s"], ".1f")),
    ("load average (1 min) at launch", lambda r: _fmt(r["load_average_1min_at_launch"], ".2f")),
    ("loop ticks", lambda r: _fmt(r["loop_ticks_window"], ".0f")),
    ("loop ticks per wall second", lambda r: _fmt(r["loop_ticks_per_wall_s"], ".1f")),
    ("deadline misses", lambda r: _fmt(r["loop_deadline_misses_window"], ".0f")),
    ("deadline misses [% of ticks]", lambda r: _fmt(r["loop_deadline_misses_pct"], ".3f")),
    ("states received", lambda r: _fmt(r["loop_states_received_window"], ".0f")),
    ("ticks without a state", lambda r: _fmt(r["loop_ticks_without_state_window"], ".0f")),
    ("sync waits (lockstep QP hand-off)", lambda r: _fmt(r["loop_sync_waits_window"], ".0f")),
    ("wake-up latency p50 [us] *", lambda r: _fmt(r["loop_latency_p50_us_since_loop_start"], ".1f")),
    ("wake-up latency p99 [us] *", lambda r: _fmt(r["loop_latency_p99_us_since_loop_start"], ".1f")),
    ("wake-up latency max [us] *", lambda r: _fmt(r["loop_latency_max_us_since_loop_start"], ".1f")),
    ("compute p99 [us] *", lambda r: _fmt(r["loop_compute_p99_us_since_loop_start"], ".1f")),
    ("sim real-time factor, mean", lambda r: _fmt(r["rtf_mean"], ".3f")),
    ("sim real-time factor, min", lambda r: _fmt(r["rtf_min"], ".3f")),
    (f"seconds with factor < {RTF_GOAL}", lambda r: f"{r['rtf_seconds_below_goal']} of {len(r['rtf_samples'])}"),
    ("sim time / wall time (/clock)", lambda r: _fmt(r["sim_time_per_wall_time_clock"], ".3f")),
    ("CPU sim [% of one core]", lambda r: _fmt(r["cpu_pct_of_one_core"]["sim"], ".1f")),
    ("CPU sim render process [%]", lambda r: _fmt(r["cpu_pct_of_one_core"]["sim children (render)"], ".1f")),
    ("CPU controller [%]", lambda r: _fmt(r["cpu_pct_of_one_core"]["controller"], ".1f")),
    ("CPU HIL rig [%]", lambda r: _fmt(r["cpu_pct_of_one_core"].get("rig (hil_emulator)"), ".1f")),
    ("CPU total [%]", lambda r: _fmt(r["cpu_pct_of_one_core"]["total"], ".1f")),
    ("controller / loop state at end", lambda r: f"{r['controller_state_at_end']}/{r['loop_state_at_end']}"),
    ("WARN / ERROR log lines in the window", lambda r: f"{r['window_log_warn_lines']} / {r['window_log_error_lines']}"),
    ("launch exit code (SIGINT)", lambda r: _fmt(r["launch_exit_code"], "d")),
    (f"real time held (RTF >= {RTF_GOAL}, misses <= {MISSES_GOAL_PCT} %)",
     lambda r: ("yes" if r["real_time_held"] else "NO") if "real_time_held" in r else "not paced"),
)


def print_table(results: dict[str, dict[str, dict]]) -> None:
    columns = [(scenario, mode, r) for scenario, runs in results.items() for mode, r in runs.items()]
    label_w, col_w = max(len(label) for label, _ in ROWS) + 2, 16
    print("\n" + " " * label_w + "".join(f"{s:>{col_w}}" for s, _, _ in columns))
    print(f"{'metric':{label_w}}" + "".join(f"{m:>{col_w}}" for _, m, _ in columns))
    print("-" * (label_w + col_w * len(columns)))
    for label, figure in ROWS:
        print(f"{label:{label_w}}" + "".join(f"{figure(r):>{col_w}}" for _, _, r in columns))
    for scenario, mode, r in columns:
        if r["loop_state_at_end"] != "RUNNING" or r["fault_at_end"]:
            print(f"{scenario}, {mode}: at the end the loop is {r['loop_state_at_end']} "
                  f"({r['loop_message_at_end'] or 'no message'}), controller fault '{r['fault_at_end'] or 'none'}'")
        for line in r["window_log_problems"][:3]:
            print(f"{scenario}, {mode}, in the window: {line[:160]}")
    print("* histograms since the loop started (start-up included), not only the window; counters are the window's.")
    print(f"Judged by: real time holds when the sim's real-time factor is >= {RTF_GOAL} in every one-second sample "
          f"(/sim/real_time_factor) and deadline misses are <= {MISSES_GOAL_PCT} % of ticks. Lockstep is not paced: "
          "its factor is how fast this machine runs the stack (no goal).")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("OPTIMUS_BENCH_REALTIME_S", "30")),
                        help="wall seconds measured per run, after the controller took the robot")
    parser.add_argument("--camera", choices=("both", "off", "on"), default="both",
                        help="scenarios: camera_enabled false, true or both (default; the camera adds about a minute)")
    parser.add_argument("--domain", type=int, default=91, help="ROS domain id (the next free one up to 100 if held)")
    parser.add_argument("--json", type=Path, help="write the figures as JSON to this path")
    # under `python -m benchmarks realtime --seconds 15` the benchmark names are in sys.argv too: ignore them
    args, _ = parser.parse_known_args(argv if argv is not None else sys.argv[1:])
    domain_id, lock = claim_free_ros_domain(args.domain)
    scenarios = {f"camera {c}": c == "on" for c in ("off", "on") if args.camera in ("both", c)}
    print(f"optimus-launch sim.launch.xml, {args.seconds:g} s wall per run after the hand-over, ROS domain {domain_id}; "
          f"scenarios: {', '.join(scenarios)}; machine: {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    results: dict[str, dict[str, dict]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="optimus_bench_realtime_") as tmp:
            for scenario, camera in scenarios.items():
                for mode in ("realtime", "lockstep"):
                    print(f"  {scenario}, {mode} ...", flush=True)
                    work = Path(tmp) / f"{scenario.replace(' ', '_')}_{mode}"
                    results.setdefault(scenario, {})[mode] = run(mode, camera, args.seconds, domain_id, work)
    finally:
        lock.close()
    print_table(results)
    if args.json is not None:
        figures = {"seconds": args.seconds, "ros_domain": domain_id, "cpus": os.cpu_count(),
                   "criteria": {"rtf_min_per_second": RTF_GOAL, "deadline_misses_pct_max": MISSES_GOAL_PCT},
                   "scenarios": results}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
