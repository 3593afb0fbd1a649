"""Reading and validating the package's YAML files (robot config, scenes, jobs, parameter files).

One reader for all of them, so every file reports mistakes the same way: ``<file>:<line>: <entry>:
<what is wrong>``, unknown keys with a "did you mean", and YAML syntax errors as a ConfigError naming
the file and line instead of a bare parser error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from optimus_control.errors import ConfigError, suggest


class YamlMap(dict):
    """A YAML mapping that remembers the line (1-based) of itself and of each key."""

    line: int = 0
    lines: dict

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lines = {}


class YamlList(list):
    """A YAML sequence that remembers the line of itself and of each item."""

    line: int = 0
    lines: list


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> YamlMap:
    loader.flatten_mapping(node)
    out = YamlMap()
    out.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        out[key] = loader.construct_object(value_node, deep=True)
        out.lines[key] = key_node.start_mark.line + 1
    return out


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> YamlList:
    out = YamlList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.lines = [child.start_mark.line + 1 for child in node.value]
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def parse_yaml(text: str, source: Path | str) -> Any:
    """Parse YAML text; syntax errors become a ConfigError ``<source>:<line>: not valid YAML: ...``."""
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if mark is None:
            raise ConfigError(f"{source}: not valid YAML: {problem}") from None
        raise ConfigError(f"{source}:{mark.line + 1}: not valid YAML: {problem} (line {mark.line + 1}, "
                          f"column {mark.column + 1})") from None


def read_yaml_file(source: Path, what: str) -> Any:
    """Load ``source`` (``what`` names the kind of file in the not-found message)."""
    if not source.exists():
        raise ConfigError(f"{what} not found: {source}")
    try:
        text = source.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read the file: {exc}") from None
    return parse_yaml(text, source)


class YamlReader:
    """Typed access to parsed YAML that names the file, the line and the entry on any mistake.

    ``where`` is the entry's path as a user reads it (``boxes[1] 'b'.mass``); the line is that of the
    deepest enclosing entry the reader has seen.
    """

    def __init__(self, source: Path | str):
        self.source = source
        self._lines: dict[str, int] = {}

    @classmethod
    def load(cls, source: Path, what: str) -> tuple[YamlReader, Any]:
        """(reader, parsed data) of a file; ConfigError when it is missing or not YAML."""
        return cls(source), read_yaml_file(source, what)

    # ---- errors ---------------------------------------------------------------------------------------
    def line_of(self, where: str) -> int | None:
        key = where
        while key:
            if key in self._lines:
                return self._lines[key]
            cut = max(key.rfind("."), key.rfind("["))
            key = key[:cut] if cut > 0 else ""
        return self._lines.get("<top level>")

    def fail(self, where: str, what: str) -> ConfigError:
        line = self.line_of(where)
        return ConfigError(f"{self.source}{f':{line}' if line else ''}: {where}: {what}")

    def _remember(self, value: Any, where: str) -> None:
        if isinstance(value, YamlMap):
            self._lines.setdefault(where, value.line)
            prefix = "" if where == "<top level>" else f"{where}."
            for key, line in value.lines.items():
                self._lines.setdefault(f"{prefix}{key}", line)
        elif isinstance(value, YamlList):
            self._lines.setdefault(where, value.line)
            for i, line in enumerate(value.lines):
                self._lines.setdefault(f"{where}[{i}]", line)

    # ---- structure ------------------------------------------------------------------------------------
    def mapping(self, value: Any, where: str, allowed: Iterable[str] | None = None,
                required: Iterable[str] = ()) -> dict:
        """A mapping whose keys are among ``allowed`` (None: any) and include ``required``."""
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a mapping, got {_kind(value)}")
        self._remember(value, where)
        if allowed is not None:
            allowed = set(allowed)
            for key in value:
                if key not in allowed:
                    raise self._unknown(where, key, allowed)
        for key in sorted(required):
            if key not in value:
                raise self.fail(where, f"missing key '{key}'")
        return value

    def exact(self, value: Any, where: str, keys: Iterable[str]) -> dict:
        """A mapping with exactly ``keys``."""
        keys = set(keys)
        return self.mapping(value, where, keys, keys)

    def _unknown(self, where: str, key: Any, allowed: set[str]) -> ConfigError:
        line = self._lines.get(f"{where}.{key}" if where != "<top level>" else str(key)) or self.line_of(where)
        return ConfigError(f"{self.source}{f':{line}' if line else ''}: {where}: unknown key '{key}'"
                           f"{suggest(str(key), allowed)}; valid keys: {sorted(allowed)}")

    def sequence(self, value: Any, where: str, non_empty: bool = False) -> list:
        """A list (None counts as empty)."""
        if value is None and not non_empty:
            return []
        if not isinstance(value, list) or (non_empty and not value):
            raise self.fail(where, f"expected a {'non-empty ' if non_empty else ''}list, got {value!r}")
        self._remember(value, where)
        return value

    def member(self, name: str, where: str, known: Iterable[str], what: str, listing: str = "") -> str:
        """``name`` if it is one of ``known``, else an error with a suggestion (``what`` names the kind)."""
        known = list(known)
        if name not in known:
            raise self.fail(where, f"unknown {what} '{name}'{suggest(name, known)}"
                                   f"{listing or f'; valid: {sorted(known)}'}")
        return name

    # ---- scalars --------------------------------------------------------------------------------------
    def number(self, value: Any, where: str, minimum: float | None = None, strict: bool = False,
               positive: bool = False) -> float:
        """A finite number; ``positive`` means > 0, ``minimum`` >= (or > when ``strict``)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(where, f"expected a finite number, got {value!r}")
        if positive:
            minimum, strict = 0.0, True
        if minimum is not None and (value <= minimum if strict else value < minimum):
            raise self.fail(where, f"must be {'>' if strict else '>='} {minimum:g}, got {value!r}")
        return float(value)

    def integer(self, value: Any, where: str, minimum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"expected an integer, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.fail(where, f"must be >= {minimum}, got {value}")
        return value

    def string(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, f"expected a non-empty string, got {value!r}")
        return value

    def strings(self, value: Any, where: str) -> tuple[str, ...]:
        items = self.sequence(value, where, non_empty=True)
        return tuple(self.string(v, f"{where}[{i}]") for i, v in enumerate(items))

    def vector(self, value: Any, where: str, n: int, positive: bool = False, hint: str = "") -> tuple[float, ...]:
        if not isinstance(value, (list, tuple)) or len(value) != n:
            raise self.fail(where, f"expected a list of {n} numbers{hint}, got {value!r}")
        self._remember(value, where)
        return tuple(self.number(v, f"{where}[{i}]", positive=positive) for i, v in enumerate(value))

    def interval(self, value: Any, where: str) -> tuple[float, float]:
        """A number (fixed) or [low, high]."""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value), float(value)
        low, high = self.vector(value, where, 2)
        if low > high:
            raise self.fail(where, f"range [{low}, {high}] has low > high")
        return low, high


def _kind(value: Any) -> str:
    for base, name in ((bool, "bool"), (dict, "mapping"), (list, "list")):
        if isinstance(value, base):
            return name
    return type(value).__name__

