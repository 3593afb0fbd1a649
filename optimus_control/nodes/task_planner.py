"""task_planner: runs a job file with the planning library, talking to the controller and perception.

Thin adapter: every topic name and message conversion of the planner is in the first half of this
module (``TOPICS``, ``RosController``, ``RosPerception`` and the ``*_from_msg`` / ``*_to_msg``
functions); the logic is in :mod:`optimus_control.planning`.

Interface (standard messages only). Every name is relative to the node's namespace, so a stack
launched under ``namespace:=r1`` talks only to its own controller and perception; /diagnostics is
the one global topic, and only statuses named after this namespace's controller count:

=====================================================  ====================================  ==========================
topic / service                                        type                                  notes
=====================================================  ====================================  ==========================
perception/objects (in)                                visualization_msgs/MarkerArray        odom; ns = class, id = track,
                                                                                             pose = centre, scale = size;
                                                                                             each message = all current
                                                                                             tracks; DELETE = forgotten;
                                                                                             text "visible" / "held" /
                                                                                             "lost" = state; TEXT_VIEW_FACING
                                                                                             labels (ns "state") ignored
odom (in)                                              nav_msgs/Odometry                     base_link pose in odom
whole_body_controller/task_status (in)                 diagnostic_msgs/DiagnosticArray       one status per task, name
                                                                                             "hand_<hand>" or "<hand>_hand",
                                                                                             "gaze", ... ("prefix: " ignored);
                                                                                             keys goal_reached (true/false),
                                                                                             position_error_m (hands),
                                                                                             error_norm (other tasks),
                                                                                             goal_stamp (goal header
                                                                                             stamp, s, opt.),
                                                                                             clamped (true = unreachable);
                                                                                             level ERROR = fault
/diagnostics (in)                                      diagnostic_msgs/DiagnosticArray       ERROR from a status named
                                                                                             after the controller's full
                                                                                             name (controller_prefix
                                                                                             resolved in this namespace,
                                                                                             e.g. /r1/whole_body_controller)
                                                                                             = controller fault
whole_body_controller/<hand>_hand/goal (out)           geometry_msgs/PoseStamped             gripper frame target, odom
whole_body_controller/<hand>_gripper/command (out)     sensor_msgs/JointState                position[0] = per-finger
                                                                                             opening [m] (pad gap = 2x),
                                                                                             effort[0] = force limit [N]
whole_body_controller/gaze/target (out)                geometry_msgs/PointStamped            odom
whole_body_controller/posture (out)                    std_msgs/String                       preset name (on a stop)
task/status (out)                                      diagnostic_msgs/DiagnosticArray       see planning/status.py
/diagnostics (out)                                     diagnostic_msgs/DiagnosticArray       "<full node name>: job" entry
task/start, task/cancel                                std_srvs/Trigger
=====================================================  ====================================  ==========================

Subscriptions use best-effort QoS (they match reliable and best-effort publishers); goals and status
are published reliable. A job file that does not validate stops the node (exit code 2) before any
publisher exists, so nothing moves.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import threading
import time

import numpy as np
import rclpy
import rclpy.executors
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PointStamped, PoseStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger
from visualization_msgs.msg import Marker, MarkerArray

from optimus_control.control.planner_status import TaskReport, planner_status
from optimus_control.errors import OptimusError
from optimus_control.model import RobotModel
from optimus_control.nodes.names import is_own_status, resolve_name
from optimus_control.nodes.parameters import declare_settings
from optimus_control.nodes.ros_time import clock_now_s, s_to_stamp, stamp_to_s
from optimus_control.nodes.scheduling import use_idle_scheduling
from optimus_control.planning import (
    ControllerStatus,
    PerceivedObject,
    PerceptionSnapshot,
    Pose,
    StatusEntry,
    TaskExecutive,
    episode_summary,
    load_job,
    task_status,
    write_run_report,
)
from optimus_control.planning.interfaces import HELD, LOST, TRACKED
from optimus_control.planning.node_settings import TaskPlannerSettings
from optimus_control.planning.status import JOB_ENTRY

CONTROLLER = "whole_body_controller"  # the controller node, relative: its goals and status live under it
TOPICS = {
    "objects": "perception/objects",
    "odom": "odom",
    "wbc_status": f"{CONTROLLER}/task_status",
    "diagnostics": "/diagnostics",
    "hand_target": CONTROLLER + "/{hand}_hand/goal",
    "gripper_command": CONTROLLER + "/{hand}_gripper/command",
    "gaze_target": f"{CONTROLLER}/gaze/target",
    "posture": f"{CONTROLLER}/posture",
    "task_status": "task/status",
    "start": "task/start",
    "cancel": "task/cancel",
}
IGNORED_MARKER_NS = ("state",)  # perception's text labels
SENSOR_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
COMMAND_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


# ---- message conversions --------------------------------------------------------------------------
def pose_to_msg(pose: Pose, frame: str, t_s: float) -> PoseStamped:
    msg = PoseStamped()
    msg.header.frame_id, msg.header.stamp = frame, s_to_stamp(t_s)
    p, q = pose.position, pose.quaternion_xyzw
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in p)
    msg.pose.orientation.x, msg.pose.orientation.y, msg.pose.orientation.z, msg.pose.orientation.w = (float(v) for v in q)
    return msg


def gripper_to_msg(finger_position_m: float, max_force_n: float, t_s: float) -> JointState:
    """The controller's gripper command: position[0] = per-finger opening [m], effort[0] = force limit [N]."""
    msg = JointState()
    msg.header.stamp = s_to_stamp(t_s)
    msg.position, msg.effort = [float(finger_position_m)], [float(max_force_n)]
    return msg


