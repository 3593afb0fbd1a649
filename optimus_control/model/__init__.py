"""Robot model: URDF + robot config -> Pinocchio model, names, limits and validation."""

from optimus_control.model.paths import resolve_data_path, share_dir
from optimus_control.model.pinhole_camera import PinholeCamera
from optimus_control.model.robot_config import RobotConfig, load_robot_config
from optimus_control.model.robot_model import JointLimits, RobotModel

__all__ = ["JointLimits", "PinholeCamera", "RobotConfig", "RobotModel", "load_robot_config", "resolve_data_path", "share_dir"]
