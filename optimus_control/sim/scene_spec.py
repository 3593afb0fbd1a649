"""Factory scene files (config/scenes/*.yaml) as validated dataclasses.

A scene has static furniture (tables, conveyors, roller tables, shelves, bins), named placement regions
on furniture tops, and groups of boxes placed in regions with seeded randomisation (count, position, yaw,
colour). Every mistake is reported with the file and the entry (e.g. ``boxes[1].region``).

Layout of a file::

    scene: {name: sorting_cell, description: "..."}
    robot: {position: [x, y], yaw_deg: 0}          # where the robot's feet stand, world frame
    furniture:
      - {name: conveyor, type: conveyor, position: [x, y], yaw_deg: 0, size: [length, width, height],
         colour: grey, friction: 0.8, elevation: 0.0, mesh: optional.obj, mesh_scale: [1, 1, 1]}
    regions:
      - {name: belt, furniture: conveyor, x: [-0.1, 0.1], y: [-0.3, 0.3]}   # box centres, furniture frame, on its top
      - {name: lanes, furniture: conveyor, x: [-0.1, 0.1], y: [-0.3, 0.3], slots: [2, 4], jitter: [0.01, 0.01]}
        # slots: box centres on an nx x ny grid spread over x/y (each box takes a free slot drawn from the
        # seed, moved by up to +-jitter [m]); without slots, centres are uniform over x/y
    boxes:
      - {name: box, region: belt, count: [2, 4], size: [0.1, 0.1, 0.1], mass: 0.4, friction: 0.9,
         colours: [red, green, blue], yaw_deg: [-30, 30], min_gap: 0.05, min_colours: 2}
        # min_gap [m]: clearance to every box placed before; min_colours: at least this many different colours
      - {name: fixed_box, position: [x, y, z], yaw_deg: 0, size: [...], mass: ..., colours: [red]}
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optimus_control.errors import ConfigError, suggest
from optimus_control.model.colours import NAMED_COLOURS
from optimus_control.model.paths import resolve_data_path
from optimus_control.model.yaml_reader import YamlReader

FURNITURE_TYPES = ("table", "conveyor", "roller_table", "shelf", "bin")
COLOURS = NAMED_COLOURS  # the names a scene may use for boxes and furniture
TOP_KEYS = {"scene", "robot", "furniture", "regions", "boxes"}
FURNITURE_KEYS = {"name", "type", "position", "yaw_deg", "size", "colour", "friction", "mesh", "mesh_scale",
                  "shelf_levels", "wall_thickness", "elevation"}
REGION_KEYS = {"name", "furniture", "x", "y", "slots", "jitter"}
REGION_REQUIRED = {"name", "furniture", "x", "y"}
BOX_KEYS = {"name", "region", "position", "count", "size", "mass", "friction", "colours", "yaw_deg", "min_gap",
            "min_colours"}


@dataclass(frozen=True)
class FurnitureSpec:
    name: str
    type: str
    position: tuple[float, float]        # centre of the footprint on the floor [m], world frame
    yaw_deg: float
    size: tuple[float, float, float]     # length (x), width (y), height (z) [m]; height = top surface
    colour: tuple[float, float, float, float]
    friction: float
    mesh: Path | None
    mesh_scale: tuple[float, float, float]
    shelf_levels: int
    wall_thickness: float
    elevation: float                      # [m] the piece stands on a pedestal this high (e.g. a bin on a stand)
    where: str                            # "furniture[i] 'name'" for error messages


@dataclass(frozen=True)
class RegionSpec:
    name: str
    on: str                               # furniture name (key "furniture"); the region lies on its top
    x: tuple[float, float]                # [m] range of box centres in the furniture frame
    y: tuple[float, float]
    slots: tuple[int, int] | None         # (nx, ny) grid of box centres over x/y; None = uniform placement
    jitter: tuple[float, float]           # [m] max offset of a box from its slot centre along x, y
    where: str

    def slot_centres(self) -> list[tuple[float, float]]:
        """Centres [m] of the placement slots (furniture frame), row by row; empty without slots."""
        if self.slots is None:
            return []

        def spread(lo: float, hi: float, jitter: float, n: int) -> list[float]:
            lo, hi = lo + jitter, hi - jitter  # a jittered box stays within the region
            return [0.5 * (lo + hi)] if n == 1 else [lo + i * (hi - lo) / (n - 1) for i in range(n)]

        xs = spread(*self.x, self.jitter[0], self.slots[0])
        ys = spread(*self.y, self.jitter[1], self.slots[1])
        return [(x, y) for x in xs for y in ys]


@dataclass(frozen=True)
class BoxGroupSpec:
    name: str
    region: str | None
    position: tuple[float, float, float] | None   # fixed centre [m] (world) instead of a region
    count: tuple[int, int]                         # inclusive range, drawn from the seed
    size: tuple[float, float, float]               # [m]
    mass: float                                    # [kg]
    friction: float
    colours: tuple[tuple[str, tuple[float, float, float, float]], ...]  # (name, rgba) choices
    yaw_deg: tuple[float, float]
    min_gap: float                                 # [m] clearance to every other box (grippers and segmentation need it)
    min_colours: int                               # at least this many different colours among the group's boxes
    where: str


@dataclass(frozen=True)
class SceneSpec:
    source: Path
    name: str
    description: str
    robot_position: tuple[float, float]
    robot_yaw_deg: float
    furniture: tuple[FurnitureSpec, ...]
    regions: tuple[RegionSpec, ...]
    boxes: tuple[BoxGroupSpec, ...]


def _colour(r: YamlReader, value: Any, where: str) -> tuple[str, tuple[float, float, float, float]]:
    """A named colour or [r, g, b, a] in 0..1, as (name, rgba)."""
    if isinstance(value, str):
        name = r.member(value, where, COLOURS, "colour",
                        f"; named colours: {sorted(COLOURS)} (or give [r, g, b, a] in 0..1)")
        return name, COLOURS[name]
    rgba = r.vector(value, where, 4)
    if not all(0.0 <= c <= 1.0 for c in rgba):
        raise r.fail(where, f"colour components must be in [0, 1], got {value!r}")
    return "rgba(" + ",".join(f"{c:g}" for c in rgba) + ")", rgba  # type: ignore[return-value]


def load_scene(path: str | os.PathLike) -> SceneSpec:
    """Read and validate a scene file; a bare name like ``sorting_cell`` resolves to config/scenes/<name>.yaml."""
    p = Path(path)
    if not p.suffix:
        p = p.with_suffix(".yaml")
    source = resolve_data_path(p if p.is_absolute() or p.exists() else Path("scenes") / p, "config")
    if not source.exists():
        scenes_dir = resolve_data_path("scenes", "config")
        known = sorted(f.stem for f in scenes_dir.glob("*.yaml")) if scenes_dir.is_dir() else []
        raise ConfigError(f"scene file not found: {source}{suggest(p.stem, known)}; scenes available: {known}")
    r, data = YamlReader.load(source, "scene file")
    data = r.mapping(data, "<top level>", TOP_KEYS, {"scene", "robot", "furniture"})
    head = r.mapping(data["scene"], "scene", {"name", "description"}, {"name"})
    robot = r.mapping(data["robot"], "robot", {"position", "yaw_deg"}, {"position"})

    furniture: list[FurnitureSpec] = []
    names: dict[str, str] = {}
    for i, raw in enumerate(r.sequence(data.get("furniture"), "furniture")):
        where = _entry(raw, f"furniture[{i}]")
        f = r.mapping(raw, where, FURNITURE_KEYS, {"name", "type", "position", "size"})
        name = r.string(f["name"], f"{where}.name")
        if name in names:
            raise r.fail(where, f"duplicate name '{name}' (also {names[name]})")
        names[name] = where
        kind = r.member(r.string(f["type"], f"{where}.type"), f"{where}.type", FURNITURE_TYPES, "furniture type")
        mesh = None
        if "mesh" in f:
            mesh = resolve_data_path(r.string(f["mesh"], f"{where}.mesh"), "config/scenes")
            if not mesh.is_absolute() or not mesh.exists():
                beside = source.parent / r.string(f["mesh"], f"{where}.mesh")
                mesh = beside if beside.exists() else mesh
            if not mesh.exists():
                raise r.fail(f"{where}.mesh", f"mesh file not found: {f['mesh']} (looked beside the scene file and "
                                              f"under config/scenes)")
        furniture.append(FurnitureSpec(
            name=name, type=kind, position=r.vector(f["position"], f"{where}.position", 2),  # type: ignore[arg-type]
            yaw_deg=r.number(f.get("yaw_deg", 0.0), f"{where}.yaw_deg"),
            size=r.vector(f["size"], f"{where}.size", 3, positive=True),  # type: ignore[arg-type]
            colour=_colour(r, f.get("colour", "grey"), f"{where}.colour")[1],
            friction=r.number(f.get("friction", 0.8), f"{where}.friction", positive=True),
            mesh=mesh, mesh_scale=r.vector(f.get("mesh_scale", [1, 1, 1]), f"{where}.mesh_scale", 3, positive=True),  # type: ignore[arg-type]
            shelf_levels=int(r.number(f.get("shelf_levels", 3), f"{where}.shelf_levels", minimum=1)),
            wall_thickness=r.number(f.get("wall_thickness", 0.02), f"{where}.wall_thickness", positive=True),
            elevation=r.number(f.get("elevation", 0.0), f"{where}.elevation", minimum=0.0),
            where=where,
        ))

    regions: list[RegionSpec] = []
    region_names: set[str] = set()
    for i, raw in enumerate(r.sequence(data.get("regions", []), "regions")):
        where = _entry(raw, f"regions[{i}]")
        g = r.mapping(raw, where, REGION_KEYS, REGION_REQUIRED)
        name = r.string(g["name"], f"{where}.name")
        if name in region_names:
            raise r.fail(where, f"duplicate region name '{name}'")
        region_names.add(name)
        on = r.string(g["furniture"], f"{where}.furniture")
        if on not in names:
            raise r.fail(f"{where}.furniture", f"no furniture named '{on}'{suggest(on, names)}")
        x, y = r.interval(g["x"], f"{where}.x"), r.interval(g["y"], f"{where}.y")
        slots = None
        if "slots" in g:
            nx, ny = r.vector(g["slots"], f"{where}.slots", 2, positive=True)
            if nx != int(nx) or ny != int(ny):
                raise r.fail(f"{where}.slots", f"expected two whole numbers [nx, ny] >= 1, got {g['slots']!r}")
            slots = (int(nx), int(ny))
        jitter = (0.0, 0.0)
        if "jitter" in g:
            if slots is None:
                raise r.fail(f"{where}.jitter", "jitter only applies with 'slots' (without them centres are uniform over x/y)")
            jitter = tuple(r.number(v, f"{where}.jitter[{i}]", minimum=0.0)
                           for i, v in enumerate(r.vector(g["jitter"], f"{where}.jitter", 2)))
            for axis, (lo, hi), j in (("x", x, jitter[0]), ("y", y, jitter[1])):
                if 2 * j > hi - lo:
                    raise r.fail(f"{where}.jitter", f"jitter {j:g} m along {axis} is more than half the range [{lo:g}, {hi:g}]")
        regions.append(RegionSpec(name, on, x, y, slots, jitter, where))  # type: ignore[arg-type]

    boxes: list[BoxGroupSpec] = []
    box_names: set[str] = set()
    for i, raw in enumerate(r.sequence(data.get("boxes", []), "boxes")):
        where = _entry(raw, f"boxes[{i}]")
        b = r.mapping(raw, where, BOX_KEYS, {"name", "size", "mass"})
        name = r.string(b["name"], f"{where}.name")
        if name in box_names:
            raise r.fail(where, f"duplicate box group name '{name}'")
        box_names.add(name)
        if ("region" in b) == ("position" in b):
            raise r.fail(where, "give exactly one of 'region' (random placement) or 'position' (fixed centre)")
        region = None
        if "region" in b:
            region = r.string(b["region"], f"{where}.region")
            if region not in region_names:
                raise r.fail(f"{where}.region", f"no region named '{region}'{suggest(region, region_names)}")
        count_lo, count_hi = r.interval(b.get("count", 1), f"{where}.count")
        if count_lo != int(count_lo) or count_hi != int(count_hi) or count_lo < 0:
            raise r.fail(f"{where}.count", f"expected a whole number >= 0 or [low, high], got {b.get('count')!r}")
        slotted = next((g for g in regions if g.name == region and g.slots is not None), None)
        if slotted is not None and count_hi > slotted.slots[0] * slotted.slots[1]:  # type: ignore[index]
            raise r.fail(f"{where}.count", f"up to {int(count_hi)} boxes but region '{region}' has "
                                           f"{slotted.slots[0] * slotted.slots[1]} slots")  # type: ignore[index]
        if "position" in b and count_hi != 1:
            raise r.fail(f"{where}.count", "a box with a fixed 'position' has count 1")
        colours_raw = b.get("colours", ["cardboard"])
        if not isinstance(colours_raw, list) or not colours_raw:
            raise r.fail(f"{where}.colours", f"expected a non-empty list of colours, got {colours_raw!r}")
        boxes.append(BoxGroupSpec(
            name=name, region=region,
            position=r.vector(b["position"], f"{where}.position", 3) if "position" in b else None,  # type: ignore[arg-type]
            count=(int(count_lo), int(count_hi)), size=r.vector(b["size"], f"{where}.size", 3, positive=True),  # type: ignore[arg-type]
            mass=r.number(b["mass"], f"{where}.mass", positive=True),
            friction=r.number(b.get("friction", 0.9), f"{where}.friction", positive=True),
            colours=tuple(_colour(r, c, f"{where}.colours[{k}]") for k, c in enumerate(colours_raw)),
            yaw_deg=r.interval(b.get("yaw_deg", 0.0), f"{where}.yaw_deg"),
            min_gap=r.number(b.get("min_gap", 0.0), f"{where}.min_gap", minimum=0.0),
            min_colours=_min_colours(r, b, where, int(count_lo), len(colours_raw)), where=where,
        ))
    return SceneSpec(
        source=source, name=r.string(head["name"], "scene.name"), description=str(head.get("description", "")),
        robot_position=r.vector(robot["position"], "robot.position", 2),  # type: ignore[arg-type]
        robot_yaw_deg=r.number(robot.get("yaw_deg", 0.0), "robot.yaw_deg"),
        furniture=tuple(furniture), regions=tuple(regions), boxes=tuple(boxes),
    )


def _min_colours(r: YamlReader, b: dict, where: str, count_lo: int, n_colours: int) -> int:
    """The group's min_colours, checked against its colour list and its smallest count."""
    value = r.number(b.get("min_colours", 1), f"{where}.min_colours", minimum=1)
    if value != int(value):
        raise r.fail(f"{where}.min_colours", f"expected a whole number >= 1, got {b['min_colours']!r}")
    if value > n_colours:
        raise r.fail(f"{where}.min_colours", f"{int(value)} different colours asked for but only {n_colours} listed")
    if value > 1 and count_lo < value:
        raise r.fail(f"{where}.min_colours", f"{int(value)} different colours need a count of at least {int(value)}, "
                                             f"got {count_lo}")
    return int(value)


def _entry(raw: Any, index: str) -> str:
    """How error messages name a list entry: its index and, when it has one, its name."""
    if isinstance(raw, dict) and isinstance(raw.get("name"), str):
        return f"{index} '{raw['name']}'"
    return index
