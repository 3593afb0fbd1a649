"""Robots side by side on one ROS domain: names, status filters, bus names, clocks and stamps.

The rules are unit-tested first (no ROS graph): whose /diagnostics status is whose, the joint-bus name,
the refused time mode. Then single nodes (the refusal at start-up, remapping every kind of name and
rclpy's time source following a remapped /clock), a whole namespaced stack checked with the graph API,
and two namespaced simulated robots on one domain where a goal sent to one moves only that one.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import ros_env
from launch_fixtures.ros_stack import REPO, START_S, Probe, Stack

from optimus_control.errors import ConfigError
from optimus_control.nodes.names import (
    GLOBAL_TOPICS,
    bus_name,
    check_time_mode,
    default_bus_name,
    is_own_status,
    resolve_name,
)
from optimus_control.nodes.ros_time import stamp_to_s


# ---- the rules, without ROS -------------------------------------------------------------------------
def test_status_filter_keeps_only_the_named_node_of_the_same_namespace():
    mine = "/r1/whole_body_controller"
    assert is_own_status("/r1/whole_body_controller", mine)
    assert is_own_status("/r1/whole_body_controller: loop", mine)
    for other in ("/r2/whole_body_controller", "whole_body_controller", "/whole_body_controller",
                  "/r1/whole_body_controller_2", "/r1/other/whole_body_controller", "/r1/task_planner: job"):
        assert not is_own_status(other, mine), other
    assert is_own_status("/whole_body_controller", resolve_name("whole_body_controller", "/"))
    assert resolve_name("whole_body_controller", "/r1") == mine
    assert resolve_name("/abs/wbc", "/r1") == "/abs/wbc"


class _FakeNode:
    """Just enough of rclpy.Node for RosController: publishers that drop, subscriptions that do nothing."""

    def create_publisher(self, *_args, **_kw) -> SimpleNamespace:
        return SimpleNamespace(publish=lambda _msg: None)

    def create_subscription(self, *_args, **_kw) -> None:
        return None

    def get_clock(self) -> SimpleNamespace:
        return SimpleNamespace(now=lambda: SimpleNamespace(nanoseconds=5_000_000_000))


def test_robot_2s_controller_fault_never_reaches_robot_1s_planner():
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    from optimus_control.nodes.task_planner import RosController, controller_fault

    def diag(name: str, level: bytes, message: str = "") -> DiagnosticArray:
        return DiagnosticArray(status=[DiagnosticStatus(name=name, level=level, message=message)])

    r1 = "/r1/whole_body_controller"
    assert controller_fault(diag("/r2/whole_body_controller", DiagnosticStatus.ERROR, "QP failed"), r1) is None
    assert controller_fault(diag("whole_body_controller", DiagnosticStatus.ERROR, "QP failed"), r1) is None
    assert controller_fault(diag(r1, DiagnosticStatus.OK, "running"), r1) == ""
    assert controller_fault(diag(r1, DiagnosticStatus.ERROR, "QP failed"), r1) == f"{r1}: QP failed"

    planner_side = RosController(_FakeNode(), ["left", "right"], "odom", r1)
    tasks = DiagnosticArray(status=[DiagnosticStatus(name="hand_left", values=[KeyValue(key="goal_reached", value="false")])])
    tasks.header.stamp.sec = 4
    planner_side._on_status(tasks)
    planner_side._on_diagnostics(diag("/r2/whole_body_controller", DiagnosticStatus.ERROR, "damping"))
    assert planner_side.status().fault is None  # robot 2's fault: ignored
    planner_side._on_diagnostics(diag(r1, DiagnosticStatus.ERROR, "damping"))
    assert planner_side.status().fault == f"{r1}: damping"
    planner_side._on_diagnostics(diag("/r2/whole_body_controller", DiagnosticStatus.OK, "running"))
    assert planner_side.status().fault == f"{r1}: damping"  # robot 2 recovering does not clear robot 1's fault
    planner_side._on_diagnostics(diag(r1, DiagnosticStatus.OK, "running"))
    assert planner_side.status().fault is None


def test_bus_name_follows_domain_and_namespace_and_an_explicit_name_wins():
    assert default_bus_name(0, "/") == "optimus_bus_d0"
    assert default_bus_name(7, "/r1") == default_bus_name(7, "/r1/") == "optimus_bus_d7.r1"
    names = {default_bus_name(d, ns) for d in (0, 7, 17) for ns in ("/", "/r1", "/r2", "/r1/arm", "/r1_arm")}
    assert len(names) == 15  # every (domain, namespace) pair gets its own bus
    long_ns = "/" + "/".join(["segment_x"] * 40)
    assert len(default_bus_name(3, long_ns)) <= 200 and default_bus_name(3, long_ns) == default_bus_name(3, long_ns)
    for name in names | {default_bus_name(3, long_ns)}:
        assert re.fullmatch(r"[A-Za-z0-9_.-]{1,200}", name), name  # what optimus_control.rt.bus accepts
    assert bus_name("", 7, "/r1") == "optimus_bus_d7.r1"
    assert bus_name("my_bus", 7, "/r1") == "my_bus"


def test_lockstep_on_the_wall_clock_is_refused():
    with pytest.raises(ConfigError, match="lockstep.*use_sim_time:=true"):
        check_time_mode("/r1/sim", "lockstep", use_sim_time=False)
    check_time_mode("/r1/sim", "lockstep", use_sim_time=True)
    check_time_mode("/r1/sim", "realtime", use_sim_time=False)
    check_time_mode("/r1/sim", "realtime", use_sim_time=True)


# ---- helpers for processes --------------------------------------------------------------------------
# ---- single nodes ------------------------------------------------------------------------------------
@pytest.mark.ros
@pytest.mark.parametrize("node,code", [("sim", 2), ("whole_body_controller", 1)])
def test_node_refuses_lockstep_without_sim_time(node, code, ros_domain_id):
    result = subprocess.run([sys.executable, "-m", f"optimus_control.nodes.{node}", "--ros-args", "-r", "__ns:=/r1",
                             "-p", "mode:=lockstep", "-p", "use_sim_time:=false", "-p", f"bus_name:=never_{os.getpid()}"],
                            env=ros_env(ros_domain_id), capture_output=True, text=True, timeout=120, cwd=REPO)
    out = result.stdout + result.stderr
    assert result.returncode == code, out
    assert f"/r1/{node}: mode 'lockstep' needs use_sim_time:=true" in out, out
    assert "Traceback" not in out, out
    assert not os.path.exists(f"/dev/shm/never_{os.getpid()}")


@pytest.mark.ros
def test_remapping_moves_every_kind_of_name_and_the_time_source_follows_a_remapped_clock(isolated, tmp_path):
    """The sim alone under /r9 (real time, following its own clock): remaps of a relative topic, of a
    service and of /clock all take effect, and an rclpy node remapping /clock the same way gets its time
    from /r9/clock."""
    from geometry_msgs.msg import PoseStamped
    from rosgraph_msgs.msg import Clock

    bus = f"optimus_ns_remap_{os.getpid()}"
    sim = Stack([sys.executable, "-m", "optimus_control.nodes.sim", "--ros-args", "-r", "__ns:=/r9",
                 "-p", "mode:=realtime", "-p", "use_sim_time:=true", "-p", "camera_enabled:=false",
                 "-p", f"bus_name:={bus}", "-p", "scene:=sorting_cell",
                 "-r", "/clock:=clock", "-r", "sim/base_pose:=truth/pose", "-r", "camera/color/image_raw:=/elsewhere/rgb",
                 "-r", "sim/reset:=truth/reset"], ros_env(isolated), tmp_path / "sim.log")
    probe = Probe(isolated, args=["--ros-args", "-r", "/clock:=/r9/clock"], use_sim_time=True)
    try:
        pose = probe.latest(PoseStamped, "/r9/truth/pose")
        clock = probe.latest(Clock, "/r9/clock")
        probe.wait(lambda: pose["n"] >= 3 and clock["n"] >= 3, START_S, "/r9/truth/pose and /r9/clock", (sim,))
        publishers = {name for name, _ in probe.node.get_publisher_names_and_types_by_node("sim", "/r9")}
        services = {name for name, _ in probe.node.get_service_names_and_types_by_node("sim", "/r9")}
        assert {"/r9/truth/pose", "/elsewhere/rgb", "/r9/clock"} <= publishers, publishers
        assert not {"/r9/sim/base_pose", "/r9/camera/color/image_raw", "/clock"} & publishers, publishers
        assert "/r9/truth/reset" in services and "/r9/sim/reset" not in services, services
        # rclpy's time source subscribes to the remapped clock: the probe's ROS time is the sim's time.
        with probe.lock:
            sim_time = stamp_to_s(clock["msg"].clock)
        now = probe.node.get_clock().now().nanoseconds * 1e-9
        assert now > 0.0 and abs(now - sim_time) < 5.0, (now, sim_time)
        assert probe.node.get_clock().ros_time_is_active
    finally:
        probe.close()
        sim.stop()
    assert not os.path.exists(f"/dev/shm/{bus}")


# ---- a whole stack under a namespace -----------------------------------------------------------------
def _owned_names(node, name: str, ns: str) -> tuple[set[str], set[str]]:
    """(topics the node publishes or subscribes to, services it offers) from the graph API."""
    topics = {t for t, _ in node.get_publisher_names_and_types_by_node(name, ns)}
    topics |= {t for t, _ in node.get_subscriber_names_and_types_by_node(name, ns)}
    services = {s for s, _ in node.get_service_names_and_types_by_node(name, ns)}
    return topics, services


@pytest.mark.launcher
def test_factory_demo_under_a_namespace_keeps_every_name_inside_it(isolated, tmp_path):
    """The factory demo launch under namespace:=r1 (headless, camera off: the planner waits for objects
    that never come): every topic and service of its four nodes is under /r1 except the allowed globals."""
    from diagnostic_msgs.msg import DiagnosticArray

    stack = Stack.launch("factory_demo.launch.xml", isolated, tmp_path / "launch.log", "namespace:=r1",
                         "camera_enabled:=false", f"report_dir:={tmp_path / 'runs'}")
    probe = Probe(isolated)
    expected = {"sim", "whole_body_controller", "perception", "task_planner"}
    try:
        diag = probe.latest(DiagnosticArray, "/diagnostics")
        names: set[str] = set()

        def statuses():
            if diag["msg"] is not None:
                names.update(s.name for s in diag["msg"].status)
            return "/r1/whole_body_controller" in names and "/r1/task_planner: job" in names \
                and "/r1/perception: objects" in names

        probe.wait(statuses, START_S, "/diagnostics from the three nodes that publish it", (stack,))
        probe.wait(lambda: expected <= {n for n, ns in probe.node.get_node_names_and_namespaces() if ns == "/r1"},
                   60.0, "the four nodes in /r1", (stack,))
        for node in sorted(expected):
            topics, services = _owned_names(probe.node, node, "/r1")
            assert topics and services, node
            assert not {t for t in topics if not t.startswith("/r1/")} - GLOBAL_TOPICS, (node, sorted(topics))
            assert all(s.startswith("/r1/") for s in services), (node, sorted(services))
        # The whole graph seen from outside: only the globals and the probe's own names are outside /r1.
        everything = {t for t, _ in probe.node.get_topic_names_and_types()}
        assert not {t for t in everything if not t.startswith("/r1/")} - GLOBAL_TOPICS, sorted(everything)
        services = {s for s, _ in probe.node.get_service_names_and_types()}
        assert not {s for s in services if not s.startswith(("/r1/", "/test_probe/"))}, sorted(services)
        for name in ("/r1/joint_states", "/r1/odom", "/r1/imu/data", "/r1/robot_description", "/r1/perception/objects",
                     "/r1/camera/color/image_raw", "/r1/sim/base_pose", "/r1/sim/joint_states", "/r1/task/status",
                     "/r1/whole_body_controller/left_hand/goal", "/r1/whole_body_controller/task_status"):
            assert name in everything, name
        assert {"/r1/task/start", "/r1/sim/reset", "/r1/whole_body_controller/damp"} <= services
        # The planner addresses its own controller: its goal publishers meet the controller's subscriptions.
        goal_subscribers = probe.node.get_subscriptions_info_by_topic("/r1/whole_body_controller/left_hand/goal")
        goal_publishers = probe.node.get_publishers_info_by_topic("/r1/whole_body_controller/left_hand/goal")
        assert [i.node_name for i in goal_subscribers] == ["whole_body_controller"]
        assert [i.node_name for i in goal_publishers] == ["task_planner"]
    finally:
        probe.close()
        stack.stop()


# ---- two robots on one domain --------------------------------------------------------------------------
def _hand_status(box: dict, hand: str) -> dict[str, str] | None:
    msg = box["msg"]
    if msg is None:
        return None
    entry = next((s for s in msg.status if s.name == f"hand_{hand}"), None)
    return None if entry is None else {kv.key: kv.value for kv in entry.values}


@pytest.mark.launcher
def test_two_robots_on_one_domain_take_only_their_own_goals(isolated, tmp_path, robot):
    """Two simulated robots (sim + controller each) under /r1 and /r2 on one domain, each with its own
    clock (clock_topic:=clock) and its own joint bus (derived from the namespace). A hand goal sent to r1
    moves r1's hand and not r2's; a goal for r2's other hand moves r2's only; r2's controller fault is
    not r1's."""
    import pinocchio as pin
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from geometry_msgs.msg import PoseStamped
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import JointState
    from std_srvs.srv import Trigger

    from optimus_control.nodes.task_planner import controller_fault

    stacks = {ns: Stack.launch("sim.launch.xml", isolated, tmp_path / f"{ns}.log", f"namespace:={ns}",
                               "clock_topic:=clock", "camera_enabled:=false") for ns in ("r1", "r2")}
    probe = Probe(isolated)
    try:
        tasks = {ns: probe.latest(DiagnosticArray, f"/{ns}/whole_body_controller/task_status") for ns in stacks}
        truth = {ns: probe.latest(JointState, f"/{ns}/sim/joint_states") for ns in stacks}
        clocks = {ns: probe.latest(Clock, f"/{ns}/clock") for ns in stacks}
        diag = probe.latest(DiagnosticArray, "/diagnostics")
        global_clock = probe.latest(Clock, "/clock")
        controllers: dict[str, tuple[float, str]] = {}

        def both_running():
            """Both controllers running, with /diagnostics stamped on a running node clock: each controller's
            time source follows its remapped clock (a clock nobody publishes would stay at zero)."""
            if diag["msg"] is not None:
                for s in diag["msg"].status:
                    values = {kv.key: kv.value for kv in s.values}
                    controllers[s.name] = (stamp_to_s(diag["msg"].header.stamp), values.get("controller_state", ""))
            latest = [controllers.get(f"/{ns}/whole_body_controller", (0.0, "")) for ns in stacks]
            return all(stamp > 0.0 and state == "running" for stamp, state in latest) \
                and all(truth[ns]["n"] > 0 and tasks[ns]["n"] > 0 for ns in stacks)

        probe.wait(both_running, START_S, "both controllers running, stamped in sim time", tuple(stacks.values()))
        assert global_clock["n"] == 0, "a simulator published the global /clock"
        assert set(controllers) == {"/r1/whole_body_controller", "/r2/whole_body_controller"}, controllers
        logs = {ns: s.output() for ns, s in stacks.items()}
        for ns in stacks:
            assert f"optimus_bus_d{isolated}.{ns}" in logs[ns], logs[ns][-3000:]

        joint_index = {n: k for k, n in enumerate(robot.joint_names)}
        arm_joints = {h.name: [joint_index[j] for j in robot.config.joint_groups[f"{h.name}_arm"]]
                      for h in robot.config.hands}
        q0 = robot.standing_configuration()

        def arm_q(ns: str, hand: str) -> np.ndarray:
            return np.asarray(truth[ns]["msg"].position)[arm_joints[hand]]

        def send_goal(ns: str, hand_cfg) -> float:
            in_base = robot.frame_placement(q0, robot.config.base_frame).inverse() * \
                robot.frame_placement(q0, hand_cfg.gripper_frame)
            quat = pin.Quaternion(in_base.rotation).coeffs()
            goal = PoseStamped()
            goal.header.frame_id = robot.config.base_frame
            with probe.lock:
                goal.header.stamp = clocks[ns]["msg"].clock
            goal.pose.position.x, goal.pose.position.y, goal.pose.position.z = \
                (in_base.translation + [0.08, 0.0, 0.06]).tolist()
            o = goal.pose.orientation
            o.x, o.y, o.z, o.w = quat.tolist()
            pub = probe.node.create_publisher(PoseStamped, f"/{ns}/whole_body_controller/{hand_cfg.name}_hand/goal", 10)
            probe.wait(lambda: pub.get_subscription_count() > 0, 30.0, f"{ns}'s goal subscription")
            pub.publish(goal)
            return stamp_to_s(goal.header.stamp)

        for target, other, hand_cfg in (("r1", "r2", robot.config.hands[0]), ("r2", "r1", robot.config.hands[-1])):
            hand = hand_cfg.name
            with probe.lock:
                before = {ns: arm_q(ns, hand).copy() for ns in stacks}
            sent = send_goal(target, hand_cfg)

            def echoed(ns=target, hand=hand, sent=sent):
                s = _hand_status(tasks[ns], hand)
                return s is not None and "goal_stamp" in s and abs(float(s["goal_stamp"]) - sent) < 1e-6

            probe.wait(echoed, 60.0, f"{target}'s controller taking the {hand} hand goal", tuple(stacks.values()))

            def moved(ns=target, hand=hand, start=before[target]):
                return np.max(np.abs(arm_q(ns, hand) - start)) > 0.05

            probe.wait(moved, 120.0, f"{target}'s {hand} arm moving (ground truth)", tuple(stacks.values()))
            with probe.lock:
                other_status = _hand_status(tasks[other], hand)
                other_motion = float(np.max(np.abs(arm_q(other, hand) - before[other])))
            assert other_status is not None and other_status.get("goal_stamp") is None, other_status
            assert other_motion < 0.02, f"{other}'s {hand} arm moved {other_motion:.3f} rad on {target}'s goal"

            def settled(ns=target, hand=hand):  # the next goal starts from a robot at rest
                s = _hand_status(tasks[ns], hand)
                return s is not None and s["goal_reached"] == "true" and s.get("goal_stamp") is not None

            probe.wait(settled, 120.0, f"{target}'s {hand} hand goal reached", tuple(stacks.values()))

        # r2's controller faults (damping on request): on the shared /diagnostics its status is an ERROR
        # named /r2/whole_body_controller, which r1's planner-side filter ignores while r1 runs on.
        damp = probe.node.create_client(Trigger, "/r2/whole_body_controller/damp")
        probe.wait(damp.service_is_ready, 30.0, "r2's damp service")
        damp.call_async(Trigger.Request())
        seen: dict[str, object] = {}

        def r2_faulted():
            if diag["msg"] is not None:
                for s in diag["msg"].status:
                    seen[s.name] = s
            r2 = seen.get("/r2/whole_body_controller")
            return r2 is not None and r2.level == DiagnosticStatus.ERROR and "/r1/whole_body_controller" in seen

        probe.wait(r2_faulted, 60.0, "r2's controller at ERROR on /diagnostics", tuple(stacks.values()))
        with probe.lock:
            statuses = DiagnosticArray(status=list(seen.values()))
        assert controller_fault(statuses, "/r2/whole_body_controller")
        assert controller_fault(statuses, "/r1/whole_body_controller") == "", statuses
    finally:
        probe.close()
        codes = {ns: s.stop() for ns, s in stacks.items()}
    assert codes == {"r1": 0, "r2": 0}, {ns: s.output()[-3000:] for ns, s in stacks.items()}


