"""The whole-body controller: tasks + contacts + QP + failure handling -> references for the 1 kHz loop.

Call :meth:`WholeBodyController.update` at ``settings.rate_hz`` with the estimated full state; it
returns :class:`ControlReferences`. Goals (hand poses, gripper, gaze, CoM height, posture presets)
can be changed between updates. States:

* ``IDLE``: not started; references request damping.
* ``RUNNING``: QP solved; references track it.
* ``HOLDING``: the QP failed or the state is stale: the last feasible references are re-sent
  (time-stamped again) for at most ``hold_time_s``; recovering returns to RUNNING.
* ``DAMPING``: hold time exceeded, or damping requested: the loop damps every joint until
  :meth:`reset_faults` (which re-targets the tasks to the current state and starts again).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
import pinocchio as pin

from optimus_control.control.contact_6d import Contact6D
from optimus_control.control.coupled_gain_limit import CoupledGainLimit
from optimus_control.control.dynamics_snapshot import DynamicsSnapshot, symmetric_from_upper
from optimus_control.control.min_jerk_trajectory import MinJerkSe3Trajectory, MinJerkVectorTrajectory
from optimus_control.control.qp_solver import QpSolver
from optimus_control.control.reachable_workspace import ReachableWorkspace
from optimus_control.control.references import ControlReferences, LoopMode
from optimus_control.control.tasks import ComTask, FrameTask, GazeTask, PostureTask, Task
from optimus_control.control.wbc_settings import WbcSettings
from optimus_control.control.whole_body_qp import QpSettings, WholeBodyQp
from optimus_control.errors import ConfigError, GoalError, suggest
from optimus_control.model import JointLimits, RobotModel

GAIN_LIMIT_PERIOD_S = 0.01  # how often the coupled-inertia gain cap is recomputed [s]
ORIENTATION_ONLY = np.array([0, 0, 0, 1, 1, 1], dtype=float)


def discretisation_safe_gains(robot: RobotModel, kp: np.ndarray, kd: np.ndarray, loop_period_s: float,
                              max_damping_ratio: float = 0.5, max_stiffness_ratio: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Cap joint PD gains so the explicit loop-rate PD stays well inside its stability region.

    A joint with apparent inertia I under ``Kd`` at period dt is unstable once Kd dt / I > 2; light
    distal joints (wrist yaw, ankle roll) with group gains get there. Caps: Kd <= a I / dt and
    Kp <= b I / dt^2, with I the mass-matrix diagonal at the standing posture (base fixed, worst case).
    """
    import pinocchio as _pin

    inertia = np.diag(_pin.crba(robot.model, robot.model.createData(), robot.standing_configuration()))[6:]
    kd_cap = max_damping_ratio * inertia / loop_period_s
    kp_cap = max_stiffness_ratio * inertia / loop_period_s**2
    return np.minimum(kp, kp_cap), np.minimum(kd, kd_cap)


class ControllerState(str, Enum):
    IDLE = "idle"
    RUNNING = "running"
    HOLDING = "holding"
    DAMPING = "damping"


@dataclass
class GoalReport:
    """What happened to a goal: accepted as is, clamped (with the reason), with its trajectory duration."""

    accepted: bool
    clamped: bool = False
    message: str = ""
    target_position_m: np.ndarray | None = None
    duration_s: float = 0.0


@dataclass
class TaskStatus:
    """Per-task tracking for the planner: errors against the final goal and the current reference."""

    name: str
    weight: float
    error_norm: float  # masked norm of the error to the current reference [m | rad]
    position_error_m: float = float("nan")  # to the final goal (hands)
    orientation_error_rad: float = float("nan")
    goal_reached: bool = False
    moving: bool = False


@dataclass
class ControllerStatus:
    state: ControllerState
    fault: str
    qp_status: str
    qp_solve_time_s: float
    update_time_s: float
    qp_failures: int
    tasks: dict[str, TaskStatus] = field(default_factory=dict)
    contacts: dict[str, float] = field(default_factory=dict)  # name -> activation
    messages: list[str] = field(default_factory=list)


