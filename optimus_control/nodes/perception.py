"""ROS 2 node `perception`: head RGB-D images + robot state -> tracked boxes and bins in the odom frame.

Thin adapter around optimus_control.perception.pipeline.PerceptionPipeline: it converts messages,
pairs colour and depth images by stamp, feeds joint_states and odom into the state history, and
publishes the tracks as visualization_msgs/MarkerArray (see README, section "perception node"). Topic
names are relative (the node's namespace); its /diagnostics status is named '<full node name>: objects'.
"""

from __future__ import annotations

import time
from collections import deque

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from nav_msgs.msg import Odometry
from rclpy.clock import Clock
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, JointState
from visualization_msgs.msg import Marker, MarkerArray

from optimus_control.errors import OptimusError, SensorDataError
from optimus_control.model import RobotModel
from optimus_control.nodes.parameters import declare_settings
from optimus_control.nodes.ros_time import clock_now_s, s_to_stamp, stamp_to_s
from optimus_control.nodes.scheduling import use_idle_scheduling
from optimus_control.perception import PinholeCamera
from optimus_control.perception.params import PerceptionNodeSettings
from optimus_control.perception.pipeline import PerceptionPipeline
from optimus_control.perception.ros_conversions import colour_image_to_rgb, depth_image_to_metres
from optimus_control.perception.tracker import LOST

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)

