"""Real rclpy over Fast DDS: two processes exchange sensor_msgs/JointState on an isolated domain."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from conftest import free_ros_domain, ros_env

pytestmark = pytest.mark.ros

DOMAIN_ID = free_ros_domain()
SECOND_DOMAIN_ID = free_ros_domain()
THIRD_DOMAIN_ID = free_ros_domain()

TALKER = textwrap.dedent("""
    import time, rclpy
    from sensor_msgs.msg import JointState
    rclpy.init()
    node = rclpy.create_node("smoke_talker")
    pub = node.create_publisher(JointState, "/joint_states", 10)
    deadline = time.monotonic() + 30.0
    i = 0
    while time.monotonic() < deadline:
        msg = JointState(name=["l_knee", "r_knee"], position=[0.1 * i, -0.1 * i], velocity=[1.0, 2.0], effort=[3.0, 4.0])
        msg.header.stamp = node.get_clock().now().to_msg()
        msg.header.frame_id = "base_link"
        pub.publish(msg)
        i += 1
        rclpy.spin_once(node, timeout_sec=0.05)
    rclpy.shutdown()
""")

LISTENER = textwrap.dedent("""
    import sys, time, rclpy
    from sensor_msgs.msg import JointState
    rclpy.init()
    node = rclpy.create_node("smoke_listener")
    got = []
    node.create_subscription(JointState, "/joint_states", got.append, 10)
    deadline = time.monotonic() + 25.0
    while len(got) < 5 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    m = got[-1] if got else None
    if m is not None:
        print("RECEIVED", len(got), list(m.name), list(m.velocity), list(m.effort), m.header.frame_id,
              m.position[0] == -m.position[1], flush=True)
    rclpy.shutdown()
    sys.exit(0 if len(got) >= 5 else 1)
""")


def test_joint_state_crosses_processes():
    env = ros_env(DOMAIN_ID)
    talker = subprocess.Popen([sys.executable, "-c", TALKER], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        listener = subprocess.run([sys.executable, "-c", LISTENER], env=env, capture_output=True, text=True, timeout=60)
    finally:
        talker.terminate()
        talker.wait(timeout=10)
    assert listener.returncode == 0, listener.stdout + listener.stderr
    assert "RECEIVED" in listener.stdout
    line = listener.stdout.split("RECEIVED", 1)[1]
    assert "['l_knee', 'r_knee'] [1.0, 2.0] [3.0, 4.0] base_link True" in line


def test_other_domain_does_not_hear_it():
    """Isolation: a listener on another domain id receives nothing from the talker."""
    talker = subprocess.Popen([sys.executable, "-c", TALKER], env=ros_env(SECOND_DOMAIN_ID),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    quick_listener = LISTENER.replace("25.0", "4.0")
    try:
        listener = subprocess.run([sys.executable, "-c", quick_listener], env=ros_env(THIRD_DOMAIN_ID),
                                  capture_output=True, text=True, timeout=60)
    finally:
        talker.terminate()
        talker.wait(timeout=10)
    assert listener.returncode == 1 and "RECEIVED" not in listener.stdout
