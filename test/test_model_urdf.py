"""The Optimus URDF and robot config: physical validity, REP-120 frames, and the standing posture."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pinocchio as pin
import pytest

from optimus_control.model.urdf_checks import link_inertials, validate_urdf

REP120_FRAMES = ["base_link", "torso", "l_sole", "r_sole", "l_wrist", "r_wrist", "l_gripper", "r_gripper", "gaze"]


def test_every_link_has_a_physical_inertia(robot):
    """Positive mass, positive-definite inertia obeying the triangle inequality, CoM inside the geometry."""
    root = validate_urdf(robot.urdf_path)
    inertials = link_inertials(root, robot.urdf_path)
    assert len(inertials) == len(root.findall("link"))
    for link in inertials:
        eig = np.linalg.eigvalsh(link.inertia)
        assert link.mass > 0 and eig[0] > 0, link.name
        assert eig[0] + eig[1] >= eig[2] - 1e-12, link.name
        if link.geometry_boxes:
            assert any(np.all(np.abs(link.com - c) <= h + 1e-9) for c, h in link.geometry_boxes), link.name


def test_mass_height_and_joint_count_are_optimus_class(robot):
    assert 55.0 <= robot.total_mass <= 70.0
    q = pin.neutral(robot.model)
    geom = pin.buildGeomFromUrdf(robot.model, str(robot.urdf_path), pin.GeometryType.COLLISION)
    gdata = geom.createData()
    pin.framesForwardKinematics(robot.model, robot.data, q)
    pin.updateGeometryPlacements(robot.model, robot.data, geom, gdata, q)
    tops, bottoms = [], []
    for obj, placement in zip(geom.geometryObjects, gdata.oMg):
        shape = obj.geometry
        half = {"Box": lambda s: s.halfSide[2], "Sphere": lambda s: s.radius,
                "Cylinder": lambda s: s.halfLength}.get(type(shape).__name__, lambda s: 0.0)(shape)
        tops.append(placement.translation[2] + half)
        bottoms.append(placement.translation[2] - half)
    height = max(tops) - min(bottoms)
    assert 1.70 <= height <= 1.78, height
    body = [j for group, joints in robot.config.joint_groups.items() if "gripper" not in group for j in joints]
    assert len(body) == 28
    assert all(len(hand.gripper_joints) >= 1 for hand in robot.config.hands)


def test_rep120_frames_and_camera_optical_frame(robot):
    for name in REP120_FRAMES + [robot.config.camera.link, robot.config.camera.optical_frame]:
        robot.frame_id(name)
    assert robot.model.frames[robot.frame_id("base_link")].parentJoint == 1  # the free-flyer root
    q = robot.standing_configuration()
    cam = robot.frame_placement(q, robot.config.camera.link).rotation
    optical = robot.frame_placement(q, robot.config.camera.optical_frame).rotation
    # REP-103 optical frame: z forward (= camera link x), x right (= -y), y down (= -z).
    np.testing.assert_allclose(optical[:, 2], cam[:, 0], atol=1e-9)
    np.testing.assert_allclose(optical[:, 0], -cam[:, 1], atol=1e-9)
    np.testing.assert_allclose(optical[:, 1], -cam[:, 2], atol=1e-9)


def test_limits_are_present_and_realistic(robot):
    lim = robot.limits
    assert np.all(lim.lower < lim.upper) and np.all(lim.velocity > 0) and np.all(lim.effort > 0)
    legs = np.concatenate([robot.groups["left_leg"], robot.groups["right_leg"]])
    arms = np.concatenate([robot.groups["left_arm"], robot.groups["right_arm"]])
    assert np.all((lim.effort[legs] >= 100) & (lim.effort[legs] <= 300))
    assert np.all((lim.effort[arms] >= 25) & (lim.effort[arms] <= 80))
    assert np.all(robot.joint_damping > 0) and np.all(robot.joint_friction > 0)
    gripper = robot.config.gripper
    # Two fingers, each opening up to open_position: the gap must fit 0.15-0.30 m boxes.
    assert 2 * gripper.open_position >= 0.30 and gripper.closed_position <= 0.0 + 1e-9


def test_standing_posture_soles_flat_and_com_over_support(robot):
    q = robot.standing_configuration()
    soles = [robot.frame_placement(q, f.frame) for f in robot.config.feet]
    for sole in soles:
        assert abs(sole.translation[2]) < 1e-9
        np.testing.assert_allclose(sole.rotation, np.eye(3), atol=1e-9)  # z up, flat
    com = robot.center_of_mass(q)
    s = robot.config.sole
    corners = np.array([[sole.translation[0] + x, sole.translation[1] + y] for sole in soles
                        for x in (s.x_min, s.x_max) for y in (s.y_min, s.y_max)])
    assert corners[:, 0].min() + 0.02 < com[0] < corners[:, 0].max() - 0.02
    assert corners[:, 1].min() + 0.02 < com[1] < corners[:, 1].max() - 0.02
    base = q[2]
    assert abs(com[2] - base) < 0.15, "whole-body CoM should sit near the pelvis"


def test_loads_in_pybullet_without_warnings(robot):
    """PyBullet prints b3Warning lines (e.g. for links without inertia); none may appear."""
    code = (
        "import pybullet as p; c = p.connect(p.DIRECT); "
        f"r = p.loadURDF({str(robot.urdf_path)!r}, flags=p.URDF_USE_INERTIA_FROM_FILE); "
        "print('joints', p.getNumJoints(r)); "
        "print('mass', sum(p.getDynamicsInfo(r, i)[0] for i in range(-1, p.getNumJoints(r))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    assert "warning" not in text.lower(), text
    mass = float(text.split("mass")[1].split()[0])
    assert mass == pytest.approx(robot.total_mass, rel=1e-6)
