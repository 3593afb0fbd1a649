"""The hardware controller's ROS-side sensors as library code: the attitude filter for IMUs without an
orientation, the IMU mounting, non-finite samples, foot force/torque ages, and the actuator report."""

from __future__ import annotations

import numpy as np
import pinocchio as pin
import pytest

from optimus_control.errors import ConfigError
from optimus_control.estimation.attitude_filter import AttitudeFilter
from optimus_control.hardware import ImuConfig
from optimus_control.hardware.actuator_report import ERROR, OK, WARN, actuator_report, bus_figures
from optimus_control.hardware.sensor_inputs import FootWrenchInput, ImuInput, imu_mounting_rotation
from optimus_control.rt.loop import LoopState, RobotState

G = np.array([0.0, 0.0, 9.81])


def _rpy(q_xyzw) -> np.ndarray:
    return pin.rpy.matrixToRpy(pin.Quaternion(np.asarray(q_xyzw)).toRotationMatrix())


def test_attitude_filter_levels_on_gravity_then_follows_the_gyro_without_tilt_drift():
    true = pin.rpy.rpyToMatrix(0.2, -0.3, 0.0)
    f = AttitudeFilter()
    roll, pitch, yaw = _rpy(f.update(np.zeros(3), true.T @ G, 0.0))
    assert abs(roll - 0.2) < 1e-9 and abs(pitch + 0.3) < 1e-9 and abs(yaw) < 1e-9
    # 2 s turning about a tilted axis, with a gyro bias of 0.01 rad/s on x: roll/pitch stay on gravity's
    rot, bias, dt = true.copy(), np.array([0.01, 0.0, 0.0]), 0.005
    for _ in range(400):
        omega = np.array([0.3, -0.2, 0.8])
        rot = rot @ pin.exp3(omega * dt)
        q = f.update(omega + bias, rot.T @ G, dt)
    est = pin.Quaternion(q).toRotationMatrix()
    tilt_error = np.degrees(np.arccos(np.clip(est[:, 2] @ rot[:, 2], -1.0, 1.0)))
    assert tilt_error < 1.0, tilt_error
    # the same run on the gyro alone drifts in tilt by the bias: the accelerometer is what holds it
    g = AttitudeFilter(accel_gain_per_s=0.0)
    rot = true.copy()
    g.update(np.zeros(3), rot.T @ G, 0.0)
    for _ in range(400):
        omega = np.array([0.3, -0.2, 0.8])
        rot = rot @ pin.exp3(omega * dt)
        q = g.update(omega + bias, rot.T @ G, dt)
    est = pin.Quaternion(q).toRotationMatrix()
    assert np.degrees(np.arccos(np.clip(est[:, 2] @ rot[:, 2], -1.0, 1.0))) > tilt_error + 0.3


def test_imu_mounting_rotates_samples_into_the_robot_imu_frame(robot):
    # the sensor mounted upside down (rolled by pi) on the pelvis
    rot = imu_mounting_rotation(robot, ImuConfig("base_link", (0.0, 0.0, 0.0), (np.pi, 0.0, 0.0)))
    imu = ImuInput(rot)
    sensor_world = pin.rpy.rpyToMatrix(np.pi, 0.0, 0.3)  # robot upright and yawed 0.3: the sensor is upside down
    assert imu.update(pin.Quaternion(sensor_world).coeffs(), np.array([0.0, 0.0, -0.5]), sensor_world.T @ G,
                      stamp_s=1.0, received_s=10.0)
    assert np.allclose(_rpy(imu.orientation_xyzw), [0.0, 0.0, 0.3], atol=1e-9)
    assert np.allclose(imu.angular_velocity, [0.0, 0.0, 0.5])      # yaw rate, in the robot's frame
    assert np.allclose(imu.linear_acceleration, G)
    state = RobotState(tick=1, time_s=0.0, q=np.zeros(2), v=np.zeros(2), tau_measured=np.zeros(2),
                       imu_orientation_xyzw=np.array([0, 0, 0, 1.0]), imu_angular_velocity=np.zeros(3),
                       imu_linear_acceleration=np.zeros(3), foot_wrench=np.zeros((2, 6)), tau_command=np.zeros(2),
                       loop_state=LoopState.RUNNING, reference_age_s=0.0)
    filled = imu.apply(state)
    assert np.allclose(filled.imu_linear_acceleration, G) and np.allclose(state.imu_linear_acceleration, 0.0)
    assert imu.age_s(10.25) == pytest.approx(0.25)


