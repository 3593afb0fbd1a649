"""The shared-memory joint bus (robot side in Python, loop in C) and bit-for-bit lockstep runs."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pinocchio as pin
import pytest

from optimus_control.errors import ConfigError, RealTimeError
from optimus_control.rt import (
    Dynamics,
    Loop,
    LoopbackTransport,
    LoopConfig,
    LoopState,
    RobotBus,
    ShmTransport,
    connect_transport,
)

pytestmark = pytest.mark.realtime

DT = 0.001


def bus_name(tag: str) -> str:
    return f"optimus_test_{tag}_{os.getpid()}"


@pytest.fixture(scope="module")
def dyn(robot):
    return Dynamics.from_robot_model(robot)


def run_scenario(robot, dyn, name: str, ticks: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Robot side in this thread (toy joint dynamics driven by the commands), the loop in its native
    lockstep thread; references refreshed every 4 ticks between a command and the next state."""
    n = robot.n_joints
    bus = RobotBus.create(name, n, len(robot.config.feet))
    transport = ShmTransport(name, n, len(robot.config.feet))
    loop = Loop(dyn, transport, LoopConfig.for_robot(robot, mode="lockstep", lock_memory=False))
    q_full = robot.standing_configuration()
    rng = np.random.default_rng(11)
    q, v = q_full[7:] + rng.uniform(-0.02, 0.02, n), np.zeros(n)
    refs = dict(qdd=np.zeros(dyn.nv), q=q_full[7:], v=np.zeros(n), kp=robot.kp, kd=robot.kd,
                contact_wrenches=np.tile([0.0, 0.0, 300.0, 0.0, 0.0, 0.0], (2, 1)), contacts_active=[1.0, 1.0],
                base_pose=q_full[:7], base_twist=np.zeros(6))
    loop.set_references(**refs)
    torques, states = [], []
    try:
        loop.start()
        for k in range(ticks):
            bus.q[:], bus.v[:] = q, v
            bus.foot_wrench[:, 2] = 300.0 + k
            tick = bus.publish_state(k * DT)
            assert bus.wait_command(tick, 5.0), f"no command for tick {tick}"
            assert bus.command_tick == tick
            tau = bus.read_command()
            torques.append(tau)
            states.append(q.copy())
            v = v + DT * (tau - 2.0 * v) / 0.5  # toy joint dynamics: the command drives the state
            q = np.clip(q + DT * v, robot.limits.lower, robot.limits.upper)
            if k % 4 == 3:
                loop.set_references(qdd=0.01 * np.sin(k) * np.ones(dyn.nv), base_pose=q_full[:7],
                                    base_twist=np.zeros(6))
        assert loop.status().state == LoopState.RUNNING
        assert bus.controller_connected and bus.controller_state == LoopState.RUNNING
        state = loop.read_state()
        assert state.tick == ticks and state.foot_wrench[1, 2] == 300.0 + ticks - 1
    finally:
        loop.close()
        transport.close()
        bus.close()
    return np.array(torques), np.array(states)


def test_lockstep_runs_are_bit_for_bit_identical(robot, dyn):
    tau_a, q_a = run_scenario(robot, dyn, bus_name("det_a"))
    tau_b, q_b = run_scenario(robot, dyn, bus_name("det_b"))
    assert np.array_equal(tau_a, tau_b)
    assert np.array_equal(q_a, q_b)
    assert np.ptp(tau_a, axis=0).max() > 1.0  # the scenario actually moves


