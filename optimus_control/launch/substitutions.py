"""Substitutions `$(name arg ...)` in launch XML attribute values: parsing and evaluation.

The syntax follows the ROS 2 launch frontend grammar: `$(` starts a substitution only when followed
by an identifier; arguments are separated by spaces and may be quoted ('...' or "...") and may
themselves contain substitutions; a backslash escapes `$`, quotes, parentheses and itself.
Parsing happens when a file is loaded (so an unknown substitution is reported before anything
runs); evaluation happens against a launch context while the file is interpreted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from optimus_control.errors import LaunchError, suggest

if TYPE_CHECKING:
    from optimus_control.launch.context import LaunchContext


@dataclass(frozen=True)
class Substitution:
    """One `$(name args...)`; `where` locates it for error messages."""

    name: str
    args: tuple[Template, ...]
    where: str

    def text(self) -> str:
        """The substitution as written (approximately), for messages."""
        inner = " ".join(a.text() for a in self.args)
        return f"$({self.name}{' ' + inner if inner else ''})"


Part = str | Substitution


@dataclass(frozen=True)
class Template:
    """An attribute value: literal text interleaved with substitutions."""

    parts: tuple[Part, ...]

    def text(self) -> str:
        return "".join(p if isinstance(p, str) else p.text() for p in self.parts)

    def is_literal(self) -> bool:
        return all(isinstance(p, str) for p in self.parts)

    def evaluate(self, context: LaunchContext) -> str:
        """The value with every substitution performed in `context`."""
        return "".join(p if isinstance(p, str) else evaluate_substitution(p, context) for p in self.parts)


_ESCAPABLE = "$'\"\\()"


class _Parser:
    """Recursive-descent parser over one attribute value."""

    def __init__(self, source: str, where: str):
        self.s = source
        self.i = 0
        self.where = where

    def error(self, message: str) -> LaunchError:
        return LaunchError(f"{self.where}: {message} in {self.s!r}")

    def at_substitution(self) -> bool:
        s, i = self.s, self.i
        return s.startswith("$(", i) and i + 2 < len(s) and s[i + 2].isalpha()

    def template(self) -> Template:
        return self.scan(stop_chars="", forbidden="")

    def scan(self, stop_chars: str, forbidden: str) -> Template:
        """Text and substitutions up to (not past) one of ``stop_chars`` or the end; escapes resolved.

        ``forbidden`` characters are errors where they appear unescaped (e.g. quotes in an unquoted argument).
        """
        parts: list[Part] = []
        text: list[str] = []
        while self.i < len(self.s) and self.s[self.i] not in stop_chars:
            c = self.s[self.i]
            if c == "\\" and self.i + 1 < len(self.s) and self.s[self.i + 1] in _ESCAPABLE:
                text.append(self.s[self.i + 1])
                self.i += 2
            elif self.at_substitution():
                if text:
                    parts.append("".join(text))
                    text = []
                parts.append(self.substitution())
            elif c in forbidden:
                raise self.error(f"unexpected {c!r} in an unquoted substitution argument (quote it)")
            else:
                text.append(c)
                self.i += 1
        if text:
            parts.append("".join(text))
        return Template(tuple(parts))

    def substitution(self) -> Substitution:
        self.i += 2  # "$("
        start = self.i
        while self.i < len(self.s) and (self.s[self.i].isalnum() or self.s[self.i] in "_-"):
            self.i += 1
        name = self.s[start:self.i]
        args: list[Template] = []
        while True:
            while self.i < len(self.s) and self.s[self.i] in " \t\n":
                self.i += 1
            if self.i >= len(self.s):
                raise self.error(f"unterminated substitution $({name} ...")
            if self.s[self.i] == ")":
                self.i += 1
                break
            args.append(self.argument())
        if name not in SUBSTITUTIONS:
            raise LaunchError(
                f"{self.where}: unsupported substitution $({name} ...){suggest(name, SUBSTITUTIONS)}; "
                f"optimus-launch supports {', '.join(f'$({n})' for n in SUBSTITUTIONS)}"
            )
        arity = SUBSTITUTIONS[name].arity
        if not arity[0] <= len(args) <= arity[1]:
            expected = str(arity[0]) if arity[0] == arity[1] else f"{arity[0]} to {arity[1]}"
            raise LaunchError(f"{self.where}: $({name} ...) takes {expected} argument(s), got {len(args)}")
        return Substitution(name, tuple(args), self.where)

    def argument(self) -> Template:
        """One argument: a quoted template, or unquoted text/substitutions up to a space or ')'."""
        quote = self.s[self.i]
        if quote not in "'\"":
            return self.scan(stop_chars=" \t\n)", forbidden="('\"")
        self.i += 1
        template = self.scan(stop_chars=quote, forbidden="")
        if self.i >= len(self.s):
            raise self.error(f"unterminated quoted argument ({quote})")
        self.i += 1  # the closing quote
        return template


def parse_template(source: str, where: str) -> Template:
    """Parse an attribute value; LaunchError (naming `where`) on bad syntax or unknown substitutions."""
    return _Parser(source, where).template()


# --- evaluation ---------------------------------------------------------------------------------


def evaluate_condition(value: str, where: str) -> bool:
    """Launch's boolean reading of a string: true/1 or false/0, case-insensitive; anything else fails."""
    lowered = value.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise LaunchError(f"{where}: {value!r} is not a boolean (expected true, false, 1 or 0)")


