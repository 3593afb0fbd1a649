"""Checks on a URDF file before any library loads it: parse errors with line numbers, limits, inertias.

Pinocchio's and PyBullet's own parsers either crash or silently substitute defaults on bad input,
so the file is read with ElementTree first and every problem is reported by element name.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from optimus_control.errors import ModelError

MOVING_JOINT_TYPES = {"revolute", "prismatic", "continuous"}


@dataclass(frozen=True)
class LinkInertial:
    name: str
    mass: float
    com: np.ndarray  # [m] in the link frame
    inertia: np.ndarray  # 3x3 [kg m^2] about the CoM, in the link frame rotated by the inertial rpy
    geometry_boxes: tuple[tuple[np.ndarray, np.ndarray], ...]  # (centre, half extents) bounding boxes


def parse_urdf(path: Path) -> ET.Element:
    if not path.exists():
        raise ModelError(f"URDF file not found: {path}")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        line, column = exc.position
        raise ModelError(f"{path}:{line}:{column}: URDF is not well-formed XML ({exc})") from exc
    if root.tag != "robot":
        raise ModelError(f"{path}: root element is <{root.tag}>, expected <robot>")
    return root


def _floats(text: str | None, n: int, where: str) -> np.ndarray:
    try:
        values = np.array([float(x) for x in (text or "").split()])
    except ValueError as exc:
        raise ModelError(f"{where}: expected {n} numbers, got '{text}'") from exc
    if values.size != n:
        raise ModelError(f"{where}: expected {n} numbers, got '{text}'")
    return values


def _bounding_box(geometry: ET.Element, origin: ET.Element | None, where: str):
    centre = _floats(origin.get("xyz", "0 0 0"), 3, where) if origin is not None else np.zeros(3)
    shape = geometry[0] if len(geometry) else None
    if shape is None:
        return None
    if shape.tag == "box":
        return centre, _floats(shape.get("size"), 3, where) / 2
    if shape.tag == "sphere":
        return centre, np.full(3, float(shape.get("radius")))
    if shape.tag in ("cylinder", "capsule"):
        r, h = float(shape.get("radius")), float(shape.get("length"))
        half = r + (h / 2 if shape.tag == "cylinder" else h / 2 + r)
        return centre, np.full(3, max(r, half))  # conservative for any axis orientation
    return None  # meshes: no cheap bound


def link_inertials(root: ET.Element, path: Path) -> list[LinkInertial]:
    out = []
    for link in root.iter("link"):
        name = link.get("name")
        inertial = link.find("inertial")
        if inertial is None:
            raise ModelError(f"{path}: link '{name}' has no <inertial> (PyBullet would silently give it 1 kg)")
        where = f"{path}: link '{name}'"
        mass_el, inertia_el = inertial.find("mass"), inertial.find("inertia")
        if mass_el is None or inertia_el is None:
            raise ModelError(f"{where}: <inertial> needs <mass> and <inertia>")
        mass = float(mass_el.get("value", "nan"))
        i = {k: float(inertia_el.get(k, "nan")) for k in ("ixx", "ixy", "ixz", "iyy", "iyz", "izz")}
        inertia = np.array([[i["ixx"], i["ixy"], i["ixz"]], [i["ixy"], i["iyy"], i["iyz"]], [i["ixz"], i["iyz"], i["izz"]]])
        origin = inertial.find("origin")
        com = _floats(origin.get("xyz", "0 0 0"), 3, where) if origin is not None else np.zeros(3)
        boxes = []
        for col in link.findall("collision"):
            geom = col.find("geometry")
            if geom is not None:
                box = _bounding_box(geom, col.find("origin"), where)
                if box is not None:
                    boxes.append(box)
        out.append(LinkInertial(name, mass, com, inertia, tuple(boxes)))
    return out


def check_inertial(link: LinkInertial, path: Path) -> None:
    """Positive mass, symmetric positive-definite inertia obeying the triangle inequality, CoM in the geometry."""
    where = f"{path}: link '{link.name}'"
    if not np.isfinite(link.mass) or link.mass <= 0:
        raise ModelError(f"{where}: non-physical mass {link.mass} (must be > 0)")
    if not np.all(np.isfinite(link.inertia)):
        raise ModelError(f"{where}: inertia has missing or non-numeric entries")
    eig = np.linalg.eigvalsh(link.inertia)
    if eig[0] <= 0:
        raise ModelError(f"{where}: non-physical inertia: not positive definite (eigenvalues {eig.round(9).tolist()})")
    tol = 1e-12 + 1e-9 * eig.sum()
    if eig[0] + eig[1] < eig[2] - tol:
        raise ModelError(f"{where}: non-physical inertia: principal moments {eig.round(9).tolist()} "
                         "violate the triangle inequality (I1 + I2 >= I3)")
    if link.geometry_boxes:
        inside = any(np.all(np.abs(link.com - c) <= h + 1e-9) for c, h in link.geometry_boxes)
        if not inside:
            raise ModelError(f"{where}: centre of mass {link.com.tolist()} lies outside the link's collision geometry")


def check_joint_limits(root: ET.Element, path: Path) -> None:
    for joint in root.iter("joint"):
        if joint.get("type") not in MOVING_JOINT_TYPES:
            continue
        name = joint.get("name")
        limit = joint.find("limit")
        if limit is None:
            raise ModelError(f"{path}: joint '{name}' has no <limit> (effort, velocity and position limits are required)")
        for attr in ("effort", "velocity") + (("lower", "upper") if joint.get("type") != "continuous" else ()):
            value = limit.get(attr)
            if value is None:
                raise ModelError(f"{path}: joint '{name}': <limit> is missing '{attr}'")
            if attr in ("effort", "velocity") and not float(value) > 0:
                raise ModelError(f"{path}: joint '{name}': <limit {attr}=\"{value}\"> must be > 0")
        if joint.get("type") != "continuous" and float(limit.get("lower")) >= float(limit.get("upper")):
            raise ModelError(f"{path}: joint '{name}': lower limit {limit.get('lower')} >= upper {limit.get('upper')}")


def validate_urdf(path: Path) -> ET.Element:
    """Parse and check a URDF; returns the XML root. Raises ModelError naming the file and element."""
    root = parse_urdf(path)
    check_joint_limits(root, path)
    for link in link_inertials(root, path):
        check_inertial(link, path)
    return root
