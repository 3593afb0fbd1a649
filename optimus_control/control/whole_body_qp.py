r"""Task-space inverse dynamics as one QP over joint accelerations and contact wrenches.

Decision vector :math:`x = [\ddot q\ (n_v);\ f_1 (6); \dots; f_{n_c} (6)]`, contact wrenches in their
contact frames. The problem:

.. math::
    \min_x \ \sum_t \| W_t^{1/2} (A_t \ddot q - b_t) \|^2 + w_f \| f - f_{des} \|^2 + \epsilon \|\ddot q\|^2

    M_{fb} \ddot q + h_{fb} = J_{c,fb}^T f \quad \text{(floating-base rows of the dynamics)}

    J_c \ddot q = -\dot J_c \dot q - K_c J_c \dot q \quad \text{(rigid contacts)}

    -\tau_{max} \le M_a \ddot q + h_a - J_{c,a}^T f \le \tau_{max} \quad \text{(actuated rows)}

    \text{friction pyramid, CoP in the sole, yaw torque, } f_{z,min} \le f_z \le f_{z,max}

    \ddot q_{min}(q, \dot q) \le \ddot q_a \le \ddot q_{max}(q, \dot q) \quad \text{(position/velocity limits)}

The joint torques follow from the solution: :math:`\tau = M_a \ddot q + h_a - J_{c,a}^T f`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimus_control.control.contact_6d import Contact6D
from optimus_control.control.dynamics_snapshot import LOCAL, DynamicsSnapshot
from optimus_control.control.qp_solver import QpProblem
from optimus_control.control.tasks.task import Task
from optimus_control.model import JointLimits

BASE_DOF = 6


@dataclass
class QpSettings:
    """Numerical settings of the formulation.

    Attributes:
        force_regularisation_weight: w_f [cost / N^2]; pulls wrenches to an even load share.
        acceleration_regularisation: epsilon on q_dd [cost / (rad/s^2)^2]; keeps H positive definite.
        limit_horizon_s: look-ahead used to turn joint position/velocity limits into q_dd bounds [s].
        max_joint_acceleration: cap on |q_dd| of actuated joints [rad/s^2 | m/s^2].
        torque_margin: fraction of the effort limit the QP may use (the rest is headroom for feedback).
    """

    force_regularisation_weight: float = 1e-4
    acceleration_regularisation: float = 1e-6
    limit_horizon_s: float = 0.05
    max_joint_acceleration: float = 300.0
    torque_margin: float = 0.9


@dataclass
class QpSolution:
    joint_accelerations: np.ndarray  # q_dd (nv)
    contact_wrenches: dict[str, np.ndarray]  # name -> wrench (6) in the contact frame
    joint_torques: np.ndarray  # tau (n_joints) predicted by the model [N m | N]


class WholeBodyQp:
    """Builds the QP from tasks and contacts at one state, and reads solutions back."""

    def __init__(self, limits: JointLimits, gravity_mps2: float, total_mass_kg: float, settings: QpSettings | None = None):
        self.limits = limits
        self.settings = settings or QpSettings()
        self.weight_n = gravity_mps2 * total_mass_kg
        self._contacts: list[Contact6D] = []

    def build(self, snapshot: DynamicsSnapshot, tasks: list[Task], contacts: list[Contact6D],
              force_regularisation_weight: float | None = None, joint_limits: bool = True,
              torque_limits: bool = True) -> QpProblem:
        """The QP at one state. Fallbacks when it is infeasible: ``joint_limits=False`` keeps only the
        acceleration cap on the joints (braking at a position/velocity limit can contradict the torque
        limits); ``torque_limits=False`` drops the effort rows (the torque loop still saturates at the limits:
        a saturated but balancing robot is safer than a damped one that falls)."""
        s = self.settings
        nv, nc = snapshot.nv, len(contacts)
        nj = nv - BASE_DOF
        n = nv + 6 * nc
        self._contacts = list(contacts)
        # ---- cost --------------------------------------------------------------------------------
        rows, targets = [], []
        for task in tasks:
            if task.weight <= 0:
                continue
            obj = task.objective(snapshot)
            sw = np.sqrt(obj.row_weights)
            rows.append(sw[:, None] * obj.matrix)
            targets.append(sw * obj.vector)
        H = np.zeros((n, n))
        g = np.zeros(n)
        if rows:
            stacked, rhs = np.vstack(rows), np.concatenate(targets)
            H[:nv, :nv] = stacked.T @ stacked
            g[:nv] = -stacked.T @ rhs
        H[np.diag_indices(nv)] += s.acceleration_regularisation
        w_f = s.force_regularisation_weight if force_regularisation_weight is None else force_regularisation_weight
        total_activation = sum(c.activation for c in contacts)
        for k, c in enumerate(contacts):
            sl = slice(nv + 6 * k, nv + 6 * k + 6)
            H[sl, sl] += w_f * np.eye(6)
            share = c.activation / total_activation if total_activation > 0 else 0.0
            g[nv + 6 * k + 2] -= w_f * share * self.weight_n
        # ---- equalities: floating-base dynamics and rigid contacts ------------------------------
        M, h = snapshot.mass_matrix, snapshot.nonlinear_effects
        A = np.zeros((BASE_DOF + 6 * nc, n))
        b = np.zeros(BASE_DOF + 6 * nc)
        A[:BASE_DOF, :nv] = M[:BASE_DOF]
        b[:BASE_DOF] = -h[:BASE_DOF]
        jacobians = []
        for k, c in enumerate(contacts):
            J, rhs = c.motion_constraint(snapshot)
            jacobians.append(J)
            A[:BASE_DOF, nv + 6 * k: nv + 6 * k + 6] = -J[:, :BASE_DOF].T
            A[BASE_DOF + 6 * k: BASE_DOF + 6 * k + 6, :nv] = J
            b[BASE_DOF + 6 * k: BASE_DOF + 6 * k + 6] = rhs
        # ---- inequalities: torque limits and contact wrench constraints -------------------------
        n_force_rows = 11
        C = np.zeros((nj + n_force_rows * nc, n))
        lower = np.zeros(C.shape[0])
        upper = np.zeros(C.shape[0])
        tau_max = s.torque_margin * self.limits.effort
        C[:nj, :nv] = M[BASE_DOF:]
        for k, J in enumerate(jacobians):
            C[:nj, nv + 6 * k: nv + 6 * k + 6] = -J[:, BASE_DOF:].T
        lower[:nj] = -tau_max - h[BASE_DOF:] if torque_limits else -1e9
        upper[:nj] = tau_max - h[BASE_DOF:] if torque_limits else 1e9
        for k, c in enumerate(contacts):
            Cf, lf, uf = c.force_inequalities()
            r = slice(nj + n_force_rows * k, nj + n_force_rows * (k + 1))
            C[r, nv + 6 * k: nv + 6 * k + 6] = Cf
            lower[r], upper[r] = lf, uf
        # ---- bounds: joint position/velocity limits as acceleration bounds ----------------------
        lb = np.full(n, -1e9)
        ub = np.full(n, 1e9)
        if joint_limits:
            lb[BASE_DOF:nv], ub[BASE_DOF:nv] = self.joint_acceleration_bounds(snapshot.q[-nj:], snapshot.v[-nj:])
        else:
            lb[BASE_DOF:nv], ub[BASE_DOF:nv] = -s.max_joint_acceleration, s.max_joint_acceleration
        return QpProblem(H, g, A, b, C, lower, upper, lb, ub)

    def joint_acceleration_bounds(self, q: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """q_dd bounds that stop the joints at their position limits and keep |v| <= v_max over the horizon."""
        s, lim = self.settings, self.limits
        dt = s.limit_horizon_s
        upper = np.minimum(np.minimum(2.0 * (lim.upper - q - v * dt) / dt**2, (lim.velocity - v) / dt),
                           s.max_joint_acceleration)
        lower = np.maximum(np.maximum(2.0 * (lim.lower - q - v * dt) / dt**2, (-lim.velocity - v) / dt),
                           -s.max_joint_acceleration)
        # Already past a limit (or braking is impossible): keep a feasible interval around the brake.
        crossed = lower > upper
        mid = 0.5 * (lower + upper)
        lower[crossed], upper[crossed] = mid[crossed], mid[crossed]
        return lower, upper

    def read_solution(self, x: np.ndarray, snapshot: DynamicsSnapshot) -> QpSolution:
        nv = snapshot.nv
        qdd = x[:nv]
        wrenches = {c.name: x[nv + 6 * k: nv + 6 * k + 6].copy() for k, c in enumerate(self._contacts)}
        tau = snapshot.mass_matrix[BASE_DOF:] @ qdd + snapshot.nonlinear_effects[BASE_DOF:]
        for c in self._contacts:
            tau -= snapshot.jacobian(c.frame_id, LOCAL)[:, BASE_DOF:].T @ wrenches[c.name]
        return QpSolution(qdd.copy(), wrenches, tau)
