"""Node settings as dataclass trees: one schema per node, the only place its defaults live.

A node's settings are a dataclass whose fields are :func:`setting` leaves (default, unit, description)
and :func:`section` subtrees. Its ROS parameters are the leaves' dotted names (``tasks.com.weight``); a
``dict[str, float]`` leaf is an open mapping whose entries are parameters of their own
(``joint_limit_margins_rad.l_elbow``). The same strict conversion serves every way settings arrive:
a ROS 2 parameter file read without ROS (:func:`load_parameter_file`), the overrides a node receives
(``optimus_control.nodes.parameters``) and plain mappings in code (:func:`build`). Unknown names are
errors with a "did you mean", wrong types are errors naming the source and the key.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, TypeVar

from optimus_control.errors import ConfigError, suggest
from optimus_control.model.paths import resolve_data_path
from optimus_control.model.yaml_reader import YamlMap, YamlReader

T = TypeVar("T")

# Parameters every rclpy node has; a parameter file or launch file may set them for any node.
ROS_RESERVED = ("use_sim_time", "start_type_description_service", "qos_overrides")


def setting(default: Any, unit: str = "", doc: str = "", *, parameter: bool = True) -> Any:
    """A leaf: its default, unit (``""`` for none) and one-line description.

    ``parameter=False`` keeps a field out of the node's parameters (set by code, e.g. from the robot config).
    """
    meta = {"unit": unit, "doc": doc, "parameter": parameter}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


def section(factory: Callable[[], Any], doc: str = "") -> Any:
    """A subtree (a settings class, or a function making one with other defaults): parameters ``<name>.<field>``."""
    return field(default_factory=factory, metadata={"doc": doc, "parameter": True})


# ---- types ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Kind:
    """What a leaf holds: a scalar, a sequence of scalars, or an open mapping of ``depth`` levels."""

    scalar: type                     # bool, int, float or str
    sequence: type | None = None     # list or tuple
    length: int | None = None        # fixed tuple length
    depth: int = 0                   # 0: not a mapping; 1: dict[str, scalar]; 2: dict[str, dict[str, scalar]]

    @property
    def label(self) -> str:
        base = self.scalar.__name__
        if self.sequence is not None:
            base = f"{base}[{self.length}]" if self.length else f"{base}[]"
        return "{str: " * self.depth + base + "}" * self.depth


def _kind(hint: Any, where: str) -> Kind:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in (bool, int, float, str):
        return Kind(hint)
    if origin in (list, tuple) and args:
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return Kind(args[0], tuple)
        if origin is tuple:
            return Kind(args[0], tuple, len(args))
        return Kind(args[0], list)
    if origin is dict and args and args[0] is str:
        inner = _kind(args[1], where)
        return dataclasses.replace(inner, depth=inner.depth + 1)
    if origin in (typing.Union, types.UnionType):
        raise TypeError(f"{where}: optional settings are not supported ({hint}); use a sentinel default")
    raise TypeError(f"{where}: unsupported settings type {hint!r}")


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _parameter_fields(cls: type) -> Iterator[tuple[dataclasses.Field, Any]]:
    hints = _hints(cls)
    for f in fields(cls):
        if f.metadata.get("parameter", True) and f.init:
            yield f, hints[f.name]


# ---- the schema as a list of leaves --------------------------------------------------------------------
@dataclass(frozen=True)
class Leaf:
    name: str       # dotted parameter name
    kind: Kind
    default: Any
    unit: str
    doc: str


def leaves(settings: Any, prefix: str = "") -> list[Leaf]:
    """Every leaf of a settings instance (or class: its defaults), in declaration order."""
    obj = settings() if isinstance(settings, type) else settings
    out: list[Leaf] = []
    for f, hint in _parameter_fields(type(obj)):
        value = getattr(obj, f.name)
        if is_dataclass(hint):
            out += leaves(value, f"{prefix}{f.name}.")
        else:
            out.append(Leaf(prefix + f.name, _kind(hint, prefix + f.name), value, f.metadata.get("unit", ""),
                            f.metadata.get("doc", "")))
    return out


def flat_values(settings: Any) -> dict[str, Any]:
    """ROS parameter name -> value (lists for sequences); open mappings expand to one name per entry."""
    out: dict[str, Any] = {}
    for leaf in leaves(settings):
        if leaf.kind.depth:
            for key, value in _flatten(leaf.default, leaf.name).items():
                out[key] = value
        else:
            out[leaf.name] = list(leaf.default) if leaf.kind.sequence else leaf.default
    return out


def _flatten(mapping: Mapping, prefix: str, lines: dict[str, int] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if lines is not None and isinstance(mapping, YamlMap) and key in mapping.lines:
            lines[name] = mapping.lines[key]
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, name, lines))
        else:
            out[name] = value
    return out


def is_ros_reserved(name: str) -> bool:
    return name.split(".")[0] in ROS_RESERVED


# ---- building settings from values -----------------------------------------------------------------------
def build(cls: type[T], values: Mapping[str, Any], where: str, base: T | None = None) -> T:
    """``base`` (default: ``cls()``) with ``values`` applied: nested or dotted names, strictly checked.

    ``where`` names the source in messages; values read by :mod:`yaml_reader` add their line to it.
    """
    lines: dict[str, int] = {}
    flat = _flatten(values, "", lines)
    obj = base if base is not None else cls()
    known = [leaf.name for leaf in leaves(obj)]
    changes: dict[tuple[str, ...], Any] = {}
    for name, value in flat.items():
        if is_ros_reserved(name) or (isinstance(value, Mapping) and not value):
            continue
        at = f"{where}:{lines[name]}" if name in lines else where
        changes[tuple(name.split("."))] = _convert(value, _resolve(type(obj), name, at, known), f"{at}: {name}")
    return _apply(obj, changes, where)


def _resolve(cls: type, name: str, at: str, known: list[str]) -> Kind:
    """The kind of value the parameter ``name`` takes (an open mapping's entries: its scalars)."""
    parts = name.split(".")
    node: Any = cls
    for i, part in enumerate(parts):
        match = next((hint for f, hint in _parameter_fields(node) if f.name == part), None)
        if match is None:
            raise ConfigError(f"{at}: unknown parameter '{name}'{suggest(name, known)}")
        if is_dataclass(match):
            node = match
            continue
        kind = _kind(match, name)
        if len(parts) - i - 1 != kind.depth:
            field_name = ".".join(parts[:i + 1])
            raise ConfigError(f"{at}: '{name}' does not name a value ('{field_name}' is a "
                              f"{kind.label}: give {kind.depth} key level(s) below it)")
        return dataclasses.replace(kind, depth=0)
    raise ConfigError(f"{at}: '{name}' is a group of parameters, not a value{suggest(name, known)}")


_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}


