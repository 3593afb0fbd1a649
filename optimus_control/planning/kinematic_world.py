"""A deterministic kinematic stand-in for the controller and perception, for unit tests and dry runs.

Hands move in straight lines at a constant speed towards their targets; a gripper closed with its
fingertips between a box's top and bottom, centred over it, carries the box; an opened gripper lets
the box fall straight down onto a bin floor or the table. Perception reports every box and bin
exactly. There is no physics, no contact and no vision here: this exercises the planner's logic
(ordering, hand choice, replanning, retries, faults), never the robot's ability to do the job;
physical behaviour is tested against the PyBullet sim.

Failure injection: :meth:`fail_next_grasps` (the box slips out when the fingers close),
:meth:`drop_after` (a carried box falls after the hand travelled a distance), :meth:`move_box`,
:meth:`retrack` (perception gives a box a new track id), :meth:`inject_fault` (controller fault).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from optimus_control.model import RobotModel
from optimus_control.planning.geometry import Pose
from optimus_control.planning.interfaces import (
    GAZE_TASK,
    HELD,
    ControllerStatus,
    PerceivedObject,
    PerceptionSnapshot,
    TaskStatus,
    hand_task,
)

REACHED_TOLERANCE_M = 0.005
SQUEEZE_BELOW_M = 0.05  # a finger command below this closes on whatever is between the fingers


@dataclass
class KinematicBox:
    track_id: int
    object_class: str
    position_m: np.ndarray
    size_m: np.ndarray
    yaw_rad: float = 0.0
    held_by: str | None = None
    held_offset_m: np.ndarray = field(default_factory=lambda: np.zeros(3))
    grasped_at_m: np.ndarray | None = None  # hand position when grasped


@dataclass
class KinematicBin:
    object_class: str
    position_m: np.ndarray  # centre of the outer box
    size_m: np.ndarray
    track_id: int = 0


@dataclass
class _Hand:
    position_m: np.ndarray
    rotation: np.ndarray
    target: Pose | None = None
    target_stamp_s: float | None = None
    finger_m: float = 0.02


class KinematicWorld:
    """Implements :class:`ControllerClient` and :class:`PerceptionClient` over a toy kinematic scene.

    Args:
        base_pose: base_link in odom (fixed: the robot does not walk here).
        hand_homes: initial gripper pose of each hand, in odom.
        table_height_m: surface a released box lands on outside the bins.
        hand_speed_mps: straight-line speed of the hands.
        fingertip_below_gripper_m: fingertips below the gripper frame (a box is caught between them).
        hide_held: perception leaves out boxes in a gripper; a released box comes back under a new track id.
    """

    def __init__(self, base_pose: Pose, hand_homes: dict[str, Pose], table_height_m: float,
                 hand_speed_mps: float = 0.5, fingertip_below_gripper_m: float = 0.04, hide_held: bool = False):
        self._base = base_pose
        self.hands = {name: _Hand(p.position.copy(), p.rotation.copy()) for name, p in hand_homes.items()}
        self.table_height_m = table_height_m
        self.hand_speed_mps = hand_speed_mps
        self.fingertip_below_gripper_m = fingertip_below_gripper_m
        self.hide_held = hide_held
        self.hand_floor_m: dict[str, float] = {}  # per hand: lowest height it can reach (its targets below stay unreached)
        self.report_clamping = False  # report targets below a hand's floor as clamped (as the controller does)
        self.boxes: list[KinematicBox] = []
        self.bins: list[KinematicBin] = []
        self.time_s = 1.0
        self.fault: str | None = None
        self.postures: list[str] = []
        self.gaze: np.ndarray | None = None
        self.grasps_closed = 0
        self.hand_targets_sent = 0
        self._fail_grasps = 0
        self._drop_after_m: float | None = None
        self._next_track = 100

    @classmethod
    def standing(cls, robot: RobotModel, table_height_m: float, **kwargs) -> KinematicWorld:
        """The robot in its standing posture at the odom origin, hands at their rest poses."""
        q = robot.standing_configuration()
        base_se3 = robot.frame_placement(q, robot.config.base_frame)
        base = Pose(base_se3.translation.copy(), base_se3.rotation.copy())
        homes = {}
        for hand in robot.config.hands:
            grip = robot.frame_placement(q, hand.gripper_frame)
            homes[hand.name] = Pose(grip.translation.copy(), grip.rotation.copy())
        return cls(base, homes, table_height_m, **kwargs)

    # ---- scene -------------------------------------------------------------------------------
    def add_box(self, object_class: str, position_m, size_m, yaw_rad: float = 0.0) -> KinematicBox:
        self._next_track += 1
        box = KinematicBox(self._next_track, object_class, np.asarray(position_m, float), np.asarray(size_m, float),
                           yaw_rad)
        self.boxes.append(box)
        return box

    def add_bin(self, object_class: str, position_m, size_m) -> KinematicBin:
        self._next_track += 1
        b = KinematicBin(object_class, np.asarray(position_m, float), np.asarray(size_m, float), self._next_track)
        self.bins.append(b)
        return b

    def bin_holding(self, box: KinematicBox, above_too: bool = False) -> KinematicBin | None:
        """The bin the box is in (or, with ``above_too``, over)."""
        for b in self.bins:
            if np.all(np.abs(box.position_m[:2] - b.position_m[:2]) <= 0.5 * b.size_m[:2]) and \
                    (above_too or box.position_m[2] < b.position_m[2] + 0.5 * b.size_m[2]):
                return b
        return None

    # ---- failure injection -------------------------------------------------------------------
    def fail_next_grasps(self, n: int) -> None:
        self._fail_grasps = n

    def drop_after(self, travel_m: float) -> None:
        """The next carried box falls once the hand is ``travel_m`` from where it grasped it."""
        self._drop_after_m = travel_m

    def move_box(self, box: KinematicBox, position_m) -> None:
        box.position_m = np.asarray(position_m, float)

    def retrack(self, box: KinematicBox) -> None:
        self._next_track += 1
        box.track_id = self._next_track

    def inject_fault(self, message: str) -> None:
        self.fault = message

    # ---- ControllerClient --------------------------------------------------------------------
    def send_hand_target(self, hand: str, pose: Pose, stamp_s: float) -> None:
        h = self.hands[hand]
        h.target, h.target_stamp_s = pose, stamp_s
        self.hand_targets_sent += 1

    def send_gripper(self, hand: str, finger_position_m: float, max_force_n: float, stamp_s: float) -> None:
        h = self.hands[hand]
        squeeze = finger_position_m < min(h.finger_m, SQUEEZE_BELOW_M)
        h.finger_m = finger_position_m
        held = next((b for b in self.boxes if b.held_by == hand), None)
        if squeeze and held is None:
            self.grasps_closed += 1
            box = self._box_between_fingers(h)
            if box is not None and self._fail_grasps > 0:
                self._fail_grasps -= 1
            elif box is not None:
                box.held_by, box.held_offset_m = hand, box.position_m - h.position_m
                box.grasped_at_m = h.position_m.copy()
        elif finger_position_m >= SQUEEZE_BELOW_M and held is not None:
            self._let_fall(held)

    def send_gaze(self, point_m, stamp_s: float) -> None:
        self.gaze = np.asarray(point_m, float)

    def send_posture(self, preset: str, stamp_s: float) -> None:
        self.postures.append(preset)

    def status(self) -> ControllerStatus:
        tasks = {GAZE_TASK: TaskStatus(True, 0.0, None)}
        for name, h in self.hands.items():
            if h.target is None:
                continue
            err = float(np.linalg.norm(h.target.position - h.position_m))
            clamped = self.report_clamping and h.target.position[2] < self.hand_floor_m.get(name, -np.inf)
            tasks[hand_task(name)] = TaskStatus(err < REACHED_TOLERANCE_M, err, h.target_stamp_s, clamped)
        return ControllerStatus(self.time_s, tasks, self.fault)

    def base_pose(self) -> Pose:
        return self._base

    # ---- PerceptionClient --------------------------------------------------------------------
    def snapshot(self) -> PerceptionSnapshot:
        objects = [PerceivedObject(b.track_id, b.object_class, Pose.from_position_yaw(b.position_m.copy(), b.yaw_rad),
                                   b.size_m.copy(), HELD if b.held_by else "tracked")
                   for b in self.boxes if not (self.hide_held and b.held_by)]
        objects += [PerceivedObject(b.track_id, b.object_class, Pose.from_position_yaw(b.position_m.copy()),
                                    b.size_m.copy()) for b in self.bins]
        return PerceptionSnapshot(self.time_s, tuple(objects))

    # ---- time --------------------------------------------------------------------------------
    def step(self, dt_s: float) -> None:
        self.time_s += dt_s
        if self.fault:
            return
        for name, h in self.hands.items():
            if h.target is not None:
                delta = h.target.position - h.position_m
                dist = float(np.linalg.norm(delta))
                travel = self.hand_speed_mps * dt_s
                h.position_m = h.target.position.copy() if dist <= travel else h.position_m + delta * (travel / dist)
                h.position_m[2] = max(h.position_m[2], self.hand_floor_m.get(name, -np.inf))
                h.rotation = h.target.rotation.copy()
            for box in self.boxes:
                if box.held_by == name:
                    box.position_m = h.position_m + box.held_offset_m
                    if self._drop_after_m is not None and \
                            np.linalg.norm(h.position_m - box.grasped_at_m) >= self._drop_after_m:
                        self._drop_after_m = None
                        self._let_fall(box)

    def _box_between_fingers(self, h: _Hand) -> KinematicBox | None:
        for box in self.boxes:
            if box.held_by is None and np.linalg.norm(box.position_m[:2] - h.position_m[:2]) < 0.03:
                tip = h.position_m[2] - self.fingertip_below_gripper_m
                if box.position_m[2] - 0.5 * box.size_m[2] < tip < box.position_m[2] + 0.5 * box.size_m[2]:
                    return box
        return None

    def _let_fall(self, box: KinematicBox) -> None:
        box.held_by, box.grasped_at_m = None, None
        if self.hide_held:
            self.retrack(box)
        target = self.bin_holding(box, above_too=True)
        floor = target.position_m[2] - 0.5 * target.size_m[2] if target is not None else self.table_height_m
        box.position_m = np.array([box.position_m[0], box.position_m[1], floor + 0.5 * box.size_m[2]])
