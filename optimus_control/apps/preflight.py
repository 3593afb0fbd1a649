"""Check every file a run will read before anything starts: a mistake costs a second, not a launch.

The factory demo would otherwise start four processes and learn about a misspelt scene key from the
sim's log; the episode runner would learn it in a worker process. Both load the robot, the scene and
the job here exactly as the nodes will (the job against the object classes of the planner's parameter
file), load each node's parameter file with the node's own schema, and place the scene's boxes for the run's seed in a headless
PyBullet world (a quarter of a second; boxes that do not fit are only found by placing them).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from optimus_control.apps.evaluation import scorable_bins
from optimus_control.control.wbc_settings import load_wbc_settings
from optimus_control.model import RobotModel
from optimus_control.model.settings_schema import load_parameter_file
from optimus_control.perception.params import PerceptionNodeSettings
from optimus_control.planning import load_job
from optimus_control.planning.job_spec import JobSpec
from optimus_control.planning.node_settings import TaskPlannerSettings
from optimus_control.sim.runner import SimSettings
from optimus_control.sim.scene_builder import build_scene
from optimus_control.sim.scene_spec import SceneSpec, load_scene
from optimus_control.sim.world import SimWorld


@dataclass(frozen=True)
class RunInputs:
    robot: RobotModel
    scene: SceneSpec
    job: JobSpec


def load_run_inputs(robot_config: str | os.PathLike, scene: str | os.PathLike, job: str | os.PathLike,
                    seeds: Iterable[int] = ()) -> RunInputs:
    """Load and validate the robot, scene and job, and build the scene for each seed; raises ConfigError (or
    another OptimusError) on the first mistake."""
    robot = RobotModel.load(robot_config)
    scene_spec = load_scene(scene)
    load_parameter_file(SimSettings, "sim.yaml", "sim")
    load_wbc_settings()
    load_parameter_file(PerceptionNodeSettings, "perception.yaml", "perception")
    planner = load_parameter_file(TaskPlannerSettings, "task_planner.yaml", "task_planner")
    job_spec = load_job(job, planner.object_classes)
    scorable_bins(job_spec)
    for seed in seeds:
        with SimWorld(robot) as world:
            build_scene(world, scene_spec, seed)
    return RunInputs(robot, scene_spec, job_spec)
