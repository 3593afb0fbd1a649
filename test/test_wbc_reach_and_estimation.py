"""Closed-loop lockstep run: stand, then reach 22 hand targets (both hands) over the front workspace.

One ~60 s simulated run (module fixture) feeds several checks: reach accuracy, balance, torque limits,
and the floating-base estimator against simulator ground truth (used here for evaluation only).
Set OPTIMUS_LONG_TESTS=1 for the 5-minute balance run.
"""

from __future__ import annotations

import numpy as np
import pinocchio as pin
import pytest

from optimus_control.control import ControllerState
from optimus_control.control.lockstep_runner import LockstepRunner
from optimus_control.sim.world import SimWorld

pytestmark = pytest.mark.sim

STAND_S = 20.0
SETTLE_S = 3.2
N_PAIRS = 11
ARM_REACH_M = 0.55
# Fingers pointing forward, closing along world y: wrist z = -x_world.
FORWARD_GRASP = np.column_stack([[0, 0, 1], [0, 1, 0], [-1, 0, 0]]).astype(float)


def shoulder_position(robot, hand: str) -> np.ndarray:
    """Start-up position of the first joint of the hand's arm group (names from the robot config)."""
    group = next(g for g in robot.config.joint_groups if g.startswith(hand) and g.endswith("arm"))
    data = robot.model.createData()
    pin.forwardKinematics(robot.model, data, robot.standing_configuration())
    return data.oMi[robot.model.getJointId(robot.config.joint_groups[group][0])].translation.copy()


def reach_targets(robot, ctl, hand: str, hand_sign: float, rng: np.random.Generator) -> list[pin.SE3]:
    """Random poses in the front workspace within arm's length (0.55 m) of the shoulder."""
    out = []
    shoulder = shoulder_position(robot, hand)
    while len(out) < N_PAIRS:
        p = np.array([rng.uniform(0.30, 0.45), hand_sign * rng.uniform(0.20, 0.35), rng.uniform(0.90, 1.15)])
        if ctl.check_reach(hand, p).clamped or np.linalg.norm(p - shoulder) > ARM_REACH_M:
            continue
        out.append(pin.SE3(FORWARD_GRASP @ pin.rpy.rpyToMatrix(*rng.uniform(-0.25, 0.25, 3)), p))
    return out


@pytest.fixture(scope="module")
def run(robot):
    world = SimWorld(robot)
    runner = LockstepRunner(world, robot)
    log = {"height_err": [], "tilt_err_deg": [], "xy_drift": [], "base_z": [], "com_err": [], "reach": []}
    gt0 = world.ground_truth()

    def record(r: LockstepRunner) -> None:
        if r.tick % 10:
            return
        gt = world.ground_truth()
        est = r.base
        log["height_err"].append(abs(est.position_m[2] - gt.base_position[2]))
        R_gt = pin.Quaternion(gt.base_orientation_xyzw).toRotationMatrix()
        rel = est.rotation.T @ R_gt
        roll, pitch, _ = pin.rpy.matrixToRpy(rel)
        log["tilt_err_deg"].append(np.degrees(max(abs(roll), abs(pitch))))
        drift = (est.position_m[:2] - gt.base_position[:2]) - (np.zeros(2) - gt0.base_position[:2])
        log["xy_drift"].append(np.linalg.norm(drift))
        log["base_z"].append(gt.base_position[2])

    runner.start()
    runner.run(STAND_S, record)
    ctl = runner.controller
    stand_com_err = ctl.tasks["com"].error_norm()
    rng = np.random.default_rng(7)
    left, right = reach_targets(robot, ctl, "left", 1.0, rng), reach_targets(robot, ctl, "right", -1.0, rng)
    for k in range(N_PAIRS):
        reports = {"left": ctl.set_hand_target("left", left[k]), "right": ctl.set_hand_target("right", right[k])}
        runner.run(max(r.duration_s for r in reports.values()) + SETTLE_S, record)
        status = ctl.status()
        for hand, target in (("left", left[k]), ("right", right[k])):
            pose = ctl.hand_pose(hand)
            log["reach"].append((hand, k, reports[hand].clamped, np.linalg.norm(pose.translation - target.translation),
                                 np.degrees(np.linalg.norm(pin.log3(target.rotation @ pose.rotation.T))),
                                 status.tasks[f"hand_{hand}"].goal_reached))
    log["state"] = ctl.status().state
    log["stand_com_err"] = stand_com_err
    log["max_torque_ratio"] = runner.max_torque_ratio
    log["duration_s"] = world.time_s
    worst = max(log["reach"], key=lambda r: r[3])
    print(f"\nreach run: {world.time_s:.1f} s sim, worst target {worst}, max torque ratio {runner.max_torque_ratio:.2f}, "
          f"estimator: height err {1e3 * max(log['height_err']):.2f} mm, tilt err {max(log['tilt_err_deg']):.3f} deg, "
          f"drift {1e3 * max(log['xy_drift']):.2f} mm")
    yield log
    world.close()


def test_all_reach_targets_within_1cm_and_3deg(run):
    """Every one of the 22 targets: final position error <= 1 cm, orientation <= 3 deg, goal reached."""
    reach = run["reach"]
    assert len(reach) >= 20
    bad = [r for r in reach if r[3] > 0.01 or r[4] > 3.0 or r[2] or not r[5]]
    worst_p = max(r[3] for r in reach)
    worst_o = max(r[4] for r in reach)
    assert not bad, f"targets missed (hand, index, clamped, pos err m, ori err deg, reached): {bad}"
    print(f"reach: worst position error {1e3 * worst_p:.1f} mm, worst orientation error {worst_o:.2f} deg")


def test_balanced_throughout_without_torque_limit_violation(run):
    """Never falls or leaves RUNNING; base height within 5 cm of start-up; torque law never saturates."""
    assert run["state"] is ControllerState.RUNNING
    z = np.array(run["base_z"])
    assert z.min() > z[0] - 0.05 and z.max() < z[0] + 0.03
    assert run["stand_com_err"] < 0.01
    assert run["max_torque_ratio"] < 1.0


def test_estimator_matches_ground_truth_over_60s(run):
    """Base height err <= 1 cm, roll/pitch err <= 1 deg, horizontal drift <= 2 cm over >= 60 s."""
    assert run["duration_s"] >= 60.0
    assert max(run["height_err"]) <= 0.01
    assert max(run["tilt_err_deg"]) <= 1.0
    assert max(run["xy_drift"]) <= 0.02

