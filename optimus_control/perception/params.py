"""Settings of the perception pipeline and of its node, the schema of ``config/perception.yaml``.

Defaults are the shipped configuration (a test holds them equal to the file); tests and benchmarks
build :class:`PerceptionParams` directly with the overrides they need.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from optimus_control.errors import ConfigError
from optimus_control.model.colours import BIN_CLASS, BOX_COLOUR_CLASSES, rgb8
from optimus_control.model.settings_schema import build, setting


@dataclass(frozen=True)
class ColourClass:
    """A named colour class: the prototype colour a box of that class shows under scene lighting."""

    name: str
    rgb: tuple[int, int, int]  # 0..255


@dataclass(frozen=True)
class PerceptionParams:
    """Every threshold of detection, tracking and self-filtering; SI units."""

    # ---- depth validity
    min_depth_m: float = setting(0.1, "m", "nearer depth readings are invalid")
    max_depth_m: float = setting(4.0, "m", "farther depth readings are invalid")
    # ---- support planes (tables, floor, bin floors): horizontal surfaces larger than any object
    horizontal_normal_tolerance_deg: float = setting(12.0, "deg", "a surface normal this close to vertical is horizontal")
    support_min_area_m2: float = setting(0.12, "m²", "a horizontal patch at least this large supports objects (larger "
                                         "than any box top)")
    support_height_tolerance_m: float = setting(0.008, "m", "points this close to a support plane belong to it")
    # ---- segmentation
    depth_edge_m: float = setting(0.02, "m", "neighbour depth jump (+ depth_edge_ratio x depth) separating objects")
    depth_edge_ratio: float = setting(0.02, "", "depth-proportional part of the depth edge")
    colour_edge_delta_e: float = setting(28.0, "ΔE", "Lab difference separating touching objects")
    colour_edge_l_weight: float = setting(0.35, "", "weight of L in that difference")
    min_component_pixels: int = setting(25, "px", "smaller segments are ignored")
    # ---- box fitting
    top_face_tolerance_m: float = setting(0.006, "m", "points within this of the top height form the top face")
    min_object_height_m: float = setting(0.02, "m", "lower segments are not objects")
    max_object_height_m: float = setting(0.6, "m", "taller segments are not objects")
    min_object_side_m: float = setting(0.03, "m", "smallest box side")
    max_object_side_m: float = setting(0.6, "m", "largest box side")
    min_top_fill_ratio: float = setting(0.65, "", "top-face area / fitted rectangle area; below: not a box")
    bin_max_rim_fill_ratio: float = setting(0.5, "", "an open container's rim covers less than this of its footprint")
    bin_min_side_m: float = setting(0.15, "m", "smallest container side")
    bin_max_wall_m: float = setting(0.035, "m", "rim points lie within this of the container's outline")
    bin_min_height_m: float = setting(0.08, "m", "an open container is at least this deep")
    partial_min_occluded_fraction: float = setting(0.2, "", "share of a top face's outline next to nearer things -> "
                                                   "'partial' (no new track)")
    # ---- colour classification (nearest prototype in Lab)
    colour_class_names: tuple[str, ...] = setting(BOX_COLOUR_CLASSES, "", "box colour classes (optimus_control/"
                                                  "model/colours.py)")
    colour_class_rgb: tuple[int, ...] = setting((), "0..255", "3 values per class name: its prototype colour; "
                                                "empty: the named colours of the sim")
    colour_max_distance: float = setting(45.0, "ΔE", "farther from every prototype: class 'unknown'")
    colour_l_weight: float = setting(0.3, "", "weight of L in the prototype distance")
    bin_class: str = setting(BIN_CLASS, "", "class (marker namespace) of open containers")
    unknown_class: str = setting("unknown", "", "class of boxes of no known colour")
    # ---- robot self-filter
    self_filter_margin_m: float = setting(0.03, "m", "inflation of the robot's collision boxes when masking its pixels")
    held_object_radius_m: float = setting(0.08, "m", "detections this close to a closed gripper are held, not loose")
    gripper_closed_fraction: float = setting(0.85, "", "fingers below this fraction of their open position: closed")
    # ---- tracking
    track_gate_m: float = setting(0.12, "m", "max distance to associate a detection with a track")
    track_smoothing: float = setting(0.5, "", "weight of a new measurement (1: no smoothing)")
    track_min_hits: int = setting(1, "", "detections before a track is published")
    track_lost_after_s: float = setting(1.0, "s", "unseen this long: state 'lost' (id and last pose kept)")
    track_forget_after_s: float = setting(30.0, "s", "lost tracks are removed after this long")
    # ---- robot state
    state_max_age_s: float = setting(0.1, "s", "robot state farther than this from the image time: image rejected")

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
        names, rgb = self.colour_class_names, self.colour_class_rgb
        if rgb and len(rgb) != 3 * len(names):
            raise ConfigError(f"perception parameters: colour_class_rgb needs 3 values per name in "
                              f"colour_class_names ({len(names)} names, {len(rgb)} values)")
        if any(not 0 <= v <= 255 for v in rgb):
            raise ConfigError("perception parameters: colour_class_rgb values must be in 0..255")
        if not rgb:
            unnamed = [n for n in names if n not in BOX_COLOUR_CLASSES]
            if unnamed:
                raise ConfigError(f"perception parameters: colour classes {unnamed} are not named colours "
                                  f"{list(BOX_COLOUR_CLASSES)}; give their colour_class_rgb")
        if len(set(names)) != len(names) or self.bin_class in names or self.unknown_class in names:
            raise ConfigError(f"perception colour classes must be unique and differ from '{self.bin_class}' and "
                              f"'{self.unknown_class}', got {list(names)}")

    @property
    def colour_classes(self) -> tuple[ColourClass, ...]:
        rgb = self.colour_class_rgb
        return tuple(ColourClass(name, tuple(rgb[3 * i:3 * i + 3]) if rgb else rgb8(name))  # type: ignore[arg-type]
                     for i, name in enumerate(self.colour_class_names))

    @classmethod
    def from_dict(cls, values: dict) -> PerceptionParams:
        """Build from a flat or nested mapping (ROS parameter names); unknown names and wrong types are errors."""
        return build(cls, values, "perception parameters")


@dataclass(frozen=True)
class PerceptionNodeSettings(PerceptionParams):
    """The node's parameters: the pipeline's plus the adapter's own (topics, frames, timing)."""

    robot_config: str = setting("optimus.yaml", "", "config/<name> or a path: camera frame and intrinsics come from it")
    colour_topic: str = setting("camera/color/image_raw", "", "sensor_msgs/Image rgb8 (bgr8/rgba8/bgra8 accepted)")
    depth_topic: str = setting("camera/depth/image_raw", "", "sensor_msgs/Image 32FC1 [m] (16UC1 [mm] accepted)")
    camera_info_topic: str = setting("camera/color/camera_info", "", "intrinsics (K); nothing is detected before "
                                     "it arrives")
    joint_states_topic: str = setting("joint_states", "", "robot joint positions (camera pose by FK)")
    odom_topic: str = setting("odom", "", "base pose in odom at the image time")
    objects_topic: str = setting("perception/objects", "", "visualization_msgs/MarkerArray output")
    odom_frame: str = setting("odom", "", "frame of the output")
    sync_tolerance_s: float = setting(0.002, "s", "colour and depth images of one frame carry stamps this close")
    state_wait_s: float = setting(0.3, "s", "(wall) an image newer than the robot state waits this long for it")
    warn_period_s: float = setting(5.0, "s", "throttle of repeated warnings")
    diagnostics_period_s: float = setting(1.0, "s", "/diagnostics period")
    label_height_m: float = setting(0.06, "m", "text label above each object marker")
    idle_scheduling: bool = setting(False, "", "run the node at SCHED_IDLE (only on CPU time the sim and the controller "
                                    "leave; the real-time overlay sets it)")
