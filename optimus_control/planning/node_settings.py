"""The task_planner node's parameters, the schema of ``config/task_planner.yaml`` (defaults: shipped values)."""

from __future__ import annotations

from dataclasses import dataclass

from optimus_control.model.colours import BIN_CLASS, BOX_COLOUR_CLASSES
from optimus_control.model.settings_schema import section, setting
from optimus_control.planning.context import SkillParams
from optimus_control.planning.grasp import GraspParams
from optimus_control.planning.workspace import WorkspaceParams
from optimus_control.planning.world_model import WorldParams

NODE_NAME = "task_planner"


@dataclass
class TaskPlannerSettings:
    job: str = setting("sort_by_colour", "", "config/jobs/<name>.yaml or a path to a job YAML")
    idle_scheduling: bool = setting(False, "", "run the node at SCHED_IDLE (only on CPU time the sim and the controller "
                                    "leave; the real-time overlay sets it)")
    robot_config: str = setting("optimus.yaml", "", "config/<name> or a path: hands, gripper and arm geometry")
    world_frame: str = setting("odom", "", "frame of perception's objects and of the goals sent to the controller")
    object_classes: list[str] = setting(
        [*BOX_COLOUR_CLASSES, BIN_CLASS], "",
        "classes perception can report (its colour classes + its bin class); a job naming another is refused")
    class_map: list[str] = setting([], "", "optional 'marker_ns=class' renames of perception namespaces")
    controller_prefix: str = setting("whole_body_controller", "", "the controller node (relative: this "
                                     "namespace); its /diagnostics statuses at ERROR = controller fault")
    exit_when_done: bool = setting(False, "", "exit when the job ends (0 = success), ending a launch with "
                                   "on_exit=shutdown")
    autostart: bool = setting(False, "", "start the job once controller status, odometry and perception arrive")
    tick_rate_hz: float = setting(10.0, "Hz", "behaviour-tree ticks")
    status_rate_hz: float = setting(2.0, "Hz", "task/status and /diagnostics (also on every step change)")
    report_dir: str = setting("runs", "", "runs/<UTC timestamp>/summary.json + report.md per episode ('' = none)")
    skill: SkillParams = section(SkillParams, "skill timeouts and tolerances")
    world: WorldParams = section(WorldParams, "world model: box identity across tracks")
    grasp: GraspParams = section(GraspParams, "grasp, carry and place geometry")
    workspace: WorkspaceParams = section(WorkspaceParams, "what the controller may use to reach")

    @property
    def class_renames(self) -> dict[str, str]:
        return dict(item.split("=", 1) for item in self.class_map if "=" in item)
