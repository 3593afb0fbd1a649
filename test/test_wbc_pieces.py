"""The whole-body controller's pieces on their own: gripper law, joint references, gains, fault policy."""

from __future__ import annotations

import numpy as np
import pytest

from optimus_control.control import ControllerState, ControlReferences, LoopMode, WbcSettings
from optimus_control.control.fault_policy import FaultPolicy
from optimus_control.control.gripper_reference_law import GripperReferenceLaw
from optimus_control.control.joint_gains import JointGainSchedule, capped_joint_gains
from optimus_control.control.joint_reference_integrator import JointReferenceIntegrator
from optimus_control.errors import ConfigError, GoalError


def test_gripper_opening_reference_moves_at_the_configured_speed(robot):
    law = GripperReferenceLaw(robot, speed_mps=0.1)
    hand = robot.config.hands[0].name
    start = law.references[hand]
    law.command(hand, 0.0, 30.0)
    target = np.zeros(robot.n_joints)
    law.advance(0.1, target)
    assert law.references[hand] == pytest.approx(max(start - 0.01, 0.0))
    assert np.all(target[law.joints[hand]] == law.references[hand])
    with pytest.raises(GoalError, match="rejected"):
        law.command(hand, float("nan"))
    law.command(hand, 5.0, 1e6)  # clipped to the open position and the force limit
    assert law.commands[hand] == (robot.config.gripper.open_position, robot.config.gripper.max_force)


def test_squeezing_fingers_aim_force_over_stiffness_inside_their_mean_opening(robot):
    """An object holds the fingers open: each aims force / kp inside the mean opening, so the squeeze force
    is the commanded one; the torque limit is 1.5 x that force."""
    law = GripperReferenceLaw(robot, speed_mps=0.1)
    hand = robot.config.hands[0].name
    joints = law.joints[hand]
    law.command(hand, 0.0, 20.0)
    law.references[hand] = 0.0
    q = np.zeros(robot.n_joints)
    q[joints] = [0.05, 0.03]
    kp = np.full(robot.n_joints, 1000.0)
    q_ref, v_ref, limit = np.zeros(robot.n_joints), np.ones(robot.n_joints), robot.limits.effort.copy()
    law.apply(q, kp, q_ref, v_ref, limit)
    assert q_ref[joints] == pytest.approx([0.04 - 20.0 / 1000.0] * 2)
    assert np.all(v_ref[joints] == 0.0) and np.all(limit[joints] == pytest.approx(30.0))


def test_integrated_joints_keep_their_references_legs_predict_from_the_measurement(robot):
    settings = WbcSettings(rate_hz=100.0, integrated_reference_groups=["left_arm"], max_reference_deviation_rad=0.05,
                           max_velocity_deviation_radps=10.0)
    integrator = JointReferenceIntegrator(robot, settings)
    arm, leg = robot.groups["left_arm"][0], robot.groups["left_leg"][0]
    n, T = robot.n_joints, 0.01
    qdd = np.full(n, 2.0)
    integrator.step(np.zeros(n), np.zeros(n), qdd)
    q_ref, v_ref = integrator.step(np.zeros(n), np.zeros(n), qdd)  # the joints did not move
    assert v_ref[arm] == pytest.approx(2 * 2.0 * T) and q_ref[arm] == pytest.approx(2.0 * T**2 + 2 * 2.0 * T**2)
    assert v_ref[leg] == pytest.approx(2.0 * T) and q_ref[leg] == pytest.approx(0.5 * 2.0 * T**2)
    for _ in range(200):  # a joint held in place: its reference stops max_reference_deviation_rad away
        q_ref, _ = integrator.step(np.zeros(n), np.zeros(n), qdd)
    assert q_ref[arm] == pytest.approx(0.05)
    with pytest.raises(ConfigError, match="unknown joint group"):
        JointReferenceIntegrator(robot, WbcSettings(integrated_reference_groups=["left_armm"]))


def test_gain_schedule_starts_from_the_capped_gains_and_refreshes_on_its_period(robot):
    kp, kd = capped_joint_gains(robot, robot.kp, robot.kd, 0.001, max_stiffness_ratio=0.1)
    schedule = JointGainSchedule(robot, robot.kp, robot.kd, 0.001, refresh_period_s=0.01)
    assert np.array_equal(schedule.kp, kp) and np.array_equal(schedule.kd, kd)
    assert np.all(kp <= robot.kp) and np.all(kd <= robot.kd)
    q = robot.standing_configuration()
    first = schedule.gains(q, 0.0)
    schedule._limit.factors = lambda *args: pytest.fail("recomputed within its period")
    assert np.array_equal(schedule.gains(q, 0.005)[1], first[1])


def refs(robot, time_s: float) -> ControlReferences:
    n = robot.n_joints
    return ControlReferences(time_s, LoopMode.TRACK, np.zeros(robot.model.nv), (), np.zeros((0, 6)), np.zeros(n),
                             np.zeros(n), np.ones(n), np.ones(n), np.ones(n), 4.0)


def test_fault_policy_holds_the_last_references_then_damps(robot):
    policy = FaultPolicy(robot.n_joints, robot.model.nv, robot.limits.effort, 4.0, hold_time_s=0.05)
    assert policy.state is ControllerState.IDLE
    assert policy.fail("QP failed", 0.0).mode is LoopMode.DAMP  # nothing to hold yet
    policy.start()
    policy.accept(refs(robot, 1.0), 1.0)
    held = policy.fail("QP failed", 1.01)
    assert policy.state is ControllerState.HOLDING and held.mode is LoopMode.TRACK and held.time_s == 1.01
    policy.accept(refs(robot, 1.02), 1.02)
    assert policy.state is ControllerState.RUNNING and "recovered from: QP failed" in policy.messages[-1]
    policy.fail("stale", 1.03)
    assert policy.fail("stale", 1.09).mode is LoopMode.DAMP and policy.state is ControllerState.DAMPING
    assert policy.fault.startswith("stale; not recovered")
