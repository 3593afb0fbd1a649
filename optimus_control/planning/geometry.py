"""Small rigid-body helpers for planning: poses as position + rotation matrix, yaw about the vertical.

Planning works with upright boxes and bins on horizontal surfaces, so most of it is 2-D yaw plus
height; full 3-D rotations appear only in hand targets (a top grasp of a gripper).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Pose:
    """A rigid transform: ``position`` [m] (3,) and ``rotation`` (3, 3), both in the frame named by its user."""

    position: np.ndarray
    rotation: np.ndarray

    @staticmethod
    def from_position_yaw(position, yaw_rad: float = 0.0) -> Pose:
        return Pose(np.asarray(position, dtype=float).reshape(3), rotation_z(yaw_rad))

    @staticmethod
    def from_position_quaternion(position, quat_xyzw) -> Pose:
        return Pose(np.asarray(position, dtype=float).reshape(3), quaternion_to_matrix(quat_xyzw))

    @property
    def quaternion_xyzw(self) -> np.ndarray:
        return matrix_to_quaternion(self.rotation)

    @property
    def yaw_rad(self) -> float:
        return yaw_of(self.rotation)

    def transform_point(self, point) -> np.ndarray:
        """``point`` given in this pose's child frame -> the parent frame."""
        return self.rotation @ np.asarray(point, dtype=float) + self.position

    def inverse(self) -> Pose:
        rt = self.rotation.T
        return Pose(-rt @ self.position, rt)

    def compose(self, other: Pose) -> Pose:
        """self * other: ``other`` expressed in this pose's child frame -> the parent frame."""
        return Pose(self.transform_point(other.position), self.rotation @ other.rotation)

    def translated(self, offset) -> Pose:
        return Pose(self.position + np.asarray(offset, dtype=float), self.rotation)


def rotation_z(yaw_rad: float) -> np.ndarray:
    c, s = math.cos(yaw_rad), math.sin(yaw_rad)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def yaw_of(rotation: np.ndarray) -> float:
    """Heading of the rotated x axis projected on the horizontal plane [rad]."""
    return math.atan2(rotation[1, 0], rotation[0, 0])


def wrap_angle(angle_rad: float) -> float:
    """Angle wrapped to [-pi, pi)."""
    return (angle_rad + math.pi) % (2.0 * math.pi) - math.pi


def wrap_half_turn(angle_rad: float) -> float:
    """Angle wrapped to [-pi/2, pi/2): the yaw of an axis that is the same after a half turn."""
    return (angle_rad + math.pi / 2.0) % math.pi - math.pi / 2.0


def quaternion_to_matrix(quat_xyzw) -> np.ndarray:
    x, y, z, w = (float(v) for v in quat_xyzw)
    n = x * x + y * y + z * z + w * w
    if not math.isfinite(n) or n < 1e-12:
        raise ValueError(f"quaternion {list(quat_xyzw)} is not a rotation (norm {math.sqrt(n) if n >= 0 else n})")
    s = 2.0 / n
    return np.array([
        [1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w)],
        [s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w)],
        [s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y)],
    ])


def matrix_to_quaternion(rotation: np.ndarray) -> np.ndarray:
    """Rotation matrix -> unit quaternion [x, y, z, w] with w >= 0."""
    m = np.asarray(rotation, dtype=float)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0.0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s]
    quat = np.array(q)
    quat /= np.linalg.norm(quat)
    return -quat if quat[3] < 0 else quat


def distance_to_segment(point, start, end) -> float:
    """Euclidean distance [m] from ``point`` to the segment ``start``-``end``."""
    p, a, b = (np.asarray(v, dtype=float) for v in (point, start, end))
    ab = b - a
    denom = float(ab @ ab)
    t = 0.0 if denom < 1e-12 else min(1.0, max(0.0, float((p - a) @ ab) / denom))
    return float(np.linalg.norm(p - (a + t * ab)))
