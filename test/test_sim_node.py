"""The `sim` ROS 2 node in its own process: topics (type, frame, rate in sim time) and services."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import rclpy
from conftest import free_ros_domain, ros_env
from geometry_msgs.msg import PoseStamped, TwistStamped
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.qos import qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_srvs.srv import SetBool, Trigger
from visualization_msgs.msg import MarkerArray

from optimus_control.nodes.ros_time import stamp_to_s
from optimus_control.sim.runner import SimSettings

pytestmark = pytest.mark.ros

DOMAIN_ID = free_ros_domain()
OTHER_DOMAIN_ID = free_ros_domain()


class Probe:
    """A subscriber node in this process on the test's own domain."""

    def __init__(self):
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=DOMAIN_ID)
        self.node = rclpy.create_node("sim_probe", context=self.context)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.got: dict[str, list] = {}
        sensor = qos_profile_sensor_data
        for topic, kind, qos in (("/clock", Clock, 10), ("/camera/color/image_raw", Image, sensor),
                                 ("/camera/depth/image_raw", Image, sensor), ("/camera/color/camera_info", CameraInfo, sensor),
                                 ("/camera/depth/camera_info", CameraInfo, sensor), ("/sim/base_pose", PoseStamped, 10),
                                 ("/sim/base_twist", TwistStamped, 10), ("/sim/objects", MarkerArray, 10),
                                 ("/sim/joint_states", JointState, 10)):
            self.got[topic] = []
            self.node.create_subscription(kind, topic, self.got[topic].append, qos)

    def spin(self, seconds: float, until=None) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (until and until()):
            self.executor.spin_once(timeout_sec=0.05)

    def clear(self) -> None:
        for v in self.got.values():
            v.clear()

    def call(self, kind, name: str, request, timeout_s: float = 20.0):
        client = self.node.create_client(kind, name)
        assert client.wait_for_service(timeout_sec=timeout_s), f"service {name} not available"
        future = client.call_async(request)
        deadline = time.monotonic() + timeout_s
        while not future.done() and time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.05)
        assert future.done(), f"{name} did not answer"
        return future.result()

    def set_param(self, name: str, value) -> None:
        if isinstance(value, int):
            pv = ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value)
        else:
            pv = ParameterValue(type=ParameterType.PARAMETER_DOUBLE_ARRAY, double_array_value=list(value))
        res = self.call(SetParameters, "/sim/set_parameters", SetParameters.Request(parameters=[Parameter(name=name, value=pv)]))
        assert res.results[0].successful, res.results[0].reason

    def close(self) -> None:
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)



def assert_rate(stamps, period_s: float) -> None:
    """Stamps (sim time) lie on the period's grid and at least two consecutive ones were received.
    (A loaded machine may drop messages on the way, best effort or a full history: no timing claim.)"""
    steps = np.diff(np.asarray(stamps)) / period_s
    assert len(steps) >= 1 and np.all(steps > 0.5)
    assert steps == pytest.approx(np.round(steps), abs=1e-6), f"stamps off the {period_s} s grid"
    assert np.any(np.round(steps) == 1), f"never two consecutive stamps {period_s} s apart: {steps}"


class SimProcess:
    """The sim node's process, its output files and its joint-bus name."""

    def __init__(self, log_dir, bus: str, *params: str):
        self.bus = bus
        self.stdout_path, self.stderr_path = log_dir / "sim.stdout", log_dir / "sim.stderr"
        with open(self.stdout_path, "w") as out, open(self.stderr_path, "w") as err:
            # Files, not pipes (nobody reads a pipe while the tests run); SIGINT back to its default as in a
            # terminal (a shell starts background jobs with SIGINT ignored, and the child would inherit that).
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "optimus_control.nodes.sim", "--ros-args", "-p", f"bus_name:={bus}",
                 "-p", "use_sim_time:=true", *[a for param in params for a in ("-p", param)]],
                env=ros_env(DOMAIN_ID), stdout=out, stderr=err, text=True,
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def output(self) -> tuple[str, str]:
        return self.stdout_path.read_text(), self.stderr_path.read_text()

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise


@pytest.fixture(scope="module")
def sim_process(robot, tmp_path_factory):
    sim = SimProcess(tmp_path_factory.mktemp("sim_node"), f"optimus_simnode_{os.getpid()}", "mode:=realtime",
                     "scene:=sorting_cell", "seed:=1", "push_link:=l_wrist", "push_force_n:=[0.0, 0.0, 80.0]",
                     "step_ticks:=40")
    try:
        yield sim
    finally:
        if sim.proc.poll() is None:
            sim.stop()
    assert not os.path.exists(f"/dev/shm/{sim.bus}"), "the node did not remove its joint-bus segment"


