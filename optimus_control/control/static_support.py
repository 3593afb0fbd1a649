"""Foot wrenches that carry a robot standing still: the feed-forward of a loop with no QP above it."""

from __future__ import annotations

import numpy as np

from optimus_control.model import RobotModel

GRAVITY_MPS2 = 9.81


def static_foot_wrenches(robot: RobotModel, q: np.ndarray) -> np.ndarray:
    """(n_feet, 6) [force; torque] per configured foot, in its sole frame at the sole origin, at configuration q.

    Each foot carries an equal share of the weight with its centre of pressure level with the centre of
    mass in x (the moment about the sole origin is r x f, r from the origin to that point).
    """
    share, com = robot.total_mass * GRAVITY_MPS2 / len(robot.config.feet), robot.center_of_mass(q)
    wrenches = []
    for foot in robot.config.feet:
        sole = robot.frame_placement(q, foot.frame)
        r = sole.rotation.T @ np.array([com[0] - sole.translation[0], 0.0, 0.0])
        f = sole.rotation.T @ np.array([0.0, 0.0, share])
        wrenches.append(np.concatenate([f, np.cross(r, f)]))
    return np.array(wrenches)