# ---- stamps on the node's clock ---------------------------------------------------------------------------
@pytest.mark.launcher
@pytest.mark.realtime
def test_real_time_mode_on_the_wall_clock_stamps_in_wall_time(isolated, tmp_path):
    """sim.launch.xml with mode:=realtime use_sim_time:=false: state, odometry, ground truth and diagnostics
    carry wall-clock stamps (the nodes' clocks), not sim time counted from zero."""
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseStamped
    from nav_msgs.msg import Odometry
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import JointState

    stack = Stack.launch("sim.launch.xml", isolated, tmp_path / "launch.log", "namespace:=r3", "mode:=realtime",
                         "use_sim_time:=false", "camera_enabled:=false")
    probe = Probe(isolated)
    try:
        boxes = {"joint_states": probe.latest(JointState, "/r3/joint_states", qos_profile_sensor_data),
                 "odom": probe.latest(Odometry, "/r3/odom", qos_profile_sensor_data),
                 "sim/base_pose": probe.latest(PoseStamped, "/r3/sim/base_pose"),
                 "/diagnostics": probe.latest(DiagnosticArray, "/diagnostics")}
        probe.wait(lambda: all(b["n"] > 0 for b in boxes.values()), START_S, "state, odometry, ground truth, diagnostics",
                   (stack,))
        with probe.lock:
            stamps = {name: stamp_to_s(b["msg"].header.stamp) for name, b in boxes.items()}
        wall = time.time()
        # Generous: a loaded machine delays messages by seconds at most; sim time would be ~1e1, wall ~1.8e9.
        assert all(abs(wall - s) < 60.0 for s in stamps.values()), {k: wall - s for k, s in stamps.items()}
    finally:
        probe.close()
        code = stack.stop()
    assert code == 0, stack.output()[-3000:]
