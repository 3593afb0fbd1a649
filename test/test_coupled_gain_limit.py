"""The joint-gain limit from each group's coupled inertia (control/coupled_gain_limit.py).

Checks the mathematics against an independent generalised eigenvalue computation, and that the limit
only acts where a multi-joint mode would make the explicit 1 kHz PD unstable.
"""

from __future__ import annotations

import numpy as np
import pinocchio as pin
import pytest
import scipy.linalg

from optimus_control.control import ControllerState
from optimus_control.control.coupled_gain_limit import CoupledGainLimit
from optimus_control.control.joint_gains import JointGainSchedule
from optimus_control.control.lockstep_runner import LockstepRunner
from optimus_control.sim.world import SimWorld

pytestmark = pytest.mark.sim

DT = 0.001
# A right arm posture where the explicit PD goes unstable: shoulder roll near -pi/2 lines up the shoulder
# pitch and yaw axes; shoulder yaw and wrist yaw at opposite limits.
SINGULAR_RIGHT_ARM = {"r_shoulder_pitch": -0.84, "r_shoulder_roll": -1.34, "r_shoulder_yaw": 1.55,
                      "r_elbow": -1.05, "r_wrist_yaw": -1.55, "r_wrist_pitch": 0.74}


def configuration(robot, joints: dict[str, float]) -> np.ndarray:
    q = robot.standing_configuration().copy()
    names = list(robot.joint_names)
    for name, value in joints.items():
        q[7 + names.index(name)] = value
    return q


def inverse_mass_joints(robot, q: np.ndarray) -> np.ndarray:
    mass = pin.crba(robot.model, robot.model.createData(), q)
    mass = np.triu(mass) + np.triu(mass, 1).T
    return np.linalg.inv(mass)[6:, 6:]


def largest_product(gains: np.ndarray, inverse_block: np.ndarray) -> float:
    """lambda_max of K x = lambda M_g x, with M_g = (M^-1 block)^-1: the group's free-floating inertia."""
    return float(scipy.linalg.eigh(np.diag(gains), np.linalg.inv(inverse_block), eigvals_only=True)[-1])


@pytest.fixture(scope="module")
def gains(robot):
    schedule = JointGainSchedule(robot, robot.kp, robot.kd, DT)
    return schedule.kp, schedule.kd


def test_singular_arm_gets_its_damping_cut_to_the_bound(robot, gains):
    kp, kd = gains
    limit = CoupledGainLimit(robot.groups, robot.n_joints, DT, max_damping_product=1.5, max_stiffness_product=0.25)
    inverse = inverse_mass_joints(robot, configuration(robot, SINGULAR_RIGHT_ARM))
    arm = robot.groups["right_arm"]
    block = inverse[np.ix_(arm, arm)]
    before = DT * largest_product(kd[arm], block)
    assert before > 2.0  # the explicit PD is unstable there without the limit
    kp_factor, kd_factor = limit.factors(inverse, kp, kd)
    assert np.all(kd_factor[arm] < 1.0)
    assert DT * largest_product(kd[arm] * kd_factor[arm], block) == pytest.approx(1.5, rel=1e-9)
    assert DT**2 * largest_product(kp[arm] * kp_factor[arm], block) <= 0.25 + 1e-9
    others = np.setdiff1d(np.arange(robot.n_joints), arm)  # every other group is at its standing posture
    assert np.all(kd_factor[others] == 1.0) and np.all(kp_factor == 1.0)


def test_standing_posture_keeps_the_configured_gains(robot, gains):
    kp, kd = gains
    limit = CoupledGainLimit(robot.groups, robot.n_joints, DT)
    kp_factor, kd_factor = limit.factors(inverse_mass_joints(robot, robot.standing_configuration()), kp, kd)
    assert np.all(kp_factor == 1.0) and np.all(kd_factor == 1.0)


def test_stiffness_bound_and_group_independence(robot, gains):
    """A tight stiffness bound scales kp of every group by exactly its own excess; the eigenvalue screen
    (Gershgorin) must not skip a group that is over the bound."""
    kp, kd = gains
    limit = CoupledGainLimit(robot.groups, robot.n_joints, DT, max_damping_product=10.0, max_stiffness_product=0.01)
    inverse = inverse_mass_joints(robot, configuration(robot, SINGULAR_RIGHT_ARM))
    kp_factor, kd_factor = limit.factors(inverse, kp, kd)
    assert np.all(kd_factor == 1.0)
    for joints in robot.groups.values():
        product = DT**2 * largest_product(kp[joints], inverse[np.ix_(joints, joints)])
        expected = min(1.0, 0.01 / product)
        assert kp_factor[joints] == pytest.approx(np.full(len(joints), expected), rel=1e-9)


def test_arm_started_in_the_singular_posture_stays_calm(robot):
    """Closed loop in PyBullet: the robot stands with its right arm in the singular posture. With the
    per-joint gains alone the pitch/yaw mode blows up (37 rad/s within 2 s when measured); with the limit the
    arm moves off slowly."""
    world = SimWorld(robot)
    try:
        world.reset_robot(configuration(robot, SINGULAR_RIGHT_ARM))
        runner = LockstepRunner(world, robot)
        runner.start()
        arm = robot.groups["right_arm"]
        peak_speed = [0.0]

        def record(r: LockstepRunner) -> None:
            joint_velocities = r.full_state()[1][6:]  # measured (encoders)
            peak_speed[0] = max(peak_speed[0], float(np.abs(joint_velocities[arm]).max()))

        runner.run(2.0, record)
        assert peak_speed[0] < 5.0, f"right arm reached {peak_speed[0]:.1f} rad/s"
        assert runner.controller.gain_factor_min < 1.0  # the limit acted (the posture is the singular one)
        assert runner.controller.state is ControllerState.RUNNING and world.ground_truth().base_position[2] > 0.9
    finally:
        world.close()
