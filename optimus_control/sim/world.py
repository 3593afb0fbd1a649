"""PyBullet world with the humanoid under torque control: the physics core of the simulated robot.

The world only exposes what a real robot's sensors measure (``read_sensors``); ground truth is a
separate call (``ground_truth``) that only evaluation code may use.

Speed notes (1 kHz, goal <= 0.4 ms per step including bus I/O): joint friction is an explicit
stiction-like torque from the actuator model (a PyBullet zero-velocity motor per joint costs
~0.2 ms per step in the constraint solver; ``SimParams(friction_model="motor")`` keeps that option),
joint states are read once per step and cached, and the foot wrenches are summed with one vectorised
pass over the contact points of both feet.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pinocchio as pin
import pybullet as pb
import pybullet_data  # noqa: F401  (ships plane.urdf; kept for scenes that want textured planes)

from optimus_control.errors import SimulationError, suggest
from optimus_control.model import RobotModel
from optimus_control.sim.actuators import ActuatorModel, ActuatorParams

GRAVITY_MPS2 = 9.81
FRICTION_MODELS = ("hybrid", "actuator", "motor")


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
    # Joint Coulomb friction: "actuator" = explicit torque from the actuator model, the torque that would
    # stop the joint within one step clamped to the Coulomb level (stiction-like, nearly free); "motor" =
    # a PyBullet zero-velocity motor per joint (exact stiction, ~0.25 ms/step for 32 joints); "hybrid" =
    # motors only on joints lighter than motor_friction_inertia_max (ankles, wrists), whose exact stiction
    # also hides an explicit PD whose kd exceeds the 1 kHz stability limit on a tiny inertia.
    friction_model: str = "actuator"
    motor_friction_inertia_max: float = 0.01  # [kg m^2 | kg] joint-space inertia below which "hybrid" uses a motor
    finger_contact_stiffness: float = 3.0e4   # [N/m] soft finger pads: steady grasps of rigid boxes
    finger_contact_damping: float = 1.0e3     # [N s/m]


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
    objects: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # id -> (position, xyzw)


def _to_local(quat_xyzw, vx: float, vy: float, vz: float) -> tuple[float, float, float]:
    """R(q)^T v in plain floats (numpy's per-call overhead dominates for one 3-vector)."""
    x, y, z, w = quat_xyzw
    # v' = v + 2 s (s x v + w' v) with s = -(x, y, z) for the inverse rotation, w' = w.
    sx, sy, sz = -x, -y, -z
    tx = sy * vz - sz * vy + w * vx
    ty = sz * vx - sx * vz + w * vy
    tz = sx * vy - sy * vx + w * vz
    return (vx + 2.0 * (sy * tz - sz * ty), vy + 2.0 * (sz * tx - sx * tz), vz + 2.0 * (sx * ty - sy * tx))


GROUND_VISUAL_HALF_SIZE_M = 4.0   # the floor is drawn over +-4 m around the origin (collision: infinite plane)
GROUND_TILE_M = 2.0
GROUND_RGBA = (0.55, 0.55, 0.52, 1.0)  # concrete


def _ground_visual(client: int) -> int:
    """A tiled floor mesh. Without a visual, TinyRenderer draws the collision plane: ~25 ms of a 320x240 frame
    looking down at the cell, against ~9 ms for 2 m tiles (small triangles are clipped and culled, the
    plane's huge ones are rasterised over the whole screen)."""
    h, tile = GROUND_VISUAL_HALF_SIZE_M, GROUND_TILE_M
    n = int(round(2 * h / tile))
    vertices = [[-h + i * tile, -h + j * tile, 0.0] for i in range(n + 1) for j in range(n + 1)]
    indices = []
    for i in range(n):
        for j in range(n):
            a = i * (n + 1) + j
            b, c, d = a + 1, a + n + 1, a + n + 2
            indices += [a, c, d, a, d, b]  # counter-clockwise seen from above
    return pb.createVisualShape(pb.GEOM_MESH, vertices=vertices, indices=indices, rgbaColor=list(GROUND_RGBA),
                                physicsClientId=client)


class SimWorld:
    """A PyBullet client with a ground plane and the robot; scenes add furniture and objects."""

    def __init__(self, robot: RobotModel, params: SimParams | None = None, actuators: ActuatorParams | None = None):
        self.robot = robot
        self.params = params or SimParams()
        if self.params.friction_model not in FRICTION_MODELS:
            raise SimulationError(f"SimParams.friction_model '{self.params.friction_model}' is not one of {FRICTION_MODELS}")
        if self.params.gui and not os.environ.get("DISPLAY"):
            raise SimulationError("the PyBullet GUI was requested (gui: true) but there is no display ($DISPLAY is "
                                  "unset); run with gui: false (DIRECT mode)")
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
        self.ground_id = pb.createMultiBody(0, ground_shape, _ground_visual(c), physicsClientId=c)
        pb.changeDynamics(self.ground_id, -1, lateralFriction=self.params.ground_friction, physicsClientId=c)
        q0 = robot.standing_configuration()
        self.robot_id = pb.loadURDF(
            str(robot.urdf_path), basePosition=q0[:3].tolist(), baseOrientation=q0[3:7].tolist(),
            flags=pb.URDF_USE_INERTIA_FROM_FILE, physicsClientId=c,
        )
        self._map_joints()
        self._setup_dynamics()
        inertia = self._joint_inertia(q0)
        self.actuators = ActuatorModel(actuators or ActuatorParams(), robot.limits.effort, robot.joint_friction,
                                       self._effective_joint_inertia(q0), self.params.time_step_s)
        model = self.params.friction_model
        use_motor = np.full(robot.n_joints, model == "motor") | ((inertia < self.params.motor_friction_inertia_max)
                                                                  & (model == "hybrid"))
        if not self.params.apply_joint_friction:
            use_motor[:] = False
        self._motor_friction_idx = np.flatnonzero(use_motor)
        self._motor_friction_ids = [self.joint_ids[i] for i in self._motor_friction_idx]
        self._explicit_friction = np.where(use_motor, 0.0, 1.0) * float(self.params.apply_joint_friction)
        self.time_s = 0.0
        self.step_count = 0  # physics steps since start; time_s = step_count * time_step_s exactly
        self.objects: dict[int, int] = {}  # scene object id -> PyBullet body id (filled by scene builders)
        self.static_bodies: list[int] = []  # furniture body ids
        self.scene = None  # the BuiltScene, when a scene builder added one
        self._last_base_velocity = np.zeros(3)
        self._tau_applied = np.zeros(robot.n_joints)
        self._joint_cache: tuple[np.ndarray, np.ndarray] | None = None
        self._external: list[tuple[int, list[float], list[float] | None, int]] = []  # (link, force, offset, steps left)
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
        self.finger_link_ids = [self.joint_ids[self.robot.joint_index(j)]
                                for hand in self.robot.config.hands for j in hand.gripper_joints]

    def _setup_dynamics(self) -> None:
        c, rid, p = self.client, self.robot_id, self.params
        # Disable the default velocity motors so the joints are torque controlled.
        pb.setJointMotorControlArray(rid, self.joint_ids, pb.VELOCITY_CONTROL, forces=[0.0] * len(self.joint_ids),
                                     physicsClientId=c)
        for link in range(-1, pb.getNumJoints(rid, physicsClientId=c)):
            pb.changeDynamics(rid, link, linearDamping=0.0, angularDamping=0.0, physicsClientId=c)
        for i, jid in enumerate(self.joint_ids):
            pb.changeDynamics(rid, jid, jointDamping=float(self.robot.joint_damping[i]), physicsClientId=c)
        for link in self.foot_link_ids:
            pb.changeDynamics(rid, link, lateralFriction=p.foot_friction, physicsClientId=c)
        for link in self.finger_link_ids:
            # Soft, high-friction pads: a rigid box squeezed between two rigid plates chatters at 1 kHz;
            # a compliant pad gives a steady normal force and therefore a steady friction grip.
            pb.changeDynamics(rid, link, lateralFriction=p.finger_friction, spinningFriction=0.01,
                              contactStiffness=p.finger_contact_stiffness, contactDamping=p.finger_contact_damping,
                              physicsClientId=c)

    def _effective_joint_inertia(self, q: np.ndarray) -> np.ndarray:
        """Inertia each joint feels with the rest of the (floating) robot free: 1 / diag(M^-1)."""
        m = self.robot.model
        mass = pin.crba(m, m.createData(), q)
        mass = np.triu(mass) + np.triu(mass, 1).T
        return 1.0 / np.diag(np.linalg.inv(mass))[6:]

    def _joint_inertia(self, q: np.ndarray) -> np.ndarray:
        """Diagonal of the joint-space mass matrix [kg m^2 | kg] at configuration q."""
        m = self.robot.model
        mass = pin.crba(m, m.createData(), q)
        return np.diag(mass)[6:].copy()

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
        self._joint_cache = None
        self._links_stale = True
        self.actuators.tau_motor = np.zeros(self.robot.n_joints)

    def _joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        """True joint positions and velocities, read from PyBullet at most once per step."""
        if self._joint_cache is None:
            states = pb.getJointStates(self.robot_id, self.joint_ids, physicsClientId=self.client)
            self._joint_cache = (np.array([s[0] for s in states]), np.array([s[1] for s in states]))
        return self._joint_cache

    def let_objects_sleep(self) -> None:
        """Let resting objects sleep (Bullet's deactivation): a box at rest costs nothing per step until
        something touches it, which wakes it. An optimisation of the solver, not of the physics of contact:
        used where the wall clock is short (the real-time overlay)."""
        for body in self.objects.values():
            pb.changeDynamics(body, -1, activationState=pb.ACTIVATION_STATE_ENABLE_SLEEPING, physicsClientId=self.client)

    def step(self, tau: np.ndarray) -> None:
        """Apply joint torques [N m | N] (clamped to effort limits) for one time step."""
        c, rid = self.client, self.robot_id
        tau_motor = self.actuators.motor_torque(np.asarray(tau, dtype=float))
        tau_joint = tau_motor
        if self._motor_friction_ids:
            # Coulomb friction: a velocity motor with zero target whose force bound is the friction.
            pb.setJointMotorControlArray(rid, self._motor_friction_ids, pb.VELOCITY_CONTROL,
                                         targetVelocities=[0.0] * len(self._motor_friction_ids),
                                         forces=self.actuators.friction[self._motor_friction_idx].tolist(), physicsClientId=c)
        if self.params.apply_joint_friction and self.params.friction_model != "motor":
            tau_joint = tau_motor + self._explicit_friction * self.actuators.friction_torque(self._joint_state()[1])
        pb.setJointMotorControlArray(rid, self.joint_ids, pb.TORQUE_CONTROL, forces=tau_joint.tolist(), physicsClientId=c)
        self._last_base_velocity = np.array(pb.getBaseVelocity(rid, physicsClientId=c)[0])
        self._apply_pending_pushes()
        pb.stepSimulation(physicsClientId=c)
        self._joint_cache = None
        self._links_stale = False
        self._tau_applied = tau_motor.copy()
        self.step_count += 1
        self.time_s = self.step_count * self.params.time_step_s

    def read_sensors(self) -> RobotSensors:
        c, rid = self.client, self.robot_id
        q, v = self._joint_state()
        _, quat = pb.getBasePositionAndOrientation(rid, physicsClientId=c)
        lin, ang = pb.getBaseVelocity(rid, physicsClientId=c)
        prev, inv_dt = self._last_base_velocity, 1.0 / self.params.time_step_s
        specific_force = np.array(_to_local(quat, (lin[0] - prev[0]) * inv_dt, (lin[1] - prev[1]) * inv_dt,
                                            (lin[2] - prev[2]) * inv_dt + GRAVITY_MPS2))
        gyro = np.array(_to_local(quat, *ang))
        quat = np.array(quat)
        model = self.actuators
        q_m, v_m, tau_m = model.measure_joints(q, v, self._tau_applied)
        quat, gyro, specific_force = model.measure_imu(quat, gyro, specific_force)
        return RobotSensors(
            q=q_m.copy(), v=v_m.copy(), tau_measured=tau_m.copy(), imu_orientation_xyzw=quat,
            imu_angular_velocity=gyro, imu_linear_acceleration=specific_force,
            foot_wrench=self._foot_wrenches(), time_s=self.time_s,
        )

    def _foot_wrenches(self) -> np.ndarray:
        """Sum the contact forces on each foot into a wrench at the sole origin, in the sole frame."""
        c, rid = self.client, self.robot_id
        out = [[0.0] * 6 for _ in self.foot_link_ids]
        soles = pb.getLinkStates(rid, self.sole_link_ids, computeForwardKinematics=int(self._links_stale), physicsClientId=c)
        contacts = pb.getContactPoints(bodyA=rid, physicsClientId=c)
        sums = [[0.0] * 6 for _ in self.foot_link_ids]  # per foot: force and moment about the world origin
        slot = {foot: k for k, foot in enumerate(self.foot_link_ids)}
        for cp in contacts:
            k = slot.get(cp[3])
            if k is None:
                continue
            # Contact normal points from B to A, i.e. from the other body onto the foot. Plain float
            # arithmetic: numpy's per-call overhead dominates for a handful of contact points.
            (px, py, pz), (nx, ny, nz), fn, f1, (ax, ay, az), f2, (bx, by, bz) = (
                cp[5], cp[7], cp[9], cp[10], cp[11], cp[12], cp[13])
            fx, fy, fz = fn * nx + f1 * ax + f2 * bx, fn * ny + f1 * ay + f2 * by, fn * nz + f1 * az + f2 * bz
            acc = sums[k]
            acc[0] += fx
            acc[1] += fy
            acc[2] += fz
            acc[3] += py * fz - pz * fy
            acc[4] += pz * fx - px * fz
            acc[5] += px * fy - py * fx
        for k, acc in enumerate(sums):
            if acc[0] == acc[1] == acc[2] == 0.0:
                continue
            (ox, oy, oz), quat = soles[k][4], soles[k][5]
            fx, fy, fz = acc[0], acc[1], acc[2]
            # Shift the moment from the world origin to the sole origin: tau_o = tau_0 - o x f.
            torque = (acc[3] - (oy * fz - oz * fy), acc[4] - (oz * fx - ox * fz), acc[5] - (ox * fy - oy * fx))
            out[k] = [*_to_local(quat, fx, fy, fz), *_to_local(quat, *torque)]
        return np.array(out)

    def ground_truth(self) -> GroundTruth:
        """Simulator ground truth: for evaluation and tests only, never for control or estimation."""
        c, rid = self.client, self.robot_id
        pos, quat = pb.getBasePositionAndOrientation(rid, physicsClientId=c)
        lin, ang = pb.getBaseVelocity(rid, physicsClientId=c)
        objects = {}
        for oid, body in self.objects.items():
            opos, oquat = pb.getBasePositionAndOrientation(body, physicsClientId=c)
            objects[oid] = (np.array(opos), np.array(oquat))
        return GroundTruth(np.array(pos), np.array(quat), np.array(lin), np.array(ang), self.time_s, objects)

    def link_pose(self, link: str) -> tuple[np.ndarray, np.ndarray]:
        """World pose (position [m], quaternion xyzw) of a URDF link frame of the robot (ground truth)."""
        lid = self._link_index(link)
        if lid == -1:
            pos, quat = pb.getBasePositionAndOrientation(self.robot_id, physicsClientId=self.client)
        else:
            st = pb.getLinkState(self.robot_id, lid, computeForwardKinematics=1, physicsClientId=self.client)
            pos, quat = st[4], st[5]
        return np.array(pos), np.array(quat)

    def _link_index(self, link: str) -> int:
        if link not in self.link_ids:
            raise SimulationError(f"'{link}' is not a link of the robot{suggest(link, self.link_ids)}")
        return self.link_ids[link]

    def apply_external_force(self, link: str, force_world_n: np.ndarray, point_offset_m: np.ndarray | None = None) -> None:
        """Push: apply a world-frame force at a link's origin (plus offset) for the next step only."""
        if link not in self.link_ids:
            raise SimulationError(f"cannot push link '{link}': not a link of the robot{suggest(link, self.link_ids)}")
        lid = self.link_ids[link]
        if lid == -1:
            pos = pb.getBasePositionAndOrientation(self.robot_id, physicsClientId=self.client)[0]
        else:
            pos = pb.getLinkState(self.robot_id, lid, computeForwardKinematics=1, physicsClientId=self.client)[4]
        point = np.array(pos) + (np.zeros(3) if point_offset_m is None else point_offset_m)
        pb.applyExternalForce(self.robot_id, lid, np.asarray(force_world_n, dtype=float).tolist(), point.tolist(),
                              pb.WORLD_FRAME, physicsClientId=self.client)

    def push(self, link: str, force_world_n, duration_s: float) -> None:
        """Apply a world-frame force [N] at a link origin for ``duration_s`` of sim time (re-applied every step)."""
        lid = self._link_index(link)
        force = [float(x) for x in force_world_n]
        if len(force) != 3 or not np.all(np.isfinite(force)):
            raise SimulationError(f"push force must be 3 finite numbers [N], got {force_world_n!r}")
        if duration_s <= 0:
            raise SimulationError(f"push duration must be > 0 s, got {duration_s}")
        steps = max(1, int(round(duration_s / self.params.time_step_s)))
        self._external.append((lid, force, None, steps))

    def _apply_pending_pushes(self) -> None:
        if not self._external:
            return
        name_of = {v: k for k, v in self.link_ids.items()}
        still = []
        for lid, force, offset, steps in self._external:
            self.apply_external_force(name_of[lid], np.array(force), offset)
            if steps > 1:
                still.append((lid, force, offset, steps - 1))
        self._external = still

    def close(self) -> None:
        if self.client is not None and self.client >= 0:
            pb.disconnect(physicsClientId=self.client)
            self.client = -1

    def __enter__(self) -> SimWorld:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
