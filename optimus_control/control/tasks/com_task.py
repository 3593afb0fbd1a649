"""Centre-of-mass position task (world frame)."""

from __future__ import annotations

import numpy as np

from optimus_control.control.dynamics_snapshot import DynamicsSnapshot
from optimus_control.control.tasks.task import Task


class ComTask(Task):
    """Track a CoM position [m] (world frame); the mask can free axes (e.g. z during a height change)."""

    def __init__(self, name: str, weight: float, kp: float, kd: float | None = None, mask: np.ndarray | None = None):
        super().__init__(name, 3, weight, kp, kd, mask)
        self.target: np.ndarray | None = None
        self.target_velocity = np.zeros(3)
        self.target_acceleration = np.zeros(3)

    def set_target(self, position_m: np.ndarray, velocity_mps: np.ndarray | None = None,
                   acceleration_mps2: np.ndarray | None = None) -> None:
        self.target = np.array(position_m, dtype=float)
        self.target_velocity = np.zeros(3) if velocity_mps is None else np.array(velocity_mps, dtype=float)
        self.target_acceleration = np.zeros(3) if acceleration_mps2 is None else np.array(acceleration_mps2, dtype=float)

    def compute(self, snapshot: DynamicsSnapshot) -> tuple[np.ndarray, np.ndarray]:
        if self.target is None:
            self.set_target(snapshot.com_position)
        self.last_error = self.target - snapshot.com_position
        self.last_velocity_error = self.target_velocity - snapshot.com_velocity
        desired = self.target_acceleration + self.kp * self.last_error + self.kd * self.last_velocity_error
        return snapshot.com_jacobian, desired - snapshot.com_drift