def pose_from_msg(pose) -> Pose:
    o = pose.orientation
    return Pose.from_position_quaternion([pose.position.x, pose.position.y, pose.position.z], [o.x, o.y, o.z, o.w])


def snapshot_from_msg(msg: MarkerArray, class_map: dict[str, str], frame: str, now_s: float) -> PerceptionSnapshot:
    """MarkerArray -> snapshot; markers in another frame are ignored (the caller warns)."""
    objects, stamps = [], []
    for m in msg.markers:
        if m.action == Marker.DELETEALL or m.header.frame_id != frame or m.type == Marker.TEXT_VIEW_FACING \
                or m.ns in IGNORED_MARKER_NS:
            continue  # labels and other decorations are not objects
        stamps.append(stamp_to_s(m.header.stamp))
        state = LOST if m.action == Marker.DELETE else TRACKED
        text = m.text.lower()
        if "lost" in text:
            state = LOST
        elif "held" in text and state != LOST:
            state = HELD
        try:
            pose = pose_from_msg(m.pose)
        except ValueError:
            continue  # a DELETE marker may carry an all-zero quaternion
        objects.append(PerceivedObject(m.id, class_map.get(m.ns, m.ns), pose,
                                       np.array([m.scale.x, m.scale.y, m.scale.z]), state))
    return PerceptionSnapshot(max(stamps) if stamps else now_s, tuple(objects))


def controller_status_from_msg(msg: DiagnosticArray, now_s: float) -> ControllerStatus:
    """The controller's ~/task_status -> the planner's status (mapped by ``planner_status``); a status at
    level ERROR is a fault; an unstamped message counts as received at ``now_s``."""
    reports, fault = [], None
    for s in msg.status:
        values = {kv.key: kv.value for kv in s.values}
        if s.level == DiagnosticStatus.ERROR:
            fault = f"{s.name}: {s.message}"
        if "goal_reached" not in values:
            continue
        goal = _float(values.get("goal_stamp"))
        reports.append(TaskReport(s.name, _flag(values["goal_reached"]),
                                  _float(values.get("tracking_error_m", values.get("position_error_m"))),
                                  _float(values.get("error_norm")), None if math.isnan(goal) else goal,
                                  _flag(values.get("clamped", "false"))))
    stamp = stamp_to_s(msg.header.stamp) if (msg.header.stamp.sec or msg.header.stamp.nanosec) else now_s
    return planner_status(stamp, reports, fault)


def controller_fault(msg: DiagnosticArray, controller_name: str) -> str | None:
    """The controller's fault in a /diagnostics message: None when the message has no status of
    ``controller_name`` (fully qualified; other nodes and other robots are ignored), "" when its
    statuses are all fine, else the first ERROR as "name: message"."""
    mine = [s for s in msg.status if is_own_status(s.name, controller_name)]
    if not mine:
        return None
    return next((f"{s.name}: {s.message}" for s in mine if s.level == DiagnosticStatus.ERROR), "")


def status_to_msg(entries: list[StatusEntry], t_s: float) -> DiagnosticArray:
    msg = DiagnosticArray()
    msg.header.stamp = s_to_stamp(t_s)
    for e in entries:
        msg.status.append(DiagnosticStatus(level=bytes([e.level]), name=e.name, message=e.message,
                                           hardware_id="task_planner",
                                           values=[KeyValue(key=k, value=v) for k, v in e.values.items()]))
    return msg


def _flag(text: str) -> bool:
    return text.strip().lower() in ("true", "1", "yes")


def _float(text: str | None) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


