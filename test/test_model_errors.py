"""Bad robot descriptions and configs fail early with a message that says what and where."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from optimus_control.errors import ConfigError, FrameError, ModelError
from optimus_control.model import RobotModel, share_dir

URDF = share_dir() / "urdf" / "optimus.urdf"
CONFIG = share_dir() / "config" / "optimus.yaml"


def _config_with(tmp_path: Path, edit, urdf: Path | None = None) -> Path:
    data = yaml.safe_load(CONFIG.read_text())
    data["robot"]["urdf"] = str(urdf or URDF)
    edit(data)
    path = tmp_path / "robot.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _urdf_with(tmp_path: Path, old: str, new: str) -> Path:
    text = URDF.read_text()
    assert old in text
    path = tmp_path / "robot.urdf"
    path.write_text(text.replace(old, new, 1))
    return path


def test_missing_urdf_file(tmp_path):
    cfg = _config_with(tmp_path, lambda d: None, urdf=tmp_path / "nope.urdf")
    with pytest.raises(ModelError, match=r"URDF file not found: .*nope\.urdf"):
        RobotModel.load(cfg)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match=r"robot config file not found: .*absent\.yaml"):
        RobotModel.load(tmp_path / "absent.yaml")


def test_unparsable_urdf_reports_line(tmp_path):
    bad = _urdf_with(tmp_path, '<link name="torso">', '<link name="torso"')
    cfg = _config_with(tmp_path, lambda d: None, urdf=bad)
    with pytest.raises(ModelError, match=r"robot\.urdf:\d+:\d+: URDF is not well-formed XML"):
        RobotModel.load(cfg)


def test_config_names_unknown_joint(tmp_path):
    def edit(d):
        d["joint_groups"]["left_arm"][3] = "l_elbw"

    with pytest.raises(ConfigError, match=re.escape("joint_groups.left_arm[3]: joint 'l_elbw' is not an actuated joint")
                       + r".*did you mean 'l_elbow'"):
        RobotModel.load(_config_with(tmp_path, edit))


def test_config_names_unknown_frame(tmp_path):
    def edit(d):
        d["hands"]["right"]["gripper_frame"] = "r_grip"

    with pytest.raises(ConfigError, match=re.escape("hands.right.gripper_frame: frame 'r_grip' is not in")):
        RobotModel.load(_config_with(tmp_path, edit))


def test_config_unknown_key_and_wrong_type(tmp_path):
    with pytest.raises(ConfigError, match=r"camera: unknown key 'fov'"):
        RobotModel.load(_config_with(tmp_path, lambda d: d["camera"].update(fov=60)))
    with pytest.raises(ConfigError, match=r"friction_coefficient: must be > 0"):
        RobotModel.load(_config_with(tmp_path, lambda d: d.update(friction_coefficient=-1)))


def test_posture_outside_limits(tmp_path):
    with pytest.raises(ConfigError, match=r"standing_posture.l_knee: -1.0 is outside the joint limits"):
        RobotModel.load(_config_with(tmp_path, lambda d: d["standing_posture"].update(l_knee=-1.0)))


def test_non_positive_definite_inertia(tmp_path):
    text = URDF.read_text()
    start = text.index('<link name="torso">')
    ixx = re.search(r'ixx="([^"]+)"', text[start:])
    bad = tmp_path / "robot.urdf"
    bad.write_text(text[:start] + text[start:].replace(ixx.group(0), 'ixx="-0.5"', 1))
    with pytest.raises(ModelError, match=r"link 'torso': non-physical inertia: not positive definite"):
        RobotModel.load(_config_with(tmp_path, lambda d: None, urdf=bad))


def test_inertia_violating_triangle_inequality(tmp_path):
    text = URDF.read_text()
    start = text.index('<link name="head">')
    izz = re.search(r'izz="([^"]+)"', text[start:])
    bad = tmp_path / "robot.urdf"
    bad.write_text(text[:start] + text[start:].replace(izz.group(0), 'izz="0.5"', 1))
    with pytest.raises(ModelError, match=r"link 'head': .*triangle inequality"):
        RobotModel.load(_config_with(tmp_path, lambda d: None, urdf=bad))


def test_missing_joint_limits(tmp_path):
    text = URDF.read_text()
    start = text.index('<joint name="l_knee"')
    end = text.index("</joint>", start)
    block = re.sub(r"\s*<limit [^>]*/>", "", text[start:end])
    bad = tmp_path / "robot.urdf"
    bad.write_text(text[:start] + block + text[end:])
    with pytest.raises(ModelError, match=r"joint 'l_knee' has no <limit>"):
        RobotModel.load(_config_with(tmp_path, lambda d: None, urdf=bad))


def test_unknown_frame_lookup_suggests(robot):
    with pytest.raises(FrameError, match=r"frame 'l_sol' is not in optimus.urdf \(did you mean 'l_sole'\?\)"):
        robot.frame_id("l_sol")