def _scalar(value: Any, kind: type, where: str) -> Any:
    ok = (isinstance(value, bool) if kind is bool else
          isinstance(value, int) and not isinstance(value, bool) if kind is int else
          isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) if kind is float else
          isinstance(value, str))
    if not ok:
        raise ConfigError(f"{where}: expected {_TYPE_NAMES[kind]}, got {value!r}")
    return kind(value)


def _convert(value: Any, kind: Kind, where: str) -> Any:
    if kind.sequence is None:
        return _scalar(value, kind.scalar, where)
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where}: expected a list of {kind.scalar.__name__}, got {value!r}")
    if kind.length is not None and len(value) != kind.length:
        raise ConfigError(f"{where}: expected {kind.length} values, got {len(value)}: {list(value)!r}")
    items = [_scalar(v, kind.scalar, f"{where}[{i}]") for i, v in enumerate(value)]
    return kind.sequence(items)


def _apply(obj: Any, changes: dict[tuple[str, ...], Any], where: str) -> Any:
    """A copy of ``obj`` with the leaf changes (paths of field names, then mapping keys) applied."""
    by_field: dict[str, dict[tuple[str, ...], Any]] = {}
    for path, value in changes.items():
        by_field.setdefault(path[0], {})[path[1:]] = value
    updates: dict[str, Any] = {}
    hints = _hints(type(obj))
    for name, sub in by_field.items():
        current = getattr(obj, name)
        if is_dataclass(hints[name]):
            updates[name] = _apply(current, sub, where)
        elif () in sub:
            updates[name] = sub[()]
        else:
            mapping = copy.deepcopy(current)
            for keys, value in sub.items():
                target = mapping
                for key in keys[:-1]:
                    target = target.setdefault(key, {})
                target[keys[-1]] = value
            updates[name] = mapping
    try:
        return dataclasses.replace(obj, **updates)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


# ---- ROS 2 parameter files -------------------------------------------------------------------------------
def parameter_file_sections(path: str | os.PathLike, node: str) -> tuple[YamlReader, list[tuple[str, Any]]]:
    """The ``ros__parameters`` mappings of a parameter file that apply to ``node``, in file order.

    A section applies when its key is ``/**``, ``node``, ``/**/node`` or ``/<namespace>/node``.
    """
    source = resolve_data_path(path, "config")
    r, data = YamlReader.load(source, f"parameter file of '{node}'")
    data = r.mapping(data, "<top level>")
    out = []
    for key, body in data.items():
        name = str(key)
        if name != "/**" and name.rstrip("/").split("/")[-1] != node:
            continue
        body = r.mapping(body, name, {"ros__parameters"}, {"ros__parameters"})
        out.append((name, r.mapping(body["ros__parameters"], f"{name}.ros__parameters")))
    if not out:
        raise ConfigError(f"{source}: no '{node}:' or '/**:' section (top-level keys: {sorted(map(str, data))})")
    return r, out


def load_parameter_file(cls: type[T], path: str | os.PathLike, node: str, base: T | None = None) -> T:
    """Settings of ``node`` from a ROS 2 parameter file (relative paths: the package's config/)."""
    r, sections = parameter_file_sections(path, node)
    settings = base if base is not None else cls()
    for _, params in sections:
        settings = build(cls, params, str(r.source), settings)
    return settings


# ---- documentation ---------------------------------------------------------------------------------------
def _format_default(value: Any) -> str:
    if isinstance(value, str):
        return f'`"{value}"`' if value == "" else f"`{value}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, (list, tuple)):
        return "`[" + ", ".join(_format_default(v).strip("`") for v in value) + "]`"
    if isinstance(value, dict):
        return "`{" + ", ".join(f"{k}: {_format_default(v).strip('`')}" for k, v in value.items()) + "}`"
    return f"`{value:g}`" if isinstance(value, float) else f"`{value}`"


def markdown_table(settings: Any) -> str:
    """One row per parameter: name, type, default, unit, description (the README's parameter tables)."""
    rows = ["| parameter | type | default | unit | description |", "|---|---|---|---|---|"]
    for leaf in leaves(settings):
        doc = leaf.doc.replace("|", "\\|")
        rows.append(f"| `{leaf.name}` | {leaf.kind.label} | {_format_default(leaf.default)} | {leaf.unit} | {doc} |")
    return "\n".join(rows) + "\n"
