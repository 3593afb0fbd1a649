r"""The task contract of the whole-body QP.

A motion task asks for a task-space acceleration: it returns ``A`` (k x nv) and ``b`` (k) such that the
QP minimises :math:`\| \mathrm{diag}(\sqrt{w}) (A \ddot q - b) \|^2`, where ``b`` already holds the
feedback law (``a_ref + K_p e + K_d \dot e``) minus the drift :math:`\dot J \dot q`. ``w`` is the task
weight times the per-row mask. Tasks only read a :class:`DynamicsSnapshot`; they never call the solver.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np

from optimus_control.control.dynamics_snapshot import DynamicsSnapshot
from optimus_control.errors import ConfigError


@dataclass
class TaskObjective:
    """One task's least-squares term: minimise sum_i row_weights[i] (A[i] q_dd - b[i])^2."""

    matrix: np.ndarray  # A (k, nv)
    vector: np.ndarray  # b (k,)
    row_weights: np.ndarray  # (k,) weight * mask, >= 0


class Task(abc.ABC):
    """A weighted acceleration-level objective with PD gains and a reference.

    Attributes:
        name: unique name in the controller (e.g. ``"hand_left"``).
        weight: scalar weight [cost / (m/s^2)^2 or cost / (rad/s^2)^2].
        kp: proportional gain [1/s^2]; kd: derivative gain [1/s].
        mask: per-row weights in [0, 1] (1 = controlled, 0 = free).
    """

    def __init__(self, name: str, dim: int, weight: float, kp: float, kd: float | None = None,
                 mask: np.ndarray | None = None):
        self.name = name
        self.dim = dim
        self.set_weight(weight)
        self.set_gains(kp, kd)
        self.set_mask(np.ones(dim) if mask is None else mask)
        self.last_error: np.ndarray = np.zeros(dim)
        self.last_velocity_error: np.ndarray = np.zeros(dim)

    def set_weight(self, weight: float) -> None:
        if not np.isfinite(weight) or weight < 0:
            raise ConfigError(f"task '{self.name}': weight must be a finite number >= 0, got {weight!r}")
        self.weight = float(weight)

    def set_gains(self, kp: float, kd: float | None = None) -> None:
        """kd defaults to critical damping 2 sqrt(kp)."""
        if not np.isfinite(kp) or kp < 0:
            raise ConfigError(f"task '{self.name}': kp must be a finite number >= 0, got {kp!r}")
        self.kp = float(kp)
        self.kd = float(2.0 * np.sqrt(kp) if kd is None else kd)
        if not np.isfinite(self.kd) or self.kd < 0:
            raise ConfigError(f"task '{self.name}': kd must be a finite number >= 0, got {kd!r}")

    def set_mask(self, mask) -> None:
        mask = np.asarray(mask, dtype=float).reshape(-1)
        if mask.shape != (self.dim,) or not np.all((mask >= 0) & (mask <= 1)):
            raise ConfigError(f"task '{self.name}': mask must have {self.dim} entries in [0, 1], got {mask.tolist()}")
        self.mask = mask

    def objective(self, snapshot: DynamicsSnapshot) -> TaskObjective:
        """The task's least-squares term at this state (also records the tracking errors)."""
        matrix, vector = self.compute(snapshot)
        return TaskObjective(matrix, vector, self.weight * self.mask)

    @abc.abstractmethod
    def compute(self, snapshot: DynamicsSnapshot) -> tuple[np.ndarray, np.ndarray]:
        """Return (A, b) and update ``last_error`` / ``last_velocity_error``."""

    def error_norm(self) -> float:
        """Masked norm of the last tracking error [m | rad]."""
        e = self.mask * self.last_error
        return float(np.sqrt(e @ e))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, weight={self.weight}, kp={self.kp}, kd={self.kd})"
