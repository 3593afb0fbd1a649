"""The whole_body_controller node's hardware side (``mode: hardware``): the CAN driver of a hardware
description and the sensors that come over ROS (the IMU vendor's driver, optional foot force/torque).

Thin: the driver, the sensor inputs and the actuator report are library code (optimus_control.hardware);
this adapts them to the node's lifecycle transitions, subscriptions and /diagnostics.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from geometry_msgs.msg import WrenchStamped
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Imu

from optimus_control.errors import ConfigError, HardwareError
from optimus_control.hardware import CanDriver, check_names, load_hardware
from optimus_control.hardware.actuator_report import actuator_report
from optimus_control.hardware.driver import PASSIVE
from optimus_control.hardware.sensor_inputs import FootWrenchInput, ImuInput, imu_mounting_rotation
from optimus_control.model.paths import resolve_data_path
from optimus_control.nodes.ros_time import stamp_to_s


class HardwareSide:
    """Owns the CAN driver and the ROS sensor inputs of one robot."""

    def __init__(self, node, robot, p: dict):
        self.node, self.robot, self.p = node, robot, p
        desc = load_hardware(p["hardware_config"])
        if resolve_data_path(desc.robot_config, "config").resolve() != resolve_data_path(p["robot_config"], "config").resolve():
            raise ConfigError(f"{desc.source}: robot '{desc.robot_config}' is not the node's robot_config "
                              f"'{p['robot_config']}': the hardware description must describe the robot controlled")
        check_names(desc, robot.joint_names, robot.frame_names)
        self.desc = desc
        self.imu = ImuInput(imu_mounting_rotation(robot, desc.imu, str(desc.source)))
        self.imu_topic = node.resolve_topic_name(p["imu_topic"])
        node.create_subscription(Imu, p["imu_topic"], self._on_imu, qos_profile_sensor_data)
        feet = [f.name for f in robot.config.feet]
        self.feet: FootWrenchInput | None = None
        if p["foot_wrench_input"]:
            self.feet = FootWrenchInput(feet)
            self.foot_frames = [f.frame for f in robot.config.feet]
            for k, foot in enumerate(feet):
                node.create_subscription(WrenchStamped, f"{p['foot_wrench_input']}/{foot}",
                                         lambda m, k=k: self._on_foot_wrench(k, m), qos_profile_sensor_data)
        self.driver: CanDriver | None = None
        self._sensor_problem = ""

    # ---- lifecycle ----------------------------------------------------------------------------------------
    def configure(self):
        """Open every bus and read every motor with zero gains; returns the transport for the loop."""
        log = self.node.get_logger()
        urls = {}
        if self.p["hardware_bus_dir"]:  # a HIL rig: its emulated adapters, which may still be coming up
            urls = {b: str(Path(self.p["hardware_bus_dir"]) / b) for b in self.desc.buses}
            deadline = time.monotonic() + float(self.p["connect_timeout_s"])
            while (missing := [u for u in urls.values() if not os.path.exists(u)]) and time.monotonic() < deadline:
                time.sleep(0.1)
            if missing:
                raise ConfigError(f"hardware_bus_dir: no adapter at {missing} after {self.p['connect_timeout_s']:g} s "
                                  "(is the HIL emulator running on this joint bus?)")
            urls = {b: f"slcan:{u}" for b, u in urls.items()}
        self.driver = CanDriver(self.desc, self.robot, bus_urls=urls, missed_cycles=int(self.p["missed_cycles_limit"]))
        self.driver.open(rt_priority=int(self.p["bus_rt_priority"]))
        q, problems = self.driver.read_check()
        read = ", ".join(f"{name} {qi:+.3f}" for name, qi in zip(self.robot.joint_names, q))
        log.info(f"{len(self.desc.buses)} buses open, {len(self.desc.joints)} motors read (PASSIVE): {read}")
        if problems:  # configure succeeds (the buses are open); activate will refuse with the same list
            log.warning("activation will be refused:\n  " + "\n  ".join(problems))
        return self.driver.transport

    def enable(self) -> None:
        self.driver.enable()  # HardwareError naming every silent or out-of-range joint
        self.node.get_logger().info("motors enabled (motor mode); the loop damps until the controller takes over")

    def disable(self) -> None:
        if self.driver is not None and self.driver.transport.started and any(
                m != PASSIVE for m in self.driver.transport.modes()):
            try:
                self.driver.disable()
            except HardwareError as exc:  # a bus gone (adapter unplugged): its motors' own timeouts take over
                self.node.get_logger().error(f"not every motor left motor mode: {exc}; {self.driver.fault_message()}")
                return
            self.node.get_logger().info("motors damped, then out of motor mode")

    def clear_fault(self) -> str:
        """Clear a latched transport fault; '' when clear (or none), else what still causes it."""
        if self.driver is None or not self.driver.transport.fault()[0]:
            return ""
        message = self.driver.fault_message()
        return "" if self.driver.transport.clear_fault() else f"the actuator fault persists ({message})"

    def close(self) -> None:
        if self.driver is not None:
            problem = self.driver.close()
            if problem:
                self.node.get_logger().error(f"closing the buses: {problem}")
            self.driver = None

    # ---- sensors --------------------------------------------------------------------------------------
    def _on_imu(self, msg: Imu) -> None:
        o = msg.orientation
        has_orientation = msg.orientation_covariance[0] != -1.0
        ok = self.imu.update(np.array([o.x, o.y, o.z, o.w]) if has_orientation else None,
                             np.array([msg.angular_velocity.x, msg.angular_velocity.y, msg.angular_velocity.z]),
                             np.array([msg.linear_acceleration.x, msg.linear_acceleration.y, msg.linear_acceleration.z]),
                             stamp_to_s(msg.header.stamp), time.monotonic())
        if not ok and self.imu.rejected in (1, 10, 100, 1000):
            self.node.get_logger().error(f"{self.imu_topic}: rejected an IMU sample with a non-finite value or a "
                                         f"non-unit orientation ({self.imu.rejected} so far)")

    def _on_foot_wrench(self, foot: int, msg: WrenchStamped) -> None:
        frame = self.foot_frames[foot]
        if msg.header.frame_id not in ("", frame):
            self.feet.rejected += 1
            if self.feet.rejected in (1, 10, 100, 1000):
                self.node.get_logger().error(f"foot wrench of '{self.feet.foot_names[foot]}' in frame "
                                             f"'{msg.header.frame_id}': expected the sole frame '{frame}' (ignored)")
            return
        f, t = msg.wrench.force, msg.wrench.torque
        self.feet.update(foot, np.array([f.x, f.y, f.z, t.x, t.y, t.z]), time.monotonic())

    def sensor_state(self, state):
        """The loop's state with the ROS sensors' newest samples in it, and what is wrong with them ("" when
        nothing): no IMU sample yet, or a sensor silent beyond its timeout."""
        now = time.monotonic()
        problem = ""
        age = self.imu.age_s(now)
        if self.imu.received_s is None:
            problem = f"no IMU sample yet on {self.imu_topic}"
        elif age > self.p["imu_timeout_s"]:
            problem = f"IMU silent for {age:.3f} s on {self.imu_topic} (imu_timeout_s {self.p['imu_timeout_s']:g})"
        state = self.imu.apply(state)
        if self.feet is not None:
            age, foot = self.feet.oldest_age_s(now)
            if not problem and age > self.p["foot_wrench_timeout_s"]:
                problem = (f"foot force/torque '{foot}' silent for {age:.3f} s on "
                           f"{self.p['foot_wrench_input']}/{foot}" if np.isfinite(age) else
                           f"no foot force/torque sample yet on {self.p['foot_wrench_input']}/{foot}")
            state = self.feet.apply(state)
        return state, problem

    # ---- diagnostics ----------------------------------------------------------------------------------
    def diagnostic_status(self, node_name: str) -> DiagnosticStatus | None:
        if self.driver is None or not self.driver.transport.started:
            return None
        report = actuator_report(self.driver)
        values = dict(report.values)
        values["imu_samples"] = str(self.imu.samples)
        values["imu_age_s"] = f"{self.imu.age_s(time.monotonic()):.3f}"
        return DiagnosticStatus(level=bytes([report.level]), name=f"{node_name}: actuators",
                                hardware_id=self.desc.source.name, message=report.message,
                                values=[KeyValue(key=k, value=v) for k, v in values.items()])
