"""ROS 2 node `hil_emulator`: the actuators and the IMU of the hardware-in-the-loop rig.

Takes the controller side of the sim's joint bus (so the sim's plant is driven only by the emulated motors)
and serves the hardware description's buses as SLCAN adapters on ptys (`optimus_control.hardware.hil`,
frame handling and the motor law in C); the controller runs in hardware mode against them
(``hardware_bus_dir``). Publishes the IMU as its vendor driver would (``imu_topic``, wall-clock stamps,
noise from the parameters, no orientation) and the rig's counters on /diagnostics. Faults are injected at run
time on ``~/inject`` (std_msgs/String, e.g. ``silent l_knee``, ``unplug arm_l``, ``imu stop``).
"""

from __future__ import annotations

import sys

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Imu
from std_msgs.msg import String

from optimus_control.errors import ConfigError, OptimusError
from optimus_control.hardware import check_names, load_hardware
from optimus_control.hardware.hil import HilEmulator, HilEmulatorSettings, default_pty_dir
from optimus_control.hardware.sensor_inputs import imu_mounting_rotation
from optimus_control.model import RobotModel
from optimus_control.nodes.names import bus_name
from optimus_control.nodes.node_main import spin_node
from optimus_control.nodes.parameters import declare_settings
from optimus_control.rt import connect_transport


class HilEmulatorNode(Node):
    def __init__(self):
        super().__init__("hil_emulator")
        self.settings = declare_settings(self, HilEmulatorSettings)
        p = self.p = vars(self.settings)
        self.robot = RobotModel.load(p["robot_config"])
        desc = load_hardware(p["hardware_config"])
        check_names(desc, self.robot.joint_names, self.robot.frame_names)
        name = bus_name(p["bus_name"], self.context.get_domain_id(), self.get_namespace())
        pty_dir = p["pty_dir"] or str(default_pty_dir(name))
        n, n_feet = self.robot.n_joints, len(self.robot.config.feet)
        self.get_logger().info(f"connecting to joint bus '{name}' ({n} joints) as the actuators")
        self.transport = connect_transport(name, n, n_feet, timeout_s=float(p["connect_timeout_s"]))
        self.emulator = HilEmulator(desc, self.robot, self.transport, pty_dir, wire=bool(p["wire_model"]),
                                    latency_us=int(p["wire_latency_us"]), jitter_us=int(p["wire_jitter_us"]))
        for item in filter(None, (w.strip() for w in p["encoder_errors"].split(","))):
            joint, _, error = item.partition("=")
            try:
                self.emulator.set_encoder_error(joint.strip(), float(error))
            except ValueError:
                raise ConfigError(f"hil_emulator: parameter encoder_errors: '{item}' is not JOINT=ERROR") from None
            self.get_logger().warning(f"encoder of {joint.strip()} reads {float(error):+g} off from the start")
        self.emulator.start(rt_priority=int(p["rt_priority"]), first_state_timeout_s=float(p["connect_timeout_s"]))
        self.get_logger().info(f"{len(desc.joints)} motors on {len(desc.buses)} emulated SLCAN adapters in {pty_dir}")
        # samples in the robot's IMU frame -> the sensor's frame (its mounting in the description)
        self.sensor_from_imu = imu_mounting_rotation(self.robot, desc.imu, str(desc.source)).T
        self.rng = np.random.default_rng()
        self.pub_imu = self.create_publisher(Imu, p["imu_topic"], qos_profile_sensor_data)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(String, "~/inject", self._on_inject, 10)
        self.create_timer(1.0 / p["imu_rate_hz"], self._publish_imu)
        self.create_timer(1.0 / p["diagnostics_rate_hz"], self._publish_diagnostics)
        self._imu_on = True

    def _on_inject(self, msg: String) -> None:
        """Fault injection (see HilEmulator.inject); ``imu stop`` / ``imu start`` silence the IMU driver."""
        command = msg.data.strip()
        try:
            if command in ("imu stop", "imu start"):
                self._imu_on = command == "imu start"
            else:
                self.emulator.inject(command)
        except OptimusError as exc:
            self.get_logger().error(str(exc))
            return
        self.get_logger().warning(f"fault injected: {command}")

    def _publish_imu(self) -> None:
        if not self._imu_on:
            return
        # An IMU samples the world at its own rate: while the sim's physics is held up (a loaded machine) it
        # reads the same world again, as it would a robot standing still; it never stops publishing for it.
        sample = self.emulator.latest()
        if sample is None:
            return
        p = self.p
        gyro = self.sensor_from_imu @ sample.imu_angular_velocity + self.rng.normal(0.0, p["imu_gyro_noise_radps"], 3)
        accel = self.sensor_from_imu @ sample.imu_linear_acceleration + self.rng.normal(0.0, p["imu_accel_noise_mps2"], 3)
        msg = Imu()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = p["imu_frame_id"]
        msg.orientation_covariance[0] = -1.0  # raw data: no orientation (REP-145)
        msg.angular_velocity.x, msg.angular_velocity.y, msg.angular_velocity.z = map(float, gyro)
        msg.linear_acceleration.x, msg.linear_acceleration.y, msg.linear_acceleration.z = map(float, accel)
        msg.angular_velocity_covariance[0::4] = [p["imu_gyro_noise_radps"] ** 2] * 3
        msg.linear_acceleration_covariance[0::4] = [p["imu_accel_noise_mps2"] ** 2] * 3
        self.pub_imu.publish(msg)

    def _publish_diagnostics(self) -> None:
        stats = self.emulator.stats()
        status = self.emulator.motor_status()
        values = {"states": str(stats["states"]), "answers": str(stats["answers"]),
                  "enabled_motors": str(sum(s["enabled"] for s in status.values())),
                  "timed_out_motors": ", ".join(j for j, s in status.items() if s["timed_out"]) or "none"}
        for name, b in zip(self.emulator.bus_names, stats["buses"]):
            values[f"bus {name}"] = (f"{'open' if b['open'] else 'closed'}, frames {b['frames']}, replies {b['replies']}, "
                                     f"bad lines {b['bad_lines']}, unknown ids {b['unknown_ids']}")
        diag = DiagnosticArray()
        diag.header.stamp = self.get_clock().now().to_msg()
        diag.status.append(DiagnosticStatus(level=DiagnosticStatus.OK, name=self.get_fully_qualified_name(),
                                            hardware_id="hil", message="emulating",
                                            values=[KeyValue(key=k, value=v) for k, v in values.items()]))
        self.pub_diag.publish(diag)

    def shutdown(self) -> None:
        self.emulator.stop()
        self.transport.close()


def main(args=None) -> None:
    sys.setswitchinterval(0.001)  # the IMU timer must not wait 5 ms for the interpreter behind the executor
    spin_node("hil_emulator", HilEmulatorNode, args)


if __name__ == "__main__":
    main()