def test_first_lockstep_command_is_the_control_law(robot, dyn):
    name = bus_name("law")
    n = robot.n_joints
    bus = RobotBus.create(name, n, 2)
    transport = ShmTransport(name, n, 2)
    loop = Loop(dyn, transport, LoopConfig.for_robot(robot, mode="lockstep", lock_memory=False))
    try:
        assert bus.command_tick == -1 and not bus.controller_connected
        np.testing.assert_array_equal(bus.read_command(), np.zeros(n))
        q_full = robot.standing_configuration()
        q = q_full[7:] + 0.01
        v = np.linspace(-0.3, 0.3, n)
        f = np.array([[5.0, -3.0, 320.0, 1.0, -2.0, 0.5], [-4.0, 2.0, 280.0, -1.0, 1.5, 0.0]])
        loop.set_references(qdd=np.full(dyn.nv, 0.1), q=q_full[7:], v=np.zeros(n), kp=robot.kp, kd=robot.kd,
                            contact_wrenches=f, contacts_active=[1, 1], base_pose=q_full[:7], base_twist=np.zeros(6))
        loop.start()
        bus.q[:], bus.v[:] = q, v
        tick = bus.publish_state(0.0)
        assert bus.wait_command(tick, 5.0)
        model, data = robot.model, robot.model.createData()
        qq, vv = np.concatenate([q_full[:7], q]), np.concatenate([np.zeros(6), v])
        expected = pin.rnea(model, data, qq, vv, np.full(dyn.nv, 0.1)).copy()
        for foot, w in zip(robot.config.feet, f):
            expected -= pin.computeFrameJacobian(model, data, qq, robot.frame_id(foot.frame), pin.LOCAL).T @ w
        expected = expected[6:] + robot.kp * (q_full[7:] - q) - robot.kd * v
        expected = np.clip(expected, -dyn.effort_limits, dyn.effort_limits)
        np.testing.assert_allclose(bus.read_command(), expected, rtol=1e-9, atol=1e-9)
        loop.stop()
        assert bus.controller_state == LoopState.STOPPED and not bus.controller_connected
        np.testing.assert_array_equal(bus.read_command(), np.zeros(n))  # the STOPPED command
    finally:
        loop.close()
        transport.close()
        bus.close()


def test_bus_errors_are_clear(robot):
    name = bus_name("err")
    with pytest.raises(RealTimeError, match="start the robot side first"):
        ShmTransport(name, robot.n_joints, 2)
    with pytest.raises(RealTimeError, match="does not exist"):
        RobotBus.attach(name)
    with pytest.raises(RealTimeError, match="must be 1-200 characters"):
        RobotBus.create("bad/name", 3, 0)
    bus = RobotBus.create(name, 5, 1)
    try:
        with pytest.raises(RealTimeError, match="joint/foot counts differ"):
            ShmTransport(name, 6, 1)
        assert bus.publish_state(0.0) == 1
    finally:
        bus.close(unlink=False)  # the robot side goes away, its segment stays
    with pytest.raises(RealTimeError, match="closed"):
        bus.publish_state(0.0)
    again = RobotBus.create(name, 5, 1)  # taken over as it is: the tick sequence continues
    assert again.publish_state(0.1) == 2
    again.close(unlink=False)
    attached = RobotBus.attach(name)
    assert attached.publish_state(0.2) == 3
    attached.close(unlink=False)
    other = RobotBus.create(name, 6, 1)  # another layout: the stale segment is replaced
    try:
        assert other.n_joints == 6 and other.publish_state(0.0) == 1
    finally:
        other.close()
    assert not os.path.exists(f"/dev/shm/{name}")


def test_lockstep_thread_faults_when_the_robot_goes_silent(robot, dyn):
    name = bus_name("silent")
    n = robot.n_joints
    bus = RobotBus.create(name, n, 2)
    transport = ShmTransport(name, n, 2)
    loop = Loop(dyn, transport, LoopConfig.for_robot(robot, mode="lockstep", lock_memory=False, damping_kd=3.0,
                                                    lockstep_timeout_s=0.2))
    try:
        loop.start()
        time.sleep(0.3)  # no state yet: waiting is not a fault
        assert loop.status().state == LoopState.INIT
        bus.v[:] = 0.2
        assert bus.wait_command(bus.publish_state(0.0), 5.0)
        deadline = time.monotonic() + 10.0
        while loop.status().state != LoopState.FAULT and time.monotonic() < deadline:
            time.sleep(0.01)
        status = loop.status()
        assert status.state == LoopState.FAULT and status.reason.name == "TRANSPORT_SILENT"
        assert bus.controller_state == LoopState.FAULT
        np.testing.assert_allclose(bus.read_command(), np.clip(-3.0 * 0.2, -dyn.effort_limits, dyn.effort_limits))
    finally:
        loop.close()
        transport.close()
        bus.close()


