"""One factory job episode in one process, without ROS: sim + controller + perception + planner in lockstep.

The same libraries the nodes wrap (``SimWorld`` with a scene, the estimator and whole-body QP through
:class:`LockstepRunner`, :class:`PerceptionPipeline` on rendered head-camera frames, the planner's
:class:`TaskExecutive`), with the node parameter files of ``config/`` and the nodes' timing: the QP at
the controller's ``rate_hz`` with its references applied one update period after their state (as the
node's loop holds them), the camera at the robot config's rate, the behaviour tree at 10 Hz. It exists
to develop and evaluate planner and controller changes quickly and deterministically (many seeded
episodes); the launcher path (``make demo``, :mod:`optimus_control.apps.demo`) is the product. Ground
truth is read only to score the episode (:mod:`optimus_control.apps.evaluation`).

    python -m optimus_control.apps.episode [--scene sorting_cell] [--job sort_by_colour] [--seeds 0 1 2] [--workers 2]

Exit status: 0 when every episode succeeded by ground truth, 1 otherwise, 2 when a file is wrong.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import math
import multiprocessing
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import pinocchio as pin

from optimus_control.apps.evaluation import FallCriteria, base_tilt_rad, evaluate_episode
from optimus_control.apps.preflight import load_run_inputs
from optimus_control.apps.user_errors import EXIT_FAILED, reported_as
from optimus_control.control.lockstep_runner import LockstepRunner
from optimus_control.control.planner_status import planner_status_from_controller
from optimus_control.control.wbc_settings import load_wbc_settings
from optimus_control.errors import GoalError
from optimus_control.model import RobotModel
from optimus_control.model.settings_schema import build, load_parameter_file
from optimus_control.model.yaml_reader import parse_yaml
from optimus_control.numerics import single_threaded_numerics
from optimus_control.perception import PerceptionParams
from optimus_control.perception.params import PerceptionNodeSettings
from optimus_control.perception.pipeline import PerceptionPipeline
from optimus_control.planning import load_job
from optimus_control.planning.episode import job_progress
from optimus_control.planning.executive import TaskExecutive
from optimus_control.planning.geometry import Pose
from optimus_control.planning.interfaces import LOST, TRACKED, ControllerStatus, PerceivedObject, PerceptionSnapshot
from optimus_control.planning.node_settings import TaskPlannerSettings
from optimus_control.sim.camera import HeadCamera
from optimus_control.sim.scene_builder import build_scene
from optimus_control.sim.scene_spec import load_scene
from optimus_control.sim.world import SimWorld

TREE_RATE_HZ = 10.0


class InProcessController:
    """:class:`ControllerClient` on a :class:`LockstepRunner`'s controller (what the controller node does)."""

    def __init__(self, runner: LockstepRunner):
        self.runner = runner
        self.goal_info: dict[str, tuple[float, bool]] = {}
        self.rejected: list[str] = []

    def send_hand_target(self, hand: str, pose: Pose, stamp_s: float) -> None:
        try:
            report = self.runner.controller.set_hand_target(hand, pin.SE3(pose.rotation, pose.position))
            self.goal_info[hand] = (stamp_s, report.clamped)
        except GoalError as e:
            self.rejected.append(str(e))

    def send_gripper(self, hand: str, finger_position_m: float, max_force_n: float, stamp_s: float) -> None:
        self.runner.controller.set_gripper(hand, finger_position_m, max_force_n)

    def send_gaze(self, point_m, stamp_s: float) -> None:
        self.runner.controller.set_gaze_target(np.asarray(point_m, dtype=float))

    def send_posture(self, preset: str, stamp_s: float) -> None:
        self.runner.controller.set_posture(preset)

    def status(self) -> ControllerStatus | None:
        ctl = self.runner.controller
        return planner_status_from_controller(ctl.status(), ctl.time_s, self.goal_info)

    def base_pose(self) -> Pose | None:
        base = self.runner.base
        if base is None:
            return None
        return Pose.from_position_quaternion(base.position_m, base.orientation_xyzw)


class InProcessPerception:
    """:class:`PerceptionClient` fed by rendering the head camera and running the perception pipeline."""

    def __init__(self, robot: RobotModel, world: SimWorld, params: PerceptionParams):
        cam = robot.config.camera
        self.intrinsics = cam.intrinsics
        self.camera = HeadCamera.on_robot(world, self.intrinsics)
        self.pipeline = PerceptionPipeline(robot, self.intrinsics, params)
        self.rate_hz = cam.rate_hz
        self._snapshot: PerceptionSnapshot | None = None
        self.frames = 0
        self.render_s = 0.0

    def add_state(self, time_s: float, joint_names: list[str], q: np.ndarray, base_position, base_xyzw) -> None:
        self.pipeline.state.add_joint_state(time_s, joint_names, list(q))
        self.pipeline.state.add_base_pose(time_s, list(base_position), list(base_xyzw))

    def capture(self, time_s: float) -> None:
        t0 = time.perf_counter()
        rgb, depth = self.camera.render()
        self.render_s += time.perf_counter() - t0
        out = self.pipeline.process(rgb, depth, time_s)
        self.frames += 1
        if out.skipped:
            return
        objects = []
        for track in self.pipeline.tracker.published():
            state = LOST if track.state == LOST else TRACKED
            pose = Pose.from_position_yaw(track.position_m, track.yaw_rad)
            objects.append(PerceivedObject(track.track_id, track.class_name, pose, np.asarray(track.size_m), state))
        self._snapshot = PerceptionSnapshot(time_s, tuple(objects))

    def snapshot(self) -> PerceptionSnapshot | None:
        return self._snapshot


