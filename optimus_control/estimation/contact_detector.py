"""Foot contact detection from the measured normal force, with hysteresis."""

from __future__ import annotations

import numpy as np


class ContactDetector:
    """A foot is in contact once f_z > on_threshold and until f_z < off_threshold [N]."""

    def __init__(self, n_feet: int, on_threshold_n: float, off_threshold_n: float):
        if not off_threshold_n < on_threshold_n:
            raise ValueError(f"contact hysteresis needs off ({off_threshold_n} N) < on ({on_threshold_n} N)")
        self.on_threshold_n, self.off_threshold_n = on_threshold_n, off_threshold_n
        self.in_contact = np.zeros(n_feet, dtype=bool)

    def update(self, normal_forces_n: np.ndarray) -> np.ndarray:
        f = np.nan_to_num(np.asarray(normal_forces_n, dtype=float), nan=0.0)
        self.in_contact = np.where(self.in_contact, f > self.off_threshold_n, f > self.on_threshold_n)
        return self.in_contact.copy()
