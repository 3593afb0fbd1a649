"""The grippers' references: a rate-limited opening and a squeeze law that commands a force, not a gap."""

from __future__ import annotations

import numpy as np

from optimus_control.errors import GoalError
from optimus_control.model import RobotModel


class GripperReferenceLaw:
    """Per hand: the commanded opening and force limit, and the joint references that realise them.

    The opening reference moves towards the command at ``speed_mps``. While the fingers squeeze an
    object, every finger aims ``force / kp`` inside the fingers' mean opening: the squeeze force is then
    the commanded one, and an off-centre object is pushed back to the middle (two force-saturated
    fingers would let it slide freely along the closing axis).

    Args:
        robot: the robot model (hands, gripper joints and limits from its config).
        speed_mps: how fast the opening reference follows a new command [m/s].
    """

    def __init__(self, robot: RobotModel, speed_mps: float):
        cfg = robot.config
        self.speed_mps = speed_mps
        self.joints = {h.name: np.array([robot.joint_index(j) for j in h.gripper_joints]) for h in cfg.hands}
        self._gripper = cfg.gripper
        self._effort = robot.limits.effort
        standing = robot.standing_joint_positions()
        self.commands = {hand: (float(standing[j].mean()), cfg.gripper.max_force) for hand, j in self.joints.items()}
        self.references = {hand: opening for hand, (opening, _) in self.commands.items()}

    def command(self, hand: str, opening_m: float, max_force_n: float | None = None) -> None:
        """Per-finger opening [m] (0 closed), clipped to the gripper's range, with a force limit [N] per finger."""
        g = self._gripper
        force = g.max_force if max_force_n is None else float(max_force_n)
        if not (np.isfinite(opening_m) and np.isfinite(force)) or force < 0:
            raise GoalError(f"gripper '{hand}' command rejected: opening {opening_m!r} m, force {max_force_n!r} N")
        lo, hi = sorted((g.closed_position, g.open_position))
        self.commands[hand] = (float(np.clip(opening_m, lo, hi)), min(force, g.max_force))

    def advance(self, dt: float, posture_target: np.ndarray) -> None:
        """Move each opening reference ``dt`` [s] towards its command and write it into ``posture_target``."""
        step = self.speed_mps * dt
        for hand, (opening, _) in self.commands.items():
            reference = self.references[hand]
            self.references[hand] = reference + float(np.clip(opening - reference, -step, step))
            posture_target[self.joints[hand]] = self.references[hand]

    def apply(self, joint_positions: np.ndarray, kp: np.ndarray, q_ref: np.ndarray, v_ref: np.ndarray,
              torque_limit: np.ndarray) -> None:
        """Set the gripper joints' ``q_ref``, ``v_ref`` and ``torque_limit`` in place (squeeze law above).

        ``joint_positions`` are the measured joint positions (n_joints), ``kp`` the loop's gains.
        """
        for hand, (_, force) in self.commands.items():
            joints = self.joints[hand]
            reference = self.references[hand]
            mean_opening = float(joint_positions[joints].sum()) / len(joints)
            stiffness = float(kp[joints].sum()) / len(joints)
            if stiffness > 0:
                reference = max(reference, mean_opening - force / stiffness)
            q_ref[joints] = reference
            v_ref[joints] = 0.0
            torque_limit[joints] = min(1.5 * force, self._effort[joints].min())
