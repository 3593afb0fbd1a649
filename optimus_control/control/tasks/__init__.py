"""Whole-body QP tasks: one class per file, all following the :class:`Task` contract."""

from optimus_control.control.tasks.com_task import ComTask
from optimus_control.control.tasks.frame_task import FrameTask
from optimus_control.control.tasks.gaze_task import GazeTask
from optimus_control.control.tasks.posture_task import PostureTask
from optimus_control.control.tasks.task import Task, TaskObjective

__all__ = ["ComTask", "FrameTask", "GazeTask", "PostureTask", "Task", "TaskObjective"]
