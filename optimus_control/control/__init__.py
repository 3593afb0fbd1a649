"""Whole-body control: task-space inverse-dynamics QP, tasks, contacts, reference generation."""

from optimus_control.control.contact_6d import Contact6D
from optimus_control.control.control_step import ControlStep, LoopCommand, pack_foot_wrenches
from optimus_control.control.controller_status import ControllerState, ControllerStatus, GoalReport, TaskStatus
from optimus_control.control.dynamics_snapshot import DynamicsSnapshot
from optimus_control.control.fault_policy import FaultPolicy
from optimus_control.control.goal_frames import GoalFrameResolver
from optimus_control.control.gripper_reference_law import GripperReferenceLaw
from optimus_control.control.joint_gains import JointGainSchedule, capped_joint_gains
from optimus_control.control.joint_reference_integrator import JointReferenceIntegrator
from optimus_control.control.min_jerk_trajectory import MinJerkSe3Trajectory, MinJerkVectorTrajectory
from optimus_control.control.qp_solver import QpProblem, QpResult, QpSolver
from optimus_control.control.reachable_workspace import ReachableWorkspace
from optimus_control.control.reference_tracker import ReferenceTracker, TorqueCommand
from optimus_control.control.references import ControlReferences, LoopMode
from optimus_control.control.static_support import static_foot_wrenches
from optimus_control.control.task_goals import TaskGoals
from optimus_control.control.wbc_settings import WbcSettings, load_wbc_settings
from optimus_control.control.whole_body_controller import WholeBodyController
from optimus_control.control.whole_body_qp import QpSettings, QpSolution, WholeBodyQp

__all__ = [
    "Contact6D", "ControlReferences", "ControlStep", "ControllerState", "ControllerStatus", "DynamicsSnapshot",
    "FaultPolicy", "GoalFrameResolver", "GoalReport", "GripperReferenceLaw", "JointGainSchedule",
    "JointReferenceIntegrator", "LoopCommand", "LoopMode", "MinJerkSe3Trajectory", "MinJerkVectorTrajectory",
    "QpProblem", "QpResult", "QpSettings", "QpSolution", "QpSolver", "ReachableWorkspace", "ReferenceTracker",
    "TaskGoals", "TaskStatus", "TorqueCommand", "WbcSettings", "WholeBodyController", "WholeBodyQp",
    "capped_joint_gains", "load_wbc_settings", "pack_foot_wrenches", "static_foot_wrenches",
]
