"""The whole-body controller: goals + contacts + QP + failure handling -> references for the 1 kHz loop.

Call :meth:`WholeBodyController.update` at ``settings.rate_hz`` with the estimated full state; it
returns :class:`ControlReferences`. Goals (hand poses, gripper, gaze, CoM height, posture presets)
can be changed between updates. The pieces, one job each:

* :class:`~optimus_control.control.task_goals.TaskGoals`: the tasks, their goals and trajectories;
* :class:`~optimus_control.control.gripper_reference_law.GripperReferenceLaw`: gripper openings and squeeze;
* :class:`~optimus_control.control.joint_gains.JointGainSchedule`: the loop's PD gains at the posture;
* :class:`~optimus_control.control.joint_reference_integrator.JointReferenceIntegrator`: q_ref, v_ref;
* :class:`~optimus_control.control.fault_policy.FaultPolicy`: IDLE / RUNNING / HOLDING / DAMPING.
"""

from __future__ import annotations

import time

import numpy as np
import pinocchio as pin

from optimus_control.control.contact_6d import Contact6D
from optimus_control.control.controller_status import ControllerState, ControllerStatus, GoalReport
from optimus_control.control.dynamics_snapshot import DynamicsSnapshot
from optimus_control.control.fault_policy import FaultPolicy
from optimus_control.control.gripper_reference_law import GripperReferenceLaw
from optimus_control.control.joint_gains import JointGainSchedule
from optimus_control.control.joint_reference_integrator import JointReferenceIntegrator
from optimus_control.control.qp_solver import QpSolver
from optimus_control.control.reachable_workspace import ClampResult
from optimus_control.control.references import ControlReferences, LoopMode
from optimus_control.control.task_goals import TaskGoals
from optimus_control.control.tasks import FrameTask, Task
from optimus_control.control.wbc_settings import WbcSettings
from optimus_control.control.whole_body_qp import QpSettings, QpSolution, WholeBodyQp
from optimus_control.errors import ConfigError, GoalError, suggest
from optimus_control.model import JointLimits, RobotModel

# Fallbacks when the QP is infeasible: braking at a joint limit can contradict the torque limits (a joint
# already past its velocity limit), and the effort limits may not hold a leaning robot. Solving without
# those rows beats damping a standing robot into a fall (the torque loop still saturates).
RELAXATIONS = ({"joint_limits": False}, {"joint_limits": False, "torque_limits": False})


def limits_with_margins(robot: RobotModel, margins: dict[str, float]) -> JointLimits:
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


