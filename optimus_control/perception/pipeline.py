"""The whole perception loop without ROS: robot state history + RGB-D frame -> tracked objects in odom.

The node feeds it messages; tests and the benchmark call it directly with the same data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from optimus_control.model import RobotModel
from optimus_control.model.pinhole_camera import PinholeCamera
from optimus_control.perception.box_detector import BoxDetector
from optimus_control.perception.detection import Detection
from optimus_control.perception.params import PerceptionParams
from optimus_control.perception.robot_state_buffer import RobotStateBuffer
from optimus_control.perception.robot_view import RobotView, RobotViewModel
from optimus_control.perception.self_filter import held_by_gripper, robot_pixel_mask
from optimus_control.perception.tracker import Track, Tracker


@dataclass
class FrameOutcome:
    """What one image produced. ``skipped`` says why an image gave no update (then tracks are unchanged)."""

    stamp_s: float
    tracks: list[Track] = field(default_factory=list)
    detections: list[Detection] = field(default_factory=list)
    held: list[Detection] = field(default_factory=list)  # detections dropped as held in a closed gripper
    skipped: str = ""
    processing_ms: float = 0.0
    stage_ms: dict[str, float] = field(default_factory=dict)
    robot_pixels: int = 0


class PerceptionPipeline:
    """Robot model + camera + parameters -> per-frame detection, self-filtering and tracking."""

    def __init__(self, robot: RobotModel, camera: PinholeCamera | None = None, params: PerceptionParams | None = None):
        self.params = params or PerceptionParams()
        self.robot = robot
        self.view_model = RobotViewModel(robot, self.params.gripper_closed_fraction)
        self.state = RobotStateBuffer(robot.joint_names, self.params.state_max_age_s)
        self.tracker = Tracker(self.params)
        self.detector: BoxDetector | None = None
        if camera is not None:
            self.set_camera(camera)

    def set_camera(self, camera: PinholeCamera) -> None:
        """(Re)configure intrinsics, e.g. from the first CameraInfo; keeps the tracks."""
        if self.detector is None or self.detector.camera != camera:
            self.detector = BoxDetector(camera, self.params)

    def view_at(self, stamp_s: float) -> tuple[RobotView | None, str]:
        """Robot view (camera pose, bodies, grippers) at an image time, or the reason there is none."""
        found = self.state.lookup(stamp_s)
        if found.q is None:
            return None, found.reason
        return self.view_model.view(found.q), ""

    def process(self, rgb: np.ndarray, depth_m: np.ndarray, stamp_s: float) -> FrameOutcome:
        """Detect in one frame taken at stamp_s and update the tracks (unless the frame is skipped)."""
        t0 = time.perf_counter()
        if self.detector is None:
            return FrameOutcome(stamp_s, skipped="no camera intrinsics yet (waiting for CameraInfo)")
        self.detector.check_images(rgb, depth_m)
        view, reason = self.view_at(stamp_s)
        if view is None:
            return FrameOutcome(stamp_s, skipped=f"no robot state for the image time: {reason}")
        camera, margin = self.detector.camera, self.params.self_filter_margin_m

        def robot_mask(frame):
            return robot_pixel_mask(frame.depth_m, frame.valid, camera, view, margin)

        result = self.detector.detect(rgb, depth_m, view.camera_rotation, view.camera_position_m, robot_mask, keep_frame=True)
        kept, held = [], []
        for det in result.detections:
            (held if held_by_gripper(det.position_m, view, self.params.held_object_radius_m) else kept).append(det)
        tracks = self.tracker.update(kept, stamp_s)
        out = FrameOutcome(stamp_s, tracks, kept, held, processing_ms=1e3 * (time.perf_counter() - t0),
                           stage_ms=result.stage_ms, robot_pixels=int(np.count_nonzero(result.frame.robot_mask)))
        return out