@dataclass
class EpisodeResult:
    seed: int
    state: str
    reason: str
    sim_time_s: float
    wall_time_s: float
    boxes_total: int
    boxes_sorted_truth: int
    fell: bool
    succeeded: bool  # by ground truth: the job succeeded, every box in its bin, no fall
    max_torque_ratio: float
    qp_failures: int
    min_base_height_m: float  # ground-truth pelvis over the episode: the margins to the fall criteria
    max_base_tilt_rad: float
    events: list[str] = field(default_factory=list)
    attempts: dict[int, int] = field(default_factory=dict)  # planner box id -> grasp attempts
    truth: list[dict] = field(default_factory=list)  # per ground-truth box: colour, bin, in_bin, position

    @property
    def boxes_per_min(self) -> float:
        return 60.0 * self.boxes_sorted_truth / max(self.sim_time_s, 1e-9)


def _override(settings: TaskPlannerSettings, assignments: list[str]) -> TaskPlannerSettings:
    """``group.key=value`` (YAML value) assignments, checked like the node's parameters."""
    values = {key: parse_yaml(text, f"--planner-param {key}")
              for key, _, text in (item.partition("=") for item in assignments)}
    return build(TaskPlannerSettings, values, "planner overrides", settings)


def run_episode(robot: RobotModel, scene_name: str, job_name: str, seed: int, time_limit_s: float = 240.0,
                verbose: bool = True, on_tick=None, planner_overrides: list[str] | None = None,
                on_step=None) -> EpisodeResult:
    """Run one episode to its end, a fall or the time limit; returns what it measured.

    ``on_tick(world, runner, executive, scene)`` runs after every behaviour-tree tick and ``on_step(world, scene)``
    before every physics step: hooks for tests that disturb the world (a push is physical contact too).
    """
    wall0 = time.perf_counter()
    world = SimWorld(robot)
    try:
        scene = build_scene(world, load_scene(scene_name), seed)
        world.reset_robot(scene.robot_q)
        settings = load_wbc_settings()
        # The node's lockstep timing: references from a state apply one update period later.
        runner = LockstepRunner(world, robot, settings)
        runner.start()
        perception = InProcessPerception(robot, world, load_parameter_file(
            PerceptionNodeSettings, "perception.yaml", "perception"))
        controller = InProcessController(runner)
        planner = _override(load_parameter_file(TaskPlannerSettings, "task_planner.yaml", "task_planner"),
                            planner_overrides or [])
        job = load_job(job_name, planner.object_classes)
        executive = TaskExecutive(
            job, robot, controller, perception, lambda: world.time_s, skill_params=planner.skill,
            world_params=planner.world, workspace_params=planner.workspace,
            grasp_params=dataclasses.replace(planner.grasp, max_finger_opening_m=robot.config.gripper.open_position))
        dt = world.params.time_step_s
        camera_every = int(round(1.0 / (perception.rate_hz * dt)))
        tree_every = int(round(1.0 / (TREE_RATE_HZ * dt)))
        criteria = FallCriteria.for_robot(robot)
        base_samples: list[tuple[float, float]] = []  # ground-truth pelvis (height m, tilt rad) at every tree tick
        started, logged = False, 0
        joint_names = list(robot.joint_names)
        step = 0
        while world.time_s < time_limit_s:
            if on_step is not None:
                on_step(world, scene)
            runner.step()
            step += 1
            base, sensors = runner.base, runner.sensors
            if step % 10 == 0:
                perception.add_state(sensors.time_s, joint_names, sensors.q, base.position_m, base.orientation_xyzw)
            if step % camera_every == 0:
                perception.capture(world.time_s)
            if step % tree_every == 0:
                if not started and world.time_s > 1.0:
                    executive.start()
                    started = True
                executive.tick()
                if on_tick is not None:
                    on_tick(world, runner, executive, scene)
                for ev in executive.record.events[logged:]:
                    if verbose:
                        print(f"  [{ev.t_s:7.2f}] {ev.step}: {ev.message}", flush=True)
                logged = len(executive.record.events)
                truth = world.ground_truth()
                base_samples.append((float(truth.base_position[2]), base_tilt_rad(truth.base_orientation_xyzw)))
                if criteria.is_fallen(*base_samples[-1]):
                    break
                if started and executive.record.finished:
                    break
        objects = world.ground_truth().objects  # scene object id -> (position, orientation)
        rec = executive.record
        evaluation = evaluate_episode(job, {o.name: (o.colour, objects[o.id][0]) for o in scene.objects}, base_samples,
                                      rec.state == "succeeded", criteria)
        progress = job_progress(job, executive.world)
        if verbose:
            print(f"  planner: {progress}")
        return EpisodeResult(seed, rec.state, rec.reason, world.time_s, time.perf_counter() - wall0,
                             evaluation.boxes_total, evaluation.boxes_in_right_bin, evaluation.falls > 0,
                             evaluation.succeeded, runner.max_torque_ratio, runner.controller.qp_failures,
                             evaluation.min_base_height_m or 0.0, evaluation.max_base_tilt_rad or 0.0,
                             [f"{e.t_s:.2f} {e.step}: {e.message}" for e in rec.events],
                             {b.box_id: b.attempts for b in executive.world.boxes.values()},
                             [b.as_dict() for b in evaluation.boxes])
    finally:
        world.close()


