"""The task_planner node over real rclpy / Fast DDS: it validates its job, publishes /task/status,
answers /task/start and /task/cancel, stops safely on cancel and on a controller fault, and writes a
run report. The controller status is played by this test; no sim, controller or perception runs.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, free_ros_domain, ros_env

pytestmark = pytest.mark.ros

DOMAIN_NODE = free_ros_domain()
DOMAIN_BAD_JOB = free_ros_domain()


def start_node(domain: int, *params: str) -> subprocess.Popen:
    """The node with config/task_planner.yaml, then ``params`` ("name:=value") on top."""
    args = [sys.executable, "-m", "optimus_control.nodes.task_planner", "--ros-args",
            "--params-file", str(REPO / "config" / "task_planner.yaml")]
    for p in params:
        args += ["-p", p]
    return subprocess.Popen(args, cwd=REPO, env=ros_env(domain), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def stop_node(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    return proc.stdout.read() if proc.stdout else ""


def test_invalid_job_stops_the_node_before_anything_moves(tmp_path):
    bad = tmp_path / "bad_job.yaml"
    bad.write_text("name: x\nbins: {b: {class: bin}}\ngoal: {sort: {pink: b}}\n"
                   "constraints: {max_attempts_per_box: 1, time_limit_s: 10}\n")
    proc = start_node(DOMAIN_BAD_JOB, f"job:={bad}")
    try:
        proc.wait(timeout=60)
    finally:
        out = stop_node(proc)
    assert proc.returncode == 2, out
    assert f"{bad}:3: goal.sort.pink: unknown object class 'pink'" in out  # file:line: entry


@pytest.fixture
def planner(tmp_path):
    proc = start_node(DOMAIN_NODE, "job:=sort_two_boxes", f"report_dir:={tmp_path / 'runs'}")
    yield proc, tmp_path / "runs"
    out = stop_node(proc)
    print(out)


@pytest.fixture
def probe(monkeypatch):
    """An rclpy node on the planner's domain, in its own context."""
    for key, value in ros_env(DOMAIN_NODE).items():
        monkeypatch.setenv(key, value)
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor

    ctx = Context()
    rclpy.init(context=ctx, domain_id=DOMAIN_NODE)
    node = rclpy.create_node("task_planner_probe", context=ctx)
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    yield node, executor
    executor.shutdown()
    node.destroy_node()
    rclpy.shutdown(context=ctx)


def spin_until(executor, condition, timeout_s: float = 30.0, proc: subprocess.Popen | None = None) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and (proc is None or proc.poll() is None):
        executor.spin_once(timeout_sec=0.05)
        if condition():
            return True
    return False


