"""What the whole-body controller reports: its state, per-task tracking and what happened to a goal."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np


class ControllerState(str, Enum):
    """The controller's fault state machine (see :class:`~optimus_control.control.fault_policy.FaultPolicy`)."""

    IDLE = "idle"
    RUNNING = "running"
    HOLDING = "holding"
    DAMPING = "damping"


@dataclass
class GoalReport:
    """What happened to a goal: accepted as is, clamped (with the reason), with its trajectory duration."""

    accepted: bool
    clamped: bool = False
    message: str = ""
    target_position_m: np.ndarray | None = None
    duration_s: float = 0.0


@dataclass
class TaskStatus:
    """Per-task tracking for the planner: errors against the final goal and the current reference."""

    name: str
    weight: float
    error_norm: float  # masked norm of the error to the current reference [m | rad]
    position_error_m: float = float("nan")  # to the final goal (hands)
    orientation_error_rad: float = float("nan")
    goal_reached: bool = False
    moving: bool = False


@dataclass
class ControllerStatus:
    """A snapshot of the controller for diagnostics and the planner."""

    state: ControllerState
    fault: str
    qp_status: str
    qp_solve_time_s: float
    update_time_s: float
    qp_failures: int
    tasks: dict[str, TaskStatus] = field(default_factory=dict)
    contacts: dict[str, float] = field(default_factory=dict)  # name -> activation
    messages: list[str] = field(default_factory=list)