# ---- protocol implementations -----------------------------------------------------------------------
class RosController:
    """ControllerClient over the whole-body controller's topics.

    ``controller_name`` is the controller's fully qualified node name: on the global /diagnostics only
    its statuses count, so another robot's controller fault never reaches this robot's job.
    """

    def __init__(self, node: Node, hands: list[str], frame: str, controller_name: str):
        self.node, self.frame, self.controller_name = node, frame, controller_name
        self._lock = threading.Lock()
        self._status: ControllerStatus | None = None
        self._diag_fault: str | None = None
        self._base: Pose | None = None
        self._hand_pub = {h: node.create_publisher(PoseStamped, TOPICS["hand_target"].format(hand=h), COMMAND_QOS)
                          for h in hands}
        self._grip_pub = {h: node.create_publisher(JointState, TOPICS["gripper_command"].format(hand=h),
                                                   COMMAND_QOS) for h in hands}
        self._gaze_pub = node.create_publisher(PointStamped, TOPICS["gaze_target"], COMMAND_QOS)
        self._posture_pub = node.create_publisher(String, TOPICS["posture"], COMMAND_QOS)
        node.create_subscription(DiagnosticArray, TOPICS["wbc_status"], self._on_status, SENSOR_QOS)
        node.create_subscription(DiagnosticArray, TOPICS["diagnostics"], self._on_diagnostics, SENSOR_QOS)
        node.create_subscription(Odometry, TOPICS["odom"], self._on_odom, SENSOR_QOS)

    def _now(self) -> float:
        return clock_now_s(self.node)

    def _on_status(self, msg: DiagnosticArray) -> None:
        status = controller_status_from_msg(msg, self._now())
        with self._lock:
            self._status = status

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        fault = controller_fault(msg, self.controller_name)
        if fault is not None:
            with self._lock:
                self._diag_fault = fault or None

    def _on_odom(self, msg: Odometry) -> None:
        try:
            pose = pose_from_msg(msg.pose.pose)
        except ValueError:
            return
        with self._lock:
            self._base = pose

    def send_hand_target(self, hand: str, pose: Pose, stamp_s: float) -> None:
        self._hand_pub[hand].publish(pose_to_msg(pose, self.frame, stamp_s))

    def send_gripper(self, hand: str, finger_position_m: float, max_force_n: float, stamp_s: float) -> None:
        self._grip_pub[hand].publish(gripper_to_msg(finger_position_m, max_force_n, stamp_s))

    def send_gaze(self, point_m, stamp_s: float) -> None:
        msg = PointStamped()
        msg.header.frame_id, msg.header.stamp = self.frame, s_to_stamp(stamp_s)
        msg.point.x, msg.point.y, msg.point.z = (float(v) for v in point_m)
        self._gaze_pub.publish(msg)

    def send_posture(self, preset: str, stamp_s: float) -> None:
        self._posture_pub.publish(String(data=preset))

    def status(self) -> ControllerStatus | None:
        with self._lock:
            status, fault = self._status, self._diag_fault
        if status is None or fault is None or status.fault:
            return status
        return dataclasses.replace(status, fault=fault)

    def base_pose(self) -> Pose | None:
        with self._lock:
            return self._base


class RosPerception:
    """PerceptionClient over /perception/objects."""

    def __init__(self, node: Node, frame: str, class_map: dict[str, str]):
        self.node, self.frame, self.class_map = node, frame, class_map
        self._snapshot: PerceptionSnapshot | None = None
        self._lock = threading.Lock()
        self._topic = node.create_subscription(MarkerArray, TOPICS["objects"], self._on_objects, SENSOR_QOS).topic_name

    def _on_objects(self, msg: MarkerArray) -> None:
        wrong = {m.header.frame_id for m in msg.markers if m.header.frame_id != self.frame and m.action != Marker.DELETEALL}
        if wrong:
            self.node.get_logger().warning(f"{self._topic}: ignoring markers in frame(s) {sorted(wrong)}; "
                                           f"expected '{self.frame}'", throttle_duration_sec=5.0)
        snap = snapshot_from_msg(msg, self.class_map, self.frame, clock_now_s(self.node))
        with self._lock:
            self._snapshot = snap

    def snapshot(self) -> PerceptionSnapshot | None:
        with self._lock:
            return self._snapshot


