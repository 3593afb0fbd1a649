"""Real-time core: C RNEA vs pinocchio.rnea, and the 1 kHz loop's timing over the loopback transport.

Judged by: C RNEA <= 2 us per call (tight C loop); one Python call of the C RNEA <= 0.5x one
call of pinocchio.rnea; the loop at 1 kHz with the humanoid ID every tick: deadline misses <= 0.1 % of
ticks (with SCHED_FIFO), compute <= 50 us per tick. Loop duration: env OPTIMUS_BENCH_LOOP_S (default 60).
"""

from __future__ import annotations

import os
import time
import timeit

import numpy as np
import pinocchio as pin

from optimus_control.model import RobotModel
from optimus_control.rt import Dynamics, Loop, LoopbackTransport, LoopConfig, LoopState


def per_call_s(fn, number: int, repeat: int = 7) -> float:
    """Best of `repeat` runs of `number` calls, in thread CPU time: the least disturbed figure on a shared
    machine (time slices given to other processes do not count; the C tight loop is timed the same way)."""
    return min(timeit.repeat(fn, number=number, repeat=repeat, timer=time.thread_time)) / number


def bench_rnea(robot: RobotModel, dyn: Dynamics) -> None:
    model, data = robot.model, robot.model.createData()
    rng = np.random.default_rng(0)
    q = pin.randomConfiguration(model, -np.ones(model.nq), np.ones(model.nq))
    v, a = rng.uniform(-1, 1, model.nv), rng.uniform(-1, 1, model.nv)
    out = np.empty(model.nv)
    assert np.allclose(dyn.rnea(q, v, a), pin.rnea(model, data, q, v, a), rtol=1e-9, atol=1e-9)

    c_tight = min(dyn.time_rnea(q, v, a, 200_000) for _ in range(7))
    c_call = per_call_s(lambda: dyn.rnea(q, v, a, out), 20_000)
    c_call_alloc = per_call_s(lambda: dyn.rnea(q, v, a), 20_000)
    pin_call = per_call_s(lambda: pin.rnea(model, data, q, v, a), 20_000)
    print(f"RNEA, {robot.config.name} (nq={model.nq}, nv={model.nv}), best of 7, thread CPU time per call:")
    print(f"  C kernel, tight C loop            {c_tight * 1e6:8.3f} us/call   (goal <= 2 us: "
          f"{'met' if c_tight <= 2e-6 else 'NOT met'})")
    print(f"  pinocchio.rnea, one Python call   {pin_call * 1e6:8.3f} us/call")
    print(f"  C kernel / pinocchio call         {c_tight / pin_call:8.3f}")
    print(f"  C rnea, one Python call (out=)    {c_call * 1e6:8.3f} us/call   ratio to pinocchio "
          f"{c_call / pin_call:.3f} (goal <= 0.5: {'met' if c_call / pin_call <= 0.5 else 'NOT met'})")
    print(f"  C rnea, one Python call (new out) {c_call_alloc * 1e6:8.3f} us/call   ratio to pinocchio "
          f"{c_call_alloc / pin_call:.3f}")


def bench_loop(robot: RobotModel, dyn: Dynamics, seconds: float) -> None:
    n = robot.n_joints
    lb = LoopbackTransport(n, len(robot.config.feet))
    q_full = robot.standing_configuration()
    lb.set_state(q=q_full[7:], v=np.full(n, 0.1))
    loop = Loop(dyn, lb, LoopConfig.for_robot(robot, mode="realtime", rate_hz=1000.0))
    refs = dict(qdd=np.full(dyn.nv, 0.05), q=q_full[7:], v=np.zeros(n), kp=robot.kp, kd=robot.kd,
                contact_wrenches=np.tile([0.0, 0.0, 350.0, 0.0, 0.0, 0.0], (2, 1)), contacts_active=[1.0, 1.0],
                base_pose=q_full[:7], base_twist=np.zeros(6))
    loop.set_references(**refs)
    print(f"\nLoop: {seconds:.0f} s at 1 kHz, real-time mode, loopback transport, humanoid ID + 2 contacts every tick;")
    print("  references refreshed from Python at 250 Hz")
    result_rt = None
    try:
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loop.start()
        result_rt = [str(w.message) for w in caught]
        end = time.monotonic() + seconds
        not_running = 0
        while time.monotonic() < end:
            loop.set_references(**refs)
            time.sleep(0.004)
            if loop.status().state != LoopState.RUNNING:
                not_running += 1
        stats, status = loop.stats(), loop.status()
    finally:
        loop.close()
    ticks = stats["ticks"]
    lat, comp = stats["wakeup_latency"], stats["compute"]
    misses = stats["deadline_misses"]
    print(f"  real-time settings: {'all applied (SCHED_FIFO 80, mlockall)' if not result_rt else result_rt[0]}")
    print(f"  ticks {ticks}, states received {stats['states_received']}, final state {status.state.name}"
          f"{' (' + status.message + ')' if status.message else ''}, polls not RUNNING {not_running}")
    print(f"  wake-up latency  p50 {lat['p50_us']:7.1f} us  p99 {lat['p99_us']:7.1f} us  p99.9 {lat['p999_us']:7.1f} us"
          f"  max {lat['max_us']:8.1f} us")
    print(f"  compute per tick p50 {comp['p50_us']:7.1f} us  p99 {comp['p99_us']:7.1f} us  p99.9 {comp['p999_us']:7.1f} us"
          f"  max {comp['max_us']:8.1f} us  mean {comp['mean_us']:.1f} us")
    print(f"    goal <= 50 us: {'met' if comp['p99_us'] <= 50 else 'NOT met'} at p99, "
          f"{'met' if comp['p999_us'] <= 50 else 'NOT met'} at p99.9 (the tail includes preemption of the thread)")
    pct = 100.0 * misses / max(ticks, 1)
    print(f"  deadline misses {misses} = {pct:.3f} % of ticks (goal <= 0.1 %: {'met' if pct <= 0.1 else 'NOT met'}),"
          f" skipped periods {stats['skipped_periods']}")
    print(f"  machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, kernel {os.uname().release}")


def main() -> None:
    robot = RobotModel.load()
    dyn = Dynamics.from_robot_model(robot)
    bench_rnea(robot, dyn)
    bench_loop(robot, dyn, float(os.environ.get("OPTIMUS_BENCH_LOOP_S", "60")))


if __name__ == "__main__":
    main()
