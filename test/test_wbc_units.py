"""Unit checks of the whole-body control library pieces (no simulator)."""

from __future__ import annotations

import numpy as np
import pinocchio as pin
import pytest

from optimus_control.control import (
    Contact6D,
    DynamicsSnapshot,
    GoalFrameResolver,
    MinJerkSe3Trajectory,
    QpProblem,
    QpSolver,
    WbcSettings,
    WholeBodyController,
    load_wbc_settings,
)
from optimus_control.control.reference_tracker import ReferenceTracker
from optimus_control.control.references import LoopMode
from optimus_control.control.tasks import ComTask, FrameTask
from optimus_control.errors import ConfigError, FrameError, GoalError


@pytest.fixture()
def standing(robot):
    q = robot.standing_configuration()
    return q, np.zeros(robot.model.nv)


def test_frame_task_matrix_is_the_frame_jacobian_and_drift(robot):
    """A frame task's (A, b) with zero gains is (J, -J_dot v): checked by finite differences of the velocity."""
    rng = np.random.default_rng(0)
    q = pin.integrate(robot.model, robot.standing_configuration(), 0.1 * rng.standard_normal(robot.model.nv))
    v = rng.standard_normal(robot.model.nv)
    fid = robot.frame_id(robot.config.hands[0].gripper_frame)
    task = FrameTask("hand", fid, 1.0, 0.0, 0.0)
    task.set_target(pin.SE3.Identity())
    A, b = task.compute(DynamicsSnapshot(robot.model, robot.model.createData(), q, v))
    a = rng.standard_normal(robot.model.nv)
    dt = 1e-6
    data = robot.model.createData()

    def lin_vel(qq, vv):
        pin.forwardKinematics(robot.model, data, qq, vv)
        return pin.getFrameVelocity(robot.model, data, fid, pin.ReferenceFrame.LOCAL_WORLD_ALIGNED).vector

    def origin_velocity(qq, vv):
        return lin_vel(qq, vv)

    q2 = pin.integrate(robot.model, q, v * dt)
    fd = (origin_velocity(q2, v + a * dt) - origin_velocity(q, v)) / dt
    # Classical acceleration of the origin (linear part) and angular acceleration.
    assert np.allclose(A @ a - b, fd, atol=1e-3 * (1 + np.abs(fd).max()))


def test_statics_share_the_weight_between_the_feet(robot, standing):
    """At rest, the QP's contact forces carry m g, each foot about half, CoP inside the sole."""
    q, v = standing
    wbc = WholeBodyController(robot)
    wbc.start(q, v, 0.0)
    refs = wbc.update(q, v, 0.002)
    assert refs.mode is LoopMode.TRACK
    fz = refs.contact_wrenches[:, 2]
    weight = robot.total_mass * 9.81
    assert abs(fz.sum() - weight) < 0.02 * weight
    assert np.all(np.abs(fz - weight / 2) < 0.1 * weight)
    cop_x = -refs.contact_wrenches[:, 4] / fz
    assert np.all((cop_x > robot.config.sole.x_min) & (cop_x < robot.config.sole.x_max))
    # Gravity compensation: the torque law with these references holds the robot (qdd ~ 0).
    tracker = ReferenceTracker(robot.model, robot.limits.effort, robot.config.damping_gain)
    tau = tracker.torque(refs, q, v).torque
    assert np.all(np.isfinite(tau)) and np.abs(tau).max() < robot.limits.effort.max()


def test_contact_removal_ramps_the_normal_force_continuously(robot, standing):
    """Removing a foot contact lowers its force bound linearly: no step larger than the ramp slope allows."""
    q, v = standing
    wbc = WholeBodyController(robot, WbcSettings(contact_ramp_duration_s=0.2))
    wbc.start(q, v, 0.0)
    name = next(iter(wbc.contacts))
    wbc.remove_contact(name)
    forces, t = [], 0.0
    while name in wbc.contacts and t < 1.0:
        t += 0.002
        refs = wbc.update(q, v, t)
        idx = list(wbc.contacts).index(name) if name in wbc.contacts else None
        forces.append(refs.contact_wrenches[idx, 2] if idx is not None and idx < len(refs.contact_wrenches) else 0.0)
    assert name not in wbc.contacts, "contact never released"
    assert abs(t - 0.2) < 0.02
    steps = np.abs(np.diff(forces))
    assert steps.max() < robot.total_mass * 9.81 * 0.002 / 0.2 * 3.0
    assert forces[-2] < 0.05 * robot.total_mass * 9.81