def test_connect_transport_waits_for_the_robot_side(robot):
    import threading

    name = bus_name("connect")
    with pytest.raises(RealTimeError, match="start the robot side first"):
        connect_transport(name, 4, 1, timeout_s=0.1)
    created = []
    timer = threading.Timer(0.2, lambda: created.append(RobotBus.create(name, 4, 1)))
    timer.start()
    try:
        transport = connect_transport(name, 4, 1, timeout_s=10.0)
        assert transport.is_open and transport.n_joints == 4
        transport.close()
        with pytest.raises(RealTimeError, match="joint/foot counts differ"):
            connect_transport(name, 5, 1, timeout_s=10.0)  # a real mismatch fails at once
    finally:
        timer.join()
        for bus in created:
            bus.close()


def _source_tick_robot_side(bus, ticks: int, commands: dict, errors: list, max_step_s: float = 0.0) -> None:
    """Robot side for the sync tests: a constant state, one command per tick recorded by tick; each step
    takes up to max_step_s (jitter: sometimes the update is the slower side, sometimes the robot)."""
    rng = np.random.default_rng(17)
    try:
        for k in range(ticks):
            time.sleep(float(rng.uniform(0.0, max_step_s)))
            tick = bus.publish_state(k * DT)
            if not bus.wait_command(tick, 10.0):
                errors.append(f"no command for tick {tick}")
                return
            commands[tick] = bus.read_command()
    except Exception as exc:  # reported by the test thread
        errors.append(repr(exc))


def _sync_loop(robot, dyn, name: str, **overrides):
    n = robot.n_joints
    bus = RobotBus.create(name, n, 2)
    transport = ShmTransport(name, n, 2)
    loop = Loop(dyn, transport, LoopConfig.for_robot(robot, mode="lockstep", lock_memory=False, sync_period_ticks=2,
                                                    **overrides))
    return bus, transport, loop


