"""The controller's tasks and their goals: default tasks, hand / CoM / posture trajectories, goal checks."""

from __future__ import annotations

import numpy as np
import pinocchio as pin

from optimus_control.control.controller_status import GoalReport, TaskStatus
from optimus_control.control.dynamics_snapshot import DynamicsSnapshot
from optimus_control.control.min_jerk_trajectory import MinJerkSe3Trajectory, MinJerkVectorTrajectory
from optimus_control.control.reachable_workspace import ClampResult, ReachableWorkspace
from optimus_control.control.tasks import ComTask, FrameTask, GazeTask, PostureTask, Task
from optimus_control.control.wbc_settings import WbcSettings
from optimus_control.errors import GoalError, suggest
from optimus_control.model import RobotModel

ORIENTATION_ONLY = np.array([0, 0, 0, 1, 1, 1], dtype=float)
COM_HEIGHT_RANGE_M = (-0.15, 0.03)  # CoM height goals, relative to the standing posture's [m]
POSTURE_MOVE_DURATION_S = 0.5


class TaskGoals:
    """The tasks the QP tracks, and the goals that move their targets over time.

    Goals are checked here (a non-finite or unknown goal raises :class:`GoalError`, the task keeps its
    goal) and turned into min-jerk trajectories that :meth:`advance` samples into the task targets.
    ``tasks`` is one dict for the controller's lifetime: :meth:`reset` refills it.
    """

    def __init__(self, robot: RobotModel, settings: WbcSettings):
        cfg = robot.config
        self.robot, self.settings = robot, settings
        self.tasks: dict[str, Task] = {}
        self.hand_names = tuple(h.name for h in cfg.hands)
        self.hand_frames = {h.name: robot.frame_id(h.gripper_frame) for h in cfg.hands}
        self.presets = {"standing": robot.standing_joint_positions()}
        for name, joints in (settings.posture_presets or {}).items():
            self.presets[name] = robot.joint_vector({**cfg.standing_posture, **joints})
        self._workspaces = {h.name: ReachableWorkspace(robot.model, self.hand_frames[h.name]) for h in cfg.hands}
        self._hand_goals: dict[str, pin.SE3] = {}
        self._hand_trajectories: dict[str, MinJerkSe3Trajectory] = {}
        self._com_trajectory: MinJerkVectorTrajectory | None = None
        self._posture_trajectory: MinJerkVectorTrajectory | None = None
        z0 = robot.center_of_mass(robot.standing_configuration())[2]
        self.com_height_range_m = (z0 + COM_HEIGHT_RANGE_M[0], z0 + COM_HEIGHT_RANGE_M[1])

    # ---- set-up -----------------------------------------------------------------------------------
    def reset(self, snap: DynamicsSnapshot, support_frame_ids: list[int]) -> None:
        """Default tasks holding the current pose: CoM over the support, upright base and torso, feet and
        hands where they are, gaze, standing posture; no goal in progress."""
        t, cfg, r = self.settings.tasks, self.robot.config, self.robot
        self.tasks.clear()
        com = ComTask("com", t.com.weight, t.com.kp, t.com.kd_or_none)
        com.set_target(self._support_com_target(snap, support_frame_ids))
        self.tasks["com"] = com
        for name, frame, gains in (("base_orientation", cfg.base_frame, t.base_orientation),
                                   ("torso_orientation", cfg.torso_frame, t.torso_orientation)):
            task = FrameTask(name, r.frame_id(frame), gains.weight, gains.kp, gains.kd_or_none, ORIENTATION_ONLY)
            rotation = snap.placement(task.frame_id).rotation
            yaw = np.arctan2(rotation[1, 0], rotation[0, 0])  # upright with the current heading
            task.set_target(pin.SE3(pin.rpy.rpyToMatrix(0.0, 0.0, yaw), np.zeros(3)))
            self.tasks[name] = task
        for foot in cfg.feet:
            task = FrameTask(f"foot_{foot.name}", r.frame_id(foot.frame), t.feet.weight, t.feet.kp, t.feet.kd_or_none)
            task.set_target_from_snapshot(snap)
            self.tasks[task.name] = task
        for hand in self.hand_names:
            task = FrameTask(f"hand_{hand}", self.hand_frames[hand], t.hands.weight, t.hands.kp, t.hands.kd_or_none)
            task.set_target_from_snapshot(snap)
            self.tasks[task.name] = task
            self._hand_goals[hand] = task.target.copy()
        self._hand_trajectories.clear()
        self.tasks["gaze"] = GazeTask("gaze", r.frame_id(cfg.gaze_frame), t.gaze.weight, t.gaze.kp, t.gaze.kd_or_none)
        posture = PostureTask("posture", self.robot.n_joints, t.posture.weight, t.posture.kp, t.posture.kd_or_none)
        posture.set_target(self.presets["standing"])
        self.tasks["posture"] = posture
        self._posture_trajectory = None
        self._com_trajectory = None

    def _support_com_target(self, snap: DynamicsSnapshot, support_frame_ids: list[int]) -> np.ndarray:
        """Centre of the support rectangles (plus the configured offset) at the current CoM height."""
        rect, cfg = self.robot.config.sole, self.robot.config
        centre_local = np.array([(rect.x_min + rect.x_max) / 2, (rect.y_min + rect.y_max) / 2, 0.0])
        frames = support_frame_ids or [self.robot.frame_id(f.frame) for f in cfg.feet]
        target = np.mean([snap.placement(f).act(centre_local) for f in frames], axis=0)
        base = snap.placement(self.robot.frame_id(cfg.base_frame)).rotation
        yaw = np.arctan2(base[1, 0], base[0, 0])
        offset = np.array(self.settings.com_support_offset_m, dtype=float)
        target[:2] += np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]]) @ offset
        target[2] = snap.com_position[2]
        return target

    # ---- goals ----------------------------------------------------------------------------------------
    def hand(self, hand: str) -> str:
        """``hand`` if the robot has it; GoalError naming the hands otherwise."""
        if hand not in self.hand_frames:
            raise GoalError(f"unknown hand '{hand}'{suggest(hand, self.hand_frames)}; hands: {list(self.hand_frames)}")
        return hand

    def check_hand_target(self, hand: str, target: pin.SE3) -> str:
        """The hand's name if ``target`` is a finite pose with a proper rotation; GoalError otherwise."""
        hand = self.hand(hand)
        if not (np.all(np.isfinite(target.translation)) and np.all(np.isfinite(target.rotation))):
            raise GoalError(f"hand '{hand}' target rejected: non-finite pose (position {target.translation.tolist()}); "
                            "the hand keeps its previous goal")
        rotation = target.rotation
        if abs(np.linalg.det(rotation) - 1.0) > 1e-3 or np.linalg.norm(rotation.T @ rotation - np.eye(3)) > 1e-3:
            raise GoalError(f"hand '{hand}' target rejected: orientation is not a rotation (not unit quaternion?)")
        return hand

    def set_hand_target(self, hand: str, target: pin.SE3, snap: DynamicsSnapshot, time_s: float) -> GoalReport:
        """Move a checked hand target (:meth:`check_hand_target`) along a min-jerk path from the hand's
        current target; a target outside the reachable workspace is clamped into it and the report says so."""
        clamp = self.check_reach(hand, target.translation, snap)
        goal = pin.SE3(target.rotation.copy(), clamp.position_m)
        task: FrameTask = self.tasks[f"hand_{hand}"]
        start = task.target if task.target is not None else snap.placement(task.frame_id)
        s = self.settings
        trajectory = MinJerkSe3Trajectory(start, goal, time_s, s.hand_max_linear_speed_mps,
                                          s.hand_max_angular_speed_radps, s.hand_min_move_duration_s)
        self._hand_trajectories[hand] = trajectory
        self._hand_goals[hand] = goal
        message = f"hand '{hand}' target clamped to the reachable workspace: {clamp.reason}" if clamp.clamped else ""
        return GoalReport(True, clamp.clamped, message, clamp.position_m, trajectory.duration_s)

    def check_reach(self, hand: str, position_m: np.ndarray, snap: DynamicsSnapshot) -> ClampResult:
        """Where the workspace clamp puts a hand target at the posture of ``snap``."""
        workspace = self._workspaces[self.hand(hand)]
        pivot = snap.data.oMi[workspace.pivot_joint_id].translation
        return workspace.clamp(np.asarray(position_m, dtype=float), pivot)

    def set_gaze_target(self, point_m: np.ndarray) -> None:
        point = np.asarray(point_m, dtype=float)
        if point.shape != (3,) or not np.all(np.isfinite(point)):
            raise GoalError(f"gaze target rejected: expected 3 finite numbers, got {point_m!r}")
        self.tasks["gaze"].set_target(point)

    def set_com_height(self, height_m: float, time_s: float) -> GoalReport:
        """Move the CoM height (world z) along a min-jerk path, clamped to ``com_height_range_m``."""
        if not np.isfinite(height_m):
            raise GoalError(f"CoM height rejected: {height_m!r}")
        com: ComTask = self.tasks["com"]
        lo, hi = self.com_height_range_m
        clamped = float(np.clip(height_m, lo, hi))
        goal = com.target.copy()
        goal[2] = clamped
        self._com_trajectory = MinJerkVectorTrajectory(com.target, goal, time_s, self.settings.com_max_speed_mps)
        message = f"CoM height {height_m:.3f} m clamped to [{lo:.3f}, {hi:.3f}] m" if clamped != height_m else ""
        return GoalReport(True, clamped != height_m, message, goal, self._com_trajectory.duration_s)

    def set_posture(self, preset: str, time_s: float) -> None:
        if preset not in self.presets:
            raise GoalError(f"unknown posture preset '{preset}'{suggest(preset, self.presets)}; presets: {sorted(self.presets)}")
        task: PostureTask = self.tasks["posture"]
        self._posture_trajectory = MinJerkVectorTrajectory(task.target, self.presets[preset], time_s,
                                                           POSTURE_MOVE_DURATION_S)

    # ---- run time -------------------------------------------------------------------------------------
    def advance(self, time_s: float) -> None:
        """Sample the trajectories in progress at ``time_s`` into the task targets."""
        for hand, trajectory in self._hand_trajectories.items():
            self.tasks[f"hand_{hand}"].set_target(*trajectory.sample(time_s))
        self._hand_trajectories = {h: tr for h, tr in self._hand_trajectories.items() if not tr.finished(time_s - 1.0)}
        if self._com_trajectory is not None:
            self.tasks["com"].set_target(*self._com_trajectory.sample(time_s))
        if self._posture_trajectory is not None:
            position, velocity, _ = self._posture_trajectory.sample(time_s)
            self.tasks["posture"].set_target(position, velocity)

    def task_statuses(self, snap: DynamicsSnapshot | None, time_s: float) -> dict[str, TaskStatus]:
        """Tracking of every task; hands also against their final goal (``goal_reached`` once they stopped
        within ``hand_position_tolerance_m`` / ``hand_orientation_tolerance_rad``); other tasks count as reached."""
        s, out = self.settings, {}
        for name, task in self.tasks.items():
            status = TaskStatus(name, task.weight, task.error_norm())
            if name.startswith("hand_") and snap is not None:
                hand = name.removeprefix("hand_")
                goal, pose = self._hand_goals.get(hand), snap.placement(task.frame_id)
                if goal is not None:
                    status.position_error_m = float(np.linalg.norm(goal.translation - pose.translation))
                    status.orientation_error_rad = float(np.linalg.norm(pin.log3(goal.rotation @ pose.rotation.T)))
                    status.moving = hand in self._hand_trajectories and not self._hand_trajectories[hand].finished(time_s)
                    status.goal_reached = (not status.moving and status.position_error_m <= s.hand_position_tolerance_m
                                           and status.orientation_error_rad <= s.hand_orientation_tolerance_rad)
            else:
                status.goal_reached = True
            out[name] = status
        return out
