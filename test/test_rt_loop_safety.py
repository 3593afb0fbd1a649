"""The loop's control law and every safety transition, ticked deterministically (lockstep + loopback)."""

from __future__ import annotations

import time

import numpy as np
import pinocchio as pin
import pytest

from optimus_control.errors import RealTimeError
from optimus_control.rt import Dynamics, Loop, LoopbackTransport, LoopConfig, LoopState, Reason

pytestmark = pytest.mark.realtime

DT = 0.001
DAMP_KD = 4.0


@pytest.fixture(scope="module")
def dyn(robot):
    return Dynamics.from_robot_model(robot)


class Rig:
    """A lockstep loop over a loopback robot standing still, with fresh references."""

    def __init__(self, robot, dyn, **overrides):
        self.robot, self.dyn = robot, dyn
        self.n = robot.n_joints
        self.lb = LoopbackTransport(self.n, len(robot.config.feet), DT)
        cfg = LoopConfig.for_robot(robot, mode="lockstep", damping_kd=DAMP_KD, lock_memory=False, **overrides)
        self.loop = Loop(dyn, self.lb, cfg)
        self.contacts = list(self.loop.contact_frames)
        rng = np.random.default_rng(5)
        self.q_full = robot.standing_configuration()
        self.q = self.q_full[7:] + rng.uniform(-0.05, 0.05, self.n)
        self.q = np.clip(self.q, robot.limits.lower, robot.limits.upper)
        self.v = rng.uniform(-0.5, 0.5, self.n)
        self.lb.set_state(q=self.q, v=self.v)
        self.refs = dict(qdd=rng.uniform(-1, 1, dyn.nv), q=self.q_full[7:].copy(), v=np.zeros(self.n),
                         kp=robot.kp.copy(), kd=robot.kd.copy(), contact_wrenches=rng.normal(0, 50, (2, 6)) +
                         [0, 0, 350, 0, 0, 0], contacts_active=np.array([1.0, 1.0]), base_pose=self.q_full[:7],
                         base_twist=rng.uniform(-0.2, 0.2, 6))
        self.refresh()

    def refresh(self, **changes) -> None:
        self.refs.update(changes)
        self.loop.set_references(**self.refs)

    def tick(self, n: int = 1) -> np.ndarray:
        for _ in range(n):
            assert self.loop.tick_once(0.001) or self.lb.silent
        return self.lb.last_command()[1]

    def expected(self) -> np.ndarray:
        """tau = ID(q, v, qdd) - sum J^T f + Kp (q_ref - q) + Kd (v_ref - v), clamped; via Pinocchio."""
        model, data, r = self.robot.model, self.robot.model.createData(), self.refs
        q = np.concatenate([r["base_pose"], self.q])
        v = np.concatenate([r["base_twist"], self.v])
        tau = pin.rnea(model, data, q, v, r["qdd"]).copy()
        for fid, w, on in zip(self.contacts, r["contact_wrenches"], r["contacts_active"]):
            if on:
                tau -= pin.computeFrameJacobian(model, data, q, fid, pin.LOCAL).T @ w
        tau = tau[6:] + r["kp"] * (r["q"] - self.q) + r["kd"] * (r["v"] - self.v)
        effort = self.dyn.effort_limits
        return np.clip(tau, -effort, effort)

    def damping(self) -> np.ndarray:
        return np.clip(-DAMP_KD * np.nan_to_num(self.v, nan=0.0) * np.isfinite(self.v), -self.dyn.effort_limits,
                       self.dyn.effort_limits)

    def state(self) -> LoopState:
        return self.loop.status().state


@pytest.fixture
def rig(robot, dyn):
    r = Rig(robot, dyn)
    yield r
    r.loop.close()


