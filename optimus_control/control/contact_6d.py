r"""A flat (surface) contact with a 6D wrench, e.g. a sole on the ground or a palm on a table.

The wrench :math:`f = [f_x, f_y, f_z, \tau_x, \tau_y, \tau_z]` is expressed in the contact frame at its
origin (z = contact normal, pointing out of the support into the robot). Constraints per contact:
rigid contact (zero spatial acceleration of the frame), a linearised friction pyramid, the centre of
pressure inside the support rectangle, a bounded yaw torque, and :math:`f_{min} \le f_z \le f_{max}`.

Adding or removing a contact ramps the normal-force bounds linearly over ``ramp_duration_s`` so the
force (and with it the joint torques) changes continuously: when removing, :math:`f_{z,max}` goes
from the full value to 0 while the contact still holds the frame; only then is it released.
"""

from __future__ import annotations

import numpy as np

from optimus_control.control.dynamics_snapshot import LOCAL, DynamicsSnapshot
from optimus_control.model.robot_config import SoleRectangle


class Contact6D:
    """One 6D contact with friction, CoP and normal-force limits and add/remove force ramps.

    Attributes:
        name: unique contact name (e.g. ``"foot_left"``).
        frame_id: Pinocchio frame of the contact surface.
        rectangle: support rectangle in the contact frame [m].
        mu: Coulomb friction coefficient [-].
        min_normal_force_n / max_normal_force_n: normal-force bounds at full activation [N].
        activation: 0 (released) .. 1 (fully loaded); scales the normal-force bounds.
    """

    def __init__(self, name: str, frame_id: int, rectangle: SoleRectangle, mu: float,
                 min_normal_force_n: float = 10.0, max_normal_force_n: float = 2000.0,
                 stabilisation_gain: float = 10.0):
        self.name, self.frame_id, self.rectangle = name, frame_id, rectangle
        self.mu = float(mu)
        self.min_normal_force_n, self.max_normal_force_n = float(min_normal_force_n), float(max_normal_force_n)
        self.stabilisation_gain = stabilisation_gain  # [1/s] damps residual contact-frame velocity
        self.activation = 1.0
        self._ramp_rate = 0.0  # activation change per second (> 0 adding, < 0 removing)
        self._ramp_force_n = self.max_normal_force_n  # normal-force bound at activation 1 while ramping
        self.last_normal_force_n = 0.0  # set by the controller from each solution
        self._rows: np.ndarray | None = None
        self.released = False

    # ---- ramps ----------------------------------------------------------------------------------
    def start_ramp(self, target_active: bool, duration_s: float, full_load_n: float | None = None) -> None:
        """Begin ramping the normal force in (True) or out (False) over duration_s (0 = immediate).

        The bound moves linearly between 0 and the contact's current load (removing) or
        ``full_load_n`` (adding; e.g. the robot weight), so the force slope is load / duration.
        """
        self.released = False
        if target_active:
            self._ramp_force_n = min(self.max_normal_force_n, full_load_n or self.max_normal_force_n)
        else:
            self._ramp_force_n = max(self.last_normal_force_n, self.min_normal_force_n)
        if duration_s <= 0:
            self.activation, self._ramp_rate = (1.0 if target_active else 0.0), 0.0
            self.released = not target_active
            return
        self._ramp_rate = (1.0 if target_active else -1.0) / duration_s

    def advance(self, dt_s: float) -> None:
        """Advance the ramp by one control period; marks ``released`` when a removal completes."""
        if self._ramp_rate == 0.0:
            return
        self.activation = float(np.clip(self.activation + self._ramp_rate * dt_s, 0.0, 1.0))
        if self.activation in (0.0, 1.0):
            self.released = self.activation == 0.0
            self._ramp_rate = 0.0

    @property
    def ramping(self) -> bool:
        return self._ramp_rate != 0.0

    # ---- QP rows --------------------------------------------------------------------------------
    def motion_constraint(self, snapshot: DynamicsSnapshot) -> tuple[np.ndarray, np.ndarray]:
        """(J, b) with J q_dd = b: zero contact acceleration, plus a damping term on residual velocity."""
        jacobian = snapshot.jacobian(self.frame_id, LOCAL)
        velocity = snapshot.velocity(self.frame_id, LOCAL)
        return jacobian, -snapshot.spatial_drift(self.frame_id, LOCAL) - self.stabilisation_gain * velocity

    def force_inequalities(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(C, l, u) with l <= C f <= u for this contact's wrench f (6)."""
        if self._rows is None:
            self._rows = self._constraint_rows()
        fmin = self.min_normal_force_n * self.activation if self.activation >= 1.0 and not self.ramping else 0.0
        fmax = (self._ramp_force_n if self.ramping else self.max_normal_force_n) * self.activation
        lower, upper = self._lower.copy(), self._upper.copy()
        lower[-1], upper[-1] = fmin, fmax
        return self._rows, lower, upper

    def _constraint_rows(self) -> np.ndarray:
        r, mu_in = self.rectangle, self.mu / np.sqrt(2.0)  # inner pyramid of the cone
        rows = [
            [1, 0, mu_in, 0, 0, 0],  # fx >= -mu fz
            [-1, 0, mu_in, 0, 0, 0],  # fx <= mu fz
            [0, 1, mu_in, 0, 0, 0],
            [0, -1, mu_in, 0, 0, 0],
            [0, 0, -r.x_min, 0, -1, 0],  # CoP_x = -tau_y / fz >= x_min
            [0, 0, r.x_max, 0, 1, 0],  # CoP_x <= x_max
            [0, 0, -r.y_min, 1, 0, 0],  # CoP_y = tau_x / fz >= y_min
            [0, 0, r.y_max, -1, 0, 0],  # CoP_y <= y_max
        ]
        # Yaw torque bounded by friction over the smaller half-size (conservative).
        lever = self.mu * min(-r.x_min, r.x_max, -r.y_min, r.y_max)
        rows += [[0, 0, lever, 0, 0, 1], [0, 0, lever, 0, 0, -1]]
        rows.append([0, 0, 1, 0, 0, 0])  # normal force bounds (last row)
        n = len(rows)
        self._lower = np.zeros(n)
        self._upper = np.full(n, 1e9)  # "no upper bound", finite for every solver
        return np.array(rows, dtype=float)
