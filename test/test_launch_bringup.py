"""Bring-up of sim.launch.xml with optimus-launch: the robot's topics appear (seen with rclpy on its
own ROS domain), and SIGINT shuts every process down cleanly with nothing left behind."""

from __future__ import annotations

import os
import signal
import time

import pytest
from conftest import free_ros_domain
from launch_fixtures.launcher import Launcher, assert_gone

from optimus_control.model import share_dir

DOMAIN_ID = free_ros_domain()
WAIT_S = 120.0  # first messages after PyBullet + Pinocchio start-up on a loaded 2-core machine


@pytest.mark.launcher
def test_sim_launch_brings_up_robot_topics_and_shuts_down_on_sigint(tmp_path, monkeypatch):
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import JointState

    ros_env = {"ROS_DOMAIN_ID": str(DOMAIN_ID), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
               "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp", "ROS_LOG_DIR": str(tmp_path / "ros_log")}
    for key, value in ros_env.items():
        monkeypatch.setenv(key, value)
    launcher = Launcher(share_dir() / "launch" / "sim.launch.xml", {**os.environ, **ros_env})

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=DOMAIN_ID)
    received: dict[str, int] = {"/joint_states": 0, "/clock": 0}
    try:
        node = rclpy.create_node("launch_bringup_probe", context=context)
        node.create_subscription(JointState, "/joint_states",
                                 lambda _m: received.__setitem__("/joint_states", received["/joint_states"] + 1),
                                 qos_profile_sensor_data)
        node.create_subscription(Clock, "/clock", lambda _m: received.__setitem__("/clock", received["/clock"] + 1),
                                 qos_profile_sensor_data)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        deadline = time.monotonic() + WAIT_S
        while min(received.values()) == 0 and time.monotonic() < deadline and launcher.proc.poll() is None:
            executor.spin_once(timeout_sec=0.2)
        topics = {name for name, _ in node.get_topic_names_and_types()}
        executor.shutdown()
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)

    try:
        assert launcher.proc.poll() is None, "the launch ended by itself" + launcher.transcript()
        assert {"/joint_states", "/clock"} <= topics, sorted(topics)
        assert min(received.values()) > 0, f"messages received: {received}" + launcher.transcript()
        started = launcher.started_pids()
        assert set(started) == {"sim", "whole_body_controller"}, launcher.transcript()
    finally:
        if launcher.proc.poll() is None:
            launcher.proc.send_signal(signal.SIGINT)
        code = launcher.finish()
    out = launcher.transcript()
    assert code == 0, out
    for label in ("sim", "whole_body_controller"):
        assert f"process [{label}] has finished cleanly" in out, out
    assert_gone(list(launcher.started_pids().values()))