def test_node_status_services_and_safe_stops(planner, probe):
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
    from geometry_msgs.msg import PointStamped
    from std_msgs.msg import String
    from std_srvs.srv import Trigger

    proc, runs = planner
    node, executor = probe
    job_status, diagnostics, postures, gazes = [], [], [], []

    def job_entry(msg):
        entry = next(s for s in msg.status if s.name == "task_planner: job")
        return {kv.key: kv.value for kv in entry.values} | {"_message": entry.message}

    node.create_subscription(DiagnosticArray, "/task/status", lambda m: job_status.append(job_entry(m)), 10)
    node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: diagnostics.append(m), 10)
    node.create_subscription(String, "/whole_body_controller/posture", lambda m: postures.append(m.data), 10)
    node.create_subscription(PointStamped, "/whole_body_controller/gaze/target", lambda m: gazes.append(m), 10)
    wbc = node.create_publisher(DiagnosticArray, "/whole_body_controller/task_status", 10)
    fault = {"on": False}

    def publish_wbc_status():
        msg = DiagnosticArray()
        msg.header.stamp = node.get_clock().now().to_msg()
        level = DiagnosticStatus.ERROR if fault["on"] else DiagnosticStatus.OK
        msg.status = [DiagnosticStatus(level=level, name="whole_body_controller: left_hand",
                                       message="QP failed, damping" if fault["on"] else "tracking",
                                       values=[KeyValue(key="goal_reached", value="false")])]
        wbc.publish(msg)

    node.create_timer(0.1, publish_wbc_status)
    start = node.create_client(Trigger, "/task/start")
    cancel = node.create_client(Trigger, "/task/cancel")

    def call(client) -> Trigger.Response:
        assert spin_until(executor, client.service_is_ready, 60.0), f"{client.srv_name} not available"
        future = client.call_async(Trigger.Request())
        assert spin_until(executor, future.done), f"{client.srv_name} did not answer"
        return future.result()

    def state_is(state):
        return lambda: bool(job_status) and job_status[-1]["state"] == state

    assert spin_until(executor, state_is("idle"), 60.0, proc), f"no idle /task/status; node output:\n{stop_node(proc)}"
    assert job_status[-1]["job"] == "sort_two_boxes" and job_status[-1]["boxes_total"] == "0"
    assert call(cancel).success is False  # nothing to cancel yet

    response = call(start)
    assert response.success and "started job 'sort_two_boxes'" in response.message
    again = call(start)
    assert not again.success and "already running" in again.message
    assert spin_until(executor, state_is("running"))
    assert spin_until(executor, lambda: bool(gazes))  # look_at: the head is pointed at the job's look-at point
    assert [gazes[-1].point.x, gazes[-1].point.y, gazes[-1].point.z] == pytest.approx([0.5, 0.0, 0.82])
    assert gazes[-1].header.frame_id == "odom"

    assert call(cancel).success
    assert spin_until(executor, state_is("cancelled"))
    assert job_status[-1]["reason"] == "cancelled by request"
    assert spin_until(executor, lambda: "standing" in postures)
    assert spin_until(executor, lambda: list(runs.glob("*/summary.json")) != [])
    summary = json.loads(next(runs.glob("*/summary.json")).read_text())
    assert summary["result"]["state"] == "cancelled" and summary["job"]["name"] == "sort_two_boxes"
    assert (next(runs.glob("*/report.md"))).read_text().startswith("# Run report: sort_two_boxes")

    postures.clear()
    assert call(start).success
    assert spin_until(executor, state_is("running"))
    fault["on"] = True
    assert spin_until(executor, state_is("faulted"))
    assert "controller fault" in job_status[-1]["reason"] and "QP failed, damping" in job_status[-1]["reason"]
    assert spin_until(executor, lambda: "standing" in postures)
    assert spin_until(executor, lambda: len(list(runs.glob("*/summary.json"))) == 2)
    assert any(s.name == "/task_planner: job" for m in diagnostics for s in m.status)  # full node name
    assert proc.poll() is None  # still up, ready for another start
    assert Path(runs).is_dir()