def test_min_jerk_respects_speed_limits_and_ends_at_rest():
    """A 1 m move at 0.25 m/s peak takes 1.875 * 4 s; velocity peaks at the limit and is zero at both ends."""
    start, goal = pin.SE3.Identity(), pin.SE3(pin.rpy.rpyToMatrix(0, 0, 1.0), np.array([1.0, 0, 0]))
    traj = MinJerkSe3Trajectory(start, goal, 0.0, 0.25, 1.0)
    assert traj.duration_s == pytest.approx(7.5)
    speeds = [np.linalg.norm(traj.sample(t)[1][:3]) for t in np.linspace(0, traj.duration_s, 301)]
    assert max(speeds) == pytest.approx(0.25, rel=1e-3)
    assert speeds[0] == 0 and speeds[-1] == pytest.approx(0, abs=1e-9)
    end = traj.sample(traj.duration_s)[0]
    assert np.allclose(end.homogeneous, goal.homogeneous)


def test_unreachable_target_is_clamped_and_reported(robot, standing):
    q, v = standing
    wbc = WholeBodyController(robot)
    wbc.start(q, v, 0.0)
    wbc.update(q, v, 0.002)
    report = wbc.set_hand_target("left", pin.SE3(np.eye(3), np.array([3.0, 0.5, 1.0])))
    assert report.clamped and "beyond the reach" in report.message
    assert np.linalg.norm(report.target_position_m - np.array([3.0, 0.5, 1.0])) > 1.0
    assert any("clamped" in m for m in wbc.status().messages)


def test_bad_goals_are_rejected_with_clear_errors(robot, standing):
    q, v = standing
    wbc = WholeBodyController(robot)
    wbc.start(q, v, 0.0)
    wbc.update(q, v, 0.002)
    with pytest.raises(GoalError, match="non-finite"):
        wbc.set_hand_target("left", pin.SE3(np.eye(3), np.array([np.nan, 0.0, 1.0])))
    with pytest.raises(GoalError, match="unknown hand 'lfet'.*did you mean 'left'"):
        wbc.set_hand_target("lfet", pin.SE3.Identity())
    with pytest.raises(GoalError, match="unknown posture preset"):
        wbc.set_posture("dance")
    with pytest.raises(GoalError, match="gaze"):
        wbc.set_gaze_target([0.0, np.inf, 1.0])
    resolver = GoalFrameResolver(robot)
    resolver.update(q)
    with pytest.raises(FrameError, match="goal frame 'base_lnk' is unknown.*did you mean 'base_link'"):
        resolver.pose_to_world(pin.SE3.Identity(), "base_lnk")
    assert np.allclose(resolver.point_to_world(np.zeros(3), "base_link"), q[:3])


def test_task_weights_and_masks_are_validated_and_changeable(robot, standing):
    q, v = standing
    wbc = WholeBodyController(robot)
    wbc.start(q, v, 0.0)
    wbc.set_task_weight("gaze", 0.0)
    assert wbc.tasks["gaze"].weight == 0.0
    removed = wbc.remove_task("gaze")
    assert "gaze" not in wbc.tasks
    wbc.add_task(removed)
    with pytest.raises(ConfigError, match="weight"):
        ComTask("com2", -1.0, 10.0)
    with pytest.raises(ConfigError, match="mask"):
        FrameTask("f", 0, 1.0, 10.0, mask=[1, 1, 1])
    with pytest.raises(GoalError, match="no task named 'gase'.*did you mean 'gaze'"):
        wbc.set_task_weight("gase", 1.0)