class WholeBodyController:
    """Task-space inverse dynamics controller for a floating-base humanoid standing on flat feet."""

    def __init__(self, robot: RobotModel, settings: WbcSettings | None = None):
        self.robot, self.settings = robot, settings or WbcSettings()
        s, cfg, m = self.settings, robot.config, robot.model
        self.model, self.data = m, m.createData()
        self.nj, self.nv = robot.n_joints, m.nv
        self.period_s = 1.0 / s.rate_hz
        self.qp = WholeBodyQp(self._limits_with_margins(robot, s.joint_limit_margins_rad or {}), 9.81, robot.total_mass,
                              QpSettings(s.force_regularisation_weight, 1e-6, 0.05, s.max_joint_acceleration, s.torque_margin))
        self.solver = QpSolver(s.qp_backend)
        self.tasks: dict[str, Task] = {}
        self.contacts: dict[str, Contact6D] = {}
        self.hand_names = tuple(h.name for h in cfg.hands)
        self._hands = {h.name: h for h in cfg.hands}
        self._hand_frames = {h.name: robot.frame_id(h.gripper_frame) for h in cfg.hands}
        self._gripper_joints = {h.name: np.array([robot.joint_index(j) for j in h.gripper_joints]) for h in cfg.hands}
        self._hand_goals: dict[str, pin.SE3] = {}
        self._hand_trajectories: dict[str, MinJerkSe3Trajectory] = {}
        self._workspaces = {h.name: self._make_workspace(h.gripper_frame) for h in cfg.hands}
        self._com_trajectory: MinJerkVectorTrajectory | None = None
        self._gripper_command = {h.name: (robot.standing_joint_positions()[self._gripper_joints[h.name]].mean(),
                                          cfg.gripper.max_force) for h in cfg.hands}
        self._gripper_reference = dict((k, v[0]) for k, v in self._gripper_command.items())
        self.presets = {"standing": robot.standing_joint_positions()}
        for name, joints in (s.posture_presets or {}).items():
            self.presets[name] = robot.joint_vector({**cfg.standing_posture, **joints})
        self._posture_trajectory: MinJerkVectorTrajectory | None = None
        self.kp, self.kd = discretisation_safe_gains(robot, s.joint_gain_scale * robot.kp, s.joint_gain_scale * robot.kd,
                                                     s.loop_period_s)
        self._gain_limit = CoupledGainLimit(robot.groups, self.nj, s.loop_period_s)
        self._inverse_mass_data = self.model.createData()
        self._gain_factors: tuple[float, np.ndarray, np.ndarray] | None = None  # (time computed, kp, kd factors)
        self._integrated_mask = np.zeros(self.nj, dtype=bool)
        for group in s.integrated_reference_groups:
            if group not in robot.groups:
                raise ConfigError(f"integrated_reference_groups: unknown joint group '{group}'{suggest(group, robot.groups)}")
            self._integrated_mask[robot.groups[group]] = True
        self._q_int: np.ndarray | None = None
        self._v_int: np.ndarray | None = None
        self.state = ControllerState.IDLE
        self.fault = ""
        self._messages: list[str] = []
        self._last_good: ControlReferences | None = None
        self._failure_since: float | None = None
        self._last_state_time: float | None = None
        self.qp_status, self.qp_solve_time_s, self.update_time_s, self.qp_failures = "not run", 0.0, 0.0, 0
        self.gain_factor_min = 1.0  # smallest factor the coupled-inertia limit put on a joint gain (last update)
        self.qp_relaxed = 0  # updates solved only by a fallback (no joint-limit bounds, then no effort rows)
        self.timing_s: dict[str, float] = {}  # last update: model, build, solve [s]
        self.time_s = 0.0
        self._snapshot: DynamicsSnapshot | None = None

    # ---- set-up -----------------------------------------------------------------------------------
    @staticmethod
    def _limits_with_margins(robot: RobotModel, margins: dict) -> JointLimits:
        """The robot's joint limits, narrowed by ``margins`` (joint name -> rad) for the QP."""
        lower, upper = robot.limits.lower.copy(), robot.limits.upper.copy()
        for name, margin in margins.items():
            if name not in robot.joint_names:
                raise ConfigError(f"joint_limit_margins_rad: unknown joint '{name}'{suggest(name, robot.joint_names)}")
            i = robot.joint_index(name)
            if not 0.0 <= float(margin) < 0.5 * (upper[i] - lower[i]):
                raise ConfigError(f"joint_limit_margins_rad.{name}: {margin} rad must be >= 0 and leave a range "
                                  f"(limits [{lower[i]:.3f}, {upper[i]:.3f}] rad)")
            lower[i] += float(margin)
            upper[i] -= float(margin)
        return JointLimits(lower, upper, robot.limits.velocity, robot.limits.effort)

    def _make_workspace(self, gripper_frame: str) -> ReachableWorkspace:
        return ReachableWorkspace(self.model, self.robot.frame_id(gripper_frame))

    def _default_tasks(self, snap: DynamicsSnapshot) -> None:
        t, cfg, r = self.settings.tasks, self.robot.config, self.robot
        self.tasks.clear()
        com = ComTask("com", t.com.weight, t.com.kp, t.com.kd_or_none)
        com.set_target(self._support_com_target(snap))
        self.tasks["com"] = com
        for name, frame, gains in (("base_orientation", cfg.base_frame, t.base_orientation),
                                   ("torso_orientation", cfg.torso_frame, t.torso_orientation)):
            task = FrameTask(name, r.frame_id(frame), gains.weight, gains.kp, gains.kd_or_none, ORIENTATION_ONLY)
            # Upright with the current heading.
            yaw = np.arctan2(snap.placement(task.frame_id).rotation[1, 0], snap.placement(task.frame_id).rotation[0, 0])
            task.set_target(pin.SE3(pin.rpy.rpyToMatrix(0.0, 0.0, yaw), np.zeros(3)))
            self.tasks[name] = task
        for foot in cfg.feet:
            task = FrameTask(f"foot_{foot.name}", r.frame_id(foot.frame), t.feet.weight, t.feet.kp, t.feet.kd_or_none)
            task.set_target_from_snapshot(snap)
            self.tasks[task.name] = task
        for hand in self.hand_names:
            task = FrameTask(f"hand_{hand}", self._hand_frames[hand], t.hands.weight, t.hands.kp, t.hands.kd_or_none)
            task.set_target_from_snapshot(snap)
            self.tasks[task.name] = task
            self._hand_goals[hand] = task.target.copy()
        self._hand_trajectories.clear()
        gaze = GazeTask("gaze", r.frame_id(cfg.gaze_frame), t.gaze.weight, t.gaze.kp, t.gaze.kd_or_none)
        self.tasks["gaze"] = gaze
        posture = PostureTask("posture", self.nj, t.posture.weight, t.posture.kp, t.posture.kd_or_none)
        posture.set_target(self.presets["standing"])
        self.tasks["posture"] = posture
        self._posture_trajectory = None
        self._com_trajectory = None

    def _support_com_target(self, snap: DynamicsSnapshot) -> np.ndarray:
        """Centre of the active support rectangles (plus the configured offset) at the current CoM height."""
        rect = self.robot.config.sole
        centre_local = np.array([(rect.x_min + rect.x_max) / 2, (rect.y_min + rect.y_max) / 2, 0.0])
        frames = [c.frame_id for c in self.contacts.values()] or [self.robot.frame_id(f.frame) for f in self.robot.config.feet]
        centres = [snap.placement(f).act(centre_local) for f in frames]
        target = np.mean(centres, axis=0)
        base = snap.placement(self.robot.frame_id(self.robot.config.base_frame)).rotation
        yaw = np.arctan2(base[1, 0], base[0, 0])
        off = np.array(self.settings.com_support_offset_m, dtype=float)
        target[:2] += np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]]) @ off
        target[2] = snap.com_position[2]
        return target

    def _default_contacts(self) -> None:
        self.contacts.clear()
        cfg, s = self.robot.config, self.settings
        for foot in cfg.feet:
            self.contacts[f"foot_{foot.name}"] = Contact6D(
                f"foot_{foot.name}", self.robot.frame_id(foot.frame), cfg.sole, cfg.friction_coefficient,
                s.min_normal_force_n)

    def start(self, q: np.ndarray, v: np.ndarray, time_s: float) -> None:
        """Begin balancing from the current state: both feet in contact, tasks hold the current pose."""
        self.time_s = time_s
        snap = DynamicsSnapshot(self.model, self.data, q, v)
        self._snapshot = snap
        self._q_int = self._v_int = None
        self._gain_factors = None
        self._default_contacts()
        self._default_tasks(snap)
        self.solver.reset()
        self.state, self.fault = ControllerState.RUNNING, ""
        self._failure_since, self._last_good, self._last_state_time = None, None, None
        self._message("started balancing")

    # ---- run-time task and contact management ---------------------------------------------------
    def add_task(self, task: Task) -> None:
        self.tasks[task.name] = task

    def remove_task(self, name: str) -> Task:
        return self.tasks.pop(self._task_name(name))

    def set_task_weight(self, name: str, weight: float) -> None:
        self.tasks[self._task_name(name)].set_weight(weight)

    def _task_name(self, name: str) -> str:
        if name not in self.tasks:
            raise GoalError(f"no task named '{name}'{suggest(name, self.tasks)}; tasks: {sorted(self.tasks)}")
        return name

    def add_contact(self, contact: Contact6D, ramp_duration_s: float | None = None) -> None:
        """Add a contact whose normal force ramps in from 0 (no torque jump)."""
        contact.activation = 0.0
        contact.start_ramp(True, self.settings.contact_ramp_duration_s if ramp_duration_s is None else ramp_duration_s,
                           self.qp.weight_n)
        self.contacts[contact.name] = contact
        self.solver.reset()

    def remove_contact(self, name: str, ramp_duration_s: float | None = None) -> None:
        """Ramp a contact's force out; it leaves the QP when the ramp ends (its frame task takes over)."""
        if name not in self.contacts:
            raise GoalError(f"no contact named '{name}'{suggest(name, self.contacts)}; contacts: {sorted(self.contacts)}")
        self.contacts[name].start_ramp(False, self.settings.contact_ramp_duration_s if ramp_duration_s is None
                                       else ramp_duration_s)

    # ---- goals ----------------------------------------------------------------------------------
    def _hand(self, hand: str) -> str:
        if hand not in self._hands:
            raise GoalError(f"unknown hand '{hand}'{suggest(hand, self._hands)}; hands: {list(self._hands)}")
        return hand

    def set_hand_target(self, hand: str, target: pin.SE3) -> GoalReport:
        """Move a hand's gripper frame to a world (odom) pose along a min-jerk path.

        Non-finite targets are rejected (GoalError, the hand keeps its goal); targets outside the
        reachable workspace are clamped into it and the report says so.
        """
        hand = self._hand(hand)
        if not (np.all(np.isfinite(target.translation)) and np.all(np.isfinite(target.rotation))):
            raise GoalError(f"hand '{hand}' target rejected: non-finite pose (position {target.translation.tolist()}); "
                            "the hand keeps its previous goal")
        rotation = target.rotation
        if abs(np.linalg.det(rotation) - 1.0) > 1e-3 or np.linalg.norm(rotation.T @ rotation - np.eye(3)) > 1e-3:
            raise GoalError(f"hand '{hand}' target rejected: orientation is not a rotation (not unit quaternion?)")
        if self._snapshot is None or self.state in (ControllerState.IDLE, ControllerState.DAMPING):
            raise GoalError(f"hand '{hand}' target rejected: the controller is not balancing (state {self.state.value}); "
                            "start it (or reset faults) first")
        snap = self._snapshot
        pivot = snap.data.oMi[self._workspaces[hand].pivot_joint_id].translation
        clamp = self._workspaces[hand].clamp(target.translation, pivot)
        goal = pin.SE3(rotation.copy(), clamp.position_m)
        task: FrameTask = self.tasks[f"hand_{hand}"]
        start = task.target if task.target is not None else snap.placement(task.frame_id)
        s = self.settings
        trajectory = MinJerkSe3Trajectory(start, goal, self.time_s, s.hand_max_linear_speed_mps,
                                          s.hand_max_angular_speed_radps, s.hand_min_move_duration_s)
        self._hand_trajectories[hand] = trajectory
        self._hand_goals[hand] = goal
        message = f"hand '{hand}' target clamped to the reachable workspace: {clamp.reason}" if clamp.clamped else ""
        if message:
            self._message(message)
        return GoalReport(True, clamp.clamped, message, clamp.position_m, trajectory.duration_s)

    def check_reach(self, hand: str, position_m: np.ndarray):
        """Where the workspace clamp would put a hand target (a ClampResult), without commanding it."""
        hand = self._hand(hand)
        if self._snapshot is None:
            raise GoalError("reach check needs a running controller (no state yet)")
        pivot = self._snapshot.data.oMi[self._workspaces[hand].pivot_joint_id].translation
        return self._workspaces[hand].clamp(np.asarray(position_m, dtype=float), pivot)

    def set_gripper(self, hand: str, opening_m: float, max_force_n: float | None = None) -> None:
        """Per-finger opening [m] (0 closed) with a squeeze-force limit [N] per finger."""
        hand, g = self._hand(hand), self.robot.config.gripper
        force = g.max_force if max_force_n is None else float(max_force_n)
        if not (np.isfinite(opening_m) and np.isfinite(force)) or force < 0:
            raise GoalError(f"gripper '{hand}' command rejected: opening {opening_m!r} m, force {max_force_n!r} N")
        lo, hi = sorted((g.closed_position, g.open_position))
        self._gripper_command[hand] = (float(np.clip(opening_m, lo, hi)), min(force, g.max_force))

    def set_gaze_target(self, point_m: np.ndarray) -> None:
        point = np.asarray(point_m, dtype=float)
        if point.shape != (3,) or not np.all(np.isfinite(point)):
            raise GoalError(f"gaze target rejected: expected 3 finite numbers, got {point_m!r}")
        self.tasks["gaze"].set_target(point)

    def set_com_height(self, height_m: float) -> GoalReport:
        """Move the CoM height (world z) along a min-jerk path; clamped to +-0.15 m around start-up."""
        if not np.isfinite(height_m):
            raise GoalError(f"CoM height rejected: {height_m!r}")
        com: ComTask = self.tasks["com"]
        lo, hi = self._com_height_range
        clamped = float(np.clip(height_m, lo, hi))
        goal = com.target.copy()
        goal[2] = clamped
        self._com_trajectory = MinJerkVectorTrajectory(com.target, goal, self.time_s, self.settings.com_max_speed_mps)
        msg = f"CoM height {height_m:.3f} m clamped to [{lo:.3f}, {hi:.3f}] m" if clamped != height_m else ""
        return GoalReport(True, clamped != height_m, msg, goal, self._com_trajectory.duration_s)

    def set_posture(self, preset: str) -> None:
        if preset not in self.presets:
            raise GoalError(f"unknown posture preset '{preset}'{suggest(preset, self.presets)}; presets: {sorted(self.presets)}")
        task: PostureTask = self.tasks["posture"]
        self._posture_trajectory = MinJerkVectorTrajectory(task.target, self.presets[preset], self.time_s, 0.5)

    def request_damping(self, reason: str) -> None:
        self._enter_damping(reason)

    def reset_faults(self, q: np.ndarray, v: np.ndarray, time_s: float) -> None:
        """Clear faults and restart balancing from the current state."""
        self._message(f"faults reset (was: {self.fault or 'none'})")
        self.start(q, v, time_s)

    # ---- the update ---------------------------------------------------------------------------------
    def update(self, q: np.ndarray, v: np.ndarray, time_s: float, state_time_s: float | None = None) -> ControlReferences:
        """One control step at controller time ``time_s`` from the full estimated state (q, v).

        ``state_time_s`` is the time stamp of the sensor sample the state came from; if it lags
        ``time_s`` by more than ``stale_state_timeout_s`` the state is stale (hold, then damp).
        """
        start = time.perf_counter()
        dt = time_s - self.time_s
        self.time_s = time_s
        if self.state is ControllerState.IDLE:
            return self._damping_refs()
        if self.state is ControllerState.DAMPING:
            return self._damping_refs()
        stamp = time_s if state_time_s is None else state_time_s
        if time_s - stamp > self.settings.stale_state_timeout_s:
            return self._fail(f"stale estimator input: state is {1e3 * (time_s - stamp):.1f} ms old "
                              f"(limit {1e3 * self.settings.stale_state_timeout_s:.0f} ms)")
        if not (np.all(np.isfinite(q)) and np.all(np.isfinite(v))):
            return self._fail("non-finite estimated state")
        snap = DynamicsSnapshot(self.model, self.data, q, v)
        self._snapshot = snap
        t_model = time.perf_counter()
        self._advance_references(max(dt, 0.0))
        contacts = list(self.contacts.values())
        # A frame held by a rigid contact cannot move: its pose task would only add cost rows.
        held = {c.frame_id for c in contacts if not c.ramping}
        tasks = [t for t in self.tasks.values() if not (isinstance(t, FrameTask) and t.frame_id in held)]
        problem = self.qp.build(snap, tasks, contacts)
        t_build = time.perf_counter()
        result = self.solver.solve(problem)
        for relaxed in ({"joint_limits": False}, {"joint_limits": False, "torque_limits": False}):
            if result.ok:
                break
            # Braking at a joint limit can contradict the torque limits (a joint already past its velocity
            # limit), or the effort limits cannot hold a leaning robot: solve again without those rows rather
            # than damp a standing robot into a fall (the torque loop still saturates).
            result = self.solver.solve(self.qp.build(snap, tasks, contacts, **relaxed))
            self.qp_relaxed += int(result.ok)
        self.timing_s = {"model": t_model - start, "build": t_build - t_model, "solve": time.perf_counter() - t_build}
        self.qp_status, self.qp_solve_time_s = result.status, result.solve_time_s
        if not result.ok:
            self.qp_failures += 1
            return self._fail(f"QP failed: {result.status}")
        solution = self.qp.read_solution(result.x, snap)
        for name, wrench in solution.contact_wrenches.items():
            self.contacts[name].last_normal_force_n = float(wrench[2])
        refs = self._references(snap, solution)
        if not refs.is_finite():
            return self._fail("QP solution produced non-finite references")
        for name in [n for n, c in self.contacts.items() if c.released]:
            del self.contacts[name]
            self.solver.reset()
            self._message(f"contact '{name}' released")
        if self.state is ControllerState.HOLDING:
            self._message(f"recovered from: {self.fault}")
        self.state, self.fault, self._failure_since = ControllerState.RUNNING, "", None
        self._last_good = refs
        self.update_time_s = time.perf_counter() - start
        return refs

    def _advance_references(self, dt: float) -> None:
        t = self.time_s
        for hand, traj in self._hand_trajectories.items():
            pose, twist, accel = traj.sample(t)
            self.tasks[f"hand_{hand}"].set_target(pose, twist, accel)
        self._hand_trajectories = {h: tr for h, tr in self._hand_trajectories.items() if not tr.finished(t - 1.0)}
        if self._com_trajectory is not None:
            p, vel, acc = self._com_trajectory.sample(t)
            self.tasks["com"].set_target(p, vel, acc)
        posture: PostureTask = self.tasks["posture"]
        if self._posture_trajectory is not None:
            p, vel, _ = self._posture_trajectory.sample(t)
            posture.set_target(p, vel)
        target = posture.target.copy()
        for hand, (opening, _) in self._gripper_command.items():
            ref = self._gripper_reference[hand]
            step = self.settings.gripper_speed_mps * dt
            self._gripper_reference[hand] = ref + float(np.clip(opening - ref, -step, step))
            target[self._gripper_joints[hand]] = self._gripper_reference[hand]
        posture.set_target(target, posture.target_velocity)
        for contact in self.contacts.values():
            contact.advance(dt)

    @property
    def _com_height_range(self) -> tuple[float, float]:
        z0 = self.robot.center_of_mass(self.robot.standing_configuration())[2]
        return z0 - 0.15, z0 + 0.03

    def _references(self, snap: DynamicsSnapshot, sol) -> ControlReferences:
        """q_dd, f from the QP; q_ref / v_ref integrated from q_dd (see ``_integrate_joint_references``)."""
        qdd = sol.joint_accelerations
        q_ref, v_ref = self._integrate_joint_references(snap.q[-self.nj:], snap.v[-self.nj:], qdd[-self.nj:])
        torque_limit = self.robot.limits.effort.copy()
        if self._gain_factors is None or not 0.0 <= self.time_s - self._gain_factors[0] < GAIN_LIMIT_PERIOD_S:
            # The inertia changes with the posture only, slowly next to the 0.1 ms its inverse costs here.
            inverse_mass = symmetric_from_upper(pin.computeMinverse(self.model, self._inverse_mass_data, snap.q))
            kp_factor, kd_factor = self._gain_limit.factors(inverse_mass[-self.nj:, -self.nj:], self.kp, self.kd)
            self._gain_factors = (self.time_s, kp_factor, kd_factor)
            self.gain_factor_min = float(min(kp_factor.min(), kd_factor.min()))
        kp, kd = self.kp * self._gain_factors[1], self.kd * self._gain_factors[2]
        for hand, (_, force) in self._gripper_command.items():
            joints = self._gripper_joints[hand]
            reference = self._gripper_reference[hand]
            # Squeezing an object: every finger aims force / kp inside the fingers' mean opening, so
            # the force is the commanded one and an off-centre object is pushed back to the middle
            # (two force-saturated fingers would let it slide freely along the closing axis).
            mean_opening = float(snap.q[7:][joints].sum()) / len(joints)
            stiffness = float(kp[joints].sum()) / len(joints)
            if stiffness > 0:
                reference = max(reference, mean_opening - force / stiffness)
            q_ref[joints] = reference
            v_ref[joints] = 0.0
            torque_limit[joints] = min(1.5 * force, self.robot.limits.effort[joints].min())
        names = list(self.contacts)
        wrenches = np.array([sol.contact_wrenches[n] for n in names]) if names else np.zeros((0, 6))
        return ControlReferences(
            time_s=self.time_s, mode=LoopMode.TRACK, joint_accelerations=qdd.copy(),
            contact_frame_ids=tuple(self.contacts[n].frame_id for n in names), contact_wrenches=wrenches,
            joint_positions=q_ref, joint_velocities=v_ref, kp=kp, kd=kd, torque_limit=torque_limit,
            damping_gain=self.robot.config.damping_gain)

    def _integrate_joint_references(self, q: np.ndarray, v: np.ndarray, qdd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Joint references for the loop's PD at the end of this control period.

        Joints of ``integrated_reference_groups`` (light arms, neck, waist) follow references
        integrated from the QP accelerations (v_ref += q_dd T, q_ref += v_ref T), kept within
        ``max_reference_deviation_rad`` / ``max_velocity_deviation_radps`` of the measurement: a
        persistent error (static friction, an unmodelled load) then builds up PD torque, which an
        acceleration-level QP alone cannot do. Other joints (legs, in a closed kinematic chain through
        the ground) use a one-period prediction from the measurement so their PD never fights the contacts.
        """
        T, s = self.period_s, self.settings
        if self._q_int is None:
            self._q_int, self._v_int = q.copy(), v.copy()
        v_int = self._v_int + qdd * T
        q_int = self._q_int + v_int * T
        v_int = v + np.clip(v_int - v, -s.max_velocity_deviation_radps, s.max_velocity_deviation_radps)
        q_int = q + np.clip(q_int - q, -s.max_reference_deviation_rad, s.max_reference_deviation_rad)
        predicted_v = v + qdd * T
        predicted_q = q + v * T + 0.5 * qdd * T**2
        mask = self._integrated_mask
        self._q_int = np.where(mask, q_int, predicted_q)
        self._v_int = np.where(mask, v_int, predicted_v)
        return self._q_int.copy(), self._v_int.copy()

    # ---- failure handling -----------------------------------------------------------------------
    def _fail(self, reason: str) -> ControlReferences:
        if self._failure_since is None:
            self._failure_since = self.time_s
            self._message(f"{reason}: holding the last feasible references for {self.settings.hold_time_s:.3f} s")
        self.fault = reason
        if self._last_good is None or self.time_s - self._failure_since > self.settings.hold_time_s:
            self._enter_damping(f"{reason}; not recovered within {self.settings.hold_time_s:.3f} s")
            return self._damping_refs()
        self.state = ControllerState.HOLDING
        held = self._last_good
        return ControlReferences(**{**held.__dict__, "time_s": self.time_s, "notes": [reason]})

    def _enter_damping(self, reason: str) -> None:
        if self.state is not ControllerState.DAMPING:
            self._message(f"switching the loop to damping: {reason}")
        self.state, self.fault = ControllerState.DAMPING, reason

    def _damping_refs(self) -> ControlReferences:
        nj = self.nj
        zeros = np.zeros(nj)
        return ControlReferences(self.time_s, LoopMode.DAMP, np.zeros(self.nv), (), np.zeros((0, 6)), zeros, zeros,
                                 zeros, zeros, self.robot.limits.effort.copy(), self.robot.config.damping_gain,
                                 [self.fault])

    def _message(self, text: str) -> None:
        self._messages.append(f"[{self.time_s:.3f} s] {text}")
        del self._messages[:-50]

    # ---- status -----------------------------------------------------------------------------------
    def status(self) -> ControllerStatus:
        tasks = {}
        s = self.settings
        for name, task in self.tasks.items():
            st = TaskStatus(name, task.weight, task.error_norm())
            if name.startswith("hand_") and self._snapshot is not None:
                hand = name.removeprefix("hand_")
                goal, pose = self._hand_goals.get(hand), self._snapshot.placement(task.frame_id)
                if goal is not None:
                    st.position_error_m = float(np.linalg.norm(goal.translation - pose.translation))
                    st.orientation_error_rad = float(np.linalg.norm(pin.log3(goal.rotation @ pose.rotation.T)))
                    st.moving = hand in self._hand_trajectories and not self._hand_trajectories[hand].finished(self.time_s)
                    st.goal_reached = (not st.moving and st.position_error_m <= s.hand_position_tolerance_m
                                       and st.orientation_error_rad <= s.hand_orientation_tolerance_rad)
            else:
                st.goal_reached = True
            tasks[name] = st
        return ControllerStatus(self.state, self.fault, self.qp_status, self.qp_solve_time_s, self.update_time_s,
                                self.qp_failures, tasks, {n: c.activation for n, c in self.contacts.items()},
                                list(self._messages))

    def hand_pose(self, hand: str) -> pin.SE3:
        """Current gripper-frame pose (world) from the last update."""
        return self._snapshot.placement(self._hand_frames[self._hand(hand)]).copy()