def test_message_conversions():
    """MarkerArray -> objects (states, frames, renames) and DiagnosticArray -> controller status, as documented."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
    from visualization_msgs.msg import Marker, MarkerArray

    from optimus_control.nodes.task_planner import controller_status_from_msg, pose_to_msg, snapshot_from_msg
    from optimus_control.planning import Pose

    def marker(ns, mid, action=Marker.ADD, frame="odom", text="", stamp=(12, 500_000_000)):
        m = Marker(ns=ns, id=mid, action=action, text=text)
        m.header.frame_id = frame
        m.header.stamp.sec, m.header.stamp.nanosec = stamp
        m.pose.position.x, m.pose.position.y, m.pose.position.z = 0.4, 0.1, 0.84
        m.pose.orientation.w = 1.0
        m.scale.x = m.scale.y = m.scale.z = 0.08
        return m

    msg = MarkerArray(markers=[marker("red", 1), marker("boxes/blue", 2, text="held"), marker("red", 3, Marker.DELETE),
                               marker("green", 4, frame="base_link"), marker("red", 5, text="state=lost")])
    snap = snapshot_from_msg(msg, {"boxes/blue": "blue"}, "odom", now_s=99.0)
    assert snap.stamp_s == pytest.approx(12.5)
    assert [(o.track_id, o.object_class, o.state) for o in snap.objects] == [
        (1, "red", "tracked"), (2, "blue", "held"), (3, "red", "lost"), (5, "red", "lost")]
    assert list(snap.objects[0].position_m) == pytest.approx([0.4, 0.1, 0.84])
    assert list(snap.objects[0].size_m) == pytest.approx([0.08, 0.08, 0.08])
    assert snapshot_from_msg(MarkerArray(), {}, "odom", now_s=7.0).stamp_s == 7.0

    diag = DiagnosticArray()
    diag.header.stamp.sec = 20
    diag.status = [
        DiagnosticStatus(name="whole_body_controller: left_hand", values=[
            KeyValue(key="goal_reached", value="true"), KeyValue(key="tracking_error_m", value="0.004"),
            KeyValue(key="goal_stamp", value="19.5")]),
        DiagnosticStatus(name="hand_right", values=[KeyValue(key="goal_reached", value="False"),
                                                    KeyValue(key="clamped", value="true")]),
        DiagnosticStatus(name="whole_body_controller: loop", level=DiagnosticStatus.WARN, message="late"),
    ]
    status = controller_status_from_msg(diag, now_s=30.0)
    assert status.stamp_s == 20.0 and status.fault is None
    left, right = status.tasks["left_hand"], status.tasks["right_hand"]
    assert left.goal_reached and left.error_m == pytest.approx(0.004) and left.goal_stamp_s == pytest.approx(19.5)
    assert not right.goal_reached and right.clamped and right.goal_stamp_s is None
    diag.status[2].level = DiagnosticStatus.ERROR
    assert controller_status_from_msg(diag, now_s=30.0).fault == "whole_body_controller: loop: late"

    pose = pose_to_msg(Pose.from_position_yaw([0.1, 0.2, 0.3], 0.5), "odom", 3.25)
    assert pose.header.frame_id == "odom" and (pose.header.stamp.sec, pose.header.stamp.nanosec) == (3, 250_000_000)
    assert pose.pose.orientation.z == pytest.approx(0.2474, abs=1e-4) and pose.pose.orientation.w > 0.96


DOMAIN_EPISODE = free_ros_domain()


def test_node_runs_a_two_box_episode_over_ros(tmp_path, monkeypatch):
    """The node sorts two boxes through its real ROS interface against a kinematic stand-in robot.

    This test node plays controller and perception from ``KinematicWorld`` (straight-line hands, exact
    detections that leave out held boxes, status without goal-stamp echo): it checks the node's
    topics, conversions and timing logic end to end, not the robot's physics.
    """
    import numpy as np
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
    from geometry_msgs.msg import PointStamped, PoseStamped
    from nav_msgs.msg import Odometry
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String
    from visualization_msgs.msg import Marker, MarkerArray

    from optimus_control.model import RobotModel
    from optimus_control.nodes.task_planner import pose_from_msg, pose_to_msg
    from optimus_control.planning.kinematic_world import KinematicWorld

    robot = RobotModel.load()
    world = KinematicWorld.standing(robot, 0.80, hand_speed_mps=1.0, hide_held=True)
    for y in (0.58, -0.58):
        world.add_bin("bin", [0.15, y, 0.66], [0.34, 0.30, 0.22])
    red = world.add_box("red", [0.40, 0.15, 0.84], [0.08, 0.08, 0.08], yaw_rad=0.2)
    blue = world.add_box("blue", [0.45, -0.15, 0.84], [0.08, 0.08, 0.08], yaw_rad=-0.3)

    runs = tmp_path / "runs"
    proc = start_node(DOMAIN_EPISODE, "job:=sort_two_boxes", f"report_dir:={runs}", "autostart:=true",
                      "skill.status_timeout_s:=5.0")  # a loaded machine may stall this test process
    for key, value in ros_env(DOMAIN_EPISODE).items():
        monkeypatch.setenv(key, value)
    ctx = Context()
    rclpy.init(context=ctx, domain_id=DOMAIN_EPISODE)
    node = rclpy.create_node("kinematic_robot", context=ctx)
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    try:
        def now_s() -> float:
            return node.get_clock().now().nanoseconds * 1e-9

        world.time_s = now_s()
        hands = list(world.hands)
        for hand in hands:
            node.create_subscription(PoseStamped, f"/whole_body_controller/{hand}_hand/goal",
                                     lambda m, h=hand: world.send_hand_target(h, pose_from_msg(m.pose), now_s()), 10)
            node.create_subscription(JointState, f"/whole_body_controller/{hand}_gripper/command",
                                     lambda m, h=hand: world.send_gripper(h, m.position[0], m.effort[0], now_s()), 10)
        node.create_subscription(PointStamped, "/whole_body_controller/gaze/target", lambda m: None, 10)
        node.create_subscription(String, "/whole_body_controller/posture", lambda m: world.send_posture(m.data, now_s()), 10)
        status_pub = node.create_publisher(DiagnosticArray, "/whole_body_controller/task_status", 10)
        odom_pub = node.create_publisher(Odometry, "/odom", 10)
        objects_pub = node.create_publisher(MarkerArray, "/perception/objects", 10)
        final = {}
        node.create_subscription(DiagnosticArray, "/task/status", lambda m: final.update(
            {kv.key: kv.value for kv in m.status[0].values}), 10)

        def publish():
            world.step(now_s() - world.time_s)
            status = world.status()
            diag = DiagnosticArray()
            diag.header.stamp = node.get_clock().now().to_msg()
            for task, st in status.tasks.items():
                name = f"hand_{task.removesuffix('_hand')}" if task.endswith("_hand") else task
                diag.status.append(DiagnosticStatus(name=f"whole_body_controller: {name}", values=[
                    KeyValue(key="goal_reached", value=str(st.goal_reached).lower()),
                    KeyValue(key="tracking_error_m", value=f"{st.error_m:.4f}")]))
            status_pub.publish(diag)
            odom = Odometry()
            odom.header.frame_id, odom.child_frame_id = "odom", "base_link"
            odom.pose.pose = pose_to_msg(world.base_pose(), "odom", 0.0).pose
            odom_pub.publish(odom)
            markers = MarkerArray()
            for obj in world.snapshot().objects:
                m = Marker(ns=obj.object_class, id=obj.track_id, type=Marker.CUBE, action=Marker.ADD)
                m.header.frame_id, m.header.stamp = "odom", node.get_clock().now().to_msg()
                m.pose = pose_to_msg(obj.pose, "odom", 0.0).pose
                m.scale.x, m.scale.y, m.scale.z = (float(v) for v in obj.size_m)
                markers.markers.append(m)
            objects_pub.publish(markers)

        node.create_timer(0.05, publish)
        done = spin_until(executor, lambda: final.get("state") not in (None, "idle", "running"), 90.0, proc)
        assert done, f"episode did not finish: {final}\n{stop_node(proc)}"
        assert final["state"] == "succeeded", final
        assert final["boxes_sorted"] == "2"
        for box in (red, blue):
            b = world.bin_holding(box)
            assert b is not None and np.sign(b.position_m[1]) == (1 if box is red else -1)
        assert spin_until(executor, lambda: list(runs.glob("*/summary.json")) != [], 30.0)
        summary = json.loads(next(runs.glob("*/summary.json")).read_text())
        assert {b["class"]: (b["outcome"], b["attempts"]) for b in summary["per_box"]} == {
            "red": ("sorted", 1), "blue": ("sorted", 1)}
        assert world.postures == []
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=ctx)
        print(stop_node(proc))
