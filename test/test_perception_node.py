"""The `perception` node under real rclpy/Fast DDS, in its own process, fed by this test.

The test plays camera driver and robot: the simulator renders boxes on a table with the robot looking
down at them (known joint state), publishes the images, CameraInfo, /joint_states and /odom with
matching stamps, and reads /perception/objects and /diagnostics. It checks the waiting states (no
CameraInfo, no robot state), the objects (stamps = image stamps, odom poses, classes), a removed box
turning 'lost', and clear errors naming the topic for a wrong encoding and mismatched sizes.
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import free_ros_domain, ros_env
from test_perception_sim_scenes import TABLE_TOP_M, TABLE_YAML, open_sim_scene

from optimus_control.nodes.ros_time import s_to_stamp, stamp_to_s

pytestmark = pytest.mark.ros

DOMAIN_ID = free_ros_domain()
LOST_AFTER_S = 0.6
FRAME_DT_S = 0.1
T0_S = 1000.0  # stamps of the fake robot clock (the node takes stamps from the messages)


@pytest.fixture(scope="module")
def ros(monkeypatch_module, tmp_path_factory):
    env = ros_env(DOMAIN_ID)
    for key in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "RMW_IMPLEMENTATION"):
        monkeypatch_module.setenv(key, env[key])
    import rclpy

    context = rclpy.Context()
    rclpy.init(context=context)
    node_proc = subprocess.Popen(
        [sys.executable, "-m", "optimus_control.nodes.perception", "--ros-args", "-p", f"track_lost_after_s:={LOST_AFTER_S}",
         "-p", "warn_period_s:=0.5", "-p", "diagnostics_period_s:=0.2"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    driver = Driver(context, open_sim_scene(TABLE_YAML, tmp_path_factory.mktemp("scene")))
    try:
        yield driver, node_proc
    finally:
        driver.close()
        rclpy.shutdown(context=context)
        node_proc.terminate()
        try:
            node_proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            node_proc.kill()


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()



class Driver:
    """Camera driver + robot state publisher + listener of the node's outputs."""

    def __init__(self, context, scene):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from nav_msgs.msg import Odometry
        from sensor_msgs.msg import CameraInfo, Image, JointState
        from visualization_msgs.msg import MarkerArray

        self.rclpy, self.Image, self.CameraInfo, self.JointState, self.Odometry = rclpy, Image, CameraInfo, JointState, Odometry
        self.node = rclpy.create_node("perception_test_driver", context=context)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.pub_rgb = self.node.create_publisher(Image, "/camera/color/image_raw", 10)
        self.pub_depth = self.node.create_publisher(Image, "/camera/depth/image_raw", 10)
        self.pub_info = self.node.create_publisher(CameraInfo, "/camera/color/camera_info", 10)
        self.pub_joints = self.node.create_publisher(JointState, "/joint_states", 50)
        self.pub_odom = self.node.create_publisher(Odometry, "/odom", 50)
        self.markers: list = []
        self.diagnostics: list = []
        self.node.create_subscription(MarkerArray, "/perception/objects", self.markers.append, 10)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, 50)
        self.scene = scene
        scene.look_down(0.7)
        self.robot, self.q, self.camera = scene.robot, scene.q, scene.camera
        self.boxes = [(scene.add_box(name, xy, yaw, size), name, np.array([*xy, TABLE_TOP_M + size[2] / 2]), np.array(size))
                      for name, xy, yaw, size in (("red", [1.0, 0.15], 0.3, [0.12, 0.08, 0.1]),
                                                  ("blue", [1.1, -0.2], -0.5, [0.16, 0.1, 0.06]),
                                                  ("green", [0.85, -0.05], 1.0, [0.1, 0.1, 0.12]))]
        self.t = T0_S
        self.image_stamps: set[float] = set()

    def close(self) -> None:
        self.scene.close()
        self.node.destroy_node()

    def spin(self, duration_s: float) -> None:
        end = time.monotonic() + duration_s
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.01)

    def image_msgs(self, encoding: str = "rgb8", depth_size: tuple[int, int] | None = None):
        rgb, depth = self.scene.render()
        colour = self.Image(height=rgb.shape[0], width=rgb.shape[1], encoding=encoding, step=rgb.shape[1] * 3,
                            data=rgb.tobytes())
        if depth_size is not None:
            depth = np.ascontiguousarray(depth[: depth_size[1], : depth_size[0]])
        d = self.Image(height=depth.shape[0], width=depth.shape[1], encoding="32FC1", step=depth.shape[1] * 4,
                       data=depth.astype("<f4").tobytes())
        for m in (colour, d):
            m.header.stamp, m.header.frame_id = s_to_stamp(self.t), "head_camera_optical_frame"
        return colour, d

    def publish_frame(self, info: bool = True, state: bool = True, **image_kw) -> float:
        """One camera frame at the current fake time (with the robot state around it); returns its stamp."""
        stamp = self.t
        self.image_stamps.add(round(stamp, 6))
        if state:
            for dt in (-0.02, -0.01, 0.0):
                js = self.JointState(name=list(self.robot.joint_names), position=self.q[7:].tolist())
                js.header.stamp = s_to_stamp(stamp + dt)
                self.pub_joints.publish(js)
                od = self.Odometry()
                od.header.stamp, od.header.frame_id, od.child_frame_id = s_to_stamp(stamp + dt), "odom", "base_link"
                p, q = self.q[:3], self.q[3:7]
                od.pose.pose.position.x, od.pose.pose.position.y, od.pose.pose.position.z = (float(v) for v in p)
                o = od.pose.pose.orientation
                o.x, o.y, o.z, o.w = (float(v) for v in q)
                self.pub_odom.publish(od)
        if info:
            c = self.camera
            ci = self.CameraInfo(width=c.width, height=c.height, distortion_model="plumb_bob",
                                 k=[c.fx, 0.0, c.cx, 0.0, c.fy, c.cy, 0.0, 0.0, 1.0])
            ci.header.stamp, ci.header.frame_id = s_to_stamp(stamp), "head_camera_optical_frame"
            self.pub_info.publish(ci)
        self.spin(0.01)
        colour, depth = self.image_msgs(**image_kw)
        self.pub_rgb.publish(colour)
        self.pub_depth.publish(depth)
        self.spin(FRAME_DT_S)
        self.t += FRAME_DT_S
        return stamp

    def run(self, seconds: float, **kw) -> list[float]:
        return [self.publish_frame(**kw) for _ in range(int(round(seconds / FRAME_DT_S)))]

    def run_until(self, condition, max_frames: int = 60, **kw) -> bool:
        """Publish frames until condition() holds (checked after each frame); a loaded machine may need more."""
        for _ in range(max_frames):
            self.publish_frame(**kw)
            if condition():
                return True
        return False

    def status_is(self, level: bytes, *words: str):
        def check() -> bool:
            st = self.last_status()
            return st is not None and st.level == level and all(w in st.message for w in words)
        return check

    @staticmethod
    def array_stamp(array) -> float:
        """Stamp of a MarkerArray [s] (the node stamps all markers of one array with its image time)."""
        return max(stamp_to_s(m.header.stamp) for m in array.markers)

    def last_cubes(self) -> dict:
        if not self.markers:
            return {}
        return {m.ns: m for m in self.markers[-1].markers if m.ns != "state" and m.action == 0}

    def last_status(self):
        return self.diagnostics[-1].status[0] if self.diagnostics else None

    def wait_for_node(self, timeout_s: float = 60.0) -> None:
        end = time.monotonic() + timeout_s
        while not self.diagnostics and time.monotonic() < end:
            self.spin(0.1)