@pytest.fixture(scope="module")
def sim_node(sim_process):
    probe = Probe()
    try:
        probe.spin(60.0, until=lambda: min(len(probe.got[t]) for t in ("/camera/color/image_raw", "/camera/depth/image_raw",
                                                                      "/camera/color/camera_info", "/sim/objects")) >= 5)
        if sim_process.proc.poll() is not None:
            pytest.fail(f"sim node exited: {sim_process.output()}")
        yield probe
    finally:
        probe.close()


def test_camera_topics_types_frames_and_rate(sim_node, robot):
    cam = robot.config.camera
    k = cam.intrinsics
    rgb, depth = sim_node.got["/camera/color/image_raw"], sim_node.got["/camera/depth/image_raw"]
    assert len(rgb) >= 5 and len(depth) >= 5
    for m in rgb:
        assert (m.encoding, m.width, m.height, m.step, len(m.data)) == ("rgb8", k.width, k.height, 3 * k.width,
                                                                       3 * k.width * k.height)
        assert m.header.frame_id == cam.optical_frame
    d = depth[-1]
    assert (d.encoding, d.width, d.height, d.header.frame_id) == ("32FC1", k.width, k.height, cam.optical_frame)
    metres = np.frombuffer(bytes(d.data), dtype=np.float32).reshape(k.height, k.width)
    assert 0.3 < np.nanmedian(metres) < k.far                         # the floor/table seen within range
    stamps = np.array([stamp_to_s(m.header.stamp) for m in rgb])
    assert_rate(stamps, 1.0 / cam.rate_hz)                               # 10 Hz in sim time
    assert {stamp_to_s(m.header.stamp) for m in depth} & set(stamps)  # colour and depth share stamps
    info = sim_node.got["/camera/color/camera_info"][-1]
    assert info.header.frame_id == cam.optical_frame and (info.width, info.height) == (k.width, k.height)
    assert list(info.k) == pytest.approx([k.fx, 0, k.cx, 0, k.fy, k.cy, 0, 0, 1])
    assert sim_node.got["/camera/depth/camera_info"][-1].header.frame_id == cam.optical_frame


def test_clock_and_ground_truth_topics(sim_node, robot):
    clock = [stamp_to_s(c.clock) for c in sim_node.got["/clock"]]
    assert len(clock) > 10 and np.all(np.diff(clock) > 0)
    assert_rate(clock, 1 / 50.0)                                         # 50 Hz in sim time
    poses = sim_node.got["/sim/base_pose"]
    assert poses[-1].header.frame_id == "odom" and sim_node.got["/sim/base_twist"][-1].header.frame_id == "odom"
    assert_rate([stamp_to_s(p.header.stamp) for p in poses], 1.0 / SimSettings().ground_truth_rate_hz)  # shipped 50 Hz
    assert poses[-1].pose.position.z == pytest.approx(robot.standing_configuration()[2], abs=0.02)
    markers = sim_node.got["/sim/objects"][-1].markers
    assert 6 <= len(markers) <= 8 and {m.header.frame_id for m in markers} == {"odom"}
    assert sorted(m.id for m in markers) == list(range(len(markers)))
    assert all(0.8 < m.pose.position.z < 0.9 and m.scale.x == pytest.approx(0.08) for m in markers)
    joints = sim_node.got["/sim/joint_states"][-1]
    assert list(joints.name) == list(robot.joint_names) and len(joints.position) == robot.n_joints


def test_reset_with_a_new_seed_moves_the_boxes(sim_node):
    before = {m.id: (m.pose.position.x, m.pose.position.y) for m in sim_node.got["/sim/objects"][-1].markers}
    sim_node.set_param("seed", 5)
    res = sim_node.call(Trigger, "/sim/reset", Trigger.Request())
    assert res.success, res.message
    sim_node.clear()
    sim_node.spin(20.0, until=lambda: len(sim_node.got["/sim/objects"]) >= 2)
    after = {m.id: (m.pose.position.x, m.pose.position.y) for m in sim_node.got["/sim/objects"][-1].markers}
    assert after != before


