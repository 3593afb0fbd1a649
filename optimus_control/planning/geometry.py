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


def rectangle_corners_xy(centre_xy, yaw_rad: float, size_xy) -> np.ndarray:
    """Corners (4, 2) [m], in order around it, of a rectangle of ``size_xy`` turned by ``yaw_rad`` about its centre:
    the footprint of an upright box (pose yaw and x/y size) on the horizontal plane."""
    half = 0.5 * np.asarray(size_xy, dtype=float)[:2]
    local = np.array([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]]) * half
    return np.asarray(centre_xy, dtype=float)[:2] + local @ rotation_z(yaw_rad)[:2, :2].T


def convex_polygons_overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Do two convex polygons (vertices (n, 2) in order around each, either direction) overlap or touch?

    Separating axis theorem: two convex polygons are apart exactly when the normal of one of their edges
    separates their projections, so testing the edge normals of both is exact (no sampling, no tolerance).
    """
    for poly in (a, b):
        edges = np.roll(poly, -1, axis=0) - poly
        normals = np.column_stack([-edges[:, 1], edges[:, 0]])
        pa, pb = a @ normals.T, b @ normals.T  # projections (vertices, axes)
        if np.any((pa.max(axis=0) < pb.min(axis=0)) | (pb.max(axis=0) < pa.min(axis=0))):
            return False
    return True


def _points_to_edges_m(points: np.ndarray, poly: np.ndarray) -> float:
    """Smallest distance [m] from any of ``points`` (k, 2) to any edge of the polygon ``poly`` (n, 2)."""
    start = poly
    edge = np.roll(poly, -1, axis=0) - poly
    rel = points[:, None, :] - start[None, :, :]  # (k, n, 2)
    length2 = np.maximum(np.einsum("nd,nd->n", edge, edge), 1e-18)
    t = np.clip(np.einsum("knd,nd->kn", rel, edge) / length2, 0.0, 1.0)
    return float(np.min(np.linalg.norm(rel - t[..., None] * edge[None, :, :], axis=2)))


def convex_polygon_distance_m(a, b) -> float:
    """Distance [m] between two convex polygons (vertices (n, 2) in order around each), 0 if they overlap.

    Exact: when two convex polygons are apart, a closest pair of points always has a vertex of one of them
    at one end, so the distance is the smallest vertex-to-edge distance taken both ways; overlap is told by
    :func:`convex_polygons_overlap`. Used to keep the finger pads' path a margin away from other boxes.
    """
    a, b = np.asarray(a, dtype=float)[:, :2], np.asarray(b, dtype=float)[:, :2]
    if convex_polygons_overlap(a, b):
        return 0.0
    return min(_points_to_edges_m(a, b), _points_to_edges_m(b, a))


def _line_capsule_interval(a, b, radius_m: float) -> tuple[float, float] | None:
    """The u-range [m] where the point (u, 0) is within ``radius_m`` of the segment ``a``-``b`` (given in (u, v)),
    or None: the u axis against the capsule around the segment (its end disks and the band along it)."""
    pieces = []
    for pu, pv in (a, b):
        if abs(pv) <= radius_m:
            w = math.sqrt(radius_m * radius_m - pv * pv)
            pieces.append((pu - w, pu + w))
    du, dv = b[0] - a[0], b[1] - a[1]
    length = math.hypot(du, dv)
    if length > 1e-12:
        du, dv = du / length, dv / length
        # Within the band: |cross-track offset| <= radius and 0 <= along-track position <= length.
        lo, hi = -math.inf, math.inf
        for coeff, offset, low, high in ((-dv, -a[1] * du, -radius_m, radius_m), (du, -a[1] * dv, 0.0, length)):
            # coeff * (u - a_u) + offset in [low, high]
            if abs(coeff) < 1e-12:
                if not low <= offset <= high:
                    lo, hi = math.inf, -math.inf
                continue
            ends = sorted(((low - offset) / coeff + a[0], (high - offset) / coeff + a[0]))
            lo, hi = max(lo, ends[0]), min(hi, ends[1])
        if lo <= hi:
            pieces.append((lo, hi))
    if not pieces:
        return None
    return min(p[0] for p in pieces), max(p[1] for p in pieces)


def crossbar_contact_interval_m(polygon_uv, half_length_m: float, margin_m: float) -> tuple[float, float] | None:
    """Where a crossbar moving along the u axis comes within ``margin_m`` of a convex polygon: the range of u [m]
    over which the segment {u} x [-half_length_m, half_length_m] is that close to it, or None if never.

    The crossbar is the leading face of a finger pad, the polygon another box's footprint in the pad's frame
    (u along the closing axis, v across), so the open pad clears the box with the margin while its face stays
    short of the range. Exact, in closed form: the crossbar at u is within the margin of the polygon exactly when
    the point (u, 0) is within it of the polygon stretched by +-half_length_m along v; that stretched polygon's
    boundary lies on the polygon's edges shifted by +-half_length_m and the v-segments through its vertices, so
    the ends of the range are the outermost crossings of the u axis with the margin-wide capsules around them.
    """
    pts = np.asarray(polygon_uv, dtype=float)[:, :2]
    h = float(half_length_m)
    if pts[:, 1].min() > h + margin_m or pts[:, 1].max() < -h - margin_m:
        return None  # wholly beside the crossbar's track, farther than the margin
    segments = []
    corners = pts.tolist()  # plain floats: this runs for every neighbour of every box planned
    for (u0, v0), (u1, v1) in zip(corners, corners[1:] + corners[:1]):
        segments += [((u0, v0 + h), (u1, v1 + h)), ((u0, v0 - h), (u1, v1 - h)), ((u0, v0 - h), (u0, v0 + h))]
    hits = [hit for a, b in segments if (hit := _line_capsule_interval(a, b, margin_m)) is not None]
    if not hits:
        return None
    return min(hit[0] for hit in hits), max(hit[1] for hit in hits)
