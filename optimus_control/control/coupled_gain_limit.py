"""Joint PD gains limited by each joint group's coupled inertia at the current posture.

The torque loop applies ``tau = kp (q_ref - q) + kd (v_ref - v)`` once per period from the state at the
period's start: explicit in time. A mode of a joint group with apparent inertia ``I`` under damping ``kd``
decays only while ``kd dt / I < 2`` (each period multiplies its velocity by ``1 - kd dt / I``). The
start-up caps (:func:`~optimus_control.control.joint_gains.capped_joint_gains`) use each joint's own
inertia at the standing posture; they do not see modes that move several joints at once. With a shoulder
roll near -pi/2 the shoulder pitch and yaw axes line up: turning them against each other moves only the
small links between them, and the arm's own joint damping can drive that mode unstable.

The bound used here is the largest eigenvalue of ``dt * M_g^-1 K`` over the group, with ``M_g^-1`` the
group's block of the inverse floating-base mass matrix: the group's inertia with the rest of the robot
free, the lightest the group can appear (conservative).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


class CoupledGainLimit:
    """Per-joint factors (<= 1) on kp and kd keeping every group's most damped and stiffest mode stable.

    Args:
        groups: joint group name -> joint indices (the robot config's groups; one factor per group).
        n_joints: number of actuated joints.
        loop_period_s: period of the loop that applies the PD [s].
        max_damping_product: bound on ``dt * lambda_max(M_g^-1 Kd)`` (2 is the stability edge).
        max_stiffness_product: bound on ``dt^2 * lambda_max(M_g^-1 Kp)``.
    """

    def __init__(self, groups: Mapping[str, np.ndarray], n_joints: int, loop_period_s: float,
                 max_damping_product: float = 1.5, max_stiffness_product: float = 0.25):
        members = [np.asarray(j, dtype=int) for j in groups.values() if len(j)]
        size = max(len(j) for j in members)
        # Groups padded to one size with a joint index past the end (a zero row and column): all
        # eigenvalue problems then go to LAPACK in one batched call.
        self.index = np.full((len(members), size), n_joints, dtype=int)
        for g, joints in enumerate(members):
            self.index[g, :len(joints)] = joints
        self.n_joints = n_joints
        self.bounds = np.array([loop_period_s**2 / max_stiffness_product, loop_period_s / max_damping_product])

    def factors(self, inverse_mass_joints: np.ndarray, kp: np.ndarray, kd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(kp_factor, kd_factor), each (n_joints), from the joint block of the inverse floating-base
        mass matrix M^-1 (n_joints x n_joints, symmetric); 1 where a group is inside the bounds."""
        n = self.n_joints
        padded = np.zeros((n + 1, n + 1))
        padded[:n, :n] = inverse_mass_joints
        roots = np.zeros((2, n + 1))
        roots[0, :n], roots[1, :n] = np.sqrt(np.maximum(kp, 0.0)), np.sqrt(np.maximum(kd, 0.0))
        group_roots = roots[:, self.index]  # (2, groups, size)
        blocks = group_roots[..., :, None] * padded[self.index[:, :, None], self.index[:, None, :]] * group_roots[..., None, :]
        # Gershgorin: no eigenvalue exceeds a block's largest absolute row sum, so only blocks over the
        # bound by that test need their largest eigenvalue (usually an arm or none).
        scale = self.bounds[:, None]  # products / scale: dt^2 lambda(M^-1 Kp) / bound_p, dt lambda(M^-1 Kd) / bound_d
        candidates = np.abs(blocks).sum(axis=-1).max(axis=-1) * scale > 1.0
        factors = np.ones((2, n + 1))
        if candidates.any():
            pairs = np.argwhere(candidates)  # (gains kind k, group g), in the order blocks[candidates] lists them
            products = np.linalg.eigvalsh(blocks[candidates])[:, -1] * self.bounds[pairs[:, 0]]
            for (k, g), product in zip(pairs, products):
                if product > 1.0:
                    factors[k, self.index[g]] = 1.0 / product
        return factors[0, :n], factors[1, :n]
