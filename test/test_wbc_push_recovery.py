"""Push recovery without stepping: 40 N for 0.2 s at the torso from the front, back and both sides.

Each push starts from a settled stance in a fresh world; the robot must stay RUNNING, keep its base
height within 3 cm and come back to rest over its feet. ``benchmarks/bench_wbc.py --push`` searches for
the largest push survived per direction.
"""

from __future__ import annotations

import numpy as np
import pytest

from optimus_control.control import ControllerState
from optimus_control.control.lockstep_runner import LockstepRunner
from optimus_control.sim.world import SimWorld

pytestmark = pytest.mark.sim

PUSH_N = 40.0
PUSH_S = 0.2
# Direction of the force: a push "from the front" pushes the robot backwards (-x).
DIRECTIONS = {"front": (-1.0, 0.0, 0.0), "back": (1.0, 0.0, 0.0), "left": (0.0, -1.0, 0.0), "right": (0.0, 1.0, 0.0)}


def push_and_watch(robot, direction: np.ndarray, force_n: float, recover_s: float = 2.5) -> dict:
    """Stand 1 s, push the torso for PUSH_S, watch for recover_s; returns the outcome (ground truth for evaluation)."""
    world = SimWorld(robot)
    try:
        runner = LockstepRunner(world, robot)
        runner.start()
        runner.run(1.0)
        start = world.ground_truth().base_position.copy()
        force = force_n * np.asarray(direction, dtype=float)

        def push(_r):
            world.apply_external_force(robot.config.torso_frame, force)

        runner.run(PUSH_S, push)
        positions = []
        for _ in range(int(recover_s / 0.05)):
            runner.run(0.05)
            positions.append(world.ground_truth().base_position.copy())
        positions = np.array(positions)
        return {
            "state": runner.controller.status().state,
            "min_height_change": float(positions[:, 2].min() - start[2]),
            "max_excursion": float(np.linalg.norm(positions[:, :2] - start[:2], axis=1).max()),
            "final_offset": float(np.linalg.norm(positions[-1, :2] - start[:2])),
            "final_speed": float(np.linalg.norm(world.ground_truth().base_linear_velocity)),
        }
    finally:
        world.close()


def survived(outcome: dict) -> bool:
    return (outcome["state"] is ControllerState.RUNNING and outcome["min_height_change"] > -0.03
            and outcome["final_speed"] < 0.05)


@pytest.mark.parametrize("side", sorted(DIRECTIONS))
def test_survives_40N_push_for_0_2s(robot, side):
    outcome = push_and_watch(robot, np.array(DIRECTIONS[side]), PUSH_N)
    print(f"\npush {PUSH_N:.0f} N from the {side}: {outcome}")
    assert survived(outcome), outcome
    assert outcome["final_offset"] < 0.05
