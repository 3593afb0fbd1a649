"""Task planning: job files, the world belief, the planner, and the behaviour tree that runs a job.

Never imports rclpy: the ``task_planner`` node adapts these to ROS 2 through the protocols in
:mod:`optimus_control.planning.interfaces`.
"""

from optimus_control.planning.context import SkillParams
from optimus_control.planning.executive import TaskExecutive
from optimus_control.planning.geometry import Pose
from optimus_control.planning.grasp import GraspParams
from optimus_control.planning.interfaces import (
    ControllerClient,
    ControllerStatus,
    PerceivedObject,
    PerceptionClient,
    PerceptionSnapshot,
    TaskStatus,
)
from optimus_control.planning.job_spec import JobSpec, load_job, parse_job
from optimus_control.planning.planner import PickPlan, Planner
from optimus_control.planning.report import episode_summary, write_run_report
from optimus_control.planning.status import StatusEntry, task_status
from optimus_control.planning.workspace import ArmWorkspace, WorkspaceParams
from optimus_control.planning.world_model import WorldModel, WorldParams

__all__ = [
    "ArmWorkspace",
    "ControllerClient",
    "ControllerStatus",
    "GraspParams",
    "JobSpec",
    "PerceivedObject",
    "PerceptionClient",
    "PerceptionSnapshot",
    "PickPlan",
    "Planner",
    "Pose",
    "SkillParams",
    "StatusEntry",
    "TaskExecutive",
    "TaskStatus",
    "WorkspaceParams",
    "WorldModel",
    "WorldParams",
    "episode_summary",
    "load_job",
    "parse_job",
    "task_status",
    "write_run_report",
]
