"""A conservative reachable workspace per hand: a shell around a pivot joint, above a floor height.

The pivot is the first joint of the hand's kinematic chain below the floating base (the waist for a
humanoid), so bending the torso counts as reach; the arm alone could not reach a table top.

Hand targets outside it are clamped to the nearest point inside (and reported), so an unreachable goal
moves the hand as far as it sensibly can instead of stretching the whole body towards it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pinocchio as pin


@dataclass
class ClampResult:
    position_m: np.ndarray
    clamped: bool
    reason: str = ""


class ReachableWorkspace:
    """Shell ``min_radius <= |p - pivot| <= max_radius`` and ``z >= min_height`` (world frame).

    The maximum radius is the summed link lengths from the pivot joint to the hand frame (the chain
    fully stretched) times ``reach_fraction`` (default 0.7: a stretched chain is singular, and leaning
    that far would move the CoM out of the support).
    """

    def __init__(self, model: pin.Model, hand_frame_id: int, reach_fraction: float = 0.7,
                 min_radius_m: float = 0.25, min_height_m: float = 0.1, root_joint_id: int = 1):
        frame = model.frames[hand_frame_id]
        length = float(np.linalg.norm(frame.placement.translation))
        joint = frame.parentJoint
        while model.parents[joint] > root_joint_id:
            length += float(np.linalg.norm(model.jointPlacements[joint].translation))
            joint = model.parents[joint]
        self.pivot_joint_id = joint
        self.max_radius_m = reach_fraction * length
        self.min_radius_m = min_radius_m
        self.min_height_m = min_height_m

    def clamp(self, target_m: np.ndarray, pivot_m: np.ndarray) -> ClampResult:
        p = np.array(target_m, dtype=float)
        reasons = []
        offset = p - pivot_m
        distance = float(np.linalg.norm(offset))
        if distance > self.max_radius_m:
            p = pivot_m + offset * (self.max_radius_m / distance)
            reasons.append(f"{distance:.3f} m from the pivot, beyond the reach of {self.max_radius_m:.3f} m")
        elif distance < self.min_radius_m:
            direction = offset / distance if distance > 1e-9 else np.array([1.0, 0.0, 0.0])
            p = pivot_m + direction * self.min_radius_m
            reasons.append(f"{distance:.3f} m from the pivot, inside the body (min {self.min_radius_m:.3f} m)")
        if p[2] < self.min_height_m:
            reasons.append(f"height {p[2]:.3f} m below the floor limit {self.min_height_m:.3f} m")
            p[2] = self.min_height_m
        return ClampResult(p, bool(reasons), "; ".join(reasons))
