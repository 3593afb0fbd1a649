"""Generate ``urdf/optimus.urdf`` from a compact description of the robot.

The URDF is generated so that every inertia is computed from the link's own collision primitive
(box, cylinder or sphere with uniform density): inertias are then physically valid by construction
and each centre of mass lies inside its geometry. Run ``python tools/make_urdf.py`` after editing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "urdf" / "optimus.urdf"


@dataclass
class Shape:
    kind: str  # box | cylinder | sphere
    size: tuple[float, ...]  # box (x, y, z); cylinder (radius, length); sphere (radius,)
    xyz: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def inertia(self, mass: float) -> tuple[float, float, float]:
        if self.kind == "box":
            x, y, z = self.size
            return (mass * (y * y + z * z) / 12, mass * (x * x + z * z) / 12, mass * (x * x + y * y) / 12)
        if self.kind == "cylinder":
            r, h = self.size
            ixx = mass * (3 * r * r + h * h) / 12
            izz = mass * r * r / 2
            if self.rpy == (0.0, 0.0, 0.0):
                return (ixx, ixx, izz)
            if abs(self.rpy[0]) > 0:  # axis rotated onto y
                return (ixx, izz, ixx)
            return (izz, ixx, ixx)  # axis rotated onto x
        if self.kind == "sphere":
            (r,) = self.size
            i = 2 * mass * r * r / 5
            return (i, i, i)
        raise ValueError(self.kind)

    def xml(self) -> str:
        if self.kind == "box":
            g = f'<box size="{self.size[0]:g} {self.size[1]:g} {self.size[2]:g}"/>'
        elif self.kind == "cylinder":
            g = f'<cylinder radius="{self.size[0]:g}" length="{self.size[1]:g}"/>'
        else:
            g = f'<sphere radius="{self.size[0]:g}"/>'
        return (
            f'<origin xyz="{_v(self.xyz)}" rpy="{_v(self.rpy)}"/>\n'
            f"      <geometry>{g}</geometry>"
        )


@dataclass
class Link:
    name: str
    mass: float
    shape: Shape
    color: str = "grey"
    extra_collision: list[Shape] = field(default_factory=list)


@dataclass
class Joint:
    name: str
    kind: str  # revolute | prismatic | fixed
    parent: str
    child: str
    xyz: tuple[float, float, float]
    axis: tuple[float, float, float] = (0.0, 0.0, 1.0)
    lower: float = 0.0
    upper: float = 0.0
    effort: float = 0.0
    velocity: float = 0.0
    damping: float = 0.0
    friction: float = 0.0
    rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)


def _v(values) -> str:
    return " ".join(repr(float(x)) for x in values)


COLORS = {
    "grey": "0.55 0.57 0.6 1",
    "white": "0.92 0.92 0.92 1",
    "black": "0.12 0.12 0.14 1",
    "dark": "0.3 0.3 0.33 1",
}

FRAME_MASS = 0.001  # kg
FRAME_INERTIA = 4e-8  # kg m^2: (2/5) m r^2 for r = 1 cm

X, Y, Z = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)


def build() -> tuple[list[Link], list[Joint], list[tuple[str, str, tuple, tuple]]]:
    links: list[Link] = []
    joints: list[Joint] = []
    frames: list[tuple[str, str, tuple, tuple]] = []  # (name, parent, xyz, rpy) massless frames

    links.append(Link("base_link", 8.0, Shape("box", (0.20, 0.28, 0.16)), "white"))

    # Legs: 6 joints each. Knee positive = flexion; hip pitch negative = flexion.
    for side, sy in (("l", 1.0), ("r", -1.0)):
        roll_lo, roll_hi = (-0.4, 0.8) if sy > 0 else (-0.8, 0.4)
        joints.append(Joint(f"{side}_hip_yaw", "revolute", "base_link", f"{side}_hip_yaw_link",
                            (0.0, 0.09 * sy, -0.10), Z, -0.6, 0.6, 150, 12, 0.5, 0.3))
        links.append(Link(f"{side}_hip_yaw_link", 1.0, Shape("cylinder", (0.05, 0.06), (0, 0, -0.03)), "dark"))
        joints.append(Joint(f"{side}_hip_roll", "revolute", f"{side}_hip_yaw_link", f"{side}_hip_roll_link",
                            (0.0, 0.0, -0.06), X, roll_lo, roll_hi, 200, 12, 0.5, 0.3))
        links.append(Link(f"{side}_hip_roll_link", 1.0, Shape("box", (0.08, 0.07, 0.07)), "dark"))
        joints.append(Joint(f"{side}_hip_pitch", "revolute", f"{side}_hip_roll_link", f"{side}_thigh",
                            (0.0, 0.0, 0.0), Y, -2.2, 0.6, 250, 12, 0.5, 0.3))
        links.append(Link(f"{side}_thigh", 6.0, Shape("cylinder", (0.065, 0.34), (0, 0, -0.2)), "white"))
        joints.append(Joint(f"{side}_knee", "revolute", f"{side}_thigh", f"{side}_shin",
                            (0.0, 0.0, -0.40), Y, 0.0, 2.4, 280, 12, 0.5, 0.3))
        links.append(Link(f"{side}_shin", 3.5, Shape("cylinder", (0.05, 0.34), (0, 0, -0.2)), "white"))
        joints.append(Joint(f"{side}_ankle_pitch", "revolute", f"{side}_shin", f"{side}_ankle_pitch_link",
                            (0.0, 0.0, -0.40), Y, -0.8, 0.6, 180, 12, 0.3, 0.2))
        links.append(Link(f"{side}_ankle_pitch_link", 0.3, Shape("sphere", (0.035,)), "dark"))
        joints.append(Joint(f"{side}_ankle_roll", "revolute", f"{side}_ankle_pitch_link", f"{side}_foot",
                            (0.0, 0.0, 0.0), X, -0.4, 0.4, 120, 12, 0.3, 0.2))
        links.append(Link(f"{side}_foot", 1.2, Shape("box", (0.24, 0.11, 0.05), (0.03, 0, -0.045)), "black"))
        frames.append((f"{side}_sole", f"{side}_foot", (0.0, 0.0, -0.07), (0.0, 0.0, 0.0)))

    # Waist: yaw then pitch (positive pitch leans the torso forward).
    joints.append(Joint("waist_yaw", "revolute", "base_link", "waist_link", (0, 0, 0.08), Z, -1.2, 1.2, 200, 8, 0.5, 0.3))
    links.append(Link("waist_link", 1.0, Shape("cylinder", (0.06, 0.04)), "dark"))
    joints.append(Joint("waist_pitch", "revolute", "waist_link", "torso", (0, 0, 0.04), Y, -0.3, 0.9, 200, 8, 0.5, 0.3))
    links.append(Link("torso", 14.0, Shape("box", (0.20, 0.32, 0.38), (0, 0, 0.19)), "white"))

    # Neck and head with the RGB-D camera.
    joints.append(Joint("neck_yaw", "revolute", "torso", "neck_link", (0, 0, 0.40), Z, -1.2, 1.2, 15, 6, 0.1, 0.05))
    links.append(Link("neck_link", 0.5, Shape("cylinder", (0.035, 0.05), (0, 0, 0.0)), "dark"))
    joints.append(Joint("neck_pitch", "revolute", "neck_link", "head", (0, 0, 0.05), Y, -0.6, 0.9, 15, 6, 0.1, 0.05))
    links.append(Link("head", 3.0, Shape("sphere", (0.10,), (0, 0, 0.06)), "black"))
    frames.append(("head_camera_link", "head", (0.09, 0.0, 0.05), (0.0, 0.0, 0.0)))
    frames.append(("head_camera_optical_frame", "head_camera_link", (0.0, 0.0, 0.0),
                   (-math.pi / 2, 0.0, -math.pi / 2)))
    frames.append(("gaze", "head", (0.09, 0.0, 0.05), (0.0, 0.0, 0.0)))

    # Arms: 6 joints each plus a wide-stroke parallel gripper (two prismatic fingers).
    for side, sy in (("l", 1.0), ("r", -1.0)):
        roll_lo, roll_hi = (-0.3, 2.5) if sy > 0 else (-2.5, 0.3)
        joints.append(Joint(f"{side}_shoulder_pitch", "revolute", "torso", f"{side}_shoulder_pitch_link",
                            (0.0, 0.20 * sy, 0.32), Y, -3.0, 1.0, 80, 10, 0.2, 0.1))
        links.append(Link(f"{side}_shoulder_pitch_link", 0.6, Shape("sphere", (0.05,)), "dark"))
        joints.append(Joint(f"{side}_shoulder_roll", "revolute", f"{side}_shoulder_pitch_link",
                            f"{side}_shoulder_roll_link", (0.0, 0.0, 0.0), X, roll_lo, roll_hi, 80, 10, 0.2, 0.1))
        links.append(Link(f"{side}_shoulder_roll_link", 0.6, Shape("cylinder", (0.04, 0.04), (0, 0, -0.02)), "dark"))
        joints.append(Joint(f"{side}_shoulder_yaw", "revolute", f"{side}_shoulder_roll_link", f"{side}_upper_arm",
                            (0.0, 0.0, -0.04), Z, -1.6, 1.6, 50, 10, 0.2, 0.1))
        links.append(Link(f"{side}_upper_arm", 2.2, Shape("cylinder", (0.045, 0.20), (0, 0, -0.12)), "white"))
        joints.append(Joint(f"{side}_elbow", "revolute", f"{side}_upper_arm", f"{side}_forearm",
                            (0.0, 0.0, -0.24), Y, -2.5, 0.0, 60, 10, 0.2, 0.1))
        links.append(Link(f"{side}_forearm", 1.5, Shape("cylinder", (0.04, 0.18), (0, 0, -0.11)), "white"))
        joints.append(Joint(f"{side}_wrist_yaw", "revolute", f"{side}_forearm", f"{side}_wrist_yaw_link",
                            (0.0, 0.0, -0.22), Z, -1.6, 1.6, 30, 12, 0.1, 0.05))
        links.append(Link(f"{side}_wrist_yaw_link", 0.3, Shape("cylinder", (0.03, 0.03), (0, 0, -0.015)), "dark"))
        joints.append(Joint(f"{side}_wrist_pitch", "revolute", f"{side}_wrist_yaw_link", f"{side}_wrist",
                            (0.0, 0.0, -0.03), Y, -1.2, 1.2, 30, 12, 0.1, 0.05))
        links.append(Link(f"{side}_wrist", 0.6, Shape("box", (0.07, 0.06, 0.07), (0, 0, -0.035)), "dark"))
        frames.append((f"{side}_gripper", f"{side}_wrist", (0.0, 0.0, -0.13), (0.0, 0.0, 0.0)))
        for finger, fy in (("left", 1.0), ("right", -1.0)):
            joints.append(Joint(f"{side}_finger_{finger}", "prismatic", f"{side}_wrist",
                                f"{side}_finger_{finger}_link", (0.0, 0.0, -0.07), (0.0, fy, 0.0),
                                0.0, 0.16, 120, 0.3, 5.0, 1.0))
            links.append(Link(f"{side}_finger_{finger}_link", 0.15,
                              Shape("box", (0.06, 0.015, 0.10), (0.0, 0.0075 * fy, -0.05)), "black"))
    return links, joints, frames


def render() -> str:
    links, joints, frames = build()
    out = ['<?xml version="1.0"?>',
           "<!-- Generated by tools/make_urdf.py: edit that file, not this one. -->",
           '<robot name="optimus">']
    for name, rgba in COLORS.items():
        out.append(f'  <material name="{name}"><color rgba="{rgba}"/></material>')
    for link in links:
        ixx, iyy, izz = link.shape.inertia(link.mass)
        out.append(f'  <link name="{link.name}">')
        out.append("    <inertial>")
        out.append(f'      <origin xyz="{_v(link.shape.xyz)}" rpy="0 0 0"/>')
        out.append(f'      <mass value="{link.mass:g}"/>')
        out.append(f'      <inertia ixx="{ixx:.6g}" ixy="0" ixz="0" iyy="{iyy:.6g}" iyz="0" izz="{izz:.6g}"/>')
        out.append("    </inertial>")
        out.append(f"    <visual>\n      {link.shape.xml()}\n      <material name=\"{link.color}\"/>\n    </visual>")
        out.append(f"    <collision>\n      {link.shape.xml()}\n    </collision>")
        out.append("  </link>")
    for name, _parent, _xyz, _rpy in frames:
        # A sensor/task frame: a 1 g point-like body (a 1 cm sphere), so PyBullet does not default
        # it to 1 kg and Pinocchio sees a valid inertia.
        out.append(f'  <link name="{name}">\n    <inertial>\n      <origin xyz="0 0 0" rpy="0 0 0"/>\n'
                   f'      <mass value="{FRAME_MASS:g}"/>\n      <inertia ixx="{FRAME_INERTIA:g}" ixy="0" ixz="0" '
                   f'iyy="{FRAME_INERTIA:g}" iyz="0" izz="{FRAME_INERTIA:g}"/>\n    </inertial>\n  </link>')
    for j in joints:
        out.append(f'  <joint name="{j.name}" type="{j.kind}">')
        out.append(f'    <parent link="{j.parent}"/>\n    <child link="{j.child}"/>')
        out.append(f'    <origin xyz="{_v(j.xyz)}" rpy="{_v(j.rpy)}"/>')
        out.append(f'    <axis xyz="{_v(j.axis)}"/>')
        out.append(f'    <limit lower="{j.lower:g}" upper="{j.upper:g}" effort="{j.effort:g}" velocity="{j.velocity:g}"/>')
        out.append(f'    <dynamics damping="{j.damping:g}" friction="{j.friction:g}"/>')
        out.append("  </joint>")
    for name, parent, xyz, rpy in frames:
        out.append(f'  <joint name="{name}_joint" type="fixed">')
        out.append(f'    <parent link="{parent}"/>\n    <child link="{name}"/>')
        out.append(f'    <origin xyz="{_v(xyz)}" rpy="{_v(rpy)}"/>')
        out.append("  </joint>")
    out.append("</robot>")
    return "\n".join(out) + "\n"


def main() -> None:
    OUT.write_text(render())
    links, joints, _ = build()
    print(f"wrote {OUT}: {sum(link.mass for link in links):.1f} kg, "
          f"{sum(j.kind != 'fixed' for j in joints)} actuated joints")


if __name__ == "__main__":
    main()
