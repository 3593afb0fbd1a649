"""Everything the whole-body QP needs from Pinocchio at one state, computed once per control update.

Tasks and contacts read Jacobians and acceleration drifts from here instead of calling Pinocchio
themselves, so the expensive model update (mass matrix, non-linear effects, kinematics) happens once.
"""

from __future__ import annotations

import numpy as np
import pinocchio as pin

LOCAL = pin.ReferenceFrame.LOCAL
WORLD_ALIGNED = pin.ReferenceFrame.LOCAL_WORLD_ALIGNED


_LOWER_INDICES: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _lower_indices(n: int) -> tuple[np.ndarray, np.ndarray]:
    if n not in _LOWER_INDICES:
        _LOWER_INDICES[n] = np.tril_indices(n, -1)
    return _LOWER_INDICES[n]


def symmetric_from_upper(matrix: np.ndarray) -> np.ndarray:
    """Full symmetric copy of a matrix of which Pinocchio filled only the upper triangle (M, M^-1)."""
    full = matrix.copy()
    lower = _lower_indices(full.shape[0])
    full[lower] = full.T[lower]
    return full


class DynamicsSnapshot:
    """Model terms at (q, v): M (nv x nv), h = C v + g (nv), kinematics and drifts with q_dd = 0.

    Attributes:
        q: full configuration (nq) [m, quaternion xyzw, rad | m].
        v: full velocity (nv): base twist in the base frame, then joint velocities.
        mass_matrix: M(q), symmetric (nv x nv).
        nonlinear_effects: h(q, v) = C(q, v) v + g(q) (nv) [N, N m].
    """

    def __init__(self, model: pin.Model, data: pin.Data, q: np.ndarray, v: np.ndarray):
        self.model, self.data = model, data
        self.q, self.v = q, v
        pin.computeAllTerms(model, data, q, v)  # M (upper triangle), nle, J, com, Jcom, oMi
        # Kinematics with zero acceleration: body accelerations are then the drift terms J_dot v.
        pin.forwardKinematics(model, data, q, v, np.zeros(model.nv))
        pin.updateFramePlacements(model, data)
        self.mass_matrix = symmetric_from_upper(data.M)
        self.nonlinear_effects = data.nle.copy()
        self._jacobians: dict[tuple[int, pin.ReferenceFrame], np.ndarray] = {}
        self._com_drift: np.ndarray | None = None

    @property
    def nv(self) -> int:
        return self.model.nv

    def placement(self, frame_id: int) -> pin.SE3:
        """World placement of a frame."""
        return self.data.oMf[frame_id]

    def jacobian(self, frame_id: int, reference: pin.ReferenceFrame = WORLD_ALIGNED) -> np.ndarray:
        """6 x nv frame Jacobian [linear; angular] (cached per frame and reference)."""
        key = (frame_id, reference)
        if key not in self._jacobians:
            self._jacobians[key] = pin.getFrameJacobian(self.model, self.data, frame_id, reference)
        return self._jacobians[key]

    def velocity(self, frame_id: int, reference: pin.ReferenceFrame = WORLD_ALIGNED) -> np.ndarray:
        """Frame twist [linear; angular] (6) [m/s, rad/s]."""
        return pin.getFrameVelocity(self.model, self.data, frame_id, reference).vector

    def classical_drift(self, frame_id: int, reference: pin.ReferenceFrame = WORLD_ALIGNED) -> np.ndarray:
        """J_dot v for the classical acceleration (origin acceleration, angular acceleration) (6)."""
        return pin.getFrameClassicalAcceleration(self.model, self.data, frame_id, reference).vector

    def spatial_drift(self, frame_id: int, reference: pin.ReferenceFrame = LOCAL) -> np.ndarray:
        """J_dot v of the spatial acceleration; zero spatial acceleration keeps a rigid contact fixed."""
        return pin.getFrameAcceleration(self.model, self.data, frame_id, reference).vector

    @property
    def com_position(self) -> np.ndarray:
        return self.data.com[0]

    @property
    def com_jacobian(self) -> np.ndarray:
        """3 x nv CoM Jacobian (world frame)."""
        return self.data.Jcom

    @property
    def com_velocity(self) -> np.ndarray:
        return self.data.Jcom @ self.v

    @property
    def com_drift(self) -> np.ndarray:
        """CoM acceleration with q_dd = 0 (3) [m/s^2]."""
        if self._com_drift is None:
            pin.centerOfMass(self.model, self.data, self.q, self.v, np.zeros(self.model.nv))
            self._com_drift = self.data.acom[0].copy()
        return self._com_drift
