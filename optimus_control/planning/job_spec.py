"""Job files (config/jobs/*.yaml) -> a validated, immutable JobSpec.

Every mistake is reported before anything moves, as a ConfigError naming the file and the entry
(``sort_by_colour.yaml: goal.sort.purple: unknown object class 'purple' (did you mean ...)``).

File format (all positions in the ``odom`` frame, SI units)::

    name: sort_by_colour
    description: free text
    bins:                                   # placement targets, by name; one of:
      bin_red: {class: bin_red}             #   the object perception reports with that class (marker ns)
      bin_a: {class: bin, position_m: [0.15, 0.58, 0.66]}   # the 'bin' nearest this prior (within
                                            #   match_radius_m, default 0.3 m, horizontally)
      bin_b: {class: bin, position_m: [...], size_m: [...]}  # same, with a fixed fallback when unseen
      bin_c: {position_m: [...], size_m: [...]}              # fixed, never perceived
    goal:                                   # exactly one of:
      sort: {red: bin_red, blue: bin_blue}  #   every box of a class -> its bin
      # pick_place: [{class: red, bin: bin_red, count: 2}]   # explicit pairs, optional count
    pick_region: {min_m: [x, y, z], max_m: [x, y, z]}   # optional: boxes outside are ignored
    look_at_m: [x, y, z]                    # optional gaze point for scans (default: region/bins centre)
    constraints:
      order: nearest                        # nearest | [class, class, ...] (class priority, nearest within)
      max_attempts_per_box: 3
      time_limit_s: 300
      expected_boxes: 6                     # optional: fewer boxes seen -> the job does not succeed
      required_success_fraction: 1.0        # optional, (0, 1]
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from optimus_control.errors import ConfigError, suggest
from optimus_control.model.paths import resolve_data_path
from optimus_control.model.yaml_reader import YamlReader

TOP_KEYS = {"name", "description", "bins", "goal", "pick_region", "look_at_m", "constraints"}
REQUIRED_TOP_KEYS = {"name", "bins", "goal", "constraints"}
BIN_KEYS = {"class", "position_m", "size_m", "match_radius_m"}
DEFAULT_MATCH_RADIUS_M = 0.3
CONSTRAINT_KEYS = {"order", "max_attempts_per_box", "time_limit_s", "expected_boxes", "required_success_fraction"}
ORDER_NEAREST = "nearest"


@dataclass(frozen=True)
class BinSpec:
    """A placement target: perceived as ``object_class`` (nearest to ``position_m`` when given), else fixed.

    ``position_m`` is the centre of the bin's outer box in odom; with ``size_m`` it is also a fixed
    fallback pose used until (or instead of) perception seeing the bin.
    """

    name: str
    object_class: str | None
    position_m: tuple[float, float, float] | None
    size_m: tuple[float, float, float] | None
    match_radius_m: float = DEFAULT_MATCH_RADIUS_M


@dataclass(frozen=True)
class PickPlaceRule:
    """Boxes of ``object_class`` go into bin ``bin``; ``count`` None means every such box."""

    object_class: str
    bin: str
    count: int | None = None


@dataclass(frozen=True)
class Region:
    """Axis-aligned box in ``odom`` [m]."""

    min_m: tuple[float, float, float]
    max_m: tuple[float, float, float]

    def contains(self, point) -> bool:
        p = np.asarray(point, dtype=float)
        return bool(np.all(p >= np.asarray(self.min_m)) and np.all(p <= np.asarray(self.max_m)))

    @property
    def centre_m(self) -> np.ndarray:
        return 0.5 * (np.asarray(self.min_m) + np.asarray(self.max_m))


@dataclass(frozen=True)
class JobConstraints:
    order: str | tuple[str, ...]
    max_attempts_per_box: int
    time_limit_s: float
    expected_boxes: int | None = None
    required_success_fraction: float = 1.0


@dataclass(frozen=True)
class JobSpec:
    name: str
    description: str
    source: Path
    kind: str  # "sort" | "pick_place"
    rules: tuple[PickPlaceRule, ...]
    bins: dict[str, BinSpec]
    constraints: JobConstraints
    pick_region: Region | None = None
    look_at_m: tuple[float, float, float] | None = None

    @property
    def box_classes(self) -> tuple[str, ...]:
        return tuple(r.object_class for r in self.rules)

    def rule_for(self, object_class: str) -> PickPlaceRule | None:
        return next((r for r in self.rules if r.object_class == object_class), None)

    def bin_by_class(self, object_class: str) -> BinSpec | None:
        return next((b for b in self.bins.values() if b.object_class == object_class), None)


def _object_class(r: YamlReader, value: Any, where: str, known: set[str] | None) -> str:
    name = r.string(value, where)
    return name if known is None else r.member(name, where, known, "object class", f"; perception knows {sorted(known)}")


def _vector3(r: YamlReader, value: Any, where: str, positive: bool = False) -> tuple[float, float, float]:
    return r.vector(value, where, 3, positive=positive, hint=" [x, y, z] in metres")  # type: ignore[return-value]


def load_job(path: str | os.PathLike, known_classes: Iterable[str] | None = None) -> JobSpec:
    """Read and validate a job file; relative names resolve under config/jobs/ (``.yaml`` may be omitted).

    Args:
        path: file path or job name.
        known_classes: object classes perception can report (box colours and bin classes). ``None``
            skips the class check (only for offline tools; the node always passes its list).
    """
    source = resolve_data_path(path, "config/jobs")
    if not source.exists() and source.suffix == "":
        source = source.with_suffix(".yaml")
    if not source.exists():
        raise ConfigError(f"job file not found: {source} (give a path or a name under config/jobs/)")
    reader, data = YamlReader.load(source, "job file")
    return _parse(reader, data, known_classes)


def parse_job(data: Any, source: Path, known_classes: Iterable[str] | None = None) -> JobSpec:
    """Validate an already parsed job mapping; ``source`` names it in error messages."""
    return _parse(YamlReader(Path(source)), data, known_classes)


def _parse(r: YamlReader, data: Any, known_classes: Iterable[str] | None) -> JobSpec:
    source = Path(r.source)
    known = set(known_classes) if known_classes is not None else None
    data = r.mapping(data, "<top level>", TOP_KEYS, REQUIRED_TOP_KEYS)

    bins_raw = data["bins"]
    if not isinstance(bins_raw, dict) or not bins_raw:
        raise r.fail("bins", f"expected a non-empty mapping of bin name -> bin, got {bins_raw!r}")
    bins: dict[str, BinSpec] = {}
    for name, entry in bins_raw.items():
        where = f"bins.{name}"
        entry = r.mapping(entry, where, BIN_KEYS)
        cls = _object_class(r, entry["class"], f"{where}.class", known) if "class" in entry else None
        pos = _vector3(r, entry["position_m"], f"{where}.position_m") if "position_m" in entry else None
        size = _vector3(r, entry["size_m"], f"{where}.size_m", positive=True) if "size_m" in entry else None
        radius = DEFAULT_MATCH_RADIUS_M
        if "match_radius_m" in entry:
            radius = r.number(entry["match_radius_m"], f"{where}.match_radius_m", 0.0, strict=True)
        if cls is None and (pos is None or size is None):
            raise r.fail(where, "a bin needs a perception 'class', or a fixed 'position_m' and 'size_m'")
        if size is not None and pos is None:
            raise r.fail(where, "'size_m' without 'position_m': a fixed fallback needs both")
        bins[str(name)] = BinSpec(str(name), cls, pos, size, radius)

    rules, kind = _parse_goal(r, data["goal"], bins, known)
    constraints = _parse_constraints(r, data["constraints"], {x.object_class for x in rules})

    region = None
    if "pick_region" in data:
        reg = r.mapping(data["pick_region"], "pick_region", {"min_m", "max_m"}, {"min_m", "max_m"})
        lo, hi = _vector3(r, reg["min_m"], "pick_region.min_m"), _vector3(r, reg["max_m"], "pick_region.max_m")
        if not all(a < b for a, b in zip(lo, hi)):
            raise r.fail("pick_region", f"min_m {list(lo)} must be below max_m {list(hi)} on every axis")
        region = Region(lo, hi)
    look_at = _vector3(r, data["look_at_m"], "look_at_m") if "look_at_m" in data else None
    description = r.string(data["description"], "description") if "description" in data else ""
    return JobSpec(name=r.string(data["name"], "name"), description=description, source=Path(source), kind=kind,
                   rules=rules, bins=bins, constraints=constraints, pick_region=region, look_at_m=look_at)


def _parse_goal(r: YamlReader, goal: Any, bins: dict[str, BinSpec], known: set[str] | None):
    goal = r.mapping(goal, "goal", {"sort", "pick_place"})
    if len(goal) != 1:
        raise r.fail("goal", f"give exactly one of 'sort' or 'pick_place', got {sorted(goal) or 'none'}")

    def check_bin(name: Any, where: str) -> str:
        name = r.string(name, where)
        if name not in bins:
            raise r.fail(where, f"unknown bin '{name}'{suggest(name, bins)}; bins of this job: {sorted(bins)}")
        return name

    rules: list[PickPlaceRule] = []
    if "sort" in goal:
        kind = "sort"
        table = goal["sort"]
        if not isinstance(table, dict) or not table:
            raise r.fail("goal.sort", f"expected a non-empty mapping of object class -> bin name, got {table!r}")
        for cls, bin_name in table.items():
            where = f"goal.sort.{cls}"
            rules.append(PickPlaceRule(_object_class(r, cls, where, known), check_bin(bin_name, where)))
    else:
        kind = "pick_place"
        pairs = goal["pick_place"]
        if not isinstance(pairs, list) or not pairs:
            raise r.fail("goal.pick_place", f"expected a non-empty list of {{class, bin, count}}, got {pairs!r}")
        for i, pair in enumerate(pairs):
            where = f"goal.pick_place[{i}]"
            pair = r.mapping(pair, where, {"class", "bin", "count"}, {"class", "bin"})
            count = r.integer(pair["count"], f"{where}.count", 1) if "count" in pair else None
            rules.append(PickPlaceRule(_object_class(r, pair["class"], f"{where}.class", known),
                                       check_bin(pair["bin"], f"{where}.bin"), count))
    seen: dict[str, str] = {}
    for rule in rules:
        if rule.object_class in seen:
            raise r.fail("goal", f"object class '{rule.object_class}' is assigned twice "
                                  f"(bins '{seen[rule.object_class]}' and '{rule.bin}')")
        seen[rule.object_class] = rule.bin
        if bins[rule.bin].object_class == rule.object_class:
            raise r.fail("goal", f"class '{rule.object_class}' is both a box class and the class of bin '{rule.bin}'")
    return tuple(rules), kind


def _parse_constraints(r: YamlReader, raw: Any, box_classes: set[str]) -> JobConstraints:
    c = r.mapping(raw, "constraints", CONSTRAINT_KEYS, {"max_attempts_per_box", "time_limit_s"})
    order: str | tuple[str, ...] = ORDER_NEAREST
    if "order" in c:
        value = c["order"]
        if isinstance(value, str):
            if value != ORDER_NEAREST:
                raise r.fail("constraints.order", f"expected '{ORDER_NEAREST}' or a list of box classes, got {value!r}")
        elif isinstance(value, list) and value:
            names = [r.string(v, f"constraints.order[{i}]") for i, v in enumerate(value)]
            for i, name in enumerate(names):
                if name not in box_classes:
                    raise r.fail(f"constraints.order[{i}]", f"class '{name}' is not a box class of this job's goal"
                                                            f"{suggest(name, box_classes)}; goal classes: {sorted(box_classes)}")
            if len(set(names)) != len(names):
                raise r.fail("constraints.order", f"repeated class in {names}")
            order = tuple(names)
        else:
            raise r.fail("constraints.order", f"expected '{ORDER_NEAREST}' or a non-empty list of classes, got {value!r}")
    expected = r.integer(c["expected_boxes"], "constraints.expected_boxes", 1) if "expected_boxes" in c else None
    fraction = 1.0
    if "required_success_fraction" in c:
        fraction = r.number(c["required_success_fraction"], "constraints.required_success_fraction", 0.0, strict=True)
        if fraction > 1.0:
            raise r.fail("constraints.required_success_fraction", f"must be in (0, 1], got {fraction!r}")
    return JobConstraints(
        order=order,
        max_attempts_per_box=r.integer(c["max_attempts_per_box"], "constraints.max_attempts_per_box", 1),
        time_limit_s=r.number(c["time_limit_s"], "constraints.time_limit_s", 0.0, strict=True),
        expected_boxes=expected, required_success_fraction=fraction,
    )
