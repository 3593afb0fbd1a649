"""The one mapping of the controller's task status onto the planner's (control/planner_status.py)."""

from __future__ import annotations

import math

from optimus_control.control import ControllerState, ControllerStatus, TaskStatus
from optimus_control.control.planner_status import (
    TaskReport,
    controller_fault,
    planner_status,
    planner_status_from_controller,
    planner_task_name,
)


def test_task_names_become_the_planners():
    """'hand_<hand>' and 'gripper_<hand>' turn around; a node prefix is dropped; other names are kept."""
    assert planner_task_name("hand_left") == "left_hand"
    assert planner_task_name("whole_body_controller: gripper_right") == "right_gripper"
    assert planner_task_name("whole_body_controller/gaze") == "gaze"
    assert planner_task_name("left_hand") == "left_hand"
    assert planner_task_name("com") == "com"


def test_hands_report_the_distance_to_their_goal_other_tasks_their_tracking_error():
    status = planner_status(3.0, [TaskReport("hand_left", False, 0.05, 0.01, 2.5, True),
                                  TaskReport("gaze", True, math.nan, 0.2)], None)
    left, gaze = status.tasks["left_hand"], status.tasks["gaze"]
    assert (left.goal_reached, left.error_m, left.goal_stamp_s, left.clamped) == (False, 0.05, 2.5, True)
    assert gaze.goal_reached and gaze.error_m == 0.2 and gaze.goal_stamp_s is None
    assert status.stamp_s == 3.0 and status.fault is None


def test_fault_only_once_the_controller_damps():
    """Holding may still recover: the planner hears of a fault when the loop is switched to damping."""
    assert controller_fault(ControllerState.HOLDING, "QP failed") is None
    assert controller_fault(ControllerState.DAMPING, "QP failed") == "whole_body_controller: QP failed"
    assert controller_fault(ControllerState.DAMPING, "") == "whole_body_controller: damping"


def test_in_process_status_echoes_the_hand_goal_it_refers_to():
    wbc = ControllerStatus(ControllerState.RUNNING, "", "solved", 0.0, 0.0, 0, {
        "hand_left": TaskStatus("hand_left", 1.0, 0.02, position_error_m=0.004, goal_reached=True),
        "hand_right": TaskStatus("hand_right", 1.0, 0.03, position_error_m=0.3),
        "posture": TaskStatus("posture", 0.1, 0.5, goal_reached=True)})
    status = planner_status_from_controller(wbc, 7.0, {"left": (6.5, False)})
    assert status.tasks["left_hand"].goal_stamp_s == 6.5 and status.tasks["left_hand"].error_m == 0.004
    assert status.tasks["right_hand"].goal_stamp_s is None and not status.tasks["right_hand"].goal_reached
    assert status.tasks["posture"].error_m == 0.5 and status.fault is None and status.stamp_s == 7.0
