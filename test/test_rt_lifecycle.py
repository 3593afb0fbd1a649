"""Start, stop and restart leave no thread or shared-memory segment behind."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from optimus_control.errors import ConfigError, RealTimeError
from optimus_control.rt import Dynamics, Loop, LoopbackTransport, LoopConfig, LoopState, RobotBus, ShmTransport

pytestmark = pytest.mark.realtime


def task_count() -> int:
    """Loop threads of this process (named by the C loop); other libraries' threads come and go."""
    count = 0
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/comm") as comm:
                count += comm.read().strip() == "optimus_rt"
        except FileNotFoundError:  # the thread ended while listing
            pass
    return count


def shm_entries() -> set[str]:
    """This process's bus segments (other processes on the machine create and remove their own)."""
    return {name for name in os.listdir("/dev/shm") if name.startswith("optimus_test_") and str(os.getpid()) in name}


def wait_for(predicate, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


@pytest.fixture(scope="module")
def dyn(robot):
    return Dynamics.from_robot_model(robot)


def test_realtime_start_stop_restart_leaks_no_thread(robot, dyn):
    lb = LoopbackTransport(robot.n_joints, 2)
    lb.set_state(q=robot.standing_joint_positions())
    loop = Loop(dyn, lb, LoopConfig.for_robot(robot, lock_memory=False))
    before = task_count()
    for _ in range(5):
        loop.start()
        # The thread names itself once it runs: on a loaded machine that can come a moment after start().
        assert loop.running and wait_for(lambda: task_count() == before + 1)
        assert wait_for(lambda: loop.stats()["ticks"] > 5)
        with pytest.raises(RealTimeError, match="already running"):
            loop.start()
        loop.stop()
        # joined; /proc can list an exited thread for a moment after pthread_join returns
        assert not loop.running and wait_for(lambda: task_count() == before)
        assert loop.status().state == LoopState.STOPPED
        tick, tau, state, _ = lb.last_command()
        assert state == LoopState.STOPPED and np.all(tau == 0.0)
    stats = loop.stats()
    assert stats["ticks"] > 5 and stats["wakeup_latency"]["count"] == stats["ticks"]
    loop.close()
    assert wait_for(lambda: task_count() == before)
    # the transport is free again for a new loop
    Loop(dyn, lb, LoopConfig.for_robot(robot, lock_memory=False)).close()


def test_transport_belongs_to_one_loop(robot, dyn):
    lb = LoopbackTransport(robot.n_joints, 2)
    first = Loop(dyn, lb, LoopConfig(lock_memory=False))
    with pytest.raises(RealTimeError, match="already used by another Loop"):
        Loop(dyn, lb, LoopConfig(lock_memory=False))
    first.close()
    with pytest.raises(RealTimeError, match="closed"):
        first.start()


def test_shm_loops_leave_no_segment_or_thread(robot, dyn):
    shm_before, tasks_before = shm_entries(), task_count()
    name = f"optimus_test_life_{os.getpid()}"
    for mode in ("realtime", "lockstep", "realtime"):
        bus = RobotBus.create(name, robot.n_joints, 2)
        transport = ShmTransport(name, robot.n_joints, 2)
        loop = Loop(dyn, transport, LoopConfig.for_robot(robot, mode=mode, lock_memory=False))
        loop.start()
        tick = bus.publish_state(0.0)
        assert bus.wait_command(tick, 5.0)
        assert wait_for(lambda bus=bus: bus.controller_connected)
        time.sleep(0.15)  # no new state: a lockstep loop still reports itself alive (heartbeat while waiting)
        assert bus.controller_connected
        with pytest.raises(RealTimeError, match="still uses"):
            transport.close()
        loop.stop()
        assert bus.controller_state == LoopState.STOPPED and not bus.controller_connected
        loop.close()
        transport.close()
        bus.close()
        assert wait_for(lambda: task_count() == tasks_before)
        assert shm_entries() == shm_before
    assert not os.path.exists(f"/dev/shm/{name}")


def test_refused_realtime_settings_warn_once(robot, dyn, monkeypatch):
    """An impossible priority and CPU are refused: one RuntimeWarning per process, and the loop still runs."""
    import optimus_control.rt.loop as loop_module

    monkeypatch.setattr(loop_module, "_warned_realtime", False)
    lb = LoopbackTransport(robot.n_joints, 2)
    loop = Loop(dyn, lb, LoopConfig.for_robot(robot, lock_memory=False, rt_priority=1000, cpu=4095))
    try:
        with pytest.warns(RuntimeWarning, match="sched_fifo.*affinity|affinity.*sched_fifo") as caught:
            loop.start()
        assert len(caught) == 1
        assert wait_for(lambda: loop.stats()["ticks"] > 2)
        loop.stop()
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            loop.start()  # refused again, but the warning was given already
        loop.stop()
    finally:
        loop.close()


def test_lock_memory_start_stop(robot, dyn):
    """mlockall is taken for the run and released after (or refused with a warning): the loop still runs."""
    lb = LoopbackTransport(robot.n_joints, 2)
    loop = Loop(dyn, lb, LoopConfig.for_robot(robot, lock_memory=True))
    try:
        loop.start()
        assert wait_for(lambda: loop.stats()["ticks"] > 2)
        loop.stop()
    finally:
        loop.close()
    with open("/proc/self/status") as status:
        locked_kb = next(int(line.split()[1]) for line in status if line.startswith("VmLck"))
    assert locked_kb == 0


@pytest.mark.parametrize("bad", [dict(mode="fast"), dict(rate_hz=0.0), dict(damping_kd=-1.0), dict(damping_kd=[1.0, 2.0]),
                                 dict(stale_reference_timeout_s=0.0), dict(contact_wrench_reference="WORLD"),
                                 dict(effort_limit=[1.0])])
def test_bad_config_is_refused(robot, dyn, bad):
    with pytest.raises(ConfigError, match="LoopConfig"):
        Loop(dyn, LoopbackTransport(robot.n_joints, 2), LoopConfig(lock_memory=False, **bad))