def test_sync_period_applies_each_update_exactly_one_period_later(robot, dyn):
    """The Python update of sync state s (ticks 2, 4, ...) is seen, once and in order, and its references
    drive ticks s+2 and s+3 exactly, however slow the update is (jittered sleeps stand in for the QP)."""
    import threading

    n, ticks, offset_per_tick = robot.n_joints, 120, 1e-3
    bus, transport, loop = _sync_loop(robot, dyn, bus_name("sync"))
    q_full = robot.standing_configuration()
    bus.q[:] = q_full[7:]
    kp = np.zeros(n)
    kp[0] = 10.0
    gravity = pin.rnea(robot.model, robot.model.createData(), q_full, np.zeros(dyn.nv), np.zeros(dyn.nv))[6:]

    def refs_from(source_tick: int) -> dict:  # joint 0's torque says which state these references came from
        q_ref = q_full[7:].copy()
        q_ref[0] += offset_per_tick * source_tick
        return dict(qdd=np.zeros(dyn.nv), q=q_ref, v=np.zeros(n), kp=kp, kd=np.zeros(n),
                    contact_wrenches=np.zeros((2, 6)), contacts_active=[0.0, 0.0], base_pose=q_full[:7],
                    base_twist=np.zeros(6))

    commands, errors, seen = {}, [], []
    rng = np.random.default_rng(5)
    loop.set_references(**refs_from(0))
    robot_side = threading.Thread(target=_source_tick_robot_side, args=(bus, ticks, commands, errors, 0.003))
    try:
        loop.start()
        robot_side.start()
        while len(seen) < ticks // 2:
            state = loop.wait_update_state(timeout_s=5.0)
            assert state is not None, f"no sync state after {seen[-3:]} ({errors})"
            seen.append(state.tick)
            time.sleep(float(rng.uniform(0.0, 0.006)))  # a jittery update, slower or faster than the robot
            loop.set_references(**refs_from(state.tick))
            loop.mark_processed(state.tick)
        robot_side.join(timeout=10.0)
        assert not errors, errors
        assert seen == list(range(2, ticks + 1, 2))
        source = {t: round((tau[0] - gravity[0]) / (kp[0] * offset_per_tick)) for t, tau in commands.items()}
        for t in range(4, ticks + 1):
            assert source[t] == 2 * ((t - 2) // 2), f"tick {t} used references of state {source[t]}"
        stats = loop.stats()
        assert stats["sync_timeouts"] == 0 and stats["sync_waits"] > 0
    finally:
        robot_side.join(timeout=10.0)
        loop.close()
        transport.close()
        bus.close()


def test_sync_gives_up_on_a_silent_update_and_damps(robot, dyn):
    """An update that never finishes holds the robot side for lockstep_timeout_s once; then the loop
    answers without waiting, the references go stale in sim time and the loop damps."""
    import threading

    n, ticks = robot.n_joints, 200
    bus, transport, loop = _sync_loop(robot, dyn, bus_name("syncdead"), lockstep_timeout_s=0.3)
    q_full = robot.standing_configuration()
    bus.q[:], bus.v[:] = q_full[7:], 0.1
    loop.set_references(qdd=np.zeros(dyn.nv), q=q_full[7:], v=np.zeros(n), kp=robot.kp, kd=robot.kd,
                        base_pose=q_full[:7], base_twist=np.zeros(6))
    commands, errors = {}, []
    robot_side = threading.Thread(target=_source_tick_robot_side, args=(bus, ticks, commands, errors))
    try:
        loop.start()
        robot_side.start()
        first = loop.wait_update_state(timeout_s=5.0)
        assert first is not None and first.tick == 2  # ... and the update never marks it processed
        robot_side.join(timeout=20.0)
        assert not robot_side.is_alive() and not errors, errors
        assert len(commands) == ticks
        stats = loop.stats()
        assert stats["sync_timeouts"] == 1 and stats["sync_wait_s"] >= 0.3
        status = loop.status()
        assert status.state == LoopState.DAMPING and status.reason.name == "STALE_REFERENCE"
        np.testing.assert_allclose(commands[ticks], np.clip(-robot.config.damping_gain * 0.1, -dyn.effort_limits,
                                                            dyn.effort_limits))
    finally:
        robot_side.join(timeout=10.0)
        loop.close()
        transport.close()
        bus.close()


def test_sync_period_must_not_be_negative(robot, dyn):
    transport = LoopbackTransport(robot.n_joints, 2)
    with pytest.raises(ConfigError, match="sync_period_ticks"):
        Loop(dyn, transport, LoopConfig.for_robot(robot, mode="realtime", sync_period_ticks=-1))


def test_realtime_update_states_come_one_period_apart_and_never_hold_the_loop(robot, dyn):
    """Real time with sync_period_ticks: the update thread is woken with a state at least one period after the
    previous one, and the loop answers every state on its own clock even while nobody takes the updates."""
    name = f"optimus_rtupd_{os.getpid()}"
    n = robot.n_joints
    bus = RobotBus.create(name, n, 2)
    transport = ShmTransport(name, n, 2)
    loop = Loop(dyn, transport, LoopConfig.for_robot(robot, mode="realtime", lock_memory=False, rt_priority=0,
                                                     sync_period_ticks=4))
    stop = threading.Event()

    def robot_side():
        k = 0
        while not stop.is_set():
            bus.publish_state(k * DT)
            k += 1
            time.sleep(DT)

    side = threading.Thread(target=robot_side)
    try:
        side.start()
        loop.start()
        ticks = []
        deadline = time.monotonic() + 20.0
        while len(ticks) < 30 and time.monotonic() < deadline:
            state = loop.wait_update_state(1.0)
            if state is not None:
                ticks.append(state.tick)
        assert len(ticks) == 30, ticks
        assert all(b - a >= 4 for a, b in zip(ticks, ticks[1:])), ticks
        time.sleep(0.2)  # nobody takes updates now: the loop keeps answering the robot side
        answered = bus.command_tick
        time.sleep(0.2)
        assert bus.command_tick > answered
        assert loop.stats()["sync_waits"] == 0
    finally:
        stop.set()
        side.join(timeout=10.0)
        loop.close()
        transport.close()
        bus.close()


def test_state_triggered_loop_answers_every_state_and_faults_when_the_robot_side_goes_silent(robot, dyn):
    """trigger="state": each published state is answered (the robot side waits for it, as the real-time sim
    does) whatever the phase of the two clocks; a robot side that stops publishing trips the silent-transport
    watchdog within silent_ticks periods."""
    name = f"optimus_rttrig_{os.getpid()}"
    n = robot.n_joints
    bus = RobotBus.create(name, n, 2)
    transport = ShmTransport(name, n, 2)
    loop = Loop(dyn, transport, LoopConfig.for_robot(robot, mode="realtime", lock_memory=False, rt_priority=0,
                                                     trigger="state"))
    try:
        loop.start()
        unanswered = 0
        for k in range(300):
            tick = bus.publish_state(k * DT)
            unanswered += not bus.wait_command(tick, 0.5)
            time.sleep(0.0003 * (k % 4))  # the robot side's own, uneven pace
        assert unanswered == 0
        assert loop.stats()["states_received"] == 300
        deadline = time.monotonic() + 10.0
        while loop.status().state != LoopState.FAULT and time.monotonic() < deadline:
            time.sleep(0.005)
        status = loop.status()
        assert status.state == LoopState.FAULT and status.reason.name == "TRANSPORT_SILENT", status
    finally:
        loop.close()
        transport.close()
        bus.close()


def test_unknown_trigger_is_refused(robot, dyn):
    transport = LoopbackTransport(robot.n_joints, 2)
    with pytest.raises(ConfigError, match="trigger"):
        Loop(dyn, transport, LoopConfig.for_robot(robot, mode="realtime", trigger="tick"))


def test_state_triggered_loop_ages_references_in_the_robot_sides_time(robot, dyn):
    """trigger="state": a robot side that pauses (a sim descheduled on a busy machine) has not moved on, so
    the references do not go stale during the pause; they do once its own time has run 50 ms past them."""
    name = f"optimus_rtage_{os.getpid()}"
    n = robot.n_joints
    bus = RobotBus.create(name, n, 2)
    transport = ShmTransport(name, n, 2)
    loop = Loop(dyn, transport, LoopConfig.for_robot(robot, mode="realtime", lock_memory=False, rt_priority=0,
                                                     trigger="state", silent_ticks=0))
    q0 = robot.standing_configuration()
    k = 0

    def publish(count: int) -> None:
        nonlocal k
        for _ in range(count):
            tick = bus.publish_state(k * DT)
            assert bus.wait_command(tick, 1.0)
            k += 1

    try:
        loop.start()
        publish(5)
        loop.set_references(qdd=np.zeros(dyn.nv), q=q0[7:], v=np.zeros(n), kp=np.zeros(n), kd=np.zeros(n),
                            base_pose=q0[:7], base_twist=np.zeros(6))
        publish(20)                                  # 20 ms of the robot side's time
        assert loop.status().state == LoopState.RUNNING, loop.status().message
        time.sleep(0.3)                              # the robot side pauses 300 ms of wall time
        publish(10)                                  # 30 ms of its time since the references
        assert loop.status().state == LoopState.RUNNING, loop.status().message
        publish(40)                                  # 70 ms
        status = loop.status()
        assert status.state == LoopState.DAMPING and status.reason.name == "STALE_REFERENCE", status
    finally:
        loop.close()
        transport.close()
        bus.close()