def _run_seed(args: tuple) -> EpisodeResult:
    """One seeded episode in a worker process (its own PyBullet client and model)."""
    robot_config, scene, job, seed, time_limit_s, verbose, overrides = args
    return run_episode(RobotModel.load(robot_config), scene, job, seed, time_limit_s, verbose=verbose,
                       planner_overrides=overrides)


def summary_line(results: list[EpisodeResult]) -> str:
    """The figures the factory targets are judged by, over all episodes."""
    boxes = sum(r.boxes_total for r in results)
    good = sum(r.boxes_sorted_truth for r in results)
    sim, wall = sum(r.sim_time_s for r in results), sum(r.wall_time_s for r in results)
    return (f"{len(results)} episodes: {good}/{boxes} boxes in the right bin ({100.0 * good / max(boxes, 1):.1f} %), "
            f"{sum(r.fell for r in results)} falls, {sum(r.state == 'succeeded' for r in results)} jobs succeeded "
            f"({sum(r.succeeded for r in results)} by ground truth), "
            f"{60.0 * good / max(sim, 1e-9):.2f} boxes/min of sim time, wall/sim {wall / max(sim, 1e-9):.2f} "
            f"(in process, per worker)")


def main(argv: list[str] | None = None) -> None:
    prog = "python -m optimus_control.apps.episode"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--scene", default="sorting_cell", help="scene name under config/scenes/ or a path")
    parser.add_argument("--job", default="sort_by_colour", help="job name under config/jobs/ or a path")
    parser.add_argument("--robot-config", default="optimus.yaml", help="robot config under config/ or a path")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--time-limit", type=float, default=240.0)
    parser.add_argument("--workers", type=int, default=1, help="episodes run in parallel processes")
    parser.add_argument("--json", default="", help="write the results to this file")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--planner-param", action="append", default=[], metavar="GROUP.KEY=VALUE",
                        help="override a task_planner parameter, e.g. grasp.lift_height_m=0.2")
    args = parser.parse_args(argv)
    with reported_as(prog):
        load_run_inputs(args.robot_config, args.scene, args.job, args.seeds)  # not in every worker
        _override(load_parameter_file(TaskPlannerSettings, "task_planner.yaml", "task_planner"), args.planner_param)
        results = _run_all(args)
    sys.exit(0 if results and all(r.succeeded for r in results) else EXIT_FAILED)


def _run_all(args: argparse.Namespace) -> list[EpisodeResult]:
    verbose = not args.quiet and args.workers <= 1
    # Single-threaded numerics in the (spawned) episode processes: with threaded BLAS/OpenMP/OpenCV two runs
    # of one seed diverged under load; single-threaded they agree to the last digit.
    single_threaded_numerics()
    jobs = [(args.robot_config, args.scene, args.job, seed, args.time_limit, verbose, args.planner_param)
            for seed in args.seeds]
    results = []
    with concurrent.futures.ProcessPoolExecutor(max(1, args.workers), mp_context=multiprocessing.get_context("spawn")) \
            as pool:
        for r in pool.map(_run_seed, jobs):
            results.append(r)
            print(f"seed {r.seed}: {r.state} ({r.reason}); truth {r.boxes_sorted_truth}/{r.boxes_total} in the right bin, "
                  f"fell {r.fell}, sim {r.sim_time_s:.1f} s, wall {r.wall_time_s:.1f} s, {r.boxes_per_min:.2f} boxes/min, "
                  f"max torque ratio {r.max_torque_ratio:.2f}, QP failures {r.qp_failures}, "
                  f"pelvis min {r.min_base_height_m:.3f} m, max tilt {math.degrees(r.max_base_tilt_rad):.1f} deg", flush=True)
    print(summary_line(results), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump([dataclasses.asdict(r) for r in results], f, indent=1)
    return results


if __name__ == "__main__":
    main()
