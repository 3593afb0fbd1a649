"""The sim as the robot side of the real joint bus, driven by the real C loop in lockstep."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from optimus_control.control.joint_gains import capped_joint_gains
from optimus_control.control.static_support import static_foot_wrenches
from optimus_control.rt import Dynamics, Loop, LoopConfig, LoopState, RobotBus, ShmTransport
from optimus_control.sim.runner import SimRunner, SimSettings

pytestmark = pytest.mark.realtime

DT = 0.001


@pytest.fixture(scope="module")
def dyn(robot):
    return Dynamics.from_robot_model(robot)


def standing_through_the_bus(robot, dyn, tag: str, seconds: float, scene: str = ""):
    """Sim (this thread) + C loop (native lockstep thread): joint PD to the standing posture, plus
    inverse dynamics with the weight shared by the feet. The controller sees only the bus state and
    the nominal standing configuration (no ground truth)."""
    name = f"optimus_simtest_{tag}_{os.getpid()}"
    bus = RobotBus.create(name, robot.n_joints, len(robot.config.feet))
    runner = SimRunner(SimSettings(scene=scene, mode="lockstep", camera_enabled=False, seed=3), bus)
    transport = ShmTransport(name, robot.n_joints, len(robot.config.feet))
    loop = Loop(dyn, transport, LoopConfig.for_robot(robot, mode="lockstep", lock_memory=False))
    q0 = robot.standing_configuration()
    kp, kd = capped_joint_gains(robot, robot.kp, robot.kd, DT)
    loop.set_references(qdd=np.zeros(dyn.nv), q=q0[7:], v=np.zeros(robot.n_joints), kp=kp, kd=kd,
                        contact_wrenches=static_foot_wrenches(robot, q0),
                        contacts_active=[1.0, 1.0], base_pose=q0[:7], base_twist=np.zeros(6))
    base = []
    try:
        loop.start()
        z0 = runner.world.ground_truth().base_position[2]
        while runner.world.time_s < seconds - 1e-9:
            if not runner.tick():
                continue
            k = int(round(runner.world.time_s / DT))
            if k % 20 == 0:  # references stay fresh (the loop damps on stale references)
                loop.set_references(qdd=np.zeros(dyn.nv), base_pose=q0[:7], base_twist=np.zeros(6))
            truth = runner.world.ground_truth()
            base.append(np.concatenate([truth.base_position, truth.base_orientation_xyzw]))
        assert loop.status().state == LoopState.RUNNING, loop.status().message
        assert bus.command_tick == runner.server.tick
    finally:
        loop.close()
        transport.close()
        runner.close()
        bus.close()
    return np.array(base), z0


def test_robot_stands_10s_through_the_bus(robot, dyn):
    base, z0 = standing_through_the_bus(robot, dyn, "stand", 10.0)
    assert len(base) == 10_000
    final = base[-1]
    assert abs(final[2] - z0) < 0.02
    assert np.linalg.norm(final[:2]) < 0.02
    x, y, _, _ = final[3:]
    assert np.degrees(np.arccos(1 - 2 * (x * x + y * y))) < 2.0   # tilt of the pelvis z axis
    assert np.ptp(base[-1000:, 2]) < 0.002                         # at rest during the last second


def test_lockstep_through_the_bus_is_deterministic(robot, dyn):
    a, _ = standing_through_the_bus(robot, dyn, "det_a", 0.5, scene="sorting_cell")
    b, _ = standing_through_the_bus(robot, dyn, "det_b", 0.5, scene="sorting_cell")
    assert np.array_equal(a, b)


def _wait_for(predicate, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


class _FreshReferences:
    """Keeps the loop's standing references fresh from a thread (a stand-in for the QP) until stopped."""

    def __init__(self, robot, dyn, loop):
        q0 = robot.standing_configuration()
        kp, kd = capped_joint_gains(robot, robot.kp, robot.kd, DT)
        self.refs = dict(qdd=np.zeros(dyn.nv), q=q0[7:], v=np.zeros(robot.n_joints), kp=kp, kd=kd,
                         contact_wrenches=static_foot_wrenches(robot, q0), contacts_active=[1.0, 1.0],
                         base_pose=q0[:7], base_twist=np.zeros(6))
        self.loop, self.stop = loop, threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self):
        while not self.stop.is_set():
            self.loop.set_references(**self.refs)
            time.sleep(0.004)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)


