"""Colour classes by nearest prototype in CIE Lab, with lightness down-weighted.

Shading changes lightness far more than hue and chroma (a top face and a side face of one box differ
mostly in L), so the distance weights L by ``l_weight`` and compares a*, b* fully.
"""

from __future__ import annotations

import cv2
import numpy as np

from optimus_control.perception.params import ColourClass


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """Lab (L in 0..100, a and b about -128..127) of uint8 RGB pixels of any shape (..., 3)."""
    arr = np.asarray(rgb, dtype=np.float32).reshape(-1, 1, 3) / 255.0
    lab = cv2.cvtColor(arr, cv2.COLOR_RGB2Lab)
    return lab.reshape(np.shape(rgb))


class ColourClassifier:
    """Maps a colour (Lab) to the nearest configured class, or ``unknown`` when none is close."""

    def __init__(self, classes: tuple[ColourClass, ...], max_distance: float, l_weight: float, unknown: str = "unknown"):
        self.classes = tuple(classes)
        self.names = tuple(c.name for c in classes)
        self.unknown = unknown
        self.max_distance = float(max_distance)
        self.weights = np.array([l_weight, 1.0, 1.0], dtype=np.float32)
        if classes:
            self.prototypes_lab = rgb_to_lab(np.array([c.rgb for c in classes], dtype=np.uint8))
        else:
            self.prototypes_lab = np.zeros((0, 3), dtype=np.float32)

    def distances(self, lab: np.ndarray) -> np.ndarray:
        """Weighted Lab distance from one colour to every prototype."""
        diff = (self.prototypes_lab - np.asarray(lab, dtype=np.float32)) * self.weights
        return np.sqrt(np.sum(diff * diff, axis=1))

    def classify(self, lab: np.ndarray) -> tuple[str, float]:
        """(class name, distance) for one Lab colour."""
        if not self.classes:
            return self.unknown, float("inf")
        d = self.distances(lab)
        best = int(np.argmin(d))
        if d[best] > self.max_distance:
            return self.unknown, float(d[best])
        return self.names[best], float(d[best])

    def rgb_of(self, name: str) -> tuple[int, int, int]:
        """Display colour of a class (grey for classes without a prototype)."""
        for c in self.classes:
            if c.name == name:
                return c.rgb
        return (128, 128, 128)