# ---- the node ---------------------------------------------------------------------------------------
class TaskPlannerNode(Node):
    def __init__(self):
        super().__init__("task_planner")
        p = declare_settings(self, TaskPlannerSettings)
        if p.idle_scheduling:
            use_idle_scheduling()
        self.job = load_job(p.job, p.object_classes or None)  # ConfigError before anything moves
        robot = RobotModel.load(p.robot_config)
        hands = [h.name for h in robot.config.hands]
        self.controller = RosController(self, hands, p.world_frame, resolve_name(p.controller_prefix, self.get_namespace()))
        self.perception = RosPerception(self, p.world_frame, p.class_renames)
        self.executive = TaskExecutive(
            self.job, robot, self.controller, self.perception, self._now, skill_params=p.skill,
            world_params=p.world, workspace_params=p.workspace,
            grasp_params=dataclasses.replace(p.grasp, max_finger_opening_m=robot.config.gripper.open_position))
        self.autostart, self.report_dir = p.autostart, p.report_dir
        self.exit_when_done = p.exit_when_done
        self.exit_code: int | None = None  # set when the episode ended and the node should exit
        self._status_pub = self.create_publisher(DiagnosticArray, TOPICS["task_status"], COMMAND_QOS)
        self._diag_pub = self.create_publisher(DiagnosticArray, TOPICS["diagnostics"], COMMAND_QOS)
        self.create_service(Trigger, TOPICS["start"], self._on_start)
        self.create_service(Trigger, TOPICS["cancel"], self._on_cancel)
        self._lock = threading.Lock()
        self._last_state = None
        self._events_logged = 0
        self._reported = True
        self.create_timer(1.0 / p.tick_rate_hz, self._tick)
        self.create_timer(1.0 / p.status_rate_hz, self._publish_status)
        how = "starting when the controller and perception are up" if self.autostart else \
            f"call {self.resolve_service_name(TOPICS['start'])}"
        self.get_logger().info(f"job '{self.job.name}' from {self.job.source} is valid; {how}")

    def _now(self) -> float:
        return clock_now_s(self)

    def _on_start(self, request, response):
        if self._now() <= 0.0:
            response.success, response.message = False, "the clock has not started (use_sim_time and no /clock yet)"
            return response
        with self._lock:
            response.success, response.message = self.executive.start()
            self._reported = False
            self._events_logged = 0
        self.get_logger().info(response.message)
        self._publish_status()
        return response

    def _on_cancel(self, request, response):
        with self._lock:
            response.success, response.message = self.executive.cancel()
        self.get_logger().info(response.message)
        return response

    def _tick(self) -> None:
        if self._now() <= 0.0:
            return  # sim clock not started yet
        with self._lock:
            if self.autostart and self.executive.record.state == "idle" and self.controller.status() is not None \
                    and self.controller.base_pose() is not None and self.perception.snapshot() is not None:
                self.autostart = False
                ok, message = self.executive.start()
                self._reported = False
                self._events_logged = 0
            self.executive.tick()
            record = self.executive.record
            new_events = record.events[self._events_logged:]
            self._events_logged = len(record.events)
            changed = (record.state, record.step) != self._last_state
            self._last_state = (record.state, record.step)
            finished = record.finished and not self._reported
            if finished:
                self._reported = True
        for e in new_events:
            self.get_logger().info(f"[{e.t_s:7.2f} s] {e.step}: {e.message}")
        if changed:
            self._publish_status()
        if finished:
            self._finish_episode()

    def _finish_episode(self) -> None:
        ex, record = self.executive, self.executive.record
        log = self.get_logger().info if record.state == "succeeded" else self.get_logger().error
        log(f"job '{self.job.name}' {record.state}: {record.reason}")
        if self.report_dir:
            try:
                folder = write_run_report(episode_summary(ex.job, ex.world, record, self._now()), self.report_dir)
                self.get_logger().info(f"run report written to {folder}")
            except OSError as exc:
                self.get_logger().error(f"cannot write the run report under '{self.report_dir}': {exc}")
        if self.exit_when_done:
            self.exit_code = 0 if record.state == "succeeded" else 1

    def _publish_status(self) -> None:
        now = self._now()
        with self._lock:
            ex = self.executive
            entries = task_status(ex.job, ex.world, ex.record, now)
        self._status_pub.publish(status_to_msg(entries, now))
        job = entries[:1]  # on the global /diagnostics, named after this node's full name
        if job and job[0].name == JOB_ENTRY:
            job = [dataclasses.replace(job[0], name=f"{self.get_fully_qualified_name()}: job")]
        self._diag_pub.publish(status_to_msg(job, now))


def main(args: list[str] | None = None) -> None:
    rclpy.init(args=args)
    try:
        node = TaskPlannerNode()
    except OptimusError as exc:
        print(f"task_planner: {exc}", file=sys.stderr)
        rclpy.try_shutdown()
        sys.exit(2)
    try:
        while rclpy.ok() and node.exit_code is None:
            rclpy.spin_once(node, timeout_sec=0.5)
        if node.exit_code is not None:
            node._publish_status()  # the final state, for whoever watches /task/status
            time.sleep(0.5)  # let it go out before the node disappears
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    if node.exit_code:
        sys.exit(node.exit_code)


if __name__ == "__main__":
    main()
