"""SimWorld physics: the robot stands under a joint PD, runs are deterministic, the actuator model works."""

from __future__ import annotations

import numpy as np
import pinocchio as pin
import pytest

from optimus_control.control.joint_gains import capped_joint_gains
from optimus_control.sim.actuators import ActuatorModel, ActuatorParams
from optimus_control.sim.scene_builder import build_scene
from optimus_control.sim.scene_spec import load_scene
from optimus_control.sim.world import SimWorld

pytestmark = pytest.mark.sim


def pd_gravity_controller(robot, dt: float = 0.001):
    """Joint PD to the standing posture + gravity compensation from the *measured* state only.

    The configured gains are capped for an explicit 1 kHz PD (:func:`capped_joint_gains`): with kd > 2 I/dt
    it diverges on the light wrist joints (no armature).
    """
    model, data = robot.model, robot.model.createData()
    q_ref = robot.standing_joint_positions()
    kp, kd = capped_joint_gains(robot, robot.kp, robot.kd, dt)

    def control(s) -> np.ndarray:
        q_full = pin.neutral(model)
        q_full[3:7] = s.imu_orientation_xyzw
        q_full[7:] = s.q
        gravity = pin.computeGeneralizedGravity(model, data, q_full)[6:]
        return kp * (q_ref - s.q) - kd * s.v + gravity

    return control


def tilt_rad(quat_xyzw: np.ndarray) -> float:
    x, y, z, w = quat_xyzw
    up_z = 1 - 2 * (x * x + y * y)  # z component of the body z axis in the world
    return float(np.arccos(np.clip(up_z, -1, 1)))


def run(world: SimWorld, control, steps: int, record: bool = False, imu: bool = False):
    trajectory = []
    for _ in range(steps):
        s = world.read_sensors()
        world.step(control(s))
        if imu:
            trajectory.append(s.imu_linear_acceleration)
        elif record:
            trajectory.append(np.concatenate([s.q, s.v, s.foot_wrench.ravel()]))
    return np.array(trajectory)


def test_robot_stands_10s_under_joint_pd(robot):
    with SimWorld(robot) as world:
        z0 = world.ground_truth().base_position[2]
        control = pd_gravity_controller(robot)
        run(world, control, 9_800)
        imu = run(world, control, 200, record=True, imu=True)
        truth = world.ground_truth()
        s = world.read_sensors()
    assert world.time_s == pytest.approx(10.0)
    assert abs(truth.base_position[2] - z0) < 0.02, "pelvis sank or rose by more than 2 cm"
    assert np.linalg.norm(truth.base_position[:2]) < 0.02, "pelvis drifted by more than 2 cm"
    assert tilt_rad(truth.base_orientation_xyzw) < np.radians(2.0)
    assert np.max(np.abs(truth.base_linear_velocity)) < 0.01
    # The feet carry the weight: total vertical force = m g within 2 %, shared roughly evenly.
    weight = robot.total_mass * 9.81
    assert s.foot_wrench[:, 2].sum() == pytest.approx(weight, rel=0.02)
    assert np.all(s.foot_wrench[:, 2] > 0.3 * weight)
    # Specific force at rest: +g along the (nearly vertical) IMU z axis (mean of the last 0.2 s: a
    # one-step finite difference of the base velocity carries contact jitter).
    assert imu.mean(axis=0) == pytest.approx([0.0, 0.0, 9.81], abs=0.1)


def test_lockstep_determinism_same_seed_same_trajectory(robot):
    """Same seed (scene randomisation and sensor noise) -> bit-identical trajectories; another seed differs."""
    noisy = ActuatorParams(encoder_noise_std_rad=1e-4, velocity_noise_std_rps=1e-3, imu_gyro_noise_std_rps=1e-3,
                           torque_bandwidth_hz=200.0)
    spec = load_scene("sorting_cell")

    def trajectory(seed: int) -> tuple[np.ndarray, dict]:
        with SimWorld(robot, actuators=ActuatorParams(**{**noisy.__dict__, "seed": seed})) as world:
            build_scene(world, spec, seed)
            traj = run(world, pd_gravity_controller(robot), 600, record=True)
            objects = {k: v[0] for k, v in world.ground_truth().objects.items()}
        return traj, objects

    a, objects_a = trajectory(3)
    b, objects_b = trajectory(3)
    c, objects_c = trajectory(4)
    assert np.array_equal(a, b)
    assert objects_a.keys() == objects_b.keys() and all(np.array_equal(objects_a[k], objects_b[k]) for k in objects_a)
    assert not np.array_equal(a, c)


def test_actuator_model_clamps_lags_and_quantises(robot):
    effort = np.array([10.0, 20.0])
    model = ActuatorModel(ActuatorParams(torque_bandwidth_hz=50.0, encoder_resolution_rad=0.01), effort,
                          np.zeros(2), np.ones(2), 0.001)
    first = model.motor_torque(np.array([100.0, np.nan]))
    alpha = 1 - np.exp(-2 * np.pi * 50.0 * 0.001)
    assert first == pytest.approx([10.0 * alpha, 0.0])            # clamped, NaN -> 0, then first-order lag
    for _ in range(200):
        tau = model.motor_torque(np.array([-100.0, 5.0]))
    assert tau == pytest.approx([-10.0, 5.0], abs=1e-3)           # settles at the clamped command
    q, v, t = model.measure_joints(np.array([0.123, -0.456]), np.zeros(2), np.zeros(2))
    assert q == pytest.approx([0.12, -0.46])
    ideal = ActuatorModel(ActuatorParams(), effort, np.zeros(2), np.ones(2), 0.001)
    assert ideal.motor_torque(np.array([3.0, -4.0])) == pytest.approx([3.0, -4.0])


def test_gear_friction_opposes_motion_and_is_bounded(robot):
    model = ActuatorModel(ActuatorParams(gear_friction_scale=2.0), np.full(3, 50.0), np.array([0.5, 0.5, 0.5]),
                          np.full(3, 0.1), 0.001)
    f = model.friction_torque(np.array([1.0, -1.0, 0.0]))
    assert f == pytest.approx([-1.0, 1.0, 0.0])


def test_imu_bias_and_noise_are_applied(robot):
    params = ActuatorParams(imu_gyro_bias_rps=(0.01, 0.0, -0.02), imu_accel_noise_std_mps2=0.05, seed=1)
    with SimWorld(robot, actuators=params) as world:
        samples = []
        for _ in range(200):
            s = world.read_sensors()
            samples.append(np.concatenate([s.imu_angular_velocity, s.imu_linear_acceleration]))
            world.step(np.zeros(robot.n_joints))
            world.reset_robot(robot.standing_configuration())
    samples = np.array(samples)
    assert samples[:, :3].mean(axis=0) == pytest.approx([0.01, 0.0, -0.02], abs=1e-6)
    assert 0.03 < samples[:, 3:].std(axis=0).mean() < 0.08


def test_push_moves_the_base(robot):
    with SimWorld(robot) as world:
        control = pd_gravity_controller(robot)
        run(world, control, 300)
        y0 = world.ground_truth().base_position[1]
        world.push("torso", [0.0, 150.0, 0.0], 0.1)
        run(world, control, 150)
        assert world.ground_truth().base_position[1] - y0 > 0.005
        with pytest.raises(Exception, match="not a link of the robot"):
            world.push("torsoo", [0, 1, 0], 0.1)
