r"""Python reference implementation of the 1 kHz loop's torque law (the C loop in ``optimus_control.rt``).

At every tick, from the latest references and the fresh measured state (joint encoders plus the
estimator's floating-base pose and twist):

.. math::
    \tau = \mathrm{ID}(q, v, \ddot q_{ref})_a - \sum_c J_{c,a}^T f_{c,ref}
           + K_p (q_{ref} - q) + K_d (v_{ref} - v), \quad |\tau| \le \tau_{limit}

``ID`` is the recursive Newton-Euler algorithm on the floating-base model (actuated rows), ``J_c`` the
LOCAL Jacobian of each contact frame, so ``f_ref`` is the wrench in the contact frame. In DAMP mode
:math:`\tau = -k_{d,damp} v`. Non-finite references or state give DAMP. Library tests drive the
simulator with this function in lockstep; it is the oracle for cross-checking the C loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pinocchio as pin

from optimus_control.control.references import ControlReferences, LoopMode

BASE_DOF = 6


@dataclass
class TorqueCommand:
    torque: np.ndarray  # clamped joint torques (n_joints) [N m | N]
    unclamped_torque: np.ndarray  # before the clamp, for limit-violation checks
    mode: LoopMode


class ReferenceTracker:
    """Evaluate the loop's torque law with Pinocchio (one model + data owned by the tracker)."""

    def __init__(self, model: pin.Model, effort_limit: np.ndarray, damping_gain: float):
        self.model = model
        self.data = model.createData()
        self.effort_limit = np.asarray(effort_limit, dtype=float)
        self.damping_gain = float(damping_gain)

    def torque(self, refs: ControlReferences | None, q: np.ndarray, v: np.ndarray) -> TorqueCommand:
        """Torques for the full state q (nq), v (nv); ``refs`` None (not started) gives damping."""
        nj = self.model.nv - BASE_DOF
        joint_v = v[BASE_DOF:]
        if refs is None or refs.mode is LoopMode.DAMP or not refs.is_finite() or not (
                np.all(np.isfinite(q)) and np.all(np.isfinite(v))):
            gain = self.damping_gain if refs is None else refs.damping_gain
            tau = -gain * np.nan_to_num(joint_v)
            return TorqueCommand(np.clip(tau, -self.effort_limit, self.effort_limit), tau, LoopMode.DAMP)
        tau_full = pin.rnea(self.model, self.data, q, v, refs.joint_accelerations)
        tau = tau_full[BASE_DOF:].copy()
        if refs.contact_frame_ids:
            pin.computeJointJacobians(self.model, self.data, q)
            pin.updateFramePlacements(self.model, self.data)
            for frame_id, wrench in zip(refs.contact_frame_ids, refs.contact_wrenches):
                J = pin.getFrameJacobian(self.model, self.data, frame_id, pin.ReferenceFrame.LOCAL)
                tau -= J[:, BASE_DOF:].T @ wrench
        tau += refs.kp * (refs.joint_positions - q[-nj:]) + refs.kd * (refs.joint_velocities - joint_v)
        limit = np.minimum(self.effort_limit, refs.torque_limit)
        return TorqueCommand(np.clip(tau, -limit, limit), tau, LoopMode.TRACK)
