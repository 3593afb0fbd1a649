"""Runs jobs: one behaviour tree per episode, started and cancelled on request, ticked by its owner.

The owner (the ``task_planner`` node, or a test) calls :meth:`TaskExecutive.tick` at a steady rate;
everything time-related reads the injected ``clock`` (sim time when the sim runs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import py_trees

from optimus_control.model import RobotModel
from optimus_control.planning.context import SkillParams, TaskContext
from optimus_control.planning.episode import FAILED_STATE, RUNNING, EpisodeRecord
from optimus_control.planning.grasp import GraspParams
from optimus_control.planning.interfaces import ControllerClient, PerceptionClient
from optimus_control.planning.job_spec import JobSpec
from optimus_control.planning.planner import Planner
from optimus_control.planning.tree import build_task_tree
from optimus_control.planning.workspace import ArmWorkspace, WorkspaceParams
from optimus_control.planning.world_model import WorldModel, WorldParams


class TaskExecutive:
    """Owns the job, the belief about the world and the tree of the current episode."""

    def __init__(self, job: JobSpec, robot: RobotModel, controller: ControllerClient, perception: PerceptionClient,
                 clock: Callable[[], float], skill_params: SkillParams | None = None,
                 world_params: WorldParams | None = None, grasp_params: GraspParams | None = None,
                 workspace_params: WorkspaceParams | None = None):
        self.job = job
        self.controller, self.perception, self.clock = controller, perception, clock
        self.skill_params = skill_params or SkillParams()
        self.world_params = world_params or WorldParams()
        gripper = robot.config.gripper
        self.grasp_params = grasp_params or replace(GraspParams(), max_finger_opening_m=gripper.open_position)
        self.gripper_open_m = gripper.open_position
        self.workspace = ArmWorkspace(robot, workspace_params)
        self.planner = Planner(job, self.workspace, self.grasp_params)
        self._new_episode()

    def _new_episode(self) -> None:
        self.world = WorldModel(self.job, self.world_params)
        self.record = EpisodeRecord(self.job.name, str(self.job.source))
        self.ctx = TaskContext(self.job, self.planner, self.world, self.record, self.controller, self.perception,
                               self.clock, self.skill_params, self.gripper_open_m)
        self.root = build_task_tree(self.ctx)
        self.tree = py_trees.trees.BehaviourTree(self.root)

    @property
    def running(self) -> bool:
        return self.record.state == RUNNING

    def start(self) -> tuple[bool, str]:
        """Begin a new episode of the job (refused while one is running)."""
        if self.running:
            return False, f"job '{self.job.name}' is already running (step {self.record.step or 'starting'})"
        self._new_episode()
        self.record.begin(self.clock())
        return True, f"started job '{self.job.name}'"

    def cancel(self, reason: str = "cancelled by request") -> tuple[bool, str]:
        """Stop the running episode safely at the next tick."""
        if not self.running:
            return False, f"no job is running (state {self.record.state})"
        self.ctx.cancel_reason = reason
        return True, f"cancelling job '{self.job.name}'"

    def tick(self) -> None:
        """Fold in the latest perception and tick the tree once (no-op unless running)."""
        if not self.running:
            return
        snapshot = self.perception.snapshot()
        if snapshot is not None:
            self.world.update(snapshot)
        self.tree.tick()
        if self.root.status != py_trees.common.Status.RUNNING and not self.record.finished:
            self.record.finish(self.clock(), FAILED_STATE, f"task tree ended with {self.root.status.value}")

    def tree_text(self) -> str:
        """The tree with the status of each behaviour, for logs and debugging."""
        return py_trees.display.unicode_tree(self.root, show_status=True)