class PerceptionNode(Node):
    def __init__(self):
        super().__init__("perception")
        params = declare_settings(self, PerceptionNodeSettings)
        if params.idle_scheduling:
            use_idle_scheduling()
        self.cfg = vars(params)
        robot = RobotModel.load(self.cfg["robot_config"])
        self.pipeline = PerceptionPipeline(robot, None, params)
        self.classifier_rgb = {c.name: c.rgb for c in params.colour_classes}
        self.camera_info_received = False
        self._colour: deque = deque(maxlen=4)
        self._depth: deque = deque(maxlen=4)
        self._pending: tuple[float, np.ndarray, np.ndarray, float] | None = None
        self._published_ids: set[tuple[str, int]] = set()
        self._processing_ms: deque = deque(maxlen=100)
        self._latency_ms: deque = deque(maxlen=100)
        self._frames = 0
        self._skipped = 0
        c = self.cfg
        endpoints = {
            "colour_topic": self.create_subscription(Image, c["colour_topic"], self._on_colour, qos_profile_sensor_data),
            "depth_topic": self.create_subscription(Image, c["depth_topic"], self._on_depth, qos_profile_sensor_data),
            "camera_info_topic": self.create_subscription(CameraInfo, c["camera_info_topic"], self._on_camera_info,
                                                          qos_profile_sensor_data),
            "joint_states_topic": self.create_subscription(JointState, c["joint_states_topic"], self._on_joint_state,
                                                           qos_profile_sensor_data),
            "odom_topic": self.create_subscription(Odometry, c["odom_topic"], self._on_odom, qos_profile_sensor_data),
            "objects_topic": self.create_publisher(MarkerArray, c["objects_topic"], RELIABLE),
        }
        self.pub_objects = endpoints["objects_topic"]
        c.update({key: endpoint.topic_name for key, endpoint in endpoints.items()})  # full names (remaps applied) for messages
        self._status = (DiagnosticStatus.WARN, f"waiting for CameraInfo on {c['camera_info_topic']}")
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", RELIABLE)
        self.create_timer(c["diagnostics_period_s"], self._publish_diagnostics)
        self.create_timer(0.05, self._retry_pending, clock=Clock())  # wall clock: also when /clock stalls
        self.get_logger().info(f"perception ready: {c['colour_topic']} + {c['depth_topic']} -> {c['objects_topic']} "
                               f"(frame '{c['odom_frame']}'), classes {[cl.name for cl in params.colour_classes]}")

    # ---- inputs ------------------------------------------------------------------------------------
    def _warn(self, text: str) -> None:
        self.get_logger().warning(text, throttle_duration_sec=self.cfg["warn_period_s"])

    def _error(self, text: str) -> None:
        self._status = (DiagnosticStatus.ERROR, text)
        self.get_logger().error(text, throttle_duration_sec=self.cfg["warn_period_s"])

    def _on_camera_info(self, msg: CameraInfo) -> None:
        try:
            if not any(msg.k):
                raise SensorDataError(f"{self.cfg['camera_info_topic']}: K is all zeros (uncalibrated camera)")
            self.pipeline.set_camera(PinholeCamera.from_k(msg.width, msg.height, np.array(msg.k)))
            self.camera_info_received = True
        except OptimusError as exc:
            self._error(str(exc))

    def _on_joint_state(self, msg: JointState) -> None:
        t = stamp_to_s(msg.header.stamp) or clock_now_s(self)
        try:
            self.pipeline.state.add_joint_state(t, list(msg.name), list(msg.position))
        except OptimusError as exc:
            self._warn(f"{self.cfg['joint_states_topic']}: {exc}")

    def _on_odom(self, msg: Odometry) -> None:
        p, q = msg.pose.pose.position, msg.pose.pose.orientation
        t = stamp_to_s(msg.header.stamp) or clock_now_s(self)
        try:
            self.pipeline.state.add_base_pose(t, [p.x, p.y, p.z], [q.x, q.y, q.z, q.w])
        except OptimusError as exc:
            self._warn(f"{self.cfg['odom_topic']}: {exc}")

    def _on_colour(self, msg: Image) -> None:
        self._colour.append(msg)
        self._pair()

    def _on_depth(self, msg: Image) -> None:
        self._depth.append(msg)
        self._pair()

    def _pair(self) -> None:
        """Process the newest colour/depth pair whose stamps agree."""
        tol = self.cfg["sync_tolerance_s"]
        for colour in reversed(self._colour):
            tc = stamp_to_s(colour.header.stamp)
            for depth in reversed(self._depth):
                if abs(stamp_to_s(depth.header.stamp) - tc) <= tol:
                    self._colour.clear()
                    self._depth.clear()
                    self._frame(colour, depth, tc)
                    return

    def _frame(self, colour: Image, depth: Image, stamp_s: float) -> None:
        c = self.cfg
        if not self.camera_info_received:
            self._status = (DiagnosticStatus.WARN, f"waiting for CameraInfo on {c['camera_info_topic']}")
            self._warn(f"no CameraInfo yet on {c['camera_info_topic']}: waiting before detecting objects")
            return
        try:
            rgb = colour_image_to_rgb(c["colour_topic"], colour.encoding, colour.height, colour.width, colour.step,
                                      colour.data)
            depth_m = depth_image_to_metres(c["depth_topic"], depth.encoding, depth.height, depth.width, depth.step,
                                            depth.data, bool(depth.is_bigendian))
            cam = self.pipeline.detector.camera
            if rgb.shape[:2] != depth_m.shape or rgb.shape[:2] != (cam.height, cam.width):
                raise SensorDataError(
                    f"image sizes disagree: {c['colour_topic']} is {rgb.shape[1]}x{rgb.shape[0]}, {c['depth_topic']} is "
                    f"{depth_m.shape[1]}x{depth_m.shape[0]}, {c['camera_info_topic']} says {cam.width}x{cam.height}")
        except OptimusError as exc:
            self._skipped += 1
            self._error(str(exc))
            return
        self._process(stamp_s, rgb, depth_m, time.monotonic())

    def _process(self, stamp_s: float, rgb: np.ndarray, depth_m: np.ndarray, arrived_wall_s: float) -> None:
        latest = self.pipeline.state.latest_time()
        if latest is not None and stamp_s > latest + self.pipeline.params.state_max_age_s:
            # The state for this image has not arrived yet: wait for it a little (one image at most).
            if self._pending is not None and self._pending[0] != stamp_s:
                self._drop_pending(f"a newer image arrived first; robot state stops at t={latest:.3f} s")
            self._pending = (stamp_s, rgb, depth_m, arrived_wall_s)
            self._status = (DiagnosticStatus.WARN, f"waiting for robot state at image time t={stamp_s:.3f} s "
                                                   f"(latest state t={latest:.3f} s)")
            return
        try:
            out = self.pipeline.process(rgb, depth_m, stamp_s)
        except OptimusError as exc:
            self._skipped += 1
            self._error(f"{self.cfg['colour_topic']}/{self.cfg['depth_topic']}: {exc}")
            return
        except Exception as exc:  # a bug on one frame must not take perception (and the job) down
            self._skipped += 1
            self._error(f"image at t={stamp_s:.3f} s dropped: processing raised {exc!r}")
            return
        if out.skipped:
            self._skipped += 1
            self._status = (DiagnosticStatus.WARN, out.skipped)
            self._warn(f"image at t={stamp_s:.3f} s skipped: {out.skipped}")
            return
        self._frames += 1
        self._processing_ms.append(out.processing_ms)
        self._status = (DiagnosticStatus.OK, f"{sum(1 for t in out.tracks if t.state != LOST)} objects visible")
        self._publish_objects(out.stamp_s)

    def _retry_pending(self) -> None:
        if self._pending is None:
            return
        stamp_s, rgb, depth_m, arrived = self._pending
        latest = self.pipeline.state.latest_time()
        if latest is not None and stamp_s <= latest + self.pipeline.params.state_max_age_s:
            self._pending = None
            self._process(stamp_s, rgb, depth_m, arrived)
        elif time.monotonic() - arrived > self.cfg["state_wait_s"]:
            reason = f"robot state stops at t={latest:.3f} s" if latest is not None else "no robot state"
            self._drop_pending(f"waited {self.cfg['state_wait_s']} s; {reason}")

    def _drop_pending(self, why: str) -> None:
        stamp_s = self._pending[0]
        self._pending = None
        self._skipped += 1
        self._status = (DiagnosticStatus.WARN, f"image at t={stamp_s:.3f} s dropped, no robot state for it: {why}")
        self._warn(f"image at t={stamp_s:.3f} s dropped, no robot state for it ({self.cfg['joint_states_topic']}, "
                   f"{self.cfg['odom_topic']}): {why}")

    # ---- outputs -----------------------------------------------------------------------------------
    def _publish_objects(self, image_stamp_s: float) -> None:
        stamp = s_to_stamp(image_stamp_s)
        frame = self.cfg["odom_frame"]
        array = MarkerArray()
        current: set[tuple[str, int]] = set()
        for track in self.pipeline.tracker.published():
            lost = track.state == LOST
            rgb = self.classifier_rgb.get(track.class_name, (128, 128, 128))
            cube = Marker()
            cube.header.stamp, cube.header.frame_id = stamp, frame
            cube.ns, cube.id, cube.type, cube.action = track.class_name, track.track_id, Marker.CUBE, Marker.ADD
            cube.pose.position.x, cube.pose.position.y, cube.pose.position.z = (float(v) for v in track.position_m)
            cube.pose.orientation.z, cube.pose.orientation.w = float(np.sin(track.yaw_rad / 2)), float(np.cos(track.yaw_rad / 2))
            cube.scale.x, cube.scale.y, cube.scale.z = (float(v) for v in track.size_m)
            cube.color.r, cube.color.g, cube.color.b = (v / 255.0 for v in rgb)
            cube.color.a = 0.35 if lost else 1.0
            cube.text = track.state  # "visible" or "lost", machine-readable
            label = Marker()
            label.header = cube.header
            label.ns, label.id, label.type, label.action = "state", track.track_id, Marker.TEXT_VIEW_FACING, Marker.ADD
            label.pose.position.x, label.pose.position.y = cube.pose.position.x, cube.pose.position.y
            label.pose.position.z = float(track.position_m[2] + track.size_m[2] / 2 + self.cfg["label_height_m"])
            label.pose.orientation.w = 1.0
            label.scale.z = 0.04
            label.color.r = label.color.g = label.color.b = label.color.a = 1.0
            label.text = f"{track.class_name} {track.track_id} {track.state}"
            array.markers += [cube, label]
            current |= {(track.class_name, track.track_id), ("state", track.track_id)}
        for ns, mid in self._published_ids - current:
            gone = Marker()
            gone.header.stamp, gone.header.frame_id = stamp, frame
            gone.ns, gone.id, gone.action = ns, mid, Marker.DELETE
            array.markers.append(gone)
        self._published_ids = current
        self.pub_objects.publish(array)
        now_s = clock_now_s(self)
        self._latency_ms.append(1e3 * (now_s - image_stamp_s))

    def _publish_diagnostics(self) -> None:
        level, message = self._status
        proc = np.array(self._processing_ms) if self._processing_ms else np.zeros(1)
        lat = np.array(self._latency_ms) if self._latency_ms else np.zeros(1)
        tracks = self.pipeline.tracker.published()
        status = DiagnosticStatus(level=level, name=f"{self.get_fully_qualified_name()}: objects", message=message,
                                  hardware_id=self.pipeline.robot.config.camera.optical_frame)
        status.values = [KeyValue(key=k, value=v) for k, v in (
            ("frames_processed", str(self._frames)), ("frames_skipped", str(self._skipped)),
            ("processing_ms_median", f"{np.median(proc):.2f}"), ("processing_ms_max", f"{proc.max():.2f}"),
            ("latency_ms_median", f"{np.median(lat):.2f}"), ("latency_ms_max", f"{lat.max():.2f}"),
            ("tracks_visible", str(sum(t.state != LOST for t in tracks))),
            ("tracks_lost", str(sum(t.state == LOST for t in tracks))),
        )]
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub_diag.publish(msg)


def main(args=None) -> None:
    # Frames are small (320x240): OpenCV's worker threads cost more than they save on a shared 2-core machine.
    cv2.setNumThreads(1)
    rclpy.init(args=args)
    node = None
    try:
        node = PerceptionNode()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except OptimusError as exc:
        if node is None:
            rclpy.logging.get_logger("perception").fatal(f"cannot start: {exc}")
        raise SystemExit(1) from exc
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


if __name__ == "__main__":
    main()
