"""A short history of the robot's measured state (/joint_states, /odom) looked up at image timestamps.

Images arrive later than the state that was current when they were taken, so the camera pose must be
computed from the state at the image time, not the newest state. Joint positions are interpolated
linearly and the base pose with slerp between the two samples around the requested time; a time farther
than ``max_age_s`` from every sample is rejected with a reason rather than guessed.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass

import numpy as np

from optimus_control.errors import SensorDataError


@dataclass(frozen=True)
class StateLookup:
    """Full configuration q (Pinocchio order: base xyz, base quaternion xyzw, joints) or why there is none."""

    q: np.ndarray | None
    reason: str = ""


def _slerp_xyzw(q0: np.ndarray, q1: np.ndarray, s: float) -> np.ndarray:
    dot = float(np.dot(q0, q1))
    if dot < 0.0:
        q1, dot = -q1, -dot
    if dot > 0.9995:
        out = q0 + s * (q1 - q0)
    else:
        theta = np.arccos(np.clip(dot, -1.0, 1.0))
        out = (np.sin((1 - s) * theta) * q0 + np.sin(s * theta) * q1) / np.sin(theta)
    return out / np.linalg.norm(out)


class _Series:
    """Time-ordered samples (t, vector) with bounded length."""

    def __init__(self, max_samples: int):
        self.times: deque[float] = deque(maxlen=max_samples)
        self.values: deque[np.ndarray] = deque(maxlen=max_samples)

    def add(self, t_s: float, value: np.ndarray) -> None:
        if self.times and t_s < self.times[-1]:
            # Time went backwards (sim reset or bag loop): the old history no longer applies.
            self.times.clear()
            self.values.clear()
        if self.times and t_s == self.times[-1]:
            self.values[-1] = value
            return
        self.times.append(t_s)
        self.values.append(value)

    def around(self, t_s: float, max_age_s: float) -> tuple[int, int, float] | str:
        """Indices (i0, i1) and weight of i1 for time t_s, or a reason string when t_s is not covered."""
        if not self.times:
            return "no samples yet"
        times = self.times
        k = bisect.bisect_left(times, t_s)
        if k < len(times) and times[k] == t_s:
            return k, k, 0.0
        if 0 < k < len(times):
            t0, t1 = times[k - 1], times[k]
            if t1 - t0 <= 2.0 * max_age_s:
                return k - 1, k, (t_s - t0) / (t1 - t0)
        nearest = min((i for i in (k - 1, k) if 0 <= i < len(times)), key=lambda i: abs(times[i] - t_s))
        if abs(times[nearest] - t_s) <= max_age_s:
            return nearest, nearest, 0.0
        return (f"no sample within {max_age_s:.3f} s of t={t_s:.3f} s (samples span "
                f"[{times[0]:.3f}, {times[-1]:.3f}] s)")


class RobotStateBuffer:
    """Joint positions and base poses by time; ``lookup(t)`` gives the configuration q at an image time."""

    def __init__(self, joint_names: tuple[str, ...], max_age_s: float = 0.1, max_samples: int = 4000):
        self.joint_names = tuple(joint_names)
        self.max_age_s = float(max_age_s)
        self._joints = _Series(max_samples)
        self._base = _Series(max_samples)
        self._index_cache: dict[tuple[str, ...], np.ndarray] = {}

    def add_joint_state(self, t_s: float, names: list[str] | tuple[str, ...], positions) -> None:
        """One /joint_states sample; names may be in any order but must cover every actuated joint."""
        key = tuple(names)
        order = self._index_cache.get(key)
        if order is None:
            where = {n: i for i, n in enumerate(key)}
            missing = [n for n in self.joint_names if n not in where]
            if missing:
                raise SensorDataError(f"joint state lacks joints {missing[:6]}{'...' if len(missing) > 6 else ''} "
                                      f"({len(missing)} of {len(self.joint_names)} missing)")
            order = np.array([where[n] for n in self.joint_names], dtype=int)
            self._index_cache[key] = order
        positions = np.asarray(positions, dtype=float)
        if positions.shape[0] != len(key):
            raise SensorDataError(f"joint state has {len(key)} names but {positions.shape[0]} positions")
        values = positions[order]
        if not np.all(np.isfinite(values)):
            raise SensorDataError("joint state contains NaN/inf positions")
        self._joints.add(float(t_s), values)

    def add_base_pose(self, t_s: float, position_m, orientation_xyzw) -> None:
        """One /odom sample: base position [m] and orientation (x, y, z, w) in the odom frame."""
        quat = np.asarray(orientation_xyzw, dtype=float)
        pos = np.asarray(position_m, dtype=float)
        norm = np.linalg.norm(quat)
        if not (np.all(np.isfinite(pos)) and np.isfinite(norm) and norm > 1e-6):
            raise SensorDataError("odometry contains NaN/inf or a zero quaternion")
        self._base.add(float(t_s), np.concatenate([pos, quat / norm]))

    @property
    def has_state(self) -> bool:
        return bool(self._joints.times) and bool(self._base.times)

    def latest_time(self) -> float | None:
        if not self.has_state:
            return None
        return min(self._joints.times[-1], self._base.times[-1])

    def lookup(self, t_s: float) -> StateLookup:
        """Configuration at time t_s (interpolated), or None with the reason it cannot be given."""
        if not self._joints.times:
            return StateLookup(None, "no joint state received yet")
        if not self._base.times:
            return StateLookup(None, "no odometry received yet")
        j = self._joints.around(t_s, self.max_age_s)
        if isinstance(j, str):
            return StateLookup(None, f"joint states: {j}")
        b = self._base.around(t_s, self.max_age_s)
        if isinstance(b, str):
            return StateLookup(None, f"odometry: {b}")
        j0, j1, sj = j
        joints = self._joints.values[j0] + sj * (self._joints.values[j1] - self._joints.values[j0])
        b0, b1, sb = b
        base0, base1 = self._base.values[b0], self._base.values[b1]
        position = base0[:3] + sb * (base1[:3] - base0[:3])
        quat = _slerp_xyzw(base0[3:], base1[3:], sb)
        return StateLookup(np.concatenate([position, quat, joints]))
