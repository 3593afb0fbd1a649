"""Pose (SE3) task of one frame: feet, hands, base and torso orientation (with a mask)."""

from __future__ import annotations

import math

import numpy as np
import pinocchio as pin

from optimus_control.control.dynamics_snapshot import DynamicsSnapshot
from optimus_control.control.tasks.task import Task


class FrameTask(Task):
    r"""Track a world pose of a frame: rows [x, y, z, rx, ry, rz] in world-aligned axes.

    Position error :math:`p_{ref} - p`, orientation error :math:`\log(R_{ref} R^T)` (world axes).
    The mask selects rows, e.g. ``[0, 0, 0, 1, 1, 1]`` for an orientation-only base task.

    Attributes:
        frame_id: Pinocchio frame index.
        target: reference pose in the world (odom) frame.
        target_velocity: reference twist [m/s, rad/s] (6), world-aligned.
        target_acceleration: feed-forward acceleration (6), world-aligned.
    """

    def __init__(self, name: str, frame_id: int, weight: float, kp: float, kd: float | None = None,
                 mask: np.ndarray | None = None, max_position_error_m: float = 0.05, max_orientation_error_rad: float = 0.3):
        super().__init__(name, 6, weight, kp, kd, mask)
        self.frame_id = frame_id
        # Feedback saturation: a target the frame cannot follow (blocked, unreachable) then pulls with
        # a bounded acceleration instead of dragging the whole body (and the CoM) after it.
        self.max_position_error_m = max_position_error_m
        self.max_orientation_error_rad = max_orientation_error_rad
        self.target: pin.SE3 | None = None
        self.target_velocity = np.zeros(6)
        self.target_acceleration = np.zeros(6)

    def set_target(self, target: pin.SE3, velocity: np.ndarray | None = None,
                   acceleration: np.ndarray | None = None) -> None:
        """Store a copy of the reference (so the caller can keep mutating its own object)."""
        self.target = target.copy()
        self.target_velocity = np.zeros(6) if velocity is None else np.array(velocity, dtype=float)
        self.target_acceleration = np.zeros(6) if acceleration is None else np.array(acceleration, dtype=float)

    def set_target_from_snapshot(self, snapshot: DynamicsSnapshot) -> None:
        self.set_target(snapshot.placement(self.frame_id))

    def compute(self, snapshot: DynamicsSnapshot) -> tuple[np.ndarray, np.ndarray]:
        if self.target is None:
            self.set_target_from_snapshot(snapshot)
        pose = snapshot.placement(self.frame_id)
        target = self.target
        error = np.empty(6)
        error[:3] = target.translation - pose.translation
        error[3:] = pin.log3(target.rotation @ pose.rotation.T)
        velocity_error = self.target_velocity - snapshot.velocity(self.frame_id)
        self.last_error, self.last_velocity_error = error, velocity_error
        feedback = error.copy()
        for lo, limit in ((0, self.max_position_error_m), (3, self.max_orientation_error_rad)):
            block = feedback[lo:lo + 3]
            norm = math.sqrt(float(block @ block))
            if norm > limit:
                block *= limit / norm
        desired = self.target_acceleration + self.kp * feedback + self.kd * velocity_error
        return snapshot.jacobian(self.frame_id), desired - snapshot.classical_drift(self.frame_id)

    def position_error_m(self) -> float:
        return float(np.linalg.norm(self.last_error[:3]))

    def orientation_error_rad(self) -> float:
        return float(np.linalg.norm(self.last_error[3:]))