def test_node_end_to_end(ros):
    driver, node_proc = ros
    try:
        _end_to_end(driver, node_proc)
    except AssertionError:
        node_proc.terminate()
        print("---- perception node output ----\n", node_proc.communicate(timeout=10)[0][-3000:])
        raise


def _end_to_end(driver, node_proc) -> None:
    driver.wait_for_node()
    assert driver.diagnostics, "the perception node published no /diagnostics within 60 s"

    # 1. No CameraInfo yet: waits and says so, publishes nothing.
    driver.run(0.8, info=False, state=False)
    assert driver.status_is(b"\x01", "CameraInfo", "/camera/color/camera_info")()
    assert not driver.markers

    # 2. CameraInfo but no robot state: no detections, a warning naming the reason.
    assert driver.run_until(driver.status_is(b"\x01", "robot state"), state=False)
    driver.run(0.3, state=False)
    assert not driver.markers

    # 3. Everything present: objects in odom, stamped with their image time, close to the truth.
    assert driver.run_until(lambda: len(driver.last_cubes()) == 3 and len(driver.markers) >= 5), "no objects received"
    cubes = list(driver.last_cubes().values())
    assert sorted(m.ns for m in cubes) == ["blue", "green", "red"]
    for arr in driver.markers:
        for m in arr.markers:
            assert m.header.frame_id == "odom"
            assert round(stamp_to_s(m.header.stamp), 6) in driver.image_stamps
    for _, name, position, size in driver.boxes:
        cube = next(m for m in cubes if m.ns == name)
        pos = np.array([cube.pose.position.x, cube.pose.position.y, cube.pose.position.z])
        assert np.linalg.norm(pos - position) < 0.015, (name, pos, position)
        assert sorted([cube.scale.x, cube.scale.y]) == pytest.approx(sorted(size[:2]), abs=0.01)
        assert cube.text == "visible"
    ids = {m.ns: m.id for m in cubes}
    assert driver.run_until(driver.status_is(b"\x00"))
    values = {kv.key: kv.value for kv in driver.last_status().values}
    assert int(values["frames_processed"]) >= 5 and float(values["processing_ms_median"]) > 0

    # 4. A box taken away becomes 'lost' (same id), the others stay visible with their ids.
    driver.scene.remove(driver.boxes[0][0])
    last_shown = driver.t - FRAME_DT_S  # stamp of the last published frame that showed the box
    assert driver.run_until(lambda: driver.last_cubes().get("red") is not None and driver.last_cubes()["red"].text == "lost")
    last_stamp = driver.array_stamp(driver.markers[-1])
    # A loaded node may drop frames (sensor QoS, newest pair only), so the last time it saw the box is the
    # newest frame it processed (it published markers for it) among those that showed the box.
    processed = sorted(driver.array_stamp(arr) for arr in driver.markers if arr.markers)
    last_seen = max(t for t in processed if t <= last_shown + 1e-6)
    assert last_stamp - last_seen >= LOST_AFTER_S - 1e-6, (last_seen, last_stamp, processed[-12:])  # image time
    cubes = driver.last_cubes()
    assert cubes["red"].id == ids["red"]
    assert cubes["blue"].text == "visible" and cubes["blue"].id == ids["blue"]
    labels = {m.id: m.text for m in driver.markers[-1].markers if m.ns == "state"}
    assert labels[ids["red"]] == f"red {ids['red']} lost"

    # 5. Wrong encoding: a clear error naming the topic; the node keeps running.
    assert driver.run_until(driver.status_is(b"\x02", "/camera/color/image_raw", "mono8"), encoding="mono8")

    # 6. Colour and depth sizes disagree: error naming both topics.
    assert driver.run_until(driver.status_is(b"\x02", "/camera/color/image_raw", "/camera/depth/image_raw", "160x120"),
                            depth_size=(160, 120))

    # 7. Good input again: back to OK.
    assert driver.run_until(driver.status_is(b"\x00"))
    assert node_proc.poll() is None, "the node exited"
