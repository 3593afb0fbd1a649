"""The planner's belief about boxes and bins, built from perception snapshots.

Boxes get a stable planner id (1, 2, ...) that survives perception re-creating a track: a box that
was dropped and comes back under a new track id is re-associated by class, size and proximity to
where it was last seen, so its attempt count carries over. Assumptions about perception:

- each snapshot is the complete set of current tracks (a box missing from it is not visible now);
- tracks whose state is ``lost`` are not visible; ``held`` ones are visible (in a gripper);
- boxes first seen inside a bin, or (when the job has a pick region) outside it, are not the job's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from optimus_control.model.settings_schema import setting
from optimus_control.planning.geometry import Pose
from optimus_control.planning.interfaces import HELD, PerceptionSnapshot
from optimus_control.planning.job_spec import JobSpec

PENDING = "pending"
SORTED = "sorted"
SKIPPED = "skipped"
FAILED = "failed"
OUTCOMES = (PENDING, SORTED, SKIPPED, FAILED)


@dataclass(frozen=True)
class WorldParams:
    reassociate_radius_m: float = setting(1.5, "m", "a new track may inherit a missing box within this distance")
    size_tolerance_m: float = setting(0.03, "m", "... if every sorted extent matches within this")
    unskip_distance_m: float = setting(0.05, "m", "a skipped box that moved this far is considered again")
    bin_size_tolerance_m: float = setting(
        0.03, "m",
        "a perceived bin whose footprint differs more from the job's is a partial view")


@dataclass
class BoxRecord:
    """One box the job acts on; ``outcome`` is final once not ``pending``."""

    box_id: int
    object_class: str
    track_id: int
    pose: Pose
    size_m: np.ndarray
    first_seen_s: float
    last_seen_s: float
    visible: bool = True
    held: bool = False
    outcome: str = PENDING
    reason: str = ""
    attempts: int = 0
    replans: int = 0
    hand: str | None = None
    bin: str | None = None
    finished_s: float | None = None
    skipped_at_m: np.ndarray | None = None
    events: list[str] = field(default_factory=list)

    @property
    def position_m(self) -> np.ndarray:
        return self.pose.position


@dataclass
class BinRecord:
    name: str
    pose: Pose | None
    size_m: np.ndarray | None
    seen: bool = False  # located by perception (False: fixed pose from the job, or unknown)
    drops_xy_m: list[np.ndarray] = field(default_factory=list)  # where boxes were released into it (odom xy)

    def contains_xy(self, point, margin_m: float = 0.0) -> bool:
        """Is ``point`` (odom) above or inside the bin's footprint, shrunk by ``margin_m``?"""
        if self.pose is None or self.size_m is None:
            return False
        local = self.pose.inverse().transform_point(point)
        half = 0.5 * np.asarray(self.size_m)
        return bool(abs(local[0]) <= half[0] - margin_m and abs(local[1]) <= half[1] - margin_m)

    @property
    def rim_height_m(self) -> float:
        return float(self.pose.position[2] + 0.5 * self.size_m[2])