def test_init_damps_until_references_then_runs_the_control_law(robot, dyn):
    n = robot.n_joints
    lb = LoopbackTransport(n, 2, DT)
    v = np.linspace(-1, 1, n)
    lb.set_state(q=robot.standing_joint_positions(), v=v)
    loop = Loop(dyn, lb, LoopConfig.for_robot(robot, mode="lockstep", damping_kd=DAMP_KD, lock_memory=False))
    try:
        assert loop.tick_once(0.001)
        assert loop.status().state == LoopState.INIT
        np.testing.assert_array_equal(lb.last_command()[1], np.clip(-DAMP_KD * v, -dyn.effort_limits, dyn.effort_limits))
        loop.set_references(q=robot.standing_joint_positions())  # control refs but no base state yet
        loop.tick_once(0.001)
        assert loop.status().state == LoopState.INIT
    finally:
        loop.close()


def test_running_torque_matches_pinocchio_control_law(rig):
    tau = rig.tick()
    assert rig.state() == LoopState.RUNNING
    np.testing.assert_allclose(tau, rig.expected(), rtol=1e-9, atol=1e-9)
    state = rig.loop.read_state()
    np.testing.assert_array_equal(state.q, rig.q)
    np.testing.assert_array_equal(state.tau_command, tau)
    assert state.loop_state == LoopState.RUNNING and state.tick == 1 and state.time_s == pytest.approx(DT)
    # one contact released: its wrench no longer enters
    rig.refresh(contacts_active=np.array([1.0, 0.0]))
    np.testing.assert_allclose(rig.tick(), rig.expected(), rtol=1e-9, atol=1e-9)


def test_contact_wrenches_in_world_aligned_axes(robot, dyn):
    rig = Rig(robot, dyn, contact_wrench_reference="LOCAL_WORLD_ALIGNED")
    try:
        tau = rig.tick()
        model, data, r = robot.model, robot.model.createData(), rig.refs
        q = np.concatenate([r["base_pose"], rig.q])
        v = np.concatenate([r["base_twist"], rig.v])
        expected = pin.rnea(model, data, q, v, r["qdd"]).copy()
        for fid, w in zip(rig.contacts, r["contact_wrenches"]):
            expected -= pin.computeFrameJacobian(model, data, q, fid, pin.LOCAL_WORLD_ALIGNED).T @ w
        expected = expected[6:] + r["kp"] * (r["q"] - rig.q) + r["kd"] * (r["v"] - rig.v)
        np.testing.assert_allclose(tau, np.clip(expected, -dyn.effort_limits, dyn.effort_limits), rtol=1e-9, atol=1e-9)
    finally:
        rig.loop.close()


def test_torque_is_always_clamped(rig):
    rig.refresh(kp=np.full(rig.n, 1e6))
    tau = rig.tick()
    assert rig.state() == LoopState.RUNNING
    assert np.all(np.abs(tau) <= rig.dyn.effort_limits)
    assert np.any(np.abs(tau) == rig.dyn.effort_limits)
    np.testing.assert_allclose(tau, rig.expected(), rtol=1e-9, atol=1e-9)


def test_stale_references_damp_until_reset(rig):
    rig.tick()
    assert rig.state() == LoopState.RUNNING
    tau = rig.tick(55)  # 55 ms of lockstep time without new references (timeout 50 ms)
    status = rig.loop.status()
    assert status.state == LoopState.DAMPING and status.reason == Reason.STALE_REFERENCE
    assert "old" in status.message
    np.testing.assert_array_equal(tau, rig.damping())
    rig.refresh()  # fresh references do not leave DAMPING by themselves
    np.testing.assert_array_equal(rig.tick(), rig.damping())
    assert rig.state() == LoopState.DAMPING
    rig.loop.reset()
    rig.refresh()
    np.testing.assert_allclose(rig.tick(), rig.expected(), rtol=1e-9, atol=1e-9)
    assert rig.loop.status().state == LoopState.RUNNING and rig.loop.status().reason == Reason.NONE


def test_base_state_going_stale_also_damps(rig):
    rig.tick()
    for _ in range(60):  # the controller keeps sending, the estimator stopped
        rig.loop.set_references(q=rig.refs["q"])
        rig.tick()
    assert rig.state() == LoopState.DAMPING


