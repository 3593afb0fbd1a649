"""Perception: RGB-D images + robot state -> boxes and bins in the odom frame, tracked over time."""

from optimus_control.model.pinhole_camera import PinholeCamera
from optimus_control.perception.box_detector import BoxDetector, FrameResult
from optimus_control.perception.colour_classifier import ColourClassifier
from optimus_control.perception.detection import Detection
from optimus_control.perception.params import ColourClass, PerceptionParams
from optimus_control.perception.robot_state_buffer import RobotStateBuffer, StateLookup
from optimus_control.perception.robot_view import RobotView, RobotViewModel
from optimus_control.perception.tracker import Track, Tracker

__all__ = [
    "BoxDetector", "ColourClass", "ColourClassifier", "Detection", "FrameResult", "PerceptionParams", "PinholeCamera",
    "RobotStateBuffer", "RobotView", "RobotViewModel", "StateLookup", "Track", "Tracker",
]
