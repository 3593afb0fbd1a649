"""Ground-truth evaluation: the one definition of a fall and of an episode's score.

Everything here reads simulator ground truth (pelvis pose, box positions), never what the robot
estimates: it is how the demo, the in-process episode runner, the tests and the benchmarks judge a
run, and the reference any online fall detector is tested against. Nothing here feeds back into
control.

A robot has fallen when its pelvis is below a fraction of its standing height OR its pelvis z axis
is tilted beyond a limit: a robot can fall sideways onto a bin with its pelvis still high, or sink
into a crouch it cannot hold with its pelvis upright. A box counts when its centre lies inside the
footprint of the bin its job rule names and no higher than that bin's rim.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from optimus_control.errors import ConfigError
from optimus_control.model import RobotModel
from optimus_control.planning.job_spec import BinSpec, JobSpec

# A fall threshold in metres would be wrong for a shorter or taller robot: it scales with the standing pelvis
# height (0.98 m for Optimus, so 0.59 m). Sorting keeps the pelvis far above it (0.95 m at the lowest in a
# 2-box episode); a robot on its knees or its back is below it.
FALL_BASE_HEIGHT_FRACTION = 0.6  # [1] of the standing pelvis height
# Sorting tilts the pelvis by a few degrees (2.6 deg at most in the same episode); past this it is toppling.
FALL_TILT_RAD = math.radians(30.0)  # [rad] angle between the pelvis z axis and the world's vertical


def standing_base_height_m(robot: RobotModel) -> float:
    """Height [m] of the pelvis above the floor in the robot's standing posture, soles flat on the floor."""
    return float(robot.standing_configuration()[2])


def base_tilt_rad(orientation_xyzw: Sequence[float]) -> float:
    """Angle [rad] between the pelvis z axis and the world's vertical, from a unit quaternion (x, y, z, w)."""
    x, y = float(orientation_xyzw[0]), float(orientation_xyzw[1])
    return math.acos(min(1.0, max(-1.0, 1.0 - 2.0 * (x * x + y * y))))


@dataclass(frozen=True)
class FallCriteria:
    """Thresholds of a fall: pelvis below ``min_base_height_m`` [m] or tilted beyond ``max_base_tilt_rad`` [rad]."""

    min_base_height_m: float
    max_base_tilt_rad: float = FALL_TILT_RAD

    @classmethod
    def for_robot(cls, robot: RobotModel) -> FallCriteria:
        """The criteria scaled to this robot's standing pelvis height."""
        return cls(FALL_BASE_HEIGHT_FRACTION * standing_base_height_m(robot))

    def is_fallen(self, base_height_m: float, base_tilt_rad: float) -> bool:
        return base_height_m < self.min_base_height_m or base_tilt_rad > self.max_base_tilt_rad


def is_fallen(base_height_m: float, base_tilt_rad: float, criteria: FallCriteria) -> bool:
    """True when the ground-truth pelvis (height above the floor [m], tilt [rad]) says the robot has fallen."""
    return criteria.is_fallen(base_height_m, base_tilt_rad)


def count_falls(base_samples: Iterable[tuple[float, float]], criteria: FallCriteria) -> int:
    """Number of falls in a time series of (pelvis height [m], tilt [rad]): each fallen stretch counts once."""
    count, down = 0, False
    for height_m, tilt_rad in base_samples:
        fallen = criteria.is_fallen(height_m, tilt_rad)
        if fallen and not down:
            count += 1
        down = fallen
    return count


def scorable_bins(job: JobSpec) -> None:
    """Raise ConfigError unless every bin a rule targets has a fixed position and size (ground truth needs them)."""
    for rule in job.rules:
        spec = job.bins[rule.bin]
        if spec.position_m is None or spec.size_m is None:
            raise ConfigError(f"{job.source}: bins.{spec.name}: ground truth cannot score boxes for this bin without "
                              "'position_m' and 'size_m' (the bin's outer box in odom)")


def in_bin(position_m: Sequence[float], spec: BinSpec) -> bool:
    """Whether a box centre [m] lies inside the bin's footprint and no higher than its rim."""
    if spec.position_m is None or spec.size_m is None:
        return False
    centre, half = np.asarray(spec.position_m, dtype=float), 0.5 * np.asarray(spec.size_m, dtype=float)
    d = np.abs(np.asarray(position_m, dtype=float) - centre)
    return bool(d[0] <= half[0] and d[1] <= half[1] and position_m[2] <= centre[2] + half[2])


@dataclass(frozen=True)
class BoxOutcome:
    """One ground-truth box of a class the job sorts: where it ended and whether that is its bin."""

    name: str
    colour: str
    bin: str
    in_bin: bool
    position_m: tuple[float, float, float]

    def as_dict(self) -> dict:
        return {"name": self.name, "colour": self.colour, "bin": self.bin, "in_bin": self.in_bin,
                "position_m": [round(v, 4) for v in self.position_m]}


def score_boxes(job: JobSpec, objects: Mapping[str, tuple[str, Sequence[float]]]) -> list[BoxOutcome]:
    """Each ground-truth box (name -> (colour, centre [m])) of a class the job sorts, by name."""
    out = []
    for name, (colour, xyz) in sorted(objects.items()):
        rule = job.rule_for(colour)
        if rule is None:
            continue
        position = tuple(float(v) for v in xyz)
        out.append(BoxOutcome(name, colour, rule.bin, in_bin(position, job.bins[rule.bin]), position))
    return out


@dataclass(frozen=True)
class EpisodeEvaluation:
    """An episode judged by ground truth: boxes in their bins, falls, and the planner's own verdict."""

    boxes: tuple[BoxOutcome, ...]
    falls: int
    job_succeeded: bool
    min_base_height_m: float | None = None  # lowest pelvis over the samples: the margin to the fall height
    max_base_tilt_rad: float | None = None

    @property
    def boxes_total(self) -> int:
        return len(self.boxes)

    @property
    def boxes_in_right_bin(self) -> int:
        return sum(b.in_bin for b in self.boxes)

    @property
    def succeeded(self) -> bool:
        """The planner reports success, every box of the job is in its bin, and the robot never fell."""
        return (self.job_succeeded and self.falls == 0 and self.boxes_total > 0
                and self.boxes_in_right_bin == self.boxes_total)


def evaluate_episode(job: JobSpec, objects: Mapping[str, tuple[str, Sequence[float]]],
                     base_samples: Iterable[tuple[float, float]], job_succeeded: bool,
                     criteria: FallCriteria) -> EpisodeEvaluation:
    """Score an episode from its final ground-truth boxes and its pelvis (height [m], tilt [rad]) samples."""
    samples = list(base_samples)
    return EpisodeEvaluation(tuple(score_boxes(job, objects)), count_falls(samples, criteria), bool(job_succeeded),
                             min((h for h, _ in samples), default=None), max((t for _, t in samples), default=None))
