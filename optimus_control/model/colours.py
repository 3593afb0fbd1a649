"""The named colours of the package, defined once: the sim paints with them, perception classifies them.

``NAMED_COLOURS`` is what scene files may name (boxes and furniture); ``BOX_COLOUR_CLASSES`` are the box
colours perception tells apart by default (its colour classes), and with the bin class they are what a
job may ask for.
"""

from __future__ import annotations

NAMED_COLOURS: dict[str, tuple[float, float, float, float]] = {
    "red": (0.85, 0.1, 0.1, 1.0), "green": (0.1, 0.7, 0.2, 1.0), "blue": (0.1, 0.25, 0.85, 1.0),
    "yellow": (0.95, 0.85, 0.1, 1.0), "orange": (0.95, 0.5, 0.05, 1.0), "purple": (0.55, 0.2, 0.7, 1.0),
    "white": (0.95, 0.95, 0.95, 1.0), "black": (0.08, 0.08, 0.08, 1.0), "grey": (0.5, 0.5, 0.5, 1.0),
    "dark_grey": (0.25, 0.25, 0.27, 1.0), "brown": (0.55, 0.38, 0.2, 1.0), "wood": (0.72, 0.56, 0.36, 1.0),
    "cardboard": (0.76, 0.6, 0.42, 1.0), "steel": (0.62, 0.64, 0.68, 1.0),
}
BOX_COLOUR_CLASSES: tuple[str, ...] = ("red", "green", "blue", "yellow", "orange", "purple", "cardboard")
BIN_CLASS = "bin"


def rgb8(name: str) -> tuple[int, int, int]:
    """A named colour as 8-bit RGB (rounded half up), the form perception's prototypes take."""
    r, g, b, _ = NAMED_COLOURS[name]
    return int(r * 255 + 0.5), int(g * 255 + 0.5), int(b * 255 + 0.5)
