"""Documented safe behaviour on faults (lockstep sim where the robot matters).

| fault                        | behaviour                                                                 |
|------------------------------|---------------------------------------------------------------------------|
| NaN hand target              | GoalError "non-finite"; goal rejected, the hand keeps its previous goal   |
| goal in an unknown frame     | FrameError naming the frame (+ suggestion); nothing changes               |
| unreachable target           | clamped into the reachable workspace; GoalReport.clamped + message        |
| QP failure                   | HOLDING: last feasible references re-sent for hold_time_s; recovers if    |
|                              | the QP solves again, else DAMPING (loop damps every joint) until reset    |
| stale estimator input        | same as a QP failure, fault "stale estimator input"                       |
"""

from __future__ import annotations

import numpy as np
import pinocchio as pin
import pytest

from optimus_control.control import ControllerState, GoalFrameResolver, LoopMode, WbcSettings
from optimus_control.control.lockstep_runner import LockstepRunner
from optimus_control.errors import FrameError, GoalError
from optimus_control.model import JointLimits
from optimus_control.sim.world import SimWorld

pytestmark = pytest.mark.sim


@pytest.fixture()
def runner(robot):
    world = SimWorld(robot)
    r = LockstepRunner(world, robot)
    r.start()
    r.run(0.5)
    yield r
    world.close()


def _modes(r: LockstepRunner, duration_s: float) -> list:
    seen = []

    def watch(rr):
        assert rr.refs.is_finite(), "references contain NaN/inf"
        seen.append((rr.controller.state, rr.refs.mode))

    r.run(duration_s, watch)
    return seen


def test_nan_target_is_rejected_and_balance_continues(runner):
    ctl = runner.controller
    goal_before = ctl.tasks["hand_left"].target.copy()
    with pytest.raises(GoalError, match="non-finite"):
        ctl.set_hand_target("left", pin.SE3(np.eye(3), np.array([0.4, np.nan, 1.0])))
    modes = _modes(runner, 0.5)
    assert all(state is ControllerState.RUNNING for state, _ in modes)
    assert np.allclose(ctl.tasks["hand_left"].target.translation, goal_before.translation, atol=1e-6)


def test_unknown_goal_frame_is_named_in_the_error(robot):
    resolver = GoalFrameResolver(robot)
    resolver.update(robot.standing_configuration())
    with pytest.raises(FrameError, match="goal frame 'map' is unknown"):
        resolver.pose_to_world(pin.SE3.Identity(), "map")


def test_unreachable_target_is_clamped_reported_and_safe(runner):
    ctl = runner.controller
    report = ctl.set_hand_target("right", pin.SE3(np.eye(3), np.array([2.0, -1.0, 1.0])))
    assert report.clamped and "reach" in report.message
    modes = _modes(runner, report.duration_s + 0.5)
    assert all(state is ControllerState.RUNNING for state, _ in modes)


def test_short_qp_failure_holds_then_recovers(runner):
    ctl = runner.controller
    ctl.solver.force_failure = True
    held = _modes(runner, 0.05)
    ctl.solver.force_failure = False
    after = _modes(runner, 0.5)
    assert held and all(state is ControllerState.HOLDING and mode is LoopMode.TRACK for state, mode in held[1:])
    assert after[-1] == (ControllerState.RUNNING, LoopMode.TRACK)
    assert any("QP failed" in m for m in ctl.status().messages)
    assert any("recovered" in m for m in ctl.status().messages)


def test_effort_limits_that_cannot_hold_the_robot_are_relaxed_not_damped(runner):
    """Effort limits at 2 % (gravity alone needs more) with joint accelerations capped at 1 rad/s^2 (the robot
    may not sag either) leave no feasible QP, even without the joint-limit bounds; the controller then solves
    without the effort rows and keeps balancing (the torque loop saturates) instead of damping into a fall."""
    ctl = runner.controller
    lim, cap = ctl.qp.limits, ctl.qp.settings.max_joint_acceleration
    ctl.qp.limits = JointLimits(lim.lower, lim.upper, lim.velocity, 0.02 * lim.effort)
    ctl.qp.settings.max_joint_acceleration = 1.0
    try:
        tasks, contacts = list(ctl.tasks.values()), list(ctl.contacts.values())
        for kwargs in ({}, {"joint_limits": False}):
            assert not ctl.solver.solve(ctl.qp.build(ctl._snapshot, tasks, contacts, **kwargs)).ok, kwargs
        modes = _modes(runner, 0.2)
    finally:
        ctl.qp.limits, ctl.qp.settings.max_joint_acceleration = lim, cap
    assert ctl.qp_relaxed > 0
    assert all(state is ControllerState.RUNNING and mode is LoopMode.TRACK for state, mode in modes)
    assert runner.world.ground_truth().base_position[2] > 0.9


def test_persistent_qp_failure_switches_to_damping_and_reset_restarts(runner):
    ctl = runner.controller
    ctl.solver.force_failure = True
    modes = _modes(runner, ctl.settings.hold_time_s + 0.05)
    assert modes[-1] == (ControllerState.DAMPING, LoopMode.DAMP)
    status = ctl.status()
    assert "QP failed" in status.fault and "not recovered" in status.fault
    assert any("switching the loop to damping" in m for m in status.messages)
    ctl.solver.force_failure = False
    q, v = runner.full_state()
    ctl.reset_faults(q, v, runner.world.time_s)
    assert ctl.status().state is ControllerState.RUNNING


def test_stale_estimator_input_holds_then_damps(runner):
    ctl = runner.controller
    runner.freeze_state = True
    modes = _modes(runner, ctl.settings.stale_state_timeout_s + ctl.settings.hold_time_s + 0.05)
    states = [s for s, _ in modes]
    assert ControllerState.HOLDING in states
    assert modes[-1] == (ControllerState.DAMPING, LoopMode.DAMP)
    assert "stale estimator input" in ctl.status().fault


def test_reference_delay_applies_each_update_one_period_later(robot):
    """The in-process runner reproduces the node's lockstep timing: the references computed at tick k
    (an update tick) drive ticks k + delay ... k + delay + period - 1, the first ones at once."""
    world = SimWorld(robot)
    try:
        period = WbcSettings().ticks_per_update  # 4 at the shipped 250 Hz
        r = LockstepRunner(world, robot)  # the default is the node's timing
        assert r.ticks_per_update == period and r.reference_delay_ticks == period
        computed: dict[int, object] = {}
        update = r.controller.update

        def recording_update(*args, **kwargs):
            refs = update(*args, **kwargs)
            computed[r.tick] = refs
            return refs

        r.controller.update = recording_update
        r.start()
        applied = []
        for _ in range(6 * period):
            r.step(lambda rr: applied.append((rr.tick, rr.refs)))
        assert sorted(computed) == list(range(0, 6 * period, period))
        for tick, refs in applied:
            source = 0 if tick < period else period * ((tick - period) // period)
            assert refs is computed[source], f"tick {tick}"
        with pytest.raises(ValueError, match="reference_delay_ticks"):
            LockstepRunner(world, robot, reference_delay_ticks=-1)
    finally:
        world.close()
