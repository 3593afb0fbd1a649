"""Gaze task: point the x axis of a head frame at a point in the world."""

from __future__ import annotations

import math

import numpy as np

from optimus_control.control.dynamics_snapshot import DynamicsSnapshot
from optimus_control.control.tasks.task import Task


class GazeTask(Task):
    r"""Align the gaze frame's x axis with the direction to ``target`` [m] (world).

    Error: the rotation vector :math:`\theta\, (x \times d) / \|x \times d\|` taking the current
    axis x to the target direction d. The roll about d is left free (projected out), so the task has
    2 effective rows; it is written with 3 rows and the projector :math:`I - d d^T`.
    """

    def __init__(self, name: str, frame_id: int, weight: float, kp: float, kd: float | None = None):
        super().__init__(name, 3, weight, kp, kd)
        self.frame_id = frame_id
        self.target: np.ndarray | None = None

    def set_target(self, point_m: np.ndarray) -> None:
        self.target = np.array(point_m, dtype=float)

    def compute(self, snapshot: DynamicsSnapshot) -> tuple[np.ndarray, np.ndarray]:
        pose = snapshot.placement(self.frame_id)
        rotation, origin = pose.rotation, pose.translation
        axis = rotation[:, 0]
        if self.target is None:
            self.set_target(origin + axis)
        direction = self.target - origin
        distance = math.sqrt(float(direction @ direction))
        direction = axis if distance < 1e-6 else direction / distance
        ax, ay, az = axis
        dx, dy, dz = direction
        cross = np.array([ay * dz - az * dy, az * dx - ax * dz, ax * dy - ay * dx])
        sin_angle, cos_angle = math.sqrt(float(cross @ cross)), float(axis @ direction)
        angle = math.atan2(sin_angle, cos_angle)
        error = cross * (angle / sin_angle) if sin_angle > 1e-9 else np.zeros(3)
        projector = np.eye(3) - np.outer(direction, direction)
        angular_velocity = snapshot.velocity(self.frame_id)[3:]
        self.last_error = error
        self.last_velocity_error = -projector @ angular_velocity
        jacobian = snapshot.jacobian(self.frame_id)[3:]
        drift = snapshot.classical_drift(self.frame_id)[3:]
        desired = self.kp * error + self.kd * self.last_velocity_error
        return projector @ jacobian, projector @ (desired - drift)

    def angle_error_rad(self) -> float:
        return float(math.sqrt(self.last_error @ self.last_error))