class WorldModel:
    def __init__(self, job: JobSpec, params: WorldParams | None = None):
        self.job = job
        self.params = params or WorldParams()
        self.boxes: dict[int, BoxRecord] = {}
        self.bins: dict[str, BinRecord] = {}
        for spec in job.bins.values():
            fixed = spec.position_m is not None and spec.size_m is not None
            pose = Pose.from_position_yaw(spec.position_m) if fixed else None
            self.bins[spec.name] = BinRecord(spec.name, pose, np.asarray(spec.size_m) if fixed else None)
        self._bin_classes = {b.object_class for b in job.bins.values() if b.object_class}
        self._box_classes = set(job.box_classes)
        self._by_track: dict[int, int] = {}
        self.last_stamp_s: float | None = None

    # ---- queries -----------------------------------------------------------------------------
    def box(self, box_id: int) -> BoxRecord:
        return self.boxes[box_id]

    def bin_containing(self, point) -> str | None:
        return next((name for name, b in self.bins.items() if b.contains_xy(point) and point[2] < b.rim_height_m + 0.05),
                    None)

    def pending(self) -> list[BoxRecord]:
        return [b for b in self.boxes.values() if b.outcome == PENDING]

    # ---- update ------------------------------------------------------------------------------
    def update(self, snap: PerceptionSnapshot) -> None:
        """Fold one perception snapshot into the belief."""
        if self.last_stamp_s is not None and snap.stamp_s <= self.last_stamp_s:
            return
        self.last_stamp_s = snap.stamp_s
        self._update_bins([o for o in snap.objects if o.object_class in self._bin_classes and o.visible])
        boxes = [o for o in snap.objects if o.object_class in self._box_classes and o.visible]
        present = {o.track_id for o in boxes}
        for rec in self.boxes.values():  # first, so a track replaced in this snapshot can be re-associated
            if rec.track_id not in present:
                rec.visible, rec.held = False, False
        for obj in boxes:
            box_id = self._by_track.get(obj.track_id)
            if box_id is None:
                box_id = self._associate(obj, snap.stamp_s)
            if box_id is None:
                continue
            rec = self.boxes[box_id]
            rec.pose, rec.size_m = obj.pose, np.asarray(obj.size_m, dtype=float)
            rec.last_seen_s, rec.visible, rec.held = snap.stamp_s, True, obj.state == HELD
            if rec.outcome == SKIPPED and rec.skipped_at_m is not None and \
                    np.linalg.norm(rec.position_m - rec.skipped_at_m) > self.params.unskip_distance_m:
                rec.outcome, rec.skipped_at_m = PENDING, None
                rec.events.append(f"t={snap.stamp_s:.1f}s moved since it was skipped: considered again")

    def _update_bins(self, seen: list) -> None:
        """Each job bin takes the perceived object of its class nearest its prior (or its last pose)."""
        for spec in self.job.bins.values():
            if spec.object_class is None:
                continue
            rec = self.bins[spec.name]
            candidates = [o for o in seen if o.object_class == spec.object_class]
            anchor = np.asarray(spec.position_m) if spec.position_m is not None else \
                rec.pose.position if rec.seen else None
            if anchor is not None:
                candidates = [o for o in candidates
                              if np.linalg.norm(o.position_m[:2] - anchor[:2]) <= spec.match_radius_m or
                              (spec.position_m is None and rec.seen)]
                candidates.sort(key=lambda o: float(np.linalg.norm(o.position_m[:2] - anchor[:2])))
            if spec.size_m is not None:
                # A bin seen in part (a wall hidden by an arm or out of the image) has a shrunken footprint
                # and a shifted centre: releasing over that centre stretched the arm past the bin.
                footprint = np.sort(np.asarray(spec.size_m[:2], dtype=float))
                candidates = [o for o in candidates if np.all(np.abs(np.sort(np.asarray(o.size_m[:2], dtype=float))
                                                                     - footprint) <= self.params.bin_size_tolerance_m)]
            if candidates:
                best = candidates[0]
                rec.pose, rec.size_m, rec.seen = best.pose, np.asarray(best.size_m, dtype=float), True

    def _associate(self, obj, stamp_s: float) -> int | None:
        p = self.params
        size = np.sort(np.asarray(obj.size_m, dtype=float))
        best, best_d = None, p.reassociate_radius_m
        for rec in self.boxes.values():
            if rec.visible or rec.object_class != obj.object_class or rec.outcome in (SORTED,):
                continue
            if np.max(np.abs(np.sort(rec.size_m) - size)) > p.size_tolerance_m:
                continue
            d = float(np.linalg.norm(rec.position_m - obj.position_m))
            if d <= best_d:
                best, best_d = rec.box_id, d
        if best is not None:
            rec = self.boxes[best]
            self._by_track.pop(rec.track_id, None)
            rec.events.append(f"t={stamp_s:.1f}s re-detected as track {obj.track_id} (was {rec.track_id}), "
                              f"{best_d:.2f} m from where it was last seen")
            rec.track_id = obj.track_id
            self._by_track[obj.track_id] = best
            return best
        if self.bin_containing(obj.position_m) is not None:
            return None
        if self.job.pick_region is not None and not self.job.pick_region.contains(obj.position_m):
            return None
        box_id = len(self.boxes) + 1
        self.boxes[box_id] = BoxRecord(box_id, obj.object_class, obj.track_id, obj.pose,
                                       np.asarray(obj.size_m, dtype=float), stamp_s, stamp_s)
        rule = self.job.rule_for(obj.object_class)
        self.boxes[box_id].bin = rule.bin if rule is not None else None
        self._by_track[obj.track_id] = box_id
        return box_id
