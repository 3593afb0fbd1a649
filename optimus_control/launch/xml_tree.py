"""Parse a launch XML file into a small element tree that remembers file and line of every tag.

xml.etree drops line numbers, and every error the launcher reports must name the file and the line,
so the tree is built directly from expat's start/end events.
"""

from __future__ import annotations

import xml.parsers.expat
from dataclasses import dataclass, field
from pathlib import Path

from optimus_control.errors import LaunchError


@dataclass
class Element:
    """One XML tag: name, attributes in document order, child tags, and where it was written."""

    tag: str
    attrs: dict[str, str]
    file: Path
    line: int
    children: list[Element] = field(default_factory=list)
    templates: dict = field(default_factory=dict)  # attribute -> parsed Template, filled by vocabulary.check

    @property
    def where(self) -> str:
        """'file:line' for error messages."""
        return f"{self.file}:{self.line}"

    def fail(self, message: str) -> LaunchError:
        """A LaunchError located at this tag (returned, so callers write `raise el.fail(...)`)."""
        return LaunchError(f"{self.where}: <{self.tag}>: {message}")


def parse_file(path: str | Path) -> Element:
    """Root element of the XML file at `path`; LaunchError naming file and line on bad XML."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LaunchError(f"cannot read launch file {path}: {exc.strerror}") from exc
    return parse_bytes(data, path)


def parse_bytes(data: bytes, path: Path) -> Element:
    """Root element of XML `data` read from `path` (used for messages only)."""
    parser = xml.parsers.expat.ParserCreate()
    stack: list[Element] = []
    roots: list[Element] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        element = Element(tag, dict(attrs), path, parser.CurrentLineNumber)
        if stack:
            stack[-1].children.append(element)
        else:
            roots.append(element)
        stack.append(element)

    def end(_tag: str) -> None:
        stack.pop()

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError as exc:
        raise LaunchError(
            f"{path}:{exc.lineno}: not well-formed XML: {xml.parsers.expat.errors.messages[exc.code]}"
        ) from exc
    if not roots:
        raise LaunchError(f"{path}: empty XML document")
    return roots[0]
