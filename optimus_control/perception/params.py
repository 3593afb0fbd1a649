"""Tuning of the perception pipeline, one dataclass with documented defaults and units.

The node fills it from ROS parameters (config/perception.yaml); tests and benchmarks build it directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from optimus_control.errors import ConfigError, suggest


@dataclass(frozen=True)
class ColourClass:
    """A named colour class: the prototype colour a box of that class shows under scene lighting."""

    name: str
    rgb: tuple[int, int, int]  # 0..255


# The simulator's named box colours (optimus_control.sim.scene_spec.COLOURS), as 8-bit RGB.
DEFAULT_COLOUR_CLASSES = (
    ColourClass("red", (217, 26, 26)),
    ColourClass("green", (26, 179, 51)),
    ColourClass("blue", (26, 64, 217)),
    ColourClass("yellow", (242, 217, 26)),
    ColourClass("orange", (242, 128, 13)),
    ColourClass("purple", (140, 51, 179)),
    ColourClass("cardboard", (194, 153, 107)),
)


@dataclass(frozen=True)
class PerceptionParams:
    """Every threshold of detection, tracking and self-filtering; SI units."""

    # ---- depth validity
    min_depth_m: float = 0.1
    max_depth_m: float = 4.0
    # ---- support planes (tables, floor, bin floors): horizontal surfaces larger than any object
    horizontal_normal_tolerance_deg: float = 12.0
    support_min_area_m2: float = 0.12  # a horizontal patch at least this large is something objects stand on
    support_height_tolerance_m: float = 0.008  # points this close to a support plane belong to it
    # ---- segmentation
    depth_edge_m: float = 0.02  # neighbour depth jump (plus depth_edge_ratio x depth) that separates objects
    depth_edge_ratio: float = 0.02
    colour_edge_delta_e: float = 28.0  # Lab distance (L weighted by colour_edge_l_weight) between neighbours
    colour_edge_l_weight: float = 0.35
    min_component_pixels: int = 25
    # ---- box fitting
    top_face_tolerance_m: float = 0.006  # points within this of the top height form the top face
    min_object_height_m: float = 0.02
    max_object_height_m: float = 0.6
    min_object_side_m: float = 0.03
    max_object_side_m: float = 0.6
    min_top_fill_ratio: float = 0.65  # top-face area / fitted rectangle area; below: not a box
    bin_max_rim_fill_ratio: float = 0.5  # an open container's rim covers less than this of its footprint
    bin_min_side_m: float = 0.15
    bin_max_wall_m: float = 0.035  # rim points lie within this of the container's outline
    bin_min_height_m: float = 0.08  # an open container is at least this deep
    partial_min_occluded_fraction: float = 0.2  # share of a top face's outline next to nearer things -> 'partial'
    # ---- colour classification (nearest prototype in Lab)
    colour_classes: tuple[ColourClass, ...] = field(default=DEFAULT_COLOUR_CLASSES)
    colour_max_distance: float = 45.0  # Lab distance beyond which a box is of class 'unknown'
    colour_l_weight: float = 0.3
    bin_class: str = "bin"
    unknown_class: str = "unknown"
    # ---- robot self-filter
    self_filter_margin_m: float = 0.03  # inflation of the robot's collision geometry when masking its pixels
    held_object_radius_m: float = 0.08  # detections this close to a closed gripper frame are held, not loose
    gripper_closed_fraction: float = 0.85  # a finger below this fraction of its open position is closed
    # ---- tracking
    track_gate_m: float = 0.12  # max distance to associate a detection with a track
    track_smoothing: float = 0.5  # weight of the new measurement in the smoothed state (1 = no smoothing)
    track_min_hits: int = 1  # detections before a track is published
    track_lost_after_s: float = 1.0  # unseen this long -> 'lost'
    track_forget_after_s: float = 30.0  # lost tracks are removed after this long
    # ---- robot state
    state_max_age_s: float = 0.1  # image time farther than this from any robot state sample -> rejected

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not value >= 0.0:
                raise ConfigError(f"perception parameter '{f.name}' must be >= 0, got {value}")
        if not 0.0 < self.track_smoothing <= 1.0:
            raise ConfigError(f"perception parameter 'track_smoothing' must be in (0, 1], got {self.track_smoothing}")
        if self.min_depth_m >= self.max_depth_m:
            raise ConfigError(f"perception parameters: min_depth_m ({self.min_depth_m}) must be < max_depth_m "
                              f"({self.max_depth_m})")
        names = [c.name for c in self.colour_classes]
        if len(set(names)) != len(names) or self.bin_class in names or self.unknown_class in names:
            raise ConfigError(f"perception colour classes must be unique and differ from '{self.bin_class}' and "
                              f"'{self.unknown_class}', got {names}")

    @classmethod
    def from_dict(cls, values: dict) -> PerceptionParams:
        """Build from a flat mapping (ROS parameters); colour classes come as ``colour_class_names`` plus a flat
        ``colour_class_rgb`` list (3 integers per class)."""
        values = dict(values)
        names = values.pop("colour_class_names", None)
        rgb = values.pop("colour_class_rgb", None)
        valid = {f.name for f in fields(cls)}
        for key in values:
            if key not in valid:
                raise ConfigError(f"unknown perception parameter '{key}'{suggest(key, valid)}")
        if names is not None or rgb is not None:
            names, rgb = list(names or []), list(rgb or [])
            if len(rgb) != 3 * len(names):
                raise ConfigError(f"perception parameters: colour_class_rgb needs 3 values per name in "
                                  f"colour_class_names ({len(names)} names, {len(rgb)} values)")
            if any(not 0 <= v <= 255 for v in rgb):
                raise ConfigError("perception parameters: colour_class_rgb values must be in 0..255")
            values["colour_classes"] = tuple(
                ColourClass(str(n), (int(rgb[3 * i]), int(rgb[3 * i + 1]), int(rgb[3 * i + 2]))) for i, n in enumerate(names)
            )
        types = {f.name: f.type for f in fields(cls)}
        for key, value in list(values.items()):
            if types[key] in ("float", float):
                values[key] = float(value)
            elif types[key] in ("int", int):
                values[key] = int(value)
        return cls(**values)