def test_push_visibly_moves_the_robot(sim_node, robot):
    """Without a controller the harness holds the robot; a push still deflects the pushed arm."""
    shoulder = robot.joint_index("l_shoulder_pitch")
    sim_node.spin(2.0)
    rest = sim_node.got["/sim/joint_states"][-1].position[shoulder]
    res = sim_node.call(Trigger, "/sim/push", Trigger.Request())
    assert res.success, res.message
    sim_node.clear()
    sim_node.spin(10.0, until=lambda: len(sim_node.got["/sim/joint_states"]) >= 40)
    swing = max(abs(m.position[shoulder] - rest) for m in sim_node.got["/sim/joint_states"])
    assert swing > 0.02


def test_pause_and_step(sim_node):
    assert sim_node.call(SetBool, "/sim/pause", SetBool.Request(data=True)).success
    sim_node.spin(1.0)
    last_before = sim_node.got["/clock"][-1].clock
    sim_node.clear()
    sim_node.spin(1.0)
    assert len(sim_node.got["/clock"]) == 0, "the clock kept running while paused"
    res = sim_node.call(Trigger, "/sim/step", Trigger.Request())
    assert res.success, res.message
    sim_node.spin(2.0, until=lambda: len(sim_node.got["/clock"]) >= 2)
    last_after = sim_node.got["/clock"][-1].clock
    # 40 ticks of 1 ms; /clock (50 Hz) is stamped every 20 ticks, so its last stamp moves by exactly 40 ms.
    stepped = (last_after.sec - last_before.sec) + (last_after.nanosec - last_before.nanosec) * 1e-9
    assert stepped == pytest.approx(0.040, abs=1e-6)
    sim_node.spin(0.5)
    assert len(sim_node.got["/clock"]) == 2, "the sim ran on after the requested steps"
    assert sim_node.call(SetBool, "/sim/pause", SetBool.Request(data=False)).success


def test_sigint_stops_the_node_cleanly(sim_node, sim_process):
    """Ctrl-C while physics, camera and /clock run: physics stops first, exit code 0, no traceback, bus removed.
    (This ends the module's node: it runs after the other tests that use it.)"""
    sim_node.spin(20.0, until=lambda: len(sim_node.got["/clock"]) >= 5)   # the sim is running, not paused
    assert sim_process.proc.poll() is None
    code = sim_process.stop(signal.SIGINT)
    out, err = sim_process.output()
    assert "Traceback" not in err and "Traceback" not in out, err[-3000:]
    assert "context is invalid" not in err
    assert code == 0, f"exit code {code}:\n{err[-3000:]}"
    assert not os.path.exists(f"/dev/shm/{sim_process.bus}")


def test_sigterm_stops_a_waiting_lockstep_node_cleanly(tmp_path):
    """SIGTERM (as the launcher sends) while lockstep waits for a controller that never comes: same clean exit."""
    sim = SimProcess(tmp_path, f"optimus_simnode_lock_{os.getpid()}", "mode:=lockstep", "camera_enabled:=false",
                     "scene:=sorting_cell")
    try:
        deadline = time.monotonic() + 60.0
        while "sim ready" not in "".join(sim.output()) and sim.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "sim ready" in "".join(sim.output()), sim.output()
        code = sim.stop(signal.SIGTERM)
    finally:
        if sim.proc.poll() is None:
            sim.proc.kill()
            sim.proc.wait(timeout=10)
    out, err = sim.output()
    assert code == 0 and "Traceback" not in err + out, err[-3000:]
    assert not os.path.exists(f"/dev/shm/{sim.bus}")


def test_bad_scene_stops_the_node_with_a_clear_error(tmp_path):
    scene = tmp_path / "bad.yaml"
    scene.write_text("scene: {name: bad}\nrobot: {position: [0, 0]}\nfurniture:\n"
                     "  - {name: desk, type: table, position: [0.1, 0.0], size: [0.4, 0.6, 0.8]}\n")
    bus = f"optimus_simnode_bad_{os.getpid()}"
    result = subprocess.run([sys.executable, "-m", "optimus_control.nodes.sim", "--ros-args", "-p", f"scene:={scene}",
                             "-p", f"bus_name:={bus}", "-p", "use_sim_time:=true"], env=ros_env(OTHER_DOMAIN_ID),
                            capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert f"{scene}: furniture[0] 'desk': overlaps the robot" in result.stdout + result.stderr
    assert not os.path.exists(f"/dev/shm/{bus}")