def test_nonfinite_state_faults_and_latches(rig):
    rig.tick()
    j = 3
    rig.v[j] = np.nan
    rig.lb.set_state(v=rig.v)
    tau = rig.tick()
    status = rig.loop.status()
    assert status.state == LoopState.FAULT and status.reason == Reason.NONFINITE_STATE
    assert rig.robot.joint_names[j] in status.message
    np.testing.assert_array_equal(tau, rig.damping())
    assert tau[j] == 0.0
    rig.v[j] = 0.1
    rig.lb.set_state(v=rig.v)
    rig.refresh()
    np.testing.assert_array_equal(rig.tick(), rig.damping())  # latched
    assert rig.state() == LoopState.FAULT
    rig.loop.reset()
    rig.refresh()
    np.testing.assert_allclose(rig.tick(), rig.expected(), rtol=1e-9, atol=1e-9)
    assert rig.state() == LoopState.RUNNING


def test_infinite_imu_is_a_state_fault(rig):
    rig.tick()
    rig.lb.set_state(imu_angular_velocity=np.array([0.0, np.inf, 0.0]))
    rig.tick()
    status = rig.loop.status()
    assert status.state == LoopState.FAULT and "imu_angular_velocity[1]" in status.message


def test_nonfinite_reference_faults(rig):
    rig.tick()
    q_ref = rig.refs["q"].copy()
    q_ref[5] = np.inf
    rig.refresh(q=q_ref)
    tau = rig.tick()
    status = rig.loop.status()
    assert status.state == LoopState.FAULT and status.reason == Reason.NONFINITE_REFERENCE
    assert f"q[{rig.robot.joint_names[5]}]" in status.message
    np.testing.assert_array_equal(tau, rig.damping())


def test_joint_limit_damps_that_joint_and_faults(rig):
    rig.tick()
    j = rig.robot.joint_index("l_knee")
    rig.q[j] = rig.dyn.upper_limits[j] + 0.05
    rig.lb.set_state(q=rig.q)
    rig.refresh()
    tau = rig.tick()
    status = rig.loop.status()
    assert status.state == LoopState.FAULT and status.reason == Reason.JOINT_LIMIT
    assert "'l_knee'" in status.message
    expected = rig.expected()
    assert tau[j] == pytest.approx(-DAMP_KD * rig.v[j], abs=1e-12)
    others = np.arange(rig.n) != j
    np.testing.assert_allclose(tau[others], expected[others], rtol=1e-9, atol=1e-9)
    # back inside the limits: still latched, the joint stays limp
    rig.q[j] = rig.dyn.upper_limits[j] - 0.1
    rig.lb.set_state(q=rig.q)
    rig.refresh()
    tau = rig.tick()
    assert rig.state() == LoopState.FAULT and tau[j] == pytest.approx(-DAMP_KD * rig.v[j], abs=1e-12)
    rig.loop.reset()
    rig.refresh()
    np.testing.assert_allclose(rig.tick(), rig.expected(), rtol=1e-9, atol=1e-9)
    assert rig.state() == LoopState.RUNNING


def test_silent_transport_faults(rig):
    rig.tick()
    rig.lb.silent = True
    silent_ticks = rig.loop.config.silent_ticks
    for _ in range(silent_ticks - 1):
        assert not rig.loop.tick_once(0.0005)
    assert rig.state() == LoopState.RUNNING
    assert not rig.loop.tick_once(0.0005)
    status = rig.loop.status()
    assert status.state == LoopState.FAULT and status.reason == Reason.TRANSPORT_SILENT
    rig.lb.silent = False
    rig.refresh()
    np.testing.assert_array_equal(rig.tick(), rig.damping())
    rig.loop.reset()
    rig.refresh()
    np.testing.assert_allclose(rig.tick(), rig.expected(), rtol=1e-9, atol=1e-9)


def test_silent_transport_faults_in_the_realtime_thread(robot, dyn):
    lb = LoopbackTransport(robot.n_joints, 2, DT)
    lb.set_state(q=robot.standing_joint_positions())
    loop = Loop(dyn, lb, LoopConfig.for_robot(robot, lock_memory=False, stale_reference_timeout_s=30.0))
    q_full = robot.standing_configuration()
    loop.set_references(q=q_full[7:], kp=robot.kp, kd=robot.kd, base_pose=q_full[:7], base_twist=np.zeros(6))
    try:
        loop.start()
        deadline = time.monotonic() + 10.0
        while loop.status().state != LoopState.RUNNING and time.monotonic() < deadline:
            time.sleep(0.01)
        assert loop.status().state == LoopState.RUNNING
        lb.silent = True
        while loop.status().state == LoopState.RUNNING and time.monotonic() < deadline:
            time.sleep(0.01)
        assert loop.status().reason == Reason.TRANSPORT_SILENT and loop.status().state == LoopState.FAULT
    finally:
        loop.close()


