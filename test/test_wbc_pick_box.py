"""Pick a 1.5 kg box from a table with the right gripper, lift it 20 cm, hold it, put it back (lockstep sim).

The scenario (optimus_control.apps.pick_demo, also `make pick-demo`) creates the table and box as plain PyBullet
bodies; the box is only ever moved by contact with the robot. Hold time: 10 s in CI, 30 s with
OPTIMUS_LONG_TESTS=1.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from optimus_control.apps.pick_demo import LIFT_M, run_pick_and_place
from optimus_control.control import ControllerState

pytestmark = pytest.mark.sim

HOLD_S = 30.0 if os.environ.get("OPTIMUS_LONG_TESTS") == "1" else 10.0


@pytest.fixture(scope="module")
def pick(robot):
    log = run_pick_and_place(robot, HOLD_S)
    print(f"\npick: box lifted {log.box_lifted[2] - log.box_start[2]:.3f} m, held {HOLD_S:.0f} s, box-hand distance max "
          f"{1e3 * max(log.held_distance_m):.1f} mm, put back {1e3 * np.linalg.norm(log.box_final - log.box_start):.1f} mm "
          f"from its start, max torque ratio {log.max_torque_ratio:.2f}")
    return log


def test_box_is_lifted_20cm_and_held(pick):
    assert pick.box_lifted[2] - pick.box_start[2] >= LIFT_M - 0.005
    assert min(pick.box_height_m) > pick.box_start[2] + LIFT_M - 0.01, "box dropped or slid while held"


def test_box_stays_within_2cm_of_the_hand_frame_while_held(pick):
    assert len(pick.held_distance_m) >= HOLD_S * 20
    assert max(pick.held_distance_m) <= 0.02


def test_box_is_put_back_and_robot_still_balancing(pick):
    assert np.linalg.norm(pick.box_final[:2] - pick.box_start[:2]) < 0.02
    assert abs(pick.box_final[2] - pick.box_start[2]) < 0.005
    assert pick.final_state is ControllerState.RUNNING
    assert pick.falls == 0 and pick.base_truth, "the robot fell (apps.evaluation's definition)"
    assert pick.max_torque_ratio < 1.0
