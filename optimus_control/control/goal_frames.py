"""Express goal poses/points given in a named frame in the world (odom) frame the controller works in.

Resolvable frames: the odom (world) frame, the base frame (from the estimated base pose), and any frame
of the robot model (from the current configuration). Anything else is a FrameError naming the frame
and the valid choices.
"""

from __future__ import annotations

import numpy as np
import pinocchio as pin

from optimus_control.errors import FrameError, suggest
from optimus_control.model import RobotModel


class GoalFrameResolver:
    """Resolve ``frame_id`` strings to world placements at the current estimated configuration."""

    def __init__(self, robot: RobotModel, world_frame: str = "odom"):
        self.robot, self.world_frame = robot, world_frame
        self.data = robot.model.createData()
        self._q: np.ndarray | None = None

    def update(self, q: np.ndarray) -> None:
        """Set the current full configuration (nq) used to place robot frames."""
        self._q = np.array(q, dtype=float)
        pin.framesForwardKinematics(self.robot.model, self.data, self._q)

    def frame_to_world(self, frame: str) -> pin.SE3:
        if frame in (self.world_frame, ""):
            return pin.SE3.Identity()
        if not self.robot.model.existFrame(frame):
            valid = [self.world_frame] + self.robot.frame_names
            raise FrameError(f"goal frame '{frame}' is unknown{suggest(frame, valid)}; use '{self.world_frame}', "
                             f"'{self.robot.config.base_frame}' or a robot frame")
        if self._q is None:
            raise FrameError(f"goal frame '{frame}' cannot be resolved yet: no robot state received")
        return self.data.oMf[self.robot.model.getFrameId(frame)].copy()

    def pose_to_world(self, pose: pin.SE3, frame: str) -> pin.SE3:
        return self.frame_to_world(frame) * pose

    def point_to_world(self, point: np.ndarray, frame: str) -> np.ndarray:
        return self.frame_to_world(frame).act(np.asarray(point, dtype=float))
