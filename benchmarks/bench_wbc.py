"""Whole-body controller timing, QP solver comparison and push-recovery limits.

Figures printed, with their goals:
  * WBC update (model update + QP build + solve) median / p99 at the shipped rate (config/whole_body_controller.yaml,
    250 Hz): goal median <= 1 ms, p99 <= 2 ms;
  * QP solve alone, median: goal <= 0.3 ms;
  * solver comparison on the same recorded QPs (proxsuite direct with warm start vs qpsolvers backends);
  * largest push survived per direction (``--push``, slow) and the 5-minute balance (``--long``).
Run: ``python -m benchmarks wbc`` or ``python -m benchmarks.bench_wbc [--push] [--long]``.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time

import numpy as np
import pinocchio as pin

from optimus_control.apps.evaluation import FallCriteria, base_tilt_rad, count_falls
from optimus_control.control import QpSolver, WbcSettings, WholeBodyController
from optimus_control.control.lockstep_runner import LockstepRunner
from optimus_control.model import RobotModel
from optimus_control.sim.world import SimWorld

FORWARD_GRASP = np.column_stack([[0, 0, 1], [0, 1, 0], [-1, 0, 0]]).astype(float)
GOAL_UPDATE_MEDIAN_MS, GOAL_UPDATE_P99_MS, GOAL_SOLVE_MEDIAN_MS = 1.0, 2.0, 0.3


def record_run(robot: RobotModel, duration_s: float = 12.0):
    """Stand and reach (both hands) in lockstep; returns the states and goals fed to the controller and
    the QP problems it built (for the solver comparison)."""
    world = SimWorld(robot)
    runner = LockstepRunner(world, robot)
    ctl = runner.controller
    states, goals, problems = [], [], []
    original_solve, original_update = ctl.solver.solve, ctl.update

    def solve(problem):
        result = original_solve(problem)
        if len(states) % 5 == 0:
            problems.append(copy.deepcopy(problem))
        return result

    def update(q, v, time_s, state_time_s=None):
        states.append((q.copy(), v.copy(), time_s))
        return original_update(q, v, time_s, state_time_s)

    ctl.solver.solve, ctl.update = solve, update
    runner.start()
    start_state = runner.full_state()
    rng = np.random.default_rng(3)
    while world.time_s < duration_s:
        for hand, sign in (("left", 1.0), ("right", -1.0)):
            p = np.array([rng.uniform(0.3, 0.42), sign * rng.uniform(0.18, 0.3), rng.uniform(0.95, 1.1)])
            goals.append((world.time_s, hand, pin.SE3(FORWARD_GRASP, p)))
            ctl.set_hand_target(hand, goals[-1][2])
        runner.run(2.0)
    world.close()
    return start_state, states, goals, problems


def replay_timing(robot: RobotModel, start_state, states, goals):
    """Feed the recorded states and goals to a fresh controller, timing each update (no simulator in the process)."""
    ctl = WholeBodyController(robot)
    ctl.start(*start_state, states[0][2])
    pending = list(goals)
    phases, updates = [], []
    for q, v, t in states:
        while pending and pending[0][0] <= t:
            _, hand, pose = pending.pop(0)
            ctl.set_hand_target(hand, pose)
        ctl.update(q, v, t)
        updates.append(ctl.update_time_s)
        phases.append([ctl.timing_s["model"], ctl.timing_s["build"], ctl.timing_s["solve"]])
    phases = np.array(phases) * 1e3
    med = np.median(phases, axis=0)
    print(f"median phases [ms]: model update {med[0]:.3f}, QP build (tasks + constraints) {med[1]:.3f}, solve {med[2]:.3f}")
    return np.array(updates) * 1e3, phases.sum(axis=1), phases[:, 2]


def compare_solvers(problems) -> list[tuple[str, float, float, int]]:
    rows = []
    import warnings

    warnings.filterwarnings("ignore", message=".*csc_matrix.*")  # OSQP via qpsolvers converts dense matrices
    for backend in ("proxsuite", "qpsolvers:proxqp", "qpsolvers:daqp", "qpsolvers:quadprog", "qpsolvers:osqp"):
        solver = QpSolver(backend)
        times, failures, reference_gap = [], 0, []
        baseline = QpSolver("proxsuite")
        for p in problems:
            start = time.perf_counter()
            result = solver.solve(p)
            times.append(time.perf_counter() - start)
            if not result.ok:
                failures += 1
                continue
            ref = baseline.solve(p)
            if ref.ok:
                reference_gap.append(np.abs(result.x - ref.x).max())
        times_ms = np.array(times) * 1e3
        rows.append((backend, float(np.median(times_ms)), float(np.percentile(times_ms, 99)), failures,
                     float(np.median(reference_gap)) if reference_gap else float("nan")))
    return rows


def largest_push(robot: RobotModel) -> dict[str, float]:
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "test"))
    from test_wbc_push_recovery import DIRECTIONS, push_and_watch, survived

    out = {}
    for side, direction in DIRECTIONS.items():
        best = 0.0
        for force in (40, 60, 80, 100, 120, 140, 160, 180, 200):
            if not survived(push_and_watch(robot, np.array(direction), float(force))):
                break
            best = float(force)
        out[side] = best
        print(f"  push from the {side:5s}: largest survived {best:.0f} N for 0.2 s", flush=True)
    return out


def long_balance(robot: RobotModel, duration_s: float = 300.0) -> None:
    world = SimWorld(robot)
    runner = LockstepRunner(world, robot)
    runner.start()
    heights, tilts, com_errors = [], [], []
    for _ in range(int(duration_s)):
        runner.run(1.0)
        truth = world.ground_truth()
        heights.append(truth.base_position[2])
        tilts.append(base_tilt_rad(truth.base_orientation_xyzw))
        com_errors.append(runner.controller.tasks["com"].error_norm())
    state = runner.controller.status().state.value
    falls = count_falls(zip(heights, tilts), FallCriteria.for_robot(robot))
    print(f"  {duration_s:.0f} s balance: state {state}, {falls} falls, base height range {1e3 * np.ptp(heights):.2f} mm, "
          f"max CoM error {1e3 * max(com_errors):.2f} mm")
    world.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--push", action="store_true", help="search the largest push survived per direction (slow)")
    parser.add_argument("--long", action="store_true", help="5-minute balance run")
    parser.add_argument("--duration", type=float, default=12.0, help="simulated seconds of the timing run")
    args = parser.parse_args(argv if argv is not None else [a for a in sys.argv[1:] if a.startswith("--")])
    robot = RobotModel.load()
    start_state, states, goals, problems = record_run(robot, args.duration)
    updates, core, solves = replay_timing(robot, start_state, states, goals)
    n_var = problems[0].H.shape[0] if problems else 0
    print(f"WBC at {WbcSettings().rate_hz:g} Hz (shipped config), {len(updates)} updates replayed from a lockstep "
          f"stand-and-reach run, QP with {n_var} variables, "
          f"{problems[0].A.shape[0]} equalities, {problems[0].C.shape[0]} inequalities + bounds")
    print(f"{'figure':40s} {'median':>9s} {'p99':>9s} {'max':>9s}   goal")
    print(f"{'model update + QP build + solve [ms]':40s} {np.median(core):9.3f} {np.percentile(core, 99):9.3f} "
          f"{core.max():9.3f}   median <= {GOAL_UPDATE_MEDIAN_MS}, p99 <= {GOAL_UPDATE_P99_MS}")
    print(f"{'whole update() incl. references [ms]':40s} {np.median(updates):9.3f} {np.percentile(updates, 99):9.3f} "
          f"{updates.max():9.3f}")
    print(f"{'QP solve alone (proxsuite, warm) [ms]':40s} {np.median(solves):9.3f} {np.percentile(solves, 99):9.3f} "
          f"{solves.max():9.3f}   median <= {GOAL_SOLVE_MEDIAN_MS}")
    print(f"\nsolver comparison on {len(problems)} recorded QPs (in sequence; proxsuite warm-starts from the previous one)")
    print(f"{'backend':22s} {'median ms':>10s} {'p99 ms':>10s} {'failures':>9s} {'|x - x_proxsuite| median':>26s}")
    for name, med, p99, fails, gap in compare_solvers(problems):
        print(f"{name:22s} {med:10.3f} {p99:10.3f} {fails:9d} {gap:26.2e}")
    if args.push:
        largest_push(robot)
    if args.long:
        long_balance(robot)


if __name__ == "__main__":
    main()
