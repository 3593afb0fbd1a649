"""Inputs of the perception pipeline: robot-state history at image times, bad images, parameters."""

from __future__ import annotations

import numpy as np
import pinocchio as pin
import pytest
from test_perception_sim_scenes import TABLE_TOP_M, TABLE_YAML, open_sim_scene

from optimus_control.errors import ConfigError, SensorDataError
from optimus_control.perception import BoxDetector, PerceptionParams, PinholeCamera, RobotStateBuffer
from optimus_control.perception.pipeline import PerceptionPipeline
from optimus_control.perception.ros_conversions import colour_image_to_rgb, depth_image_to_metres

NAMES = ("a", "b", "c")


def test_state_is_interpolated_at_the_image_time():
    buf = RobotStateBuffer(NAMES, max_age_s=0.05)
    buf.add_joint_state(1.0, ["c", "a", "b"], [3.0, 1.0, 2.0])  # any name order
    buf.add_joint_state(1.02, ["a", "b", "c"], [2.0, 2.0, 2.0])
    q90 = pin.Quaternion(pin.utils.rpyToMatrix(0, 0, np.pi / 2)).coeffs()
    buf.add_base_pose(1.0, [0, 0, 1], [0, 0, 0, 1])
    buf.add_base_pose(1.02, [0.2, 0, 1], q90)
    q = buf.lookup(1.01).q
    assert q[:3] == pytest.approx([0.1, 0, 1])
    assert np.degrees(2 * np.arctan2(q[5], q[6])) == pytest.approx(45.0)  # slerp half way
    assert q[7:] == pytest.approx([1.5, 2.0, 2.5])


def test_state_too_far_from_the_image_time_is_rejected_with_the_reason():
    buf = RobotStateBuffer(NAMES, max_age_s=0.05)
    assert buf.lookup(1.0).reason == "no joint state received yet"
    buf.add_joint_state(1.0, NAMES, [0, 0, 0])
    assert buf.lookup(1.0).reason == "no odometry received yet"
    buf.add_base_pose(1.0, [0, 0, 0], [0, 0, 0, 1])
    assert buf.lookup(1.04).q is not None  # nearest within max age
    late = buf.lookup(1.2)
    assert late.q is None and "joint states: no sample within 0.050 s of t=1.200 s" in late.reason
    buf.add_joint_state(1.3, NAMES, [0, 0, 0])
    buf.add_base_pose(1.3, [0, 0, 0], [0, 0, 0, 1])
    assert buf.lookup(1.15).q is None  # a 0.3 s gap is not interpolated across


def test_bad_state_messages_raise_clear_errors():
    buf = RobotStateBuffer(NAMES)
    with pytest.raises(SensorDataError, match=r"lacks joints \['c'\]"):
        buf.add_joint_state(0.0, ["a", "b"], [0, 0])
    with pytest.raises(SensorDataError, match="NaN"):
        buf.add_joint_state(0.0, NAMES, [0, np.nan, 0])
    with pytest.raises(SensorDataError, match="zero quaternion"):
        buf.add_base_pose(0.0, [0, 0, 0], [0, 0, 0, 0])


def test_time_going_backwards_resets_the_history():
    buf = RobotStateBuffer(NAMES, max_age_s=0.05)
    for t in (5.0, 5.01):
        buf.add_joint_state(t, NAMES, [1, 1, 1])
        buf.add_base_pose(t, [0, 0, 0], [0, 0, 0, 1])
    buf.add_joint_state(0.0, NAMES, [2, 2, 2])  # sim reset
    buf.add_base_pose(0.0, [0, 0, 0], [0, 0, 0, 1])
    assert buf.lookup(5.0).q is None and buf.lookup(0.0).q[7:] == pytest.approx([2, 2, 2])


@pytest.fixture(scope="module")
def table_frame(tmp_path_factory):
    scene = open_sim_scene(TABLE_YAML, tmp_path_factory.mktemp("scene"))
    try:
        scene.look_down(0.7)
        scene.add_box("green", [0.95, 0.0], 0.4, [0.12, 0.1, 0.08])
        rgb, depth = scene.render()
        rot, pos = scene.camera_pose()
    finally:
        scene.close()
    return scene.camera, np.array([0.95, 0.0, TABLE_TOP_M + 0.04]), rgb, depth, rot, pos


def test_nan_inf_and_zero_depth_pixels_are_ignored(table_frame):
    """A box is still found, at the same place and not flagged partial, with 30 % of its depth pixels invalid
    (scattered dropouts: NaN, inf, 0, negative)."""
    camera, box, rgb, depth, rot, pos = table_frame
    detector = BoxDetector(camera)
    clean = detector.detect(rgb, depth, rot, pos).detections
    bad = depth.copy()
    rng = np.random.default_rng(0)
    holes = rng.random(bad.shape)
    bad[holes < 0.1] = np.nan
    bad[(holes >= 0.1) & (holes < 0.2)] = np.inf
    bad[(holes >= 0.2) & (holes < 0.3)] = 0.0
    bad[0, 0] = -1.0
    found = detector.detect(rgb, bad, rot, pos).detections
    assert len(clean) == 1 and len(found) == 1
    assert found[0].position_m == pytest.approx(box, abs=0.01)
    assert found[0].class_name == "green" and not found[0].partial


