"""The support harness: how the simulated robot is held safely while no controller drives it.

Like a humanoid hanging in its gantry at start-up: the pelvis is clamped to a fixed point in the world
(a PyBullet fixed constraint at the pose it had when the harness engaged) and every joint is held at
the posture it had then by a joint PD with gravity compensation, computed inside the sim (it is part
of the test rig, not of the controller). The gains are the robot's default gains, capped per joint
(:func:`~optimus_control.control.joint_gains.capped_joint_gains`) so that an explicit 1 kHz PD on a light
joint (wrist, ankle) stays stable.

Engaged at start-up in real-time mode; released as soon as a controller has attached and answered;
engaged again (at the current pose) if the controller disappears. In lockstep mode physics only
advances when the controller answers, so a missing controller simply freezes the robot in place.
"""

from __future__ import annotations

import numpy as np
import pinocchio as pin
import pybullet as pb

from optimus_control.control.joint_gains import capped_joint_gains
from optimus_control.sim.world import SimWorld


class SupportHarness:
    def __init__(self, world: SimWorld):
        self.world = world
        robot, dt = world.robot, world.params.time_step_s
        self.kp, self.kd = capped_joint_gains(robot, robot.kp, np.maximum(robot.kd, robot.config.damping_gain), dt)
        self._data = robot.model.createData()
        self.constraint: int | None = None
        self.q_hold = robot.standing_joint_positions()

    @property
    def engaged(self) -> bool:
        return self.constraint is not None

    def engage(self) -> None:
        """Clamp the pelvis where it is now and hold the current joint posture."""
        if self.engaged:
            return
        w = self.world
        pos, quat = pb.getBasePositionAndOrientation(w.robot_id, physicsClientId=w.client)
        self.constraint = pb.createConstraint(
            w.robot_id, -1, -1, -1, pb.JOINT_FIXED, [0, 0, 0], [0, 0, 0], list(pos),
            childFrameOrientation=list(quat), physicsClientId=w.client)
        pb.changeConstraint(self.constraint, maxForce=1e5, physicsClientId=w.client)
        self.q_hold = w._joint_state()[0].copy()

    def release(self) -> None:
        if self.constraint is not None:
            pb.removeConstraint(self.constraint, physicsClientId=self.world.client)
            self.constraint = None

    def torque(self) -> np.ndarray:
        """Joint torques [N m | N] that hold the posture (uses the true state: it is rig hardware)."""
        w = self.world
        q, v = w._joint_state()
        pos, quat = pb.getBasePositionAndOrientation(w.robot_id, physicsClientId=w.client)
        q_full = np.concatenate([pos, quat, q])
        gravity = pin.computeGeneralizedGravity(w.robot.model, self._data, q_full)[6:]
        return self.kp * (self.q_hold - q) - self.kd * v + gravity
