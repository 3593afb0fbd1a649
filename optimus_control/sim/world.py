"""PyBullet world with the humanoid under torque control: the physics core of the simulated robot.

The world only exposes what a real robot's sensors measure (``read_sensors``); ground truth is a
separate call (``ground_truth``) that only evaluation code may use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pybullet as pb
import pybullet_data  # noqa: F401  (ships plane.urdf; kept for scenes that want textured planes)

from optimus_control.errors import SimulationError
from optimus_control.model import RobotModel

GRAVITY_MPS2 = 9.81


@dataclass
class SimParams:
    """Physics settings; defaults give a stable humanoid at 1 kHz."""

    time_step_s: float = 0.001
    solver_iterations: int = 50
    ground_friction: float = 1.0
    foot_friction: float = 1.0
    finger_friction: float = 1.5
    gui: bool = False
    apply_joint_friction: bool = True


@dataclass
class RobotSensors:
    """One sample of everything the robot measures, in bus order and sensor frames."""

    q: np.ndarray
    v: np.ndarray
    tau_measured: np.ndarray
    imu_orientation_xyzw: np.ndarray
    imu_angular_velocity: np.ndarray  # [rad/s], IMU frame
    imu_linear_acceleration: np.ndarray  # [m/s^2] specific force, IMU frame
    foot_wrench: np.ndarray  # (n_feet, 6) ground-on-foot force/torque in each sole frame, at its origin
    time_s: float


@dataclass
class GroundTruth:
    base_position: np.ndarray
    base_orientation_xyzw: np.ndarray
    base_linear_velocity: np.ndarray  # world frame [m/s]
    base_angular_velocity: np.ndarray  # world frame [rad/s]
    time_s: float
    objects: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def _rotation(quat_xyzw) -> np.ndarray:
    return np.array(pb.getMatrixFromQuaternion(quat_xyzw)).reshape(3, 3)


class SimWorld:
    """A PyBullet client with a ground plane and the robot; scenes add furniture and objects."""

    def __init__(self, robot: RobotModel, params: SimParams | None = None):
        self.robot = robot
        self.params = params or SimParams()
        mode = pb.GUI if self.params.gui else pb.DIRECT
        self.client = pb.connect(mode)
        if self.client < 0:
            raise SimulationError("PyBullet could not connect (GUI requested without a display?)")
        c = self.client
        pb.resetSimulation(physicsClientId=c)
        pb.setGravity(0, 0, -GRAVITY_MPS2, physicsClientId=c)
        pb.setPhysicsEngineParameter(fixedTimeStep=self.params.time_step_s, numSolverIterations=self.params.solver_iterations,
                                     numSubSteps=0, deterministicOverlappingPairs=1, physicsClientId=c)
        ground_shape = pb.createCollisionShape(pb.GEOM_PLANE, physicsClientId=c)
        self.ground_id = pb.createMultiBody(0, ground_shape, physicsClientId=c)
        pb.changeDynamics(self.ground_id, -1, lateralFriction=self.params.ground_friction, physicsClientId=c)
        q0 = robot.standing_configuration()
        self.robot_id = pb.loadURDF(
            str(robot.urdf_path), basePosition=q0[:3].tolist(), baseOrientation=q0[3:7].tolist(),
            flags=pb.URDF_USE_INERTIA_FROM_FILE, physicsClientId=c,
        )
        self._map_joints()
        self._setup_dynamics()
        self.time_s = 0.0
        self._last_base_velocity = np.zeros(3)
        self._tau_applied = np.zeros(robot.n_joints)
        self.reset_robot(q0)

    # ---- set-up ---------------------------------------------------------------------------------
    def _map_joints(self) -> None:
        c = self.client
        by_name, link_by_name = {}, {pb.getBodyInfo(self.robot_id, physicsClientId=c)[0].decode(): -1}
        for i in range(pb.getNumJoints(self.robot_id, physicsClientId=c)):
            info = pb.getJointInfo(self.robot_id, i, physicsClientId=c)
            by_name[info[1].decode()] = i
            link_by_name[info[12].decode()] = i
        missing = [j for j in self.robot.joint_names if j not in by_name]
        if missing:
            raise SimulationError(f"{self.robot.urdf_path}: PyBullet did not load joints {missing}")
        self.joint_ids = [by_name[j] for j in self.robot.joint_names]
        self.link_ids = link_by_name
        self.foot_link_ids = []
        for foot in self.robot.config.feet:
            # The sole is a fixed frame: contacts happen on the body of its parent joint (PyBullet's
            # link i is the child of joint i).
            parent_joint = self.robot.model.frames[self.robot.frame_id(foot.frame)].parentJoint
            self.foot_link_ids.append(by_name[self.robot.model.names[parent_joint]])
        self.sole_link_ids = [link_by_name[f.frame] for f in self.robot.config.feet]

    def _setup_dynamics(self) -> None:
        c, rid = self.client, self.robot_id
        # Disable the default velocity motors so the joints are torque controlled.
        pb.setJointMotorControlArray(rid, self.joint_ids, pb.VELOCITY_CONTROL, forces=[0.0] * len(self.joint_ids),
                                     physicsClientId=c)
        for link in range(-1, pb.getNumJoints(rid, physicsClientId=c)):
            pb.changeDynamics(rid, link, linearDamping=0.0, angularDamping=0.0, physicsClientId=c)
        for i, jid in enumerate(self.joint_ids):
            pb.changeDynamics(rid, jid, jointDamping=float(self.robot.joint_damping[i]), physicsClientId=c)
        for link in self.foot_link_ids:
            pb.changeDynamics(rid, link, lateralFriction=self.params.foot_friction, physicsClientId=c)
        for hand in self.robot.config.hands:
            for joint in hand.gripper_joints:
                link = self.joint_ids[self.robot.joint_index(joint)]
                pb.changeDynamics(rid, link, lateralFriction=self.params.finger_friction, physicsClientId=c)

    # ---- state --------------------------------------------------------------------------------
    def reset_robot(self, q: np.ndarray, v: np.ndarray | None = None) -> None:
        """Teleport the robot to a full configuration q (nq) at rest (start-up and test set-up only)."""
        c, rid = self.client, self.robot_id
        pb.resetBasePositionAndOrientation(rid, q[:3].tolist(), q[3:7].tolist(), physicsClientId=c)
        pb.resetBaseVelocity(rid, [0, 0, 0], [0, 0, 0], physicsClientId=c)
        joint_v = np.zeros(self.robot.n_joints) if v is None else v
        for i, jid in enumerate(self.joint_ids):
            pb.resetJointState(rid, jid, float(q[7 + i]), float(joint_v[i]), physicsClientId=c)
        self._last_base_velocity = np.zeros(3)

    def step(self, tau: np.ndarray) -> None:
        """Apply joint torques [N m | N] (clamped to effort limits) for one time step."""
        tau = np.clip(np.nan_to_num(tau, nan=0.0), -self.robot.limits.effort, self.robot.limits.effort)
        c, rid = self.client, self.robot_id
        if self.params.apply_joint_friction:
            # Coulomb friction: a velocity motor with zero target whose force bound is the friction.
            pb.setJointMotorControlArray(rid, self.joint_ids, pb.VELOCITY_CONTROL, targetVelocities=[0.0] * len(tau),
                                         forces=self.robot.joint_friction.tolist(), physicsClientId=c)
        pb.setJointMotorControlArray(rid, self.joint_ids, pb.TORQUE_CONTROL, forces=tau.tolist(), physicsClientId=c)
        self._last_base_velocity = np.array(pb.getBaseVelocity(rid, physicsClientId=c)[0])
        pb.stepSimulation(physicsClientId=c)
        self._tau_applied = tau
        self.time_s += self.params.time_step_s

    def read_sensors(self) -> RobotSensors:
        c, rid = self.client, self.robot_id
        states = pb.getJointStates(rid, self.joint_ids, physicsClientId=c)
        q = np.array([s[0] for s in states])
        v = np.array([s[1] for s in states])
        _, quat = pb.getBasePositionAndOrientation(rid, physicsClientId=c)
        lin, ang = pb.getBaseVelocity(rid, physicsClientId=c)
        rot = _rotation(quat)
        accel_world = (np.array(lin) - self._last_base_velocity) / self.params.time_step_s
        specific_force = rot.T @ (accel_world + np.array([0.0, 0.0, GRAVITY_MPS2]))
        return RobotSensors(
            q=q, v=v, tau_measured=self._tau_applied.copy(), imu_orientation_xyzw=np.array(quat),
            imu_angular_velocity=rot.T @ np.array(ang), imu_linear_acceleration=specific_force,
            foot_wrench=self._foot_wrenches(), time_s=self.time_s,
        )

    def _foot_wrenches(self) -> np.ndarray:
        """Sum the contact forces on each foot into a wrench at the sole origin, in the sole frame."""
        c, rid = self.client, self.robot_id
        out = np.zeros((len(self.foot_link_ids), 6))
        for k, (foot, sole) in enumerate(zip(self.foot_link_ids, self.sole_link_ids)):
            sole_state = pb.getLinkState(rid, sole, computeForwardKinematics=1, physicsClientId=c)
            origin, rot = np.array(sole_state[4]), _rotation(sole_state[5])
            force, torque = np.zeros(3), np.zeros(3)
            for cp in pb.getContactPoints(bodyA=rid, linkIndexA=foot, physicsClientId=c):
                # Contact normal points from B to A, i.e. from the other body onto the foot.
                f = (cp[9] * np.array(cp[7]) + cp[10] * np.array(cp[11]) + cp[12] * np.array(cp[13]))
                force += f
                torque += np.cross(np.array(cp[5]) - origin, f)
            out[k, :3], out[k, 3:] = rot.T @ force, rot.T @ torque
        return out

    def ground_truth(self) -> GroundTruth:
        """Simulator ground truth: for evaluation and tests only, never for control or estimation."""
        c, rid = self.client, self.robot_id
        pos, quat = pb.getBasePositionAndOrientation(rid, physicsClientId=c)
        lin, ang = pb.getBaseVelocity(rid, physicsClientId=c)
        return GroundTruth(np.array(pos), np.array(quat), np.array(lin), np.array(ang), self.time_s)

    def apply_external_force(self, link: str, force_world_n: np.ndarray, point_offset_m: np.ndarray | None = None) -> None:
        """Push: apply a world-frame force at a link's origin (plus offset) for the next step only."""
        if link not in self.link_ids:
            raise SimulationError(f"cannot push link '{link}': not a link of the robot")
        lid = self.link_ids[link]
        if lid == -1:
            pos = pb.getBasePositionAndOrientation(self.robot_id, physicsClientId=self.client)[0]
        else:
            pos = pb.getLinkState(self.robot_id, lid, computeForwardKinematics=1, physicsClientId=self.client)[4]
        point = np.array(pos) + (np.zeros(3) if point_offset_m is None else point_offset_m)
        pb.applyExternalForce(self.robot_id, lid, force_world_n.tolist(), point.tolist(), pb.WORLD_FRAME,
                              physicsClientId=self.client)

    def close(self) -> None:
        if self.client is not None and self.client >= 0:
            pb.disconnect(physicsClientId=self.client)
            self.client = -1

    def __enter__(self) -> SimWorld:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
