"""The C dynamics kernels equal Pinocchio to 1e-9 on the Optimus model and on random kinematic trees."""

from __future__ import annotations

import numpy as np
import pinocchio as pin
import pytest

from optimus_control.errors import ModelError, RealTimeError
from optimus_control.model import share_dir
from optimus_control.rt import Dynamics

TOL = 1e-9
SAMPLES = 1000
REFERENCES = (pin.LOCAL, pin.LOCAL_WORLD_ALIGNED, pin.WORLD)


def assert_close(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    """Relative 1e-9, absolute for entries near zero."""
    err = np.abs(actual - expected) / np.maximum(1.0, np.abs(expected))
    assert err.max() <= TOL, f"{what}: worst error {err.max():.3e} at {np.unravel_index(err.argmax(), err.shape)}"


def random_state(model: pin.Model, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    bound = np.full(model.nq, np.pi)
    q = pin.randomConfiguration(model, -bound, bound)
    return q, rng.uniform(-3, 3, model.nv), rng.uniform(-10, 10, model.nv)


def random_tree(n_joints: int, rng: np.random.Generator, free_flyer: bool) -> pin.Model:
    """A random tree: random parents, joint types (aligned and unaligned axes), placements, inertias, frames."""
    np.random.seed(int(rng.integers(2**31)))  # pin.SE3.Random / Inertia.Random draw from numpy's global RNG
    model = pin.Model()
    model.gravity = pin.Motion(np.concatenate([rng.normal(0, 1, 2), [-9.81], np.zeros(3)]))
    ids = [0]
    if free_flyer:
        root = model.addJoint(0, pin.JointModelFreeFlyer(), pin.SE3.Identity(), "root")
        model.appendBodyToJoint(root, pin.Inertia.Random(), pin.SE3.Identity())
        ids = [root]

    def unit() -> np.ndarray:
        a = rng.normal(size=3)
        return a / np.linalg.norm(a)

    makers = [pin.JointModelRX, pin.JointModelRY, pin.JointModelRZ, pin.JointModelPX, pin.JointModelPY,
              pin.JointModelPZ, pin.JointModelRUBX, pin.JointModelRUBZ,
              lambda: pin.JointModelRevoluteUnaligned(unit()), lambda: pin.JointModelPrismaticUnaligned(unit())]
    # Joints are added depth-first (as a URDF parser does): Pinocchio's CRBA assumes each subtree's
    # velocity indices are contiguous. The new joint's parent is any joint on the current branch.
    for i in range(n_joints):
        del ids[int(rng.integers(len(ids))) + 1:]
        joint = makers[int(rng.integers(len(makers)))]()
        jid = model.addJoint(ids[-1], joint, pin.SE3.Random(), f"j{i}")
        model.appendBodyToJoint(jid, pin.Inertia.Random(), pin.SE3.Random())
        model.addFrame(pin.Frame(f"f{i}", jid, 0, pin.SE3.Random(), pin.FrameType.OP_FRAME))
        ids.append(jid)
    return model


def check_model(model: pin.Model, samples: int, rng: np.random.Generator, frames: list[int]) -> None:
    data = model.createData()
    dyn = Dynamics.from_pinocchio(model)
    tau = np.empty(model.nv)
    for k in range(samples):
        q, v, a = random_state(model, rng)
        assert_close(dyn.rnea(q, v, a), pin.rnea(model, data, q, v, a), "rnea")
        dyn.rnea(q, v, a, out=tau)
        assert_close(tau, data.tau, "rnea(out=)")
        assert_close(dyn.gravity(q), pin.computeGeneralizedGravity(model, data, q), "gravity")
        assert_close(dyn.nonlinear_effects(q, v), pin.nonLinearEffects(model, data, q, v), "nonlinear_effects")
        M = pin.crba(model, data, q).reshape(model.nv, model.nv)
        assert_close(dyn.crba(q), np.triu(M) + np.triu(M, 1).T, "crba")
        pin.computeJointJacobians(model, data, q)
        pin.updateFramePlacements(model, data)
        fid = frames[k % len(frames)]
        assert_close(dyn.frame_placement(q, fid), data.oMf[fid].homogeneous, f"frame_placement {model.frames[fid].name}")
        for ref in REFERENCES:
            expected = pin.getFrameJacobian(model, data, fid, ref).reshape(6, model.nv)  # (6,) when nv == 1
            assert_close(dyn.frame_jacobian(q, fid, ref), expected, f"frame_jacobian {model.frames[fid].name} {ref}")


def test_optimus_kernels_match_pinocchio(robot):
    model = robot.model
    frames = list(range(model.nframes))
    check_model(model, SAMPLES, np.random.default_rng(1), frames)


def test_from_urdf_and_from_robot_model_agree(robot):
    a = Dynamics.from_urdf(share_dir() / "urdf" / robot.urdf_path.name)
    b = Dynamics.from_robot_model(robot)
    q = robot.standing_configuration()
    v = np.linspace(-1, 1, robot.model.nv)
    assert np.array_equal(a.rnea(q, v, v), b.rnea(q, v, v))
    assert b.joint_names == robot.joint_names
    assert b.frame_id("l_sole") == robot.frame_id("l_sole")


@pytest.mark.parametrize("free_flyer", [True, False])
def test_random_trees_match_pinocchio(free_flyer):
    rng = np.random.default_rng(7 if free_flyer else 8)
    for n_joints in range(1, 41):
        model = random_tree(n_joints, rng, free_flyer)
        frames = [f for f in range(model.nframes) if model.frames[f].type == pin.FrameType.OP_FRAME]
        check_model(model, SAMPLES, rng, frames)


def test_large_joint_angles_match_pinocchio(robot):
    """Angles far outside [-pi, pi] (continuous joints wind up) still match."""
    model, data = robot.model, robot.model.createData()
    dyn = Dynamics.from_robot_model(robot)
    rng = np.random.default_rng(4)
    revolute = np.array([model.joints[j].shortname().startswith("JointModelR") for j in range(2, model.njoints)])
    for scale in (10.0, 60.0, 1e3, 1e6):
        q = robot.standing_configuration()
        q[7:][revolute] = rng.uniform(-scale, scale, revolute.sum())
        v, a = rng.uniform(-1, 1, model.nv), rng.uniform(-1, 1, model.nv)
        assert_close(dyn.rnea(q, v, a), pin.rnea(model, data, q, v, a), f"rnea at |q| ~ {scale}")


def test_rnea_with_wrenches_subtracts_jacobian_transpose(robot):
    model, data = robot.model, robot.model.createData()
    dyn = Dynamics.from_robot_model(robot)
    rng = np.random.default_rng(3)
    feet = [robot.frame_id(f.frame) for f in robot.config.feet]
    for _ in range(200):
        q, v, a = random_state(model, rng)
        wrenches = rng.normal(0, 200, (len(feet), 6))
        for ref in (pin.LOCAL, pin.LOCAL_WORLD_ALIGNED, pin.WORLD):
            expected = pin.rnea(model, data, q, v, a).copy()
            for fid, w in zip(feet, wrenches):
                expected -= pin.computeFrameJacobian(model, data, q, fid, ref).T @ w
            assert_close(dyn.rnea_with_wrenches(q, v, a, feet, wrenches, ref), expected, f"rnea_with_wrenches {ref}")


def test_bad_inputs_are_named():
    model = random_tree(3, np.random.default_rng(0), True)
    dyn = Dynamics.from_pinocchio(model)
    with pytest.raises(RealTimeError, match=r"rnea\(\): q must be a C-contiguous float64 array of"):
        dyn.rnea(np.zeros(3), np.zeros(model.nv), np.zeros(model.nv))
    with pytest.raises(RealTimeError, match="frame_id"):
        dyn.frame_placement(pin.neutral(model), model.nframes)
    with pytest.raises(RealTimeError, match="reference 'SIDEWAYS'"):
        dyn.frame_jacobian(pin.neutral(model), 1, "SIDEWAYS")
    with pytest.raises(RealTimeError, match="out"):
        dyn.gravity(pin.neutral(model), out=np.zeros(model.nv, dtype=np.float32))
    spherical = pin.Model()
    spherical.addJoint(0, pin.JointModelSpherical(), pin.SE3.Identity(), "ball")
    with pytest.raises(ModelError, match="'ball' is a JointModelSpherical"):
        Dynamics.from_pinocchio(spherical)
