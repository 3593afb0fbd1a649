"""Pick-and-place scenario: the humanoid balances, picks a 1.5 kg box from a table, lifts, holds, puts it back.

`make pick-demo` (``python -m optimus_control.apps.pick_demo``): a heavier box than the factory cell's
(1.5 kg against 0.3 kg), in one process. It runs the real estimator, whole-body QP and the torque law of
the 1 kHz loop against the PyBullet robot in lockstep. The box pose is given, as for a part in a fixture;
perception is not in this loop. The box moves only by contact. Ground truth is read only to score the
run (falls by :mod:`optimus_control.apps.evaluation`). Exit status 0 on success, 1 on failure, 2 when
the robot config is wrong.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import pinocchio as pin
import pybullet as pb

from optimus_control.apps.evaluation import FallCriteria, base_tilt_rad, count_falls
from optimus_control.apps.user_errors import EXIT_FAILED, reported_as
from optimus_control.control import ControllerState
from optimus_control.control.lockstep_runner import LockstepRunner
from optimus_control.model import RobotModel
from optimus_control.sim.world import SimWorld

TABLE_TOP_M = 0.78
BOX_HALF_M = (0.04, 0.04, 0.05)
BOX_MASS_KG = 1.5
BOX_XY_M = (0.36, -0.20)
GRASP_YAW_RAD = np.radians(30.0)  # fingers down, closing axis turned 30 deg: a comfortable wrist for this spot
LIFT_M = 0.20
SAMPLE_TICKS = 20  # ground truth is sampled every this many 1 ms ticks


@dataclass
class PickLog:
    """What the scenario measured (ground truth, for scoring only)."""

    box_start: np.ndarray
    box_lifted: np.ndarray = field(default_factory=lambda: np.zeros(3))
    box_final: np.ndarray = field(default_factory=lambda: np.zeros(3))
    held_distance_m: list[float] = field(default_factory=list)
    box_height_m: list[float] = field(default_factory=list)
    base_truth: list[tuple[float, float]] = field(default_factory=list)  # pelvis (height m, tilt rad)
    falls: int = 0
    final_state: ControllerState | None = None
    max_torque_ratio: float = 0.0
    sim_time_s: float = 0.0


def _box_position(world: SimWorld, box: int) -> np.ndarray:
    return np.array(pb.getBasePositionAndOrientation(box, physicsClientId=world.client)[0])


def run_pick_and_place(robot: RobotModel, hold_s: float = 10.0, hand: str = "right") -> PickLog:
    """Run the scenario in lockstep; returns the measurements."""
    world = SimWorld(robot)
    try:
        c = world.client
        table_shape = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=[0.2, 0.25, 0.02], physicsClientId=c)
        pb.createMultiBody(0, table_shape, basePosition=[0.47, -0.2, TABLE_TOP_M - 0.02], physicsClientId=c)
        box_shape = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=list(BOX_HALF_M), physicsClientId=c)
        box = pb.createMultiBody(BOX_MASS_KG, box_shape, basePosition=[*BOX_XY_M, TABLE_TOP_M + BOX_HALF_M[2]],
                                 baseOrientation=pb.getQuaternionFromEuler([0, 0, GRASP_YAW_RAD]), physicsClientId=c)
        pb.changeDynamics(box, -1, lateralFriction=1.0, physicsClientId=c)
        runner = LockstepRunner(world, robot)
        log = PickLog(box_start=_box_position(world, box))

        def track(r: LockstepRunner) -> None:
            if r.tick % SAMPLE_TICKS == 0:
                truth = world.ground_truth()
                log.base_truth.append((float(truth.base_position[2]), base_tilt_rad(truth.base_orientation_xyzw)))

        runner.start()
        runner.run(0.5, track)
        ctl = runner.controller
        grasp_rotation = pin.rpy.rpyToMatrix(0.0, 0.0, GRASP_YAW_RAD)

        def move(offset_z: float, settle_s: float = 1.0) -> None:
            report = ctl.set_hand_target(hand, pin.SE3(grasp_rotation, log.box_start + np.array([0.0, 0.0, offset_z])))
            if report.clamped:
                raise RuntimeError(f"pick scenario target clamped: {report.message}")
            runner.run(report.duration_s + settle_s, track)

        def watch(r: LockstepRunner) -> None:
            track(r)
            if r.tick % SAMPLE_TICKS == 0:
                box_p = _box_position(world, box)
                log.held_distance_m.append(float(np.linalg.norm(box_p - r.controller.hand_pose(hand).translation)))
                log.box_height_m.append(float(box_p[2]))

        # Bending over a table needs the torso free to lean: re-weight its orientation task at run time.
        ctl.set_task_weight("torso_orientation", 2.0)
        ctl.set_gripper(hand, 0.08, 60.0)
        move(0.16)
        move(0.01)
        ctl.set_gripper(hand, 0.0, 60.0)
        runner.run(1.0, track)
        report = ctl.set_hand_target(hand, pin.SE3(grasp_rotation, log.box_start + np.array([0.0, 0.0, 0.02 + LIFT_M])))
        runner.run(report.duration_s + 0.5, track)
        runner.run(hold_s, watch)
        log.box_lifted = _box_position(world, box)
        move(0.012)
        ctl.set_gripper(hand, 0.08, 60.0)
        runner.run(1.0, track)
        move(0.2, 0.5)
        log.falls = count_falls(log.base_truth, FallCriteria.for_robot(robot))
        log.box_final = _box_position(world, box)
        log.final_state = ctl.status().state
        log.max_torque_ratio = runner.max_torque_ratio
        log.sim_time_s = world.time_s
        return log
    finally:
        world.close()


def main(argv: list[str] | None = None) -> None:
    prog = "python -m optimus_control.apps.pick_demo"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--hold", type=float, default=10.0, help="seconds to hold the box lifted")
    args = parser.parse_args(argv)
    with reported_as(prog):
        robot = RobotModel.load()
    print(f"robot: {robot.config.name}, {robot.total_mass:.1f} kg, {robot.n_joints} actuated joints; "
          f"pick a {BOX_MASS_KG} kg box, lift {LIFT_M * 100:.0f} cm, hold {args.hold:.0f} s, put it back (lockstep sim)")
    start = time.perf_counter()
    log = run_pick_and_place(robot, args.hold)
    wall = time.perf_counter() - start
    lifted = log.box_lifted[2] - log.box_start[2]
    put_back = np.linalg.norm(log.box_final - log.box_start)
    held = max(log.held_distance_m)
    ok = (lifted >= LIFT_M - 0.005 and held <= 0.02 and put_back < 0.02 and log.falls == 0
          and log.final_state is ControllerState.RUNNING and log.max_torque_ratio < 1.0)
    print(f"  box lifted {lifted * 100:.1f} cm, held {args.hold:.0f} s within {held * 1000:.1f} mm of the gripper frame, "
          f"put back {put_back * 1000:.1f} mm from its start")
    print(f"  controller {log.final_state.name if log.final_state else '?'}, max torque {log.max_torque_ratio:.2f} of the "
          f"effort limit, {log.falls} falls, {log.sim_time_s:.1f} s sim in {wall:.1f} s wall "
          f"(real-time factor {log.sim_time_s / wall:.2f})")
    print("SUCCESS" if ok else "FAILED")
    sys.exit(0 if ok else EXIT_FAILED)


if __name__ == "__main__":
    main()
