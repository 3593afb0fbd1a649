"""Grippers hold a box by friction alone when closed around it (pelvis clamped by the support harness)."""

from __future__ import annotations

import numpy as np
import pybullet as pb
import pytest

from optimus_control.sim.support_harness import SupportHarness
from optimus_control.sim.world import SimWorld

pytestmark = pytest.mark.sim

BOX_HALF = np.array([0.025, 0.03, 0.025])  # [m]; y (the closing axis of the fingers) is 6 cm wide


def box_in_hand_after(robot, hand_index: int, close: bool, seconds: float = 2.0) -> tuple[float, float]:
    """(drop [m] of the box relative to the wrist, largest finger opening [m]) after ``seconds``."""
    hand = robot.config.hands[hand_index]
    fingers = [robot.joint_index(j) for j in hand.gripper_joints]
    with SimWorld(robot) as world:
        q = robot.standing_configuration()
        q[7:][fingers] = 0.05                              # open wider than the box
        world.reset_robot(q)
        harness = SupportHarness(world)
        harness.engage()                                    # pelvis clamped, posture held
        if close:
            harness.q_hold[fingers] = robot.config.gripper.closed_position
        wrist_pos, wrist_quat = world.link_pose(hand.wrist_frame)
        rot = np.array(pb.getMatrixFromQuaternion(wrist_quat)).reshape(3, 3)
        c = world.client
        shape = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=BOX_HALF.tolist(), physicsClientId=c)
        visual = pb.createVisualShape(pb.GEOM_BOX, halfExtents=BOX_HALF.tolist(), rgbaColor=[0.2, 0.4, 0.9, 1], physicsClientId=c)
        box = pb.createMultiBody(0.4, shape, visual, basePosition=(wrist_pos + rot @ [0.0, 0.0, -0.12]).tolist(),
                                 baseOrientation=list(wrist_quat), physicsClientId=c)
        pb.changeDynamics(box, -1, lateralFriction=0.9, physicsClientId=c)
        world.objects[0] = box
        for _ in range(int(seconds / world.params.time_step_s)):
            world.step(harness.torque())
        wrist_pos, wrist_quat = world.link_pose(hand.wrist_frame)
        rot = np.array(pb.getMatrixFromQuaternion(wrist_quat)).reshape(3, 3)
        box_in_wrist = rot.T @ (world.ground_truth().objects[0][0] - wrist_pos)
        opening = world._joint_state()[0][fingers]
    return -0.12 - box_in_wrist[2], float(opening.max())


@pytest.mark.parametrize("hand_index", [0, 1])
def test_closed_gripper_holds_a_box_by_friction(robot, hand_index):
    drop, opening = box_in_hand_after(robot, hand_index, close=True)
    assert abs(drop) < 0.01, f"the box slipped {drop * 100:.1f} cm in the closed hand"
    assert opening == pytest.approx(BOX_HALF[1], abs=0.005)  # the fingers stopped on the box faces


def test_open_gripper_drops_the_box(robot):
    drop, _ = box_in_hand_after(robot, 0, close=False, seconds=0.5)
    assert drop > 0.1