def test_all_invalid_depth_gives_no_detections(table_frame):
    camera, _, rgb, depth, rot, pos = table_frame
    assert BoxDetector(camera).detect(rgb, np.full_like(depth, np.nan), rot, pos).detections == []


def test_image_size_mismatch_is_an_error(table_frame):
    camera, _, rgb, depth, rot, pos = table_frame
    with pytest.raises(SensorDataError, match=r"depth image is \(120, 160\)"):
        BoxDetector(camera).detect(rgb, depth[:120, :160], rot, pos)
    with pytest.raises(SensorDataError, match="colour image"):
        BoxDetector(camera).detect(rgb[..., 0], depth, rot, pos)


def test_pipeline_without_intrinsics_or_state_waits_and_says_why(robot, table_frame):
    camera, _, rgb, depth, _, _ = table_frame
    pipeline = PerceptionPipeline(robot)
    assert "waiting for CameraInfo" in pipeline.process(rgb, depth, 1.0).skipped
    pipeline.set_camera(camera)
    out = pipeline.process(rgb, depth, 1.0)
    assert "no robot state" in out.skipped and out.tracks == []


def test_ros_image_conversions_and_their_errors():
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    padded = np.zeros((2, 12), dtype=np.uint8)  # step 12 > 9: row padding
    padded[:, :9] = rgb.reshape(2, 9)
    assert np.array_equal(colour_image_to_rgb("/cam", "rgb8", 2, 3, 12, padded.tobytes()), rgb)
    assert np.array_equal(colour_image_to_rgb("/cam", "bgr8", 2, 3, 9, rgb[..., ::-1].tobytes()), rgb)
    with pytest.raises(SensorDataError, match=r"/cam: colour image encoding 'mono8' is not supported"):
        colour_image_to_rgb("/cam", "mono8", 2, 3, 3, bytes(6))
    with pytest.raises(SensorDataError, match=r"/cam: rgb8 image 3x2 needs step >= 9 and 18 bytes"):
        colour_image_to_rgb("/cam", "rgb8", 2, 3, 9, bytes(10))
    depth = np.array([[1.5, np.nan], [0.0, 2.25]], dtype=np.float32)
    assert np.array_equal(depth_image_to_metres("/d", "32FC1", 2, 2, 8, depth.astype("<f4").tobytes(), False), depth,
                          equal_nan=True)
    assert depth_image_to_metres("/d", "32FC1", 2, 2, 8, depth.astype(">f4").tobytes(), True)[1, 1] == 2.25
    mm = np.array([[1500, 0]], dtype="<u2")
    assert depth_image_to_metres("/d", "16UC1", 1, 2, 4, mm.tobytes(), False) == pytest.approx(np.array([[1.5, 0.0]]))
    with pytest.raises(SensorDataError, match=r"/d: depth image encoding '8UC1'"):
        depth_image_to_metres("/d", "8UC1", 1, 2, 2, bytes(2), False)


def test_camera_from_camera_info_matrix():
    cam = PinholeCamera.from_k(320, 240, [216.0, 0, 159.5, 0, 216.0, 119.5, 0, 0, 1])
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == (216.0, 216.0, 159.5, 119.5)
    with pytest.raises(SensorDataError, match="intrinsics"):
        PinholeCamera.from_k(320, 240, [0.0] * 9)


def test_parameters_from_ros_style_dict():
    p = PerceptionParams.from_dict({"colour_class_names": ["red", "teal"], "colour_class_rgb": [200, 0, 0, 0, 128, 128],
                                    "track_lost_after_s": 2, "track_min_hits": 3})
    assert [c.name for c in p.colour_classes] == ["red", "teal"] and p.colour_classes[1].rgb == (0, 128, 128)
    assert p.track_lost_after_s == 2.0 and p.track_min_hits == 3
    with pytest.raises(ConfigError, match="did you mean 'track_gate_m'"):
        PerceptionParams.from_dict({"track_gate": 0.1})
    with pytest.raises(ConfigError, match="3 values per name"):
        PerceptionParams.from_dict({"colour_class_names": ["red"], "colour_class_rgb": [1, 2]})
    with pytest.raises(ConfigError, match="differ from 'bin'"):
        PerceptionParams.from_dict({"colour_class_names": ["bin"], "colour_class_rgb": [1, 2, 3]})


def test_colour_distance_on_neighbour_views_and_pixel_lists():
    """The weighted Lab distance is the per-pixel weighted sum of squared channel differences, for strided
    neighbour views of an image and for (N, 3) pixel lists alike (OpenCV returned a non-array for some)."""
    from optimus_control.perception.segmentation import channel_weights, colour_distance2

    rng = np.random.default_rng(3)
    lab = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    weights = channel_weights(0.5)

    def expected(a, b):
        return ((a.astype(float) - b.astype(float)) ** 2 * weights.ravel()).sum(axis=-1)

    for a, b in ((lab[:, :-1], lab[:, 1:]), (lab[:-1], lab[1:]), (lab.reshape(-1, 3)[::3], lab.reshape(-1, 3)[1::3])):
        got = colour_distance2(a, b, weights)
        assert isinstance(got, np.ndarray) and got.shape == a.shape[:-1]
        np.testing.assert_allclose(got, expected(a, b), rtol=1e-5)
