"""ROS 2 node `sim`: the PyBullet humanoid, its head RGB-D camera, /clock and sim/ ground truth.

Thin adapter: the physics loop (optimus_control.sim.runner.SimRunner) runs in its own thread and
calls back here to publish; service callbacks hand their work to that thread. Topics and services
are listed in the README (section "sim node"); all are relative to the node's namespace except
/clock (see optimus_control.nodes.names).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
import traceback

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.signals import SignalHandlerOptions
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float64
from std_srvs.srv import SetBool, Trigger
from visualization_msgs.msg import Marker, MarkerArray

from optimus_control.errors import OptimusError
from optimus_control.nodes.names import bus_name, check_time_mode
from optimus_control.nodes.parameters import declare_settings
from optimus_control.nodes.ros_time import clock_now_s, s_to_stamp
from optimus_control.nodes.scheduling import pin_process
from optimus_control.sim.bus_server import ControlChange
from optimus_control.sim.runner import SimRunner, SimSettings
from optimus_control.sim.world import GroundTruth

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
PHYSICS_STOP_TIMEOUT_S = 10.0   # a step, a lockstep wait slice or an in-thread camera render: well under this



class SimNode(Node):
    def __init__(self):
        super().__init__("sim")
        settings = declare_settings(self, SimSettings)
        self.use_sim_time = bool(self.get_parameter("use_sim_time").value)
        check_time_mode(self.get_fully_qualified_name(), settings.mode, self.use_sim_time)
        settings.bus_name = bus_name(settings.bus_name, self.context.get_domain_id(), self.get_namespace())
        why = pin_process(settings.cpu)
        if why:
            self.get_logger().warning(f"{why}; the sim runs unpinned")
        self._pubs()
        self.bus = self._open_bus(settings.bus_name, settings.robot_config)
        try:
            self.runner = SimRunner(settings, self.bus, self)
        except BaseException:
            if self.bus is not None:
                self.bus.close(unlink=True)
            raise
        robot = self.runner.robot
        self.joint_names = list(robot.joint_names)
        self.optical_frame = robot.config.camera.optical_frame
        self.camera_info = self._camera_info()
        self._camera_error_logged = False
        self._outputs_lock = threading.Lock()  # the sim thread publishes under it; close_outputs ends that
        self._outputs_open = True
        self.create_service(Trigger, "sim/reset", self._on_reset)
        self.create_service(Trigger, "sim/push", self._on_push)
        self.create_service(SetBool, "sim/pause", self._on_pause)
        self.create_service(Trigger, "sim/step", self._on_step)
        self.create_timer(1.0, self._report_rtf, clock=rclpy.clock.Clock())  # wall-clock timer
        scene = settings.scene or "empty floor"
        self.get_logger().info(f"sim ready: scene '{scene}' seed {settings.seed}, mode {settings.mode}, "
                               f"bus '{settings.bus_name if self.bus is not None else 'none'}', camera "
                               f"{self.runner.intrinsics.width}x{self.runner.intrinsics.height} "
                               f"@ {self.runner.camera_rate_hz:g} Hz")

    # ---- set-up --------------------------------------------------------------------------------------
    def _open_bus(self, name: str, robot_config: str):
        try:
            from optimus_control.rt.bus import RobotBus
        except ImportError as exc:
            self.get_logger().error(f"joint bus unavailable ({exc}); running WITHOUT a controller: the robot is held "
                                    "by the support harness")
            return None
        from optimus_control.model import load_robot_config

        config = load_robot_config(robot_config)
        n_joints = sum(len(joints) for joints in config.joint_groups.values())  # every actuated joint is in one group
        return RobotBus.create(name=name, n_joints=n_joints, n_feet=len(config.feet))

    def _pubs(self) -> None:
        self.pub_clock = self.create_publisher(Clock, "/clock", RELIABLE)
        self.pub_rgb = self.create_publisher(Image, "camera/color/image_raw", qos_profile_sensor_data)
        self.pub_depth = self.create_publisher(Image, "camera/depth/image_raw", qos_profile_sensor_data)
        self.pub_rgb_info = self.create_publisher(CameraInfo, "camera/color/camera_info", qos_profile_sensor_data)
        self.pub_depth_info = self.create_publisher(CameraInfo, "camera/depth/camera_info", qos_profile_sensor_data)
        self.pub_pose = self.create_publisher(PoseStamped, "sim/base_pose", RELIABLE)
        self.pub_twist = self.create_publisher(TwistStamped, "sim/base_twist", RELIABLE)
        self.pub_objects = self.create_publisher(MarkerArray, "sim/objects", RELIABLE)
        self.pub_joints = self.create_publisher(JointState, "sim/joint_states", RELIABLE)
        self.pub_rtf = self.create_publisher(Float64, "sim/real_time_factor", RELIABLE)

    def _camera_info(self) -> CameraInfo:
        k = self.runner.intrinsics
        info = CameraInfo()
        info.header.frame_id = self.optical_frame
        info.width, info.height = k.width, k.height
        info.distortion_model = "plumb_bob"
        info.d = [0.0] * 5
        info.k = k.k
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [k.fx, 0.0, k.cx, 0.0, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
        return info

    # ---- outputs (called from the sim thread) ------------------------------------------------------------
    def close_outputs(self) -> None:
        """No publishing from the sim thread after this returns (the publishers may then be destroyed)."""
        with self._outputs_lock:
            self._outputs_open = False

    def on_clock(self, time_s: float) -> None:
        with self._outputs_lock:
            if self._outputs_open:
                self.pub_clock.publish(Clock(clock=s_to_stamp(time_s)))

    def on_camera(self, time_s: float, rgb: np.ndarray, depth_m: np.ndarray) -> None:
        with self._outputs_lock:
            if self._outputs_open:
                self._publish_camera(time_s, rgb, depth_m)

    def on_ground_truth(self, time_s: float, truth: GroundTruth, joint_q: np.ndarray, joint_v: np.ndarray) -> None:
        with self._outputs_lock:
            if self._outputs_open:
                self._publish_ground_truth(time_s, truth, joint_q, joint_v)

    def on_control_change(self, change: ControlChange, harness_engaged: bool) -> None:
        log = self.get_logger()
        if change.controlled:
            log.info(f"the controller controls the robot (sim time {change.time_s:.3f} s)"
                     + ("; the support harness let go" if self.runner.settings.mode == "realtime" else ""))
            return
        holder = "the support harness holds it" if harness_engaged else "nothing holds it (it may fall)"
        log.error(f"nobody controls the robot any more (sim time {change.time_s:.3f} s): {change.detail}; {holder}")

    def _msg_stamp(self, time_s: float) -> Time:
        """The stamp of a sample taken at sim time ``time_s``, on the node's clock.

        Following /clock, that is the sim time itself. On the wall clock (real-time mode, where sim
        time advances at wall speed) it is now minus the sample's age in sim time.
        """
        if self.use_sim_time:
            return s_to_stamp(time_s)
        age_s = max(0.0, self.runner.world.time_s - time_s)
        return s_to_stamp(clock_now_s(self) - age_s)

    def _publish_camera(self, time_s: float, rgb: np.ndarray, depth_m: np.ndarray) -> None:
        stamp = self._msg_stamp(time_s)
        h, w = depth_m.shape
        for pub, encoding, array, step in ((self.pub_rgb, "rgb8", rgb, 3 * w), (self.pub_depth, "32FC1", depth_m, 4 * w)):
            msg = Image()
            msg.header.stamp, msg.header.frame_id = stamp, self.optical_frame
            msg.height, msg.width, msg.encoding, msg.is_bigendian, msg.step = h, w, encoding, 0, step
            msg.data = array.tobytes()
            pub.publish(msg)
        self.camera_info.header.stamp = stamp
        self.pub_rgb_info.publish(self.camera_info)
        self.pub_depth_info.publish(self.camera_info)

    def _publish_ground_truth(self, time_s: float, truth: GroundTruth, joint_q: np.ndarray, joint_v: np.ndarray) -> None:
        stamp, frame = self._msg_stamp(time_s), self.get_parameter("world_frame").value
        pose = PoseStamped()
        pose.header.stamp, pose.header.frame_id = stamp, frame
        p, q = truth.base_position, truth.base_orientation_xyzw
        pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = map(float, p)
        o = pose.pose.orientation
        o.x, o.y, o.z, o.w = map(float, q)
        self.pub_pose.publish(pose)
        twist = TwistStamped()
        twist.header.stamp, twist.header.frame_id = stamp, frame
        lin, ang = twist.twist.linear, twist.twist.angular
        lin.x, lin.y, lin.z = map(float, truth.base_linear_velocity)
        ang.x, ang.y, ang.z = map(float, truth.base_angular_velocity)
        self.pub_twist.publish(twist)
        js = JointState()
        js.header.stamp = stamp
        js.name, js.position, js.velocity = self.joint_names, joint_q.tolist(), joint_v.tolist()
        self.pub_joints.publish(js)
        scene = self.runner.scene
        period = self.runner._truth_timer.period
        if scene is not None and period is not None and self.runner.world.step_count % (10 * period) == 0:
            # objects at 1/10 of the ground-truth rate
            markers = MarkerArray()
            for obj in scene.objects:
                m = Marker()
                m.header.stamp, m.header.frame_id = stamp, frame
                m.ns, m.id, m.type, m.action = obj.name, obj.id, Marker.CUBE, Marker.ADD
                pos, quat = truth.objects[obj.id]
                m.pose.position.x, m.pose.position.y, m.pose.position.z = map(float, pos)
                m.pose.orientation.x, m.pose.orientation.y, m.pose.orientation.z, m.pose.orientation.w = map(float, quat)
                m.scale.x, m.scale.y, m.scale.z = map(float, obj.size)
                m.color.r, m.color.g, m.color.b, m.color.a = map(float, obj.rgba)
                m.text = obj.colour
                markers.markers.append(m)
            self.pub_objects.publish(markers)

    def _report_rtf(self) -> None:
        if self.runner.camera_error is not None and not self._camera_error_logged:
            self._camera_error_logged = True
            self.get_logger().error(f"camera stopped, the sim runs on without images: {self.runner.camera_error}")
        waiting = self.runner.waiting_since
        if waiting is not None and time.monotonic() - waiting > 2.0:
            self.get_logger().info(f"lockstep: waiting for a controller on joint bus '{self.runner.settings.bus_name}' "
                                   f"(sim time frozen at {self.runner.world.time_s:.3f} s)", throttle_duration_sec=10.0)
        rtf = self.runner.rtf.value
        self.pub_rtf.publish(Float64(data=float(rtf)))
        server = self.runner.server
        if server is not None and server.commands_applied:
            self.get_logger().debug(f"commands late {server.commands_late} of {server.commands_applied}")
        if self.runner.settings.mode == "realtime" and 0 < rtf < 0.9:
            self.get_logger().warning(f"real-time factor {rtf:.2f} (the sim cannot keep up with the wall clock)",
                                      throttle_duration_sec=10.0)

    # ---- services ------------------------------------------------------------------------------------------
    def _on_reset(self, _req, res):
        seed = int(self.get_parameter("seed").value)
        return self._run(res, lambda: self.runner.reset(seed), f"scene reset with seed {seed}")

    def _on_push(self, _req, res):
        force = [float(x) for x in self.get_parameter("push_force_n").value]
        link = str(self.get_parameter("push_link").value)
        duration = float(self.get_parameter("push_duration_s").value)
        return self._run(res, lambda: self.runner.push(link, force, duration),
                         f"pushing link '{link}' with {force} N for {duration} s")

    def _on_pause(self, req, res):
        self.runner.set_paused(req.data)
        res.success, res.message = True, "paused" if req.data else "running"
        return res

    def _on_step(self, _req, res):
        n = int(self.get_parameter("step_ticks").value)
        if not self.runner.paused:
            res.success, res.message = False, "not paused: call sim/pause with data=true first"
            return res
        try:
            left = self.runner.request_steps(n)
        except OptimusError as exc:
            res.success, res.message = False, str(exc)
            return res
        res.success = left == 0
        res.message = f"stepped {n} tick(s), sim time {self.runner.world.time_s:.3f} s" if left == 0 else \
            f"{left} of {n} tick(s) still pending (lockstep: is the controller answering?)"
        return res

    def _run(self, res, fn, message: str):
        try:
            self.runner.call(fn)
            res.success, res.message = True, message
        except (OptimusError, TimeoutError) as exc:
            res.success, res.message = False, str(exc)
        return res


def main(args=None) -> None:
    """Run the sim until SIGINT/SIGTERM: stop the physics thread, then close the node and rclpy (exit 0)."""
    stop = threading.Event()
    # The physics thread must get the interpreter within ~1 ms when the executor thread holds it, not after
    # the default 5 ms switch interval (in real time a 1 ms step would wait for it).
    sys.setswitchinterval(0.001)
    # rclpy's own SIGINT handler would shut its context down while the physics thread still publishes
    # (/clock every few ms): that thread would die with "publisher's context is invalid". Here a signal
    # only asks for a stop, and the shutdown runs in order below.
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        node = SimNode()
    except OptimusError as exc:
        print(f"sim: {exc}", flush=True)
        rclpy.try_shutdown()
        raise SystemExit(2) from None
    physics_error: list[BaseException] = []

    def physics_main() -> None:
        try:
            node.runner.run()
        except Exception as exc:  # reported below; the node then shuts down with exit code 1
            physics_error.append(exc)
            node.get_logger().error(f"physics thread failed:\n{traceback.format_exc()}")

    physics = threading.Thread(target=physics_main, name="sim-physics", daemon=True)
    if not stop.is_set():  # a signal during start-up: do not start
        physics.start()
    try:
        while not stop.is_set() and physics.is_alive() and rclpy.ok():
            rclpy.spin_once(node, timeout_sec=0.1)
    finally:
        _shut_down(node, physics)
    if physics_error:
        raise SystemExit(1)


def _shut_down(node: SimNode, physics: threading.Thread) -> None:
    """Physics thread first (it publishes), then the outputs, the runner, the bus, the node and rclpy."""
    node.runner.stop_event.set()
    if physics.is_alive():
        physics.join(timeout=PHYSICS_STOP_TIMEOUT_S)
    if physics.is_alive():
        node.get_logger().error(f"the physics thread did not stop within {PHYSICS_STOP_TIMEOUT_S:g} s; closing anyway")
    node.close_outputs()
    node.runner.close()
    if node.bus is not None:
        node.bus.close(unlink=True)
    node.destroy_node()
    rclpy.try_shutdown()


if __name__ == "__main__":
    main()
