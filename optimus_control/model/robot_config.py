"""The robot configuration file (config/<robot>.yaml) as typed dataclasses.

Only structure and types are checked here; names are checked against the URDF by RobotModel,
which knows the joints and frames.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optimus_control.model.paths import resolve_data_path
from optimus_control.model.pinhole_camera import PinholeCamera
from optimus_control.model.yaml_reader import YamlReader

TOP_LEVEL_KEYS = {
    "robot", "joint_groups", "feet", "sole", "friction_coefficient", "hands", "gripper", "gaze_frame",
    "camera", "standing_posture", "gains", "damping_gain",
}


@dataclass(frozen=True)
class FootConfig:
    name: str
    frame: str


@dataclass(frozen=True)
class SoleRectangle:
    """Contact rectangle in the sole frame [m]."""

    x_min: float
    x_max: float
    y_min: float
    y_max: float


@dataclass(frozen=True)
class HandConfig:
    name: str
    wrist_frame: str
    gripper_frame: str
    gripper_joints: tuple[str, ...]


@dataclass(frozen=True)
class GripperConfig:
    open_position: float
    closed_position: float
    max_force: float


@dataclass(frozen=True)
class CameraConfig:
    """The head camera: its URDF links, intrinsics and depth range, and frame rate [Hz]."""

    link: str
    optical_frame: str
    intrinsics: PinholeCamera
    rate_hz: float


@dataclass(frozen=True)
class Gains:
    kp: float
    kd: float


@dataclass(frozen=True)
class RobotConfig:
    source: Path
    name: str
    urdf_path: Path
    base_frame: str
    torso_frame: str
    imu_frame: str
    joint_groups: dict[str, tuple[str, ...]]
    feet: tuple[FootConfig, ...]
    sole: SoleRectangle
    friction_coefficient: float
    hands: tuple[HandConfig, ...]
    gripper: GripperConfig
    gaze_frame: str
    camera: CameraConfig
    standing_posture: dict[str, float]
    gains: dict[str, Gains]
    damping_gain: float
    raw: dict[str, Any] = field(repr=False, default_factory=dict)


def load_robot_config(path: str | os.PathLike = "optimus.yaml") -> RobotConfig:
    """Read and structurally validate a robot config; relative paths resolve under config/."""
    source = resolve_data_path(path, "config")
    r, data = YamlReader.load(source, "robot config file")
    data = r.exact(data, "<top level>", TOP_LEVEL_KEYS)

    robot = r.exact(data["robot"], "robot", {"name", "urdf", "base_frame", "torso_frame", "imu_frame"})
    urdf = Path(r.string(robot["urdf"], "robot.urdf"))
    if not urdf.is_absolute():
        beside = source.parent.parent / "urdf" / urdf
        urdf = beside if beside.exists() else resolve_data_path(urdf, "urdf")

    groups = {
        r.string(name, "joint_groups"): r.strings(joints, f"joint_groups.{name}")
        for name, joints in r.mapping(data["joint_groups"], "joint_groups").items()
    }
    feet = tuple(
        FootConfig(name, r.string(foot["frame"], f"feet.{name}.frame"))
        for name, foot in (
            (n, r.exact(f, f"feet.{n}", {"frame"}))
            for n, f in r.mapping(data["feet"], "feet").items()
        )
    )
    sole_map = r.exact(data["sole"], "sole", {"x_min", "x_max", "y_min", "y_max"})
    sole = SoleRectangle(**{k: r.number(v, f"sole.{k}") for k, v in sole_map.items()})
    if not (sole.x_min < 0 < sole.x_max and sole.y_min < 0 < sole.y_max):
        raise r.fail("sole", "the rectangle must contain the sole frame origin (x_min < 0 < x_max, y_min < 0 < y_max)")
    hands = tuple(
        HandConfig(name, r.string(h["wrist_frame"], f"hands.{name}.wrist_frame"),
                   r.string(h["gripper_frame"], f"hands.{name}.gripper_frame"),
                   r.strings(h["gripper_joints"], f"hands.{name}.gripper_joints"))
        for name, h in (
            (n, r.exact(h, f"hands.{n}", {"wrist_frame", "gripper_frame", "gripper_joints"}))
            for n, h in r.mapping(data["hands"], "hands").items()
        )
    )
    grip = r.exact(data["gripper"], "gripper", {"open_position", "closed_position", "max_force"})
    gripper = GripperConfig(r.number(grip["open_position"], "gripper.open_position"),
                            r.number(grip["closed_position"], "gripper.closed_position"),
                            r.number(grip["max_force"], "gripper.max_force", positive=True))
    cam_keys = {"link", "optical_frame", "width", "height", "fx", "fy", "cx", "cy", "near", "far", "rate_hz"}
    cam = r.exact(data["camera"], "camera", cam_keys)
    camera = CameraConfig(
        link=r.string(cam["link"], "camera.link"), optical_frame=r.string(cam["optical_frame"], "camera.optical_frame"),
        intrinsics=PinholeCamera(
            width=int(r.number(cam["width"], "camera.width", positive=True)),
            height=int(r.number(cam["height"], "camera.height", positive=True)),
            fx=r.number(cam["fx"], "camera.fx", positive=True), fy=r.number(cam["fy"], "camera.fy", positive=True),
            cx=r.number(cam["cx"], "camera.cx"), cy=r.number(cam["cy"], "camera.cy"),
            near=r.number(cam["near"], "camera.near", positive=True), far=r.number(cam["far"], "camera.far", positive=True)),
        rate_hz=r.number(cam["rate_hz"], "camera.rate_hz", positive=True),
    )
    posture = {r.string(k, "standing_posture"): r.number(v, f"standing_posture.{k}")
               for k, v in r.mapping(data["standing_posture"], "standing_posture").items()}
    gains = {}
    for group, g in r.mapping(data["gains"], "gains").items():
        g = r.exact(g, f"gains.{group}", {"kp", "kd"})
        r.member(group, f"gains.{group}", groups, "joint group")
        gains[group] = Gains(r.number(g["kp"], f"gains.{group}.kp"), r.number(g["kd"], f"gains.{group}.kd"))
    return RobotConfig(
        source=source, name=r.string(robot["name"], "robot.name"), urdf_path=urdf,
        base_frame=r.string(robot["base_frame"], "robot.base_frame"),
        torso_frame=r.string(robot["torso_frame"], "robot.torso_frame"),
        imu_frame=r.string(robot["imu_frame"], "robot.imu_frame"),
        joint_groups=groups, feet=feet, sole=sole,
        friction_coefficient=r.number(data["friction_coefficient"], "friction_coefficient", positive=True),
        hands=hands, gripper=gripper, gaze_frame=r.string(data["gaze_frame"], "gaze_frame"), camera=camera,
        standing_posture=posture, gains=gains,
        damping_gain=r.number(data["damping_gain"], "damping_gain", positive=True), raw=data,
    )
