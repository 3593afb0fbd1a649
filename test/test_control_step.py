"""The control step shared by the whole_body_controller node and the in-process runner (control/control_step.py)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from optimus_control.control import ControllerState, ControlReferences, LoopMode
from optimus_control.control.control_step import ControlStep, LoopCommand, pack_foot_wrenches


def references(robot, frame_ids: tuple[int, ...], wrenches: np.ndarray, mode: LoopMode = LoopMode.TRACK):
    n, nv = robot.n_joints, robot.model.nv
    return ControlReferences(1.0, mode, np.zeros(nv), frame_ids, wrenches, np.zeros(n), np.zeros(n), np.ones(n),
                             np.ones(n), np.ones(n), 4.0)


def foot_frames(robot) -> tuple[int, ...]:
    return tuple(robot.frame_id(f.frame) for f in robot.config.feet)


def test_wrenches_are_packed_in_foot_order_and_other_contacts_left_out(robot):
    """The loop takes one wrench per configured foot: the controller's contact order does not matter, a
    foot without a contact is zero and inactive, and a contact on another frame (a hand) is not packed."""
    left, right = foot_frames(robot)
    hand = robot.frame_id(robot.config.hands[0].gripper_frame)
    wrenches = np.arange(18, dtype=float).reshape(3, 6)
    packed, active = pack_foot_wrenches(references(robot, (hand, right, left), wrenches), (left, right))
    assert active.tolist() == [True, True]
    assert packed.tolist() == [wrenches[2].tolist(), wrenches[1].tolist()]
    packed, active = pack_foot_wrenches(references(robot, (right,), wrenches[:1]), (left, right))
    assert active.tolist() == [False, True] and packed[0].tolist() == [0.0] * 6 and packed[1].tolist() == wrenches[0].tolist()


class RecordingSink:
    def __init__(self):
        self.calls: list[tuple[str, dict]] = []

    def set_base_state(self, base_pose, base_twist) -> None:
        self.calls.append(("base", {"base_pose": base_pose, "base_twist": base_twist}))

    def set_references(self, **kwargs) -> None:
        self.calls.append(("references", kwargs))


def test_damping_command_sends_the_base_state_only(robot):
    """While the controller damps no references go out: the loop damps by itself once they stop coming."""
    n_feet = len(robot.config.feet)
    for mode, expected in ((LoopMode.DAMP, ["base"]), (LoopMode.TRACK, ["base", "references"])):
        sink = RecordingSink()
        LoopCommand(np.zeros(7), np.zeros(6), references(robot, (), np.zeros((0, 6)), mode), np.zeros((n_feet, 6)),
                    np.zeros(n_feet, dtype=bool)).send(sink)
        assert [name for name, _ in sink.calls] == expected
    assert sink.calls[1][1]["contacts_active"].tolist() == [False] * n_feet


class ScriptedController:
    """Records start / reset / update calls; answers with references on both feet."""

    def __init__(self, robot):
        self.robot, self.state, self.calls = robot, ControllerState.IDLE, []

    def start(self, q, v, time_s):
        self.calls.append("start")
        self.state = ControllerState.RUNNING

    def reset_faults(self, q, v, time_s):
        self.calls.append("reset")
        self.state = ControllerState.RUNNING

    def update(self, q, v, time_s, state_time_s):
        self.calls.append("update")
        return references(self.robot, foot_frames(self.robot), np.ones((2, 6)))


class EchoEstimator:
    def update(self, q, v, *imu_and_feet_and_time):
        return SimpleNamespace(time_s=imu_and_feet_and_time[-1], configuration=lambda joints: np.r_[np.arange(7.0), joints],
                               velocity=lambda joints: np.r_[np.arange(6.0), joints])


def sample(robot, time_s: float):
    n = robot.n_joints
    return SimpleNamespace(q=np.zeros(n), v=np.zeros(n), imu_orientation_xyzw=np.array([0, 0, 0, 1.0]),
                           imu_angular_velocity=np.zeros(3), imu_linear_acceleration=np.zeros(3),
                           foot_wrench=np.zeros((2, 6)), time_s=time_s)


def test_start_and_reset_requests_are_served_once_before_the_update(robot):
    """A start request starts an idle controller at the next step only; a reset request restarts it; both
    happen before that step's update, whose base state goes to the loop."""
    ctl = ScriptedController(robot)
    step = ControlStep(robot, ctl, EchoEstimator())
    first = step(sample(robot, 0.0))
    assert ctl.calls == ["update"] and not first.started
    step.request_start()
    command = step(sample(robot, 0.004))
    assert ctl.calls[1:] == ["start", "update"] and command.started and not command.reset
    step.request_start()  # already running: nothing to start
    step(sample(robot, 0.008))
    assert ctl.calls[3:] == ["update"]
    step.request_reset()
    command = step(sample(robot, 0.012))
    assert ctl.calls[4:] == ["reset", "update"] and command.reset
    assert command.base_pose.tolist() == list(range(7)) and command.base_twist.tolist() == list(range(6))
    assert command.feet_active.tolist() == [True, True] and step.base.time_s == pytest.approx(0.012)
