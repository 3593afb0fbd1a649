"""Whole-body control: task-space inverse-dynamics QP, tasks, contacts, reference generation."""

from optimus_control.control.contact_6d import Contact6D
from optimus_control.control.controller_status import ControllerState, ControllerStatus, GoalReport, TaskStatus
from optimus_control.control.dynamics_snapshot import DynamicsSnapshot
from optimus_control.control.goal_frames import GoalFrameResolver
from optimus_control.control.min_jerk_trajectory import MinJerkSe3Trajectory, MinJerkVectorTrajectory
from optimus_control.control.qp_solver import QpProblem, QpResult, QpSolver
from optimus_control.control.reachable_workspace import ReachableWorkspace
from optimus_control.control.reference_tracker import ReferenceTracker, TorqueCommand
from optimus_control.control.references import ControlReferences, LoopMode
from optimus_control.control.wbc_settings import WbcSettings, load_wbc_settings
from optimus_control.control.whole_body_controller import WholeBodyController
from optimus_control.control.whole_body_qp import QpSettings, QpSolution, WholeBodyQp

__all__ = [
    "Contact6D", "ControlReferences", "ControllerState", "ControllerStatus", "DynamicsSnapshot",
    "GoalFrameResolver", "GoalReport", "LoopMode", "MinJerkSe3Trajectory", "MinJerkVectorTrajectory", "QpProblem",
    "QpResult", "QpSettings", "QpSolution", "QpSolver", "ReachableWorkspace", "ReferenceTracker", "TaskStatus",
    "TorqueCommand", "WbcSettings", "WholeBodyController", "WholeBodyQp", "load_wbc_settings",
]
