"""Joint posture task: regularises the actuated joints towards reference positions."""

from __future__ import annotations

import numpy as np

from optimus_control.control.dynamics_snapshot import DynamicsSnapshot
from optimus_control.control.tasks.task import Task


class PostureTask(Task):
    """Track joint positions [rad | m] (bus order); the mask weights joints individually."""

    def __init__(self, name: str, n_joints: int, weight: float, kp: float, kd: float | None = None,
                 mask: np.ndarray | None = None):
        super().__init__(name, n_joints, weight, kp, kd, mask)
        self.target: np.ndarray | None = None
        self.target_velocity = np.zeros(n_joints)

    def set_target(self, joint_positions: np.ndarray, joint_velocities: np.ndarray | None = None) -> None:
        self.target = np.array(joint_positions, dtype=float)
        self.target_velocity = np.zeros(self.dim) if joint_velocities is None else np.array(joint_velocities, dtype=float)

    def compute(self, snapshot: DynamicsSnapshot) -> tuple[np.ndarray, np.ndarray]:
        n = self.dim
        if self.target is None:
            self.set_target(snapshot.q[-n:])
        self.last_error = self.target - snapshot.q[-n:]
        self.last_velocity_error = self.target_velocity - snapshot.v[-n:]
        matrix = np.zeros((n, snapshot.nv))
        matrix[:, -n:] = np.eye(n)
        return matrix, self.kp * self.last_error + self.kd * self.last_velocity_error