def test_imu_rejects_non_finite_and_non_unit_samples_and_keeps_the_last_good_one(robot):
    imu = ImuInput(np.eye(3))
    assert imu.age_s(0.0) == float("inf")
    assert imu.update(None, np.zeros(3), G, 0.0, 1.0)
    assert not imu.update(None, np.array([np.nan, 0, 0]), G, 0.01, 1.01)
    assert not imu.update(np.array([0.0, 0.0, 0.0, 3.0]), np.zeros(3), G, 0.02, 1.02)
    assert imu.rejected == 2 and imu.samples == 1 and imu.received_s == 1.0
    assert np.all(np.isfinite(imu.orientation_xyzw))


def test_an_imu_on_another_body_is_refused(robot):
    with pytest.raises(ConfigError, match="moves relative to the robot's imu_frame"):
        imu_mounting_rotation(robot, ImuConfig(robot.config.feet[0].frame, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)))


def test_foot_wrench_input_reports_the_stalest_foot():
    feet = FootWrenchInput(["left", "right"])
    assert feet.oldest_age_s(5.0)[0] == float("inf")
    assert feet.update(0, np.array([0, 0, 300.0, 0, 0, 0]), 4.9)
    assert not feet.update(1, np.array([0, 0, np.inf, 0, 0, 0]), 4.95)
    assert feet.oldest_age_s(5.0)[1] == "right"
    assert feet.update(1, np.array([0, 0, 310.0, 0, 0, 0]), 4.95)
    age, foot = feet.oldest_age_s(5.0)
    assert foot == "left" and age == pytest.approx(0.1)


class _Transport:
    def __init__(self, status, buses):
        self._status, self._buses = status, buses

    def motor_status(self):
        return self._status

    def bus_stats(self):
        return self._buses


class _Driver:
    """What actuator_report reads of a CanDriver: its description, names, counters and fault."""

    def __init__(self, desc, robot, status, buses, fault=""):
        self.desc, self.joint_names, self.bus_names = desc, robot.joint_names, list(desc.buses)
        self.transport = _Transport(status, buses)
        self._fault = fault

    def fault_message(self):
        return self._fault


def test_actuator_report_levels_name_the_motor_its_error_and_temperature(robot):
    from optimus_control.hardware import load_hardware

    desc = load_hardware("hardware/optimus.yaml")
    ok = [{"replies": 100, "error": 1, "t_mos": 40, "t_rotor": 35} for _ in robot.joint_names]
    bus = {"connected": 1, "cycles": 100, "missing": 0, "late_replies": 0, "reconnects": 0, "rtt_p99_us": 300.0,
           "rtt_max_us": 400.0, "last_error": ""}
    buses = [dict(bus) for _ in desc.buses]
    report = actuator_report(_Driver(desc, robot, ok, buses))
    assert report.level == OK and report.message == "all motors answer"
    # the bus lines read back (run reports, benchmarks): one format, one parser
    assert bus_figures(report.values)["arm_l"] == {"cycles": 100, "missing": 0, "late": 0, "reconnects": 0,
                                                   "round_trip_p99_us": 300, "round_trip_max_us": 400}
    assert "MOSFET 40 C, rotor 35 C" in report.values["motor l_knee"]
    hot = [dict(s) for s in ok]
    hot[robot.joint_index("r_knee")]["t_rotor"] = 85
    report = actuator_report(_Driver(desc, robot, hot, buses))
    assert report.level == WARN and "r_knee: 85 C" in report.message
    bad = [dict(s) for s in hot]
    bad[robot.joint_index("l_hip_pitch")]["error"] = 0xB
    buses[0] = dict(bus, connected=0, last_error="read: EIO")
    report = actuator_report(_Driver(desc, robot, bad, buses, fault="no reply for 3 cycles: joint 'l_knee'"))
    assert report.level == ERROR
    for words in ("transport fault: no reply", "l_hip_pitch: MOSFET over-temperature", "disconnected (read: EIO)"):
        assert words in report.message