def _realtime_rig(robot, dyn, tag: str, **settings):
    name = f"optimus_simtest_rt_{tag}_{os.getpid()}"
    bus = RobotBus.create(name, robot.n_joints, len(robot.config.feet))
    runner = SimRunner(SimSettings(scene="", mode="realtime", camera_enabled=False, **settings), bus)
    transport = ShmTransport(name, robot.n_joints, len(robot.config.feet))
    loop = Loop(dyn, transport, LoopConfig.for_robot(robot, mode="realtime", lock_memory=False, rt_priority=0,
                                                     trigger="state"))
    return bus, runner, transport, loop


def test_realtime_harness_hands_over_to_a_running_loop_only_and_catches_on_damping(robot, dyn):
    """Real-time mode: the support harness holds the robot while no controller controls it, including a loop
    that answers with damping in INIT; it lets go when the loop runs, and catches the robot when the loop
    damps (stale references); each change is reported with the loop's state and reason."""
    bus, runner, transport, loop = _realtime_rig(robot, dyn, "catch")
    physics = threading.Thread(target=runner.run)
    try:
        physics.start()
        assert _wait_for(lambda: runner.world.time_s > 0.2 and runner.harness.engaged), "no harness without a controller"
        loop.start()  # no references: INIT, answering with damping
        assert _wait_for(lambda: bus.command_tick > 0 and runner.server.answering)
        time.sleep(0.3)
        assert runner.harness.engaged and not runner.server.controlled, "a damping loop in INIT took the robot"
        assert list(runner.server.control_changes) == []
        with _FreshReferences(robot, dyn, loop):
            assert _wait_for(lambda: not runner.harness.engaged), "the harness did not let go of a running loop"
            time.sleep(1.0)
            assert loop.status().state == LoopState.RUNNING, loop.status().message
        assert _wait_for(lambda: runner.harness.engaged), "the harness did not catch the robot when the loop damped"
        assert loop.status().state == LoopState.DAMPING
        changes = list(runner.server.control_changes)
        assert [c.controlled for c in changes] == [True, False], changes
        assert "DAMPING" in changes[1].detail and "STALE_REFERENCE" in changes[1].detail
        assert runner.world.ground_truth().base_position[2] > 0.8  # stood on the loop, then caught
        assert runner.server.commands_late / max(1, runner.server.commands_applied) < 0.2
    finally:
        runner.stop_event.set()
        physics.join(timeout=10)
        loop.close()
        transport.close()
        runner.close()
        bus.close()


def test_realtime_without_catching_the_damped_robot_is_on_its_own(robot, dyn):
    """harness_catches=false: after the hand-over the harness stays off; a damping loop's answer drives the robot."""
    bus, runner, transport, loop = _realtime_rig(robot, dyn, "nocatch", harness_catches=False)
    physics = threading.Thread(target=runner.run)
    try:
        physics.start()
        loop.start()
        with _FreshReferences(robot, dyn, loop):
            assert _wait_for(lambda: runner.server.controlled), "the loop never took the robot"
        assert _wait_for(lambda: loop.status().state == LoopState.DAMPING)
        time.sleep(0.3)
        assert not runner.harness.engaged and not runner.server.controlled
        assert runner.server.control_changes[-1].controlled is False
    finally:
        runner.stop_event.set()
        physics.join(timeout=10)
        loop.close()
        transport.close()
        runner.close()
        bus.close()
