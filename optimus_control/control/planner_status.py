"""The controller's status as the planner sees it: :class:`optimus_control.planning.interfaces.ControllerStatus`.

One mapping for both ways the planner gets it: in process, from :meth:`WholeBodyController.status`, and
over ROS, where the task_planner node first parses the controller's ``~/task_status`` DiagnosticArray
into :class:`TaskReport` records. Controller task names become the planner's (``hand_<hand>`` ->
``<hand>_hand``, ``gripper_<hand>`` -> ``<hand>_gripper``, others unchanged); a hand's error is its
distance to the final goal, any other task's the norm of its tracking error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from optimus_control.control.controller_status import ControllerState
from optimus_control.control.controller_status import ControllerStatus as WbcStatus
from optimus_control.planning.interfaces import ControllerStatus, TaskStatus

CONTROLLER_SOURCE = "whole_body_controller"  # how a controller fault is attributed
PREFIXED_KINDS = ("hand", "gripper")


@dataclass(frozen=True)
class TaskReport:
    """One controller task as the controller reports it, under the controller's own task name.

    ``goal_stamp_s`` and ``clamped`` describe the hand goal the status refers to, when the sender knows it.
    """

    name: str
    goal_reached: bool
    position_error_m: float = math.nan  # to the final goal [m] (hands)
    error_norm: float = math.nan  # to the current reference [m | rad]
    goal_stamp_s: float | None = None
    clamped: bool = False


def planner_task_name(name: str) -> str:
    """Controller task name -> planner task name: 'whole_body_controller: hand_left' -> 'left_hand'.

    A 'prefix: ' or 'prefix/' is dropped; '<hand>_hand' and other names are kept.
    """
    name = name.rsplit(":", 1)[-1].rsplit("/", 1)[-1].strip()
    for kind in PREFIXED_KINDS:
        if name.startswith(f"{kind}_"):
            return f"{name.removeprefix(kind + '_')}_{kind}"
    return name


def planner_status(stamp_s: float, reports: Iterable[TaskReport], fault: str | None) -> ControllerStatus:
    """The planner's status from the controller's task reports (``fault`` None while healthy)."""
    tasks = {}
    for report in reports:
        name = planner_task_name(report.name)
        error_m = report.position_error_m if name.endswith("_hand") else report.error_norm
        tasks[name] = TaskStatus(report.goal_reached, error_m, report.goal_stamp_s, report.clamped)
    return ControllerStatus(stamp_s, tasks, fault)


def controller_fault(state: ControllerState, fault: str) -> str | None:
    """The planner's fault text: set only once the controller damps (holding may still recover)."""
    if state is not ControllerState.DAMPING:
        return None
    return f"{CONTROLLER_SOURCE}: {fault or state.value}"


def task_reports(status: WbcStatus, goal_info: Mapping[str, tuple[float, bool]]) -> list[TaskReport]:
    """Reports from the controller's own status; ``goal_info`` maps a hand to the (stamp [s], clamped) of
    the last goal it accepted."""
    reports = []
    for name, task in status.tasks.items():
        stamp, clamped = goal_info.get(name.removeprefix("hand_"), (None, False)) if name.startswith("hand_") \
            else (None, False)
        reports.append(TaskReport(name, task.goal_reached, task.position_error_m, task.error_norm, stamp, clamped))
    return reports


def planner_status_from_controller(status: WbcStatus, time_s: float,
                                   goal_info: Mapping[str, tuple[float, bool]]) -> ControllerStatus:
    """The planner's status of an in-process controller at controller time ``time_s``."""
    return planner_status(time_s, task_reports(status, goal_info), controller_fault(status.state, status.fault))
