"""Dynamics: the C kernels (RNEA, gravity, nonlinear effects, CRBA, frame placements and Jacobians).

Built from a Pinocchio model (which has already merged fixed joints into frames), called with numpy
arrays in Pinocchio's conventions: q with the free-flyer quaternion (x y z qx qy qz qw), v and a with the
base twist in the base frame ([linear; angular]). Every kernel takes an optional ``out=`` array so the
hot path allocates nothing. The methods are the C methods themselves (this class subclasses the C type),
so one Python call costs the C kernel plus argument checks, no Python frame.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import pinocchio as pin

from optimus_control.errors import FrameError, ModelError, suggest
from optimus_control.rt import _rtcore

if TYPE_CHECKING:
    from optimus_control.model import RobotModel

# Joint type codes of the C tree (rt_dynamics.h).
FREEFLYER, REVOLUTE, PRISMATIC, REVOLUTE_UNBOUNDED = 0, 1, 2, 3
_AXES = {"X": (1.0, 0.0, 0.0), "Y": (0.0, 1.0, 0.0), "Z": (0.0, 0.0, 1.0)}
# Column layout of a joint row and a frame row (rt_dynamics.h: RT_JS_* / RT_FS_*).
_JOINT_COLS, _FRAME_COLS = 32, 13

SUPPORTED_JOINTS = (
    "JointModelFreeFlyer, JointModelR{X,Y,Z}, JointModelRevoluteUnaligned, JointModelRUB{X,Y,Z}, "
    "JointModelRevoluteUnboundedUnaligned, JointModelP{X,Y,Z}, JointModelPrismaticUnaligned"
)


def _joint_kind(model: pin.Model, j: int) -> tuple[int, tuple[float, float, float]]:
    joint = model.joints[j]
    name = joint.shortname()
    if name == "JointModelFreeFlyer":
        return FREEFLYER, (0.0, 0.0, 0.0)
    for prefix, kind in (("JointModelRUB", REVOLUTE_UNBOUNDED), ("JointModelR", REVOLUTE), ("JointModelP", PRISMATIC)):
        if name.startswith(prefix) and name[len(prefix):] in _AXES:
            return kind, _AXES[name[len(prefix):]]
    unaligned = {"JointModelRevoluteUnaligned": REVOLUTE, "JointModelRevoluteUnboundedUnaligned": REVOLUTE_UNBOUNDED,
                 "JointModelPrismaticUnaligned": PRISMATIC}
    if name in unaligned:
        axis = np.asarray(joint.extract().axis, dtype=float)
        return unaligned[name], tuple(axis / np.linalg.norm(axis))
    raise ModelError(f"joint '{model.names[j]}' is a {name}, which the C core does not support "
                     f"(supported: {SUPPORTED_JOINTS})")


def tree_arrays(model: pin.Model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pinocchio model -> (joint rows, frame rows, gravity) in the C tree's layout (see rt/README.md)."""
    nb = model.njoints - 1
    joints = np.zeros((nb, _JOINT_COLS))
    for j in range(1, model.njoints):
        kind, axis = _joint_kind(model, j)
        placement, inertia = model.jointPlacements[j], model.inertias[j]
        row = joints[j - 1]
        row[0], row[1], row[2], row[3] = model.parents[j] - 1, kind, model.idx_qs[j], model.idx_vs[j]
        row[4:7] = axis
        row[7:16] = placement.rotation.reshape(9)
        row[16:19] = placement.translation
        row[19] = inertia.mass
        row[20:23] = inertia.lever
        row[23:32] = inertia.inertia.reshape(9)
    frames = np.zeros((len(model.frames), _FRAME_COLS))
    for f, frame in enumerate(model.frames):
        frames[f, 0] = frame.parentJoint - 1
        frames[f, 1:10] = frame.placement.rotation.reshape(9)
        frames[f, 10:13] = frame.placement.translation
    return joints, frames, np.array(model.gravity.vector, dtype=float)


