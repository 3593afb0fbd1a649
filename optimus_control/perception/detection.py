"""One object seen in one image, in the odom frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Detection:
    """A box or bin measured in one frame.

    ``size_m`` is (length along yaw, width, height) with length >= width for boxes; ``position_m`` is
    the centre of the cuboid (bins: of their outer hull). ``partial`` marks a top face cut by the image
    border or by something nearer: its size (and so its centre) is only a lower bound.
    """

    class_name: str  # colour class of a box, the bin class, or 'unknown'
    position_m: np.ndarray  # (3,) odom
    yaw_rad: float  # about odom z, in (-pi/2, pi/2]
    size_m: np.ndarray  # (3,)
    is_bin: bool = False
    partial: bool = False
    top_area_m2: float = 0.0
    colour_distance: float = 0.0
    pixels: int = 0