def _var(sub: Substitution, context: LaunchContext) -> str:
    name = sub.args[0].evaluate(context)
    value = context.configurations.get(name)
    if value is None:
        raise LaunchError(
            f"{sub.where}: $(var {name}): launch configuration '{name}' is not set"
            f"{suggest(name, context.configurations)}; declare it with <arg name=\"{name}\" default=...> "
            f"or <let>, or pass {name}:=<value>"
        )
    return value


def _env(sub: Substitution, context: LaunchContext) -> str:
    name = sub.args[0].evaluate(context)
    value = context.environment.get(name)
    if value is not None:
        return value
    if len(sub.args) == 2:
        return sub.args[1].evaluate(context)
    raise LaunchError(f"{sub.where}: $(env {name}): environment variable '{name}' is not set and no default is given")


def _find_pkg_share(sub: Substitution, context: LaunchContext) -> str:
    from optimus_control.launch.packages import find_package_share

    package = sub.args[0].evaluate(context)
    try:
        return str(find_package_share(package))
    except LaunchError as exc:
        raise LaunchError(f"{sub.where}: $(find-pkg-share {package}): {exc}") from None


def _dirname(sub: Substitution, context: LaunchContext) -> str:
    return str(context.current_file.parent)


def _filename(sub: Substitution, context: LaunchContext) -> str:
    return str(context.current_file)


def _not(sub: Substitution, context: LaunchContext) -> str:
    return str(not evaluate_condition(sub.args[0].evaluate(context), sub.where)).lower()


def _and(sub: Substitution, context: LaunchContext) -> str:
    left, right = (evaluate_condition(a.evaluate(context), sub.where) for a in sub.args)
    return str(left and right).lower()


def _or(sub: Substitution, context: LaunchContext) -> str:
    left, right = (evaluate_condition(a.evaluate(context), sub.where) for a in sub.args)
    return str(left or right).lower()


@dataclass(frozen=True)
class _Kind:
    arity: tuple[int, int]
    evaluate: Callable[[Substitution, LaunchContext], str]


SUBSTITUTIONS: dict[str, _Kind] = {
    "var": _Kind((1, 1), _var),
    "env": _Kind((1, 2), _env),
    "find-pkg-share": _Kind((1, 1), _find_pkg_share),
    "dirname": _Kind((0, 0), _dirname),
    "filename": _Kind((0, 0), _filename),
    "not": _Kind((1, 1), _not),
    "and": _Kind((2, 2), _and),
    "or": _Kind((2, 2), _or),
}


def evaluate_substitution(sub: Substitution, context: LaunchContext) -> str:
    return SUBSTITUTIONS[sub.name].evaluate(sub, context)