class Dynamics(_rtcore.Model):
    """Rigid-body dynamics kernels in C, matching Pinocchio to machine precision.

    Build with ``from_robot_model``, ``from_pinocchio`` or ``from_urdf``. Methods (all C):
    ``rnea(q, v, a, out=None)``, ``gravity(q, out=None)``, ``nonlinear_effects(q, v, out=None)``,
    ``rnea_with_wrenches(q, v, a, frame_ids, wrenches, reference='LOCAL', out=None)``,
    ``crba(q, out=None)``, ``frame_placement(q, frame_id, out=None)`` (4x4 in the world),
    ``frame_jacobian(q, frame_id, reference='LOCAL', out=None)`` (6 x nv).
    One Dynamics object is not thread-safe (it owns its workspace); build one per thread.
    """

    frame_names: tuple[str, ...]
    joint_names: tuple[str, ...]
    has_free_flyer: bool
    lower_limits: np.ndarray
    upper_limits: np.ndarray
    effort_limits: np.ndarray

    @classmethod
    def from_pinocchio(cls, model: pin.Model) -> Dynamics:
        """Kernels for a Pinocchio model (free-flyer or fixed base; 1-DoF joints besides the root)."""
        joints, frames, gravity = tree_arrays(model)
        dyn = cls(model.nq, model.nv, joints, frames, gravity)
        dyn.frame_names = tuple(f.name for f in model.frames)
        dyn.has_free_flyer = model.njoints > 1 and model.joints[1].shortname() == "JointModelFreeFlyer"
        first = 2 if dyn.has_free_flyer else 1
        for j in range(first, model.njoints):
            if model.joints[j].nv != 1:
                raise ModelError(f"joint '{model.names[j]}' has {model.joints[j].nv} DoF; only the root may "
                                 "have more than one")
        dyn.joint_names = tuple(model.names[j] for j in range(first, model.njoints))
        vs = np.array([model.idx_vs[j] for j in range(first, model.njoints)], dtype=int)
        qs = np.array([model.idx_qs[j] for j in range(first, model.njoints)], dtype=int)
        unbounded = np.array([model.joints[j].nq == 2 for j in range(first, model.njoints)])
        dyn.lower_limits = np.where(unbounded, -np.inf, model.lowerPositionLimit[qs])
        dyn.upper_limits = np.where(unbounded, np.inf, model.upperPositionLimit[qs])
        dyn.effort_limits = np.array(model.effortLimit[vs], dtype=float)
        return dyn

    @classmethod
    def from_robot_model(cls, robot_model: RobotModel) -> Dynamics:
        """Kernels for the stack's RobotModel (its Pinocchio model, free-flyer root, bus joint order)."""
        return cls.from_pinocchio(robot_model.model)

    @classmethod
    def from_urdf(cls, path: str | os.PathLike, floating_base: bool = True) -> Dynamics:
        """Kernels straight from a URDF (free-flyer root unless floating_base is False)."""
        if not os.path.isfile(path):
            raise ModelError(f"URDF '{path}' does not exist")
        try:
            if floating_base:
                model = pin.buildModelFromUrdf(str(path), pin.JointModelFreeFlyer())
            else:
                model = pin.buildModelFromUrdf(str(path))
        except (RuntimeError, ValueError) as exc:
            raise ModelError(f"{path}: Pinocchio cannot build the model: {exc}") from exc
        return cls.from_pinocchio(model)

    @property
    def n_joints(self) -> int:
        """Actuated joints (every joint but a free-flyer root), in bus order."""
        return len(self.joint_names)

    def frame_id(self, name: str) -> int:
        """Index of a frame by name (as pinocchio.Model.getFrameId)."""
        try:
            return self.frame_names.index(name)
        except ValueError:
            raise FrameError(f"frame '{name}' is not in the model{suggest(name, self.frame_names)}") from None
