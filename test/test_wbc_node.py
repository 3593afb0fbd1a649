"""The whole_body_controller node against the sim node over the shared-memory bus (real rclpy + Fast DDS).

Starts `sim` (lockstep, camera off) and `whole_body_controller` as processes on their own ROS domain,
then checks: balancing starts, /odom tracks /sim/base_pose, /robot_description is latched, a hand goal
in base_link is reached (task_status), and a goal in an unknown frame is rejected with a message.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO, free_ros_domain, ros_env
from launch_fixtures.ros_stack import reach_goal

from optimus_control.nodes.ros_time import stamp_to_s

pytestmark = pytest.mark.ros

DOMAIN_ID = free_ros_domain()
BUS = f"wbc_node_test_{os.getpid()}"


@pytest.fixture(scope="module")
def nodes():
    env = ros_env(DOMAIN_ID)
    py = sys.executable
    sim = subprocess.Popen([py, "-m", "optimus_control.nodes.sim", "--ros-args", "--params-file",
                            str(REPO / "config/sim.yaml"), "-p", f"bus_name:={BUS}", "-p", "camera_enabled:=false",
                            "-p", "use_sim_time:=true"],
                           cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)
    wbc = subprocess.Popen([py, "-m", "optimus_control.nodes.whole_body_controller", "--ros-args", "--params-file",
                            str(REPO / "config/whole_body_controller.yaml"), "-p", f"bus_name:={BUS}",
                            "-p", "use_sim_time:=true"],
                           cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "RMW_IMPLEMENTATION")})
    import rclpy

    rclpy.init()
    yield sim, wbc
    rclpy.shutdown()
    for proc in (wbc, sim):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
    for proc in (wbc, sim):
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()



def test_node_balances_reaches_and_rejects_bad_frames(nodes, robot):
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseStamped
    from nav_msgs.msg import Odometry
    from rclpy.node import Node
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from std_msgs.msg import String

    node = Node("wbc_node_test_probe")
    got: dict = {}
    node.create_subscription(Odometry, "/odom", lambda m: got.__setitem__("odom", m), qos_profile_sensor_data)
    node.create_subscription(PoseStamped, "/sim/base_pose", lambda m: got.__setitem__("truth", m), 10)
    node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: got.__setitem__("diag", m), 10)
    node.create_subscription(DiagnosticArray, "/whole_body_controller/task_status", lambda m: got.__setitem__("tasks", m), 10)
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    node.create_subscription(String, "/robot_description", lambda m: got.__setitem__("urdf", m), latched)
    goal_pub = node.create_publisher(PoseStamped, f"/whole_body_controller/{robot.config.hands[0].name}_hand/goal", 10)

    def spin_until(pred, timeout_s: float, what: str):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.05)
            if pred():
                return
        sim, wbc = nodes
        tasks = {s.name: {kv.key: kv.value for kv in s.values} for s in got["tasks"].status} if "tasks" in got else {}
        raise AssertionError(f"timed out waiting for {what}; sim alive={sim.poll() is None}, wbc alive={wbc.poll() is None}; "
                             f"last diagnostics {diag_values() if 'diag' in got else None}; tasks {tasks}")

    def diag_values() -> dict:
        return {kv.key: kv.value for kv in got["diag"].status[0].values}

    spin_until(lambda: "diag" in got and diag_values()["controller_state"] == "running" and "odom" in got
               and "truth" in got and "urdf" in got, 120, "balancing, /odom, /sim/base_pose, /robot_description")
    assert "<robot" in got["urdf"].data
    assert got["diag"].status[0].name == "/whole_body_controller"  # the node's full name on the global topic
    odom, truth = got["odom"].pose.pose.position, got["truth"].pose.position
    assert abs(odom.z - truth.z) < 0.01

    # 6 cm forward and 4 cm up from the start-up gripper pose, expressed in base_link.
    hand = robot.config.hands[0]
    goal = reach_goal(robot)
    spin_until(lambda: goal_pub.get_subscription_count() > 0, 30, "the goal subscription")
    goal_pub.publish(goal)
    start = stamp_to_s(got["diag"].header.stamp)

    def hand_status():
        if "tasks" not in got or stamp_to_s(got["tasks"].header.stamp) < start + 1.0:
            return None
        st = next(s for s in got["tasks"].status if s.name == f"hand_{hand.name}")
        return {kv.key: kv.value for kv in st.values}

    spin_until(lambda: (s := hand_status()) is not None and s["goal_reached"] == "true", 240, "hand goal reached")
    s = hand_status()
    assert float(s["position_error_m"]) <= 0.01 and float(s["orientation_error_rad"]) <= 0.0524

    bad = PoseStamped()
    bad.header.frame_id = "mapp"
    bad.pose.orientation.w = 1.0
    goal_pub.publish(bad)
    spin_until(lambda: "'mapp' is unknown" in diag_values()["last_goal_error"], 60, "unknown-frame rejection")
    assert diag_values()["controller_state"] == "running"
    node.destroy_node()
