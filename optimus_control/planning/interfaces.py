"""What the planner needs from the rest of the robot, as Python protocols plus plain data.

The skills depend only on these; the ``task_planner`` node implements them with rclpy (topics and
message conversions live there, in one place), and ``kinematic_world`` implements them in-process
for unit tests. Hands are named as in the robot config (``hands:`` keys, e.g. "left", "right").

Controller task names used in :class:`ControllerStatus`: ``"<hand>_hand"``, ``"<hand>_gripper"``,
``"gaze"`` (the node maps the controller's own names onto these).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from optimus_control.planning.geometry import Pose

TRACKED = "tracked"
HELD = "held"
LOST = "lost"
OBJECT_STATES = (TRACKED, HELD, LOST)


def hand_task(hand: str) -> str:
    return f"{hand}_hand"


def gripper_task(hand: str) -> str:
    return f"{hand}_gripper"


GAZE_TASK = "gaze"


@dataclass(frozen=True)
class PerceivedObject:
    """One tracked object in ``odom``: ``pose`` of its centre, ``size_m`` its full extents along its own axes.

    ``state`` is ``tracked`` (seen now), ``held`` (seen, and perception believes it is in a gripper)
    or ``lost`` (the track ended: not seen for perception's lost time).
    """

    track_id: int
    object_class: str
    pose: Pose
    size_m: np.ndarray
    state: str = TRACKED

    @property
    def position_m(self) -> np.ndarray:
        return self.pose.position

    @property
    def visible(self) -> bool:
        return self.state != LOST


@dataclass(frozen=True)
class PerceptionSnapshot:
    """Every object perception reports at ``stamp_s`` (image time [s]); lost tracks appear with state ``lost``."""

    stamp_s: float
    objects: tuple[PerceivedObject, ...] = ()


@dataclass(frozen=True)
class TaskStatus:
    """One controller task: has it reached its goal, and the goal it refers to.

    ``goal_stamp_s`` is the stamp of the goal the controller is tracking, when it reports one; without
    it, a status is trusted only once it is newer than the goal by the skill's settle time.
    """

    goal_reached: bool
    error_m: float = math.nan
    goal_stamp_s: float | None = None
    clamped: bool = False  # the controller moved the goal into its reachable workspace: it cannot be reached


@dataclass(frozen=True)
class ControllerStatus:
    stamp_s: float
    tasks: Mapping[str, TaskStatus] = field(default_factory=dict)
    fault: str | None = None  # None while healthy; otherwise what the controller reported


@runtime_checkable
class ControllerClient(Protocol):
    """Goals to the whole-body controller (reliable, latest wins) and its latest status."""

    def send_hand_target(self, hand: str, pose: Pose, stamp_s: float) -> None:
        """Target pose of the hand's gripper frame in ``odom``."""

    def send_gripper(self, hand: str, finger_position_m: float, max_force_n: float, stamp_s: float) -> None:
        """Per-finger opening [m] (the pad gap is twice this) and the squeeze force limit [N]."""

    def send_gaze(self, point_m: np.ndarray, stamp_s: float) -> None:
        """Point in ``odom`` the head should look at."""

    def send_posture(self, preset: str, stamp_s: float) -> None:
        """Named posture preset of the controller (e.g. the safe hold used when a job stops)."""

    def status(self) -> ControllerStatus | None:
        """Latest status, or None before the first one."""

    def base_pose(self) -> Pose | None:
        """Latest ``base_link`` pose in ``odom`` (from the controller's estimator), or None."""


@runtime_checkable
class PerceptionClient(Protocol):
    def snapshot(self) -> PerceptionSnapshot | None:
        """Latest complete set of objects, or None before the first one."""