def test_watchdog_waits_for_the_first_state(robot, dyn):
    """A robot side that has not started yet is not a silent transport: the loop waits in INIT."""
    lb = LoopbackTransport(robot.n_joints, 2, DT)
    lb.silent = True
    loop = Loop(dyn, lb, LoopConfig.for_robot(robot, lock_memory=False))
    try:
        loop.start()
        assert wait_for_ticks(loop, 3 * loop.config.silent_ticks)
        status = loop.status()
        assert status.state == LoopState.INIT and status.reason == Reason.NONE
        assert lb.last_command() is None  # nothing to answer yet
    finally:
        loop.close()


def wait_for_ticks(loop: Loop, ticks: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while loop.stats()["ticks"] < ticks and time.monotonic() < deadline:
        time.sleep(0.005)
    return loop.stats()["ticks"] >= ticks


def test_bad_base_quaternion_faults(rig):
    rig.tick()
    rig.refresh(base_pose=np.array([0, 0, 1.0, 0, 0, 0, 0.0]))
    rig.tick()
    assert rig.loop.status().reason == Reason.BAD_BASE_QUATERNION


def test_bad_reference_sizes_are_refused_and_change_nothing(rig):
    tau = rig.tick()
    with pytest.raises(RealTimeError, match=r"set_references\(\): kp must be"):
        rig.loop.set_references(q=np.zeros(rig.n), kp=np.zeros(3))
    np.testing.assert_allclose(rig.tick(), tau, rtol=1e-12)
    with pytest.raises(RealTimeError, match="tick_once"):
        Loop(rig.dyn, LoopbackTransport(rig.n, 2), LoopConfig(lock_memory=False)).tick_once()


def test_fixed_base_arm_runs_the_control_law():
    """No free flyer: no base references needed, ID uses the joint state alone."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_rt_dynamics import random_tree

    model = random_tree(7, np.random.default_rng(2), free_flyer=False)
    model.effortLimit[:] = 1e4
    model.lowerPositionLimit[:], model.upperPositionLimit[:] = -10.0, 10.0
    arm = Dynamics.from_pinocchio(model)
    n = arm.n_joints
    lb = LoopbackTransport(n, 0, DT)
    loop = Loop(arm, lb, LoopConfig(mode="lockstep", lock_memory=False, damping_kd=1.0))
    try:
        q, v = np.linspace(-1.0, 1.2, n), np.linspace(-0.5, 0.5, n)  # bus: one angle per joint
        q_pin = np.zeros(model.nq)  # continuous joints are (cos, sin) in Pinocchio's q
        for j in range(1, model.njoints):
            i = model.idx_qs[j]
            q_pin[i:i + model.nqs[j]] = [np.cos(q[j - 1]), np.sin(q[j - 1])] if model.nqs[j] == 2 else q[j - 1]
        assert model.nq > n  # this arm has continuous joints
        qdd, kp, kd = np.full(n, 0.3), np.full(n, 50.0), np.full(n, 2.0)
        lb.set_state(q=q, v=v)
        with pytest.raises(RealTimeError, match="no free-flyer base"):
            loop.set_references(base_pose=np.array([0, 0, 0, 0, 0, 0, 1.0]))
        loop.set_references(qdd=qdd, q=np.zeros(n), v=np.zeros(n), kp=kp, kd=kd)
        assert loop.tick_once(0.001)
        assert loop.status().state == LoopState.RUNNING
        expected = pin.rnea(model, model.createData(), q_pin, v, qdd) - kp * q - kd * v
        np.testing.assert_allclose(lb.last_command()[1], expected, rtol=1e-9, atol=1e-9)
    finally:
        loop.close()