class WholeBodyController:
    """Task-space inverse dynamics controller for a floating-base humanoid standing on flat feet.

    Attributes:
        qp_relaxed: updates solved only by a fallback (no joint-limit bounds, then no effort rows).
        timing_s: the last update's phases: model, build, solve [s].
    """

    def __init__(self, robot: RobotModel, settings: WbcSettings | None = None):
        self.robot, self.settings = robot, settings or WbcSettings()
        s, m = self.settings, robot.model
        self.model, self.data = m, m.createData()
        self.nj, self.nv = robot.n_joints, m.nv
        self.qp = WholeBodyQp(limits_with_margins(robot, s.joint_limit_margins_rad or {}), 9.81, robot.total_mass,
                              QpSettings(s.force_regularisation_weight, 1e-6, 0.05, s.max_joint_acceleration, s.torque_margin))
        self.solver = QpSolver(s.qp_backend)
        self.goals = TaskGoals(robot, s)
        self.tasks: dict[str, Task] = self.goals.tasks
        self.contacts: dict[str, Contact6D] = {}
        self.hand_names = self.goals.hand_names
        self.presets = self.goals.presets
        self.gripper = GripperReferenceLaw(robot, s.gripper_speed_mps)
        self.gains = JointGainSchedule(robot, s.joint_gain_scale * robot.kp, s.joint_gain_scale * robot.kd,
                                       s.loop_period_s)
        self.integrator = JointReferenceIntegrator(robot, s)
        self.faults = FaultPolicy(self.nj, self.nv, robot.limits.effort, robot.config.damping_gain, s.hold_time_s)
        self.qp_status, self.qp_solve_time_s, self.update_time_s, self.qp_failures = "not run", 0.0, 0.0, 0
        self.qp_relaxed = 0
        self.timing_s: dict[str, float] = {}
        self.time_s = 0.0
        self._snapshot: DynamicsSnapshot | None = None

    # ---- state ---------------------------------------------------------------------------------------
    @property
    def state(self) -> ControllerState:
        return self.faults.state

    @property
    def fault(self) -> str:
        return self.faults.fault

    @property
    def gain_factor_min(self) -> float:
        """Smallest factor the coupled-inertia limit put on a joint gain (last computation)."""
        return self.gains.factor_min

    def start(self, q: np.ndarray, v: np.ndarray, time_s: float) -> None:
        """Begin balancing from the current state: both feet in contact, tasks hold the current pose."""
        self.time_s = time_s
        snap = DynamicsSnapshot(self.model, self.data, q, v)
        self._snapshot = snap
        self.integrator.reset()
        self.gains.reset()
        self._default_contacts()
        self.goals.reset(snap, [c.frame_id for c in self.contacts.values()])
        self.solver.reset()
        self.faults.start()
        self._message("started balancing")

    def reset_faults(self, q: np.ndarray, v: np.ndarray, time_s: float) -> None:
        """Clear faults and restart balancing from the current state."""
        self._message(f"faults reset (was: {self.fault or 'none'})")
        self.start(q, v, time_s)

    def request_damping(self, reason: str) -> None:
        self.faults.enter_damping(reason, self.time_s)

    def _message(self, text: str) -> None:
        self.faults.message(text, self.time_s)

    # ---- tasks and contacts ------------------------------------------------------------------------
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

    def _default_contacts(self) -> None:
        self.contacts.clear()
        cfg, s = self.robot.config, self.settings
        for foot in cfg.feet:
            self.contacts[f"foot_{foot.name}"] = Contact6D(
                f"foot_{foot.name}", self.robot.frame_id(foot.frame), cfg.sole, cfg.friction_coefficient,
                s.min_normal_force_n)

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

    # ---- goals -----------------------------------------------------------------------------------------
    def set_hand_target(self, hand: str, target: pin.SE3) -> GoalReport:
        """Move a hand's gripper frame to a world (odom) pose along a min-jerk path.

        Non-finite targets are rejected (GoalError, the hand keeps its goal); targets outside the
        reachable workspace are clamped into it and the report says so.
        """
        hand = self.goals.check_hand_target(hand, target)
        if self._snapshot is None or self.state in (ControllerState.IDLE, ControllerState.DAMPING):
            raise GoalError(f"hand '{hand}' target rejected: the controller is not balancing (state {self.state.value}); "
                            "start it (or reset faults) first")
        report = self.goals.set_hand_target(hand, target, self._snapshot, self.time_s)
        if report.message:
            self._message(report.message)
        return report

    def check_reach(self, hand: str, position_m: np.ndarray) -> ClampResult:
        """Where the workspace clamp would put a hand target, without commanding it."""
        hand = self.goals.hand(hand)
        if self._snapshot is None:
            raise GoalError("reach check needs a running controller (no state yet)")
        return self.goals.check_reach(hand, position_m, self._snapshot)

    def set_gripper(self, hand: str, opening_m: float, max_force_n: float | None = None) -> None:
        """Per-finger opening [m] (0 closed) with a squeeze-force limit [N] per finger."""
        self.gripper.command(self.goals.hand(hand), opening_m, max_force_n)

    def set_gaze_target(self, point_m: np.ndarray) -> None:
        self.goals.set_gaze_target(point_m)

    def set_com_height(self, height_m: float) -> GoalReport:
        """Move the CoM height (world z) along a min-jerk path; clamped to -0.15/+0.03 m around standing."""
        return self.goals.set_com_height(height_m, self.time_s)

    def set_posture(self, preset: str) -> None:
        self.goals.set_posture(preset, self.time_s)

    # ---- the update ---------------------------------------------------------------------------------
    def update(self, q: np.ndarray, v: np.ndarray, time_s: float, state_time_s: float | None = None) -> ControlReferences:
        """One control step at controller time ``time_s`` from the full estimated state (q, v).

        ``state_time_s`` is the time stamp of the sensor sample the state came from; if it lags
        ``time_s`` by more than ``stale_state_timeout_s`` the state is stale (hold, then damp).
        """
        start = time.perf_counter()
        dt = time_s - self.time_s
        self.time_s = time_s
        if self.state in (ControllerState.IDLE, ControllerState.DAMPING):
            return self.faults.damping_references(time_s)
        stamp = time_s if state_time_s is None else state_time_s
        if time_s - stamp > self.settings.stale_state_timeout_s:
            return self.faults.fail(f"stale estimator input: state is {1e3 * (time_s - stamp):.1f} ms old "
                                    f"(limit {1e3 * self.settings.stale_state_timeout_s:.0f} ms)", time_s)
        if not (np.all(np.isfinite(q)) and np.all(np.isfinite(v))):
            return self.faults.fail("non-finite estimated state", time_s)
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
        for relaxed in RELAXATIONS:
            if result.ok:
                break
            result = self.solver.solve(self.qp.build(snap, tasks, contacts, **relaxed))
            self.qp_relaxed += int(result.ok)
        self.timing_s = {"model": t_model - start, "build": t_build - t_model, "solve": time.perf_counter() - t_build}
        self.qp_status, self.qp_solve_time_s = result.status, result.solve_time_s
        if not result.ok:
            self.qp_failures += 1
            return self.faults.fail(f"QP failed: {result.status}", time_s)
        solution = self.qp.read_solution(result.x, snap)
        for name, wrench in solution.contact_wrenches.items():
            self.contacts[name].last_normal_force_n = float(wrench[2])
        refs = self._references(snap, solution)
        if not refs.is_finite():
            return self.faults.fail("QP solution produced non-finite references", time_s)
        for name in [n for n, c in self.contacts.items() if c.released]:
            del self.contacts[name]
            self.solver.reset()
            self._message(f"contact '{name}' released")
        self.faults.accept(refs, time_s)
        self.update_time_s = time.perf_counter() - start
        return refs

    def _advance_references(self, dt: float) -> None:
        self.goals.advance(self.time_s)
        posture = self.tasks["posture"]
        target = posture.target.copy()
        self.gripper.advance(dt, target)
        posture.set_target(target, posture.target_velocity)
        for contact in self.contacts.values():
            contact.advance(dt)

    def _references(self, snap: DynamicsSnapshot, solution: QpSolution) -> ControlReferences:
        """q_dd, f from the QP; q_ref / v_ref integrated from q_dd; gains and the grippers' squeeze law."""
        qdd, nj = solution.joint_accelerations, self.nj
        q_ref, v_ref = self.integrator.step(snap.q[-nj:], snap.v[-nj:], qdd[-nj:])
        torque_limit = self.robot.limits.effort.copy()
        kp, kd = self.gains.gains(snap.q, self.time_s)
        self.gripper.apply(snap.q[7:], kp, q_ref, v_ref, torque_limit)
        names = list(self.contacts)
        wrenches = np.array([solution.contact_wrenches[n] for n in names]) if names else np.zeros((0, 6))
        return ControlReferences(
            time_s=self.time_s, mode=LoopMode.TRACK, joint_accelerations=qdd.copy(),
            contact_frame_ids=tuple(self.contacts[n].frame_id for n in names), contact_wrenches=wrenches,
            joint_positions=q_ref, joint_velocities=v_ref, kp=kp, kd=kd, torque_limit=torque_limit,
            damping_gain=self.robot.config.damping_gain)

    # ---- status -----------------------------------------------------------------------------------
    def status(self) -> ControllerStatus:
        return ControllerStatus(self.state, self.fault, self.qp_status, self.qp_solve_time_s, self.update_time_s,
                                self.qp_failures, self.goals.task_statuses(self._snapshot, self.time_s),
                                {n: c.activation for n, c in self.contacts.items()}, list(self.faults.messages))

    def hand_pose(self, hand: str) -> pin.SE3:
        """Current gripper-frame pose (world) from the last update."""
        return self._snapshot.placement(self.goals.hand_frames[self.goals.hand(hand)]).copy()