def test_solver_reports_infeasible_problem_without_raising():
    """x = 1 and x <= 0 cannot both hold: ok is False, no exception, no NaN output."""
    p = QpProblem(np.eye(1), np.zeros(1), np.ones((1, 1)), np.ones(1), np.ones((1, 1)), np.array([-1e9]), np.zeros(1),
                  np.full(1, -1e9), np.full(1, 1e9))
    result = QpSolver("proxsuite").solve(p)
    assert not result.ok and result.x is None


def test_settings_file_loads_and_unknown_keys_are_named(tmp_path):
    settings = load_wbc_settings()
    assert settings.rate_hz == WbcSettings().rate_hz
    bad = tmp_path / "wbc.yaml"
    bad.write_text("whole_body_controller:\n  ros__parameters:\n    tasks:\n      hnads: {weight: 1.0, kp: 1.0}\n")
    with pytest.raises(ConfigError, match="unknown parameter 'tasks.hnads.weight'.*did you mean 'tasks.hands.weight'"):
        load_wbc_settings(bad)


def test_contact_rows_bound_cop_and_friction(robot):
    """A wrench with CoP outside the sole or tangential force beyond mu fz violates the contact rows."""
    c = Contact6D("foot", 0, robot.config.sole, 0.8, 10.0)
    C, lo, hi = c.force_inequalities()

    def ok(f):
        y = C @ f
        return bool(np.all(y >= lo - 1e-9) and np.all(y <= hi + 1e-9))

    assert ok(np.array([0, 0, 300, 0, 0, 0]))
    assert not ok(np.array([300, 0, 300, 0, 0, 0]))  # friction
    assert not ok(np.array([0, 0, 300, 0, 300 * 0.2, 0]))  # CoP x = -0.2 m < x_min
    assert not ok(np.array([0, 0, 5, 0, 0, 0]))  # below the minimum normal force


def test_com_height_and_posture_goals(robot, standing):
    """CoM height moves along a min-jerk path and is clamped to the allowed range; presets are named."""
    q, v = standing
    wbc = WholeBodyController(robot, WbcSettings(posture_presets={"arms_up": {robot.joint_names[14]: -0.5}}))
    wbc.start(q, v, 0.0)
    wbc.update(q, v, 0.002)
    z0 = wbc.tasks["com"].target[2]
    report = wbc.set_com_height(z0 - 0.05)
    assert not report.clamped and report.duration_s > 0
    wbc.update(q, v, 0.002 + report.duration_s + 0.01)
    assert wbc.tasks["com"].target[2] == pytest.approx(z0 - 0.05, abs=1e-6)
    assert wbc.set_com_height(z0 + 1.0).clamped
    wbc.set_posture("arms_up")
    wbc.update(q, v, 10.0)
    assert wbc.tasks["posture"].target[14] == pytest.approx(-0.5)
    wbc.set_gaze_target([1.0, 0.0, 1.0])
    assert np.allclose(wbc.tasks["gaze"].target, [1.0, 0.0, 1.0])


def test_python_tracker_matches_the_c_loop_dynamics(robot, standing):
    """The Python reference of the loop law equals the C kernels' RNEA with contact wrenches plus the PD terms."""
    from optimus_control.rt import Dynamics

    q, v = standing
    rng = np.random.default_rng(4)
    q = pin.integrate(robot.model, q, 0.05 * rng.standard_normal(robot.model.nv))
    v = 0.2 * rng.standard_normal(robot.model.nv)
    wbc = WholeBodyController(robot)
    wbc.start(q, v, 0.0)
    refs = wbc.update(q, v, 0.002)
    tracker = ReferenceTracker(robot.model, robot.limits.effort, robot.config.damping_gain)
    tau_py = tracker.torque(refs, q, v).unclamped_torque
    dyn = Dynamics.from_robot_model(robot)
    tau_c = dyn.rnea_with_wrenches(q, v, refs.joint_accelerations, list(refs.contact_frame_ids), refs.contact_wrenches,
                                   reference="LOCAL")[6:]
    tau_c = tau_c + refs.kp * (refs.joint_positions - q[7:]) + refs.kd * (refs.joint_velocities - v[6:])
    assert np.allclose(tau_py, tau_c, atol=1e-8 * (1 + np.abs(tau_c).max()))
