"""What the whole-body controller sends to the 1 kHz loop at each update (the lock-free channel's payload)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

import numpy as np


class LoopMode(str, Enum):
    """Mode requested from the 1 kHz loop."""

    TRACK = "track"  # tau = ID(q, v, q_dd_ref) - sum J_c^T f_ref + Kp (q_ref - q) + Kd (v_ref - v)
    DAMP = "damp"  # tau = -kd_damp v  (safe fallback)


@dataclass
class ControlReferences:
    """References for the torque law; every array is finite whenever ``mode`` is TRACK.

    Attributes:
        time_s: controller time at which they were computed [s].
        joint_accelerations: q_dd_ref (nv): base (6) then joints [m/s^2, rad/s^2].
        contact_frame_ids: Pinocchio frame of each active contact.
        contact_wrenches: f_ref (n_contacts, 6) in each contact frame at its origin [N, N m].
        joint_positions / joint_velocities: q_ref, v_ref (n_joints) [rad | m], [rad/s | m/s].
        kp / kd: joint PD gains (n_joints).
        torque_limit: per-joint |tau| clamp (n_joints) [N m | N] (gripper force limits live here).
        damping_gain: kd used in DAMP mode [N m s/rad].
    """

    time_s: float
    mode: LoopMode
    joint_accelerations: np.ndarray
    contact_frame_ids: tuple[int, ...]
    contact_wrenches: np.ndarray
    joint_positions: np.ndarray
    joint_velocities: np.ndarray
    kp: np.ndarray
    kd: np.ndarray
    torque_limit: np.ndarray
    damping_gain: float
    notes: list[str] = field(default_factory=list)

    def is_finite(self) -> bool:
        arrays = (self.joint_accelerations, self.contact_wrenches, self.joint_positions, self.joint_velocities,
                  self.kp, self.kd, self.torque_limit)
        # A NaN or inf anywhere makes the sum non-finite (inf - inf is NaN), so one check per array suffices.
        return all(math.isfinite(float(np.sum(a))) for a in arrays)
