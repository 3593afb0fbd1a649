"""Object tracks over frames: stable ids, smoothed poses, and a visible/lost state.

Detections are associated to tracks of the same class by minimum total distance (Hungarian), gated by
``track_gate_m``. A track not seen for ``track_lost_after_s`` is LOST (the planner notices a box that
fell or was taken); it keeps its id and last pose and is revived if the object is seen again there,
and is forgotten after ``track_forget_after_s``. Ids are never reused. A partial detection (top face cut
by the image border or an occluder) keeps a matching track alive but neither moves it nor starts one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from optimus_control.perception.detection import Detection
from optimus_control.perception.params import PerceptionParams

VISIBLE = "visible"
LOST = "lost"
TENTATIVE = "tentative"


def _yaw_diff_half_pi(a: float, b: float) -> float:
    """a - b modulo pi/2, in [-pi/4, pi/4): a box's top looks the same every quarter turn (sizes swap)."""
    return float((a - b + np.pi / 4) % (np.pi / 2) - np.pi / 4)


@dataclass
class Track:
    """A tracked object; pose and size in the odom frame, times in seconds (image stamps)."""

    track_id: int
    class_name: str
    position_m: np.ndarray
    yaw_rad: float
    size_m: np.ndarray
    is_bin: bool
    first_seen_s: float
    last_seen_s: float
    hits: int = 1
    state: str = TENTATIVE

    def age_unseen_s(self, now_s: float) -> float:
        return now_s - self.last_seen_s


class Tracker:
    """Keeps tracks across frames; ``update(detections, stamp)`` after every processed image."""

    def __init__(self, params: PerceptionParams | None = None):
        self.params = params or PerceptionParams()
        self.tracks: dict[int, Track] = {}
        self._next_id = 1

    def _new_track(self, det: Detection, t_s: float) -> Track:
        track = Track(self._next_id, det.class_name, det.position_m.copy(), det.yaw_rad, det.size_m.copy(), det.is_bin,
                      t_s, t_s)
        self._next_id += 1
        if self.params.track_min_hits <= 1:
            track.state = VISIBLE
        return track

    def _merge(self, track: Track, det: Detection, t_s: float) -> None:
        if det.partial:
            # A half-hidden object is still there, but its visible part's centre and size are biased:
            # it keeps the track alive without moving it.
            track.last_seen_s = t_s
            if track.state == LOST:
                track.state = VISIBLE
            return
        a = self.params.track_smoothing
        if track.state == LOST:
            a = 1.0  # a revived track takes the new pose outright: the object may have moved
        track.position_m = (1 - a) * track.position_m + a * det.position_m
        dyaw = _yaw_diff_half_pi(det.yaw_rad, track.yaw_rad)
        # Bring the measured sides into the track's axis order before smoothing them.
        turned = abs(((det.yaw_rad - track.yaw_rad - dyaw) / (np.pi / 2)) % 2 - 1) < 0.5
        size = det.size_m[[1, 0, 2]] if turned else det.size_m
        track.yaw_rad = float((track.yaw_rad + a * dyaw + np.pi / 2) % np.pi - np.pi / 2)
        track.size_m = (1 - a) * track.size_m + a * size
        track.last_seen_s = t_s
        track.hits += 1
        if track.hits >= self.params.track_min_hits:
            track.state = VISIBLE

    def update(self, detections: list[Detection], t_s: float) -> list[Track]:
        """Associate, update and age tracks at image time t_s; returns every current track."""
        p = self.params
        tracks = list(self.tracks.values())
        matched_dets: set[int] = set()
        if tracks and detections:
            # All track-detection distances at once (hundreds of lost tracks may be kept): gated by the
            # distance and by a matching class.
            track_xyz = np.array([tr.position_m for tr in tracks])
            det_xyz = np.array([det.position_m for det in detections])
            dist = np.sqrt(np.sum((track_xyz[:, None, :] - det_xyz[None, :, :]) ** 2, axis=2))
            kinds = {}
            track_kind = np.array([kinds.setdefault((tr.class_name, tr.is_bin), len(kinds)) for tr in tracks])
            det_kind = np.array([kinds.get((det.class_name, det.is_bin), -1) for det in detections])
            allowed = (track_kind[:, None] == det_kind[None, :]) & (dist <= p.track_gate_m)
            candidates = np.flatnonzero(allowed.any(axis=1))  # tracks with no detection in reach cannot match
            cost = np.where(allowed[candidates], dist[candidates], 1e6)
            rows, cols = linear_sum_assignment(cost)
            for r, j in zip(rows, cols):
                i = candidates[r]
                if cost[r, j] < 1e6:
                    self._merge(tracks[i], detections[j], t_s)
                    matched_dets.add(int(j))
        for j, det in enumerate(detections):
            if j not in matched_dets and not det.partial:  # no new track from a biased, partial view
                track = self._new_track(det, t_s)
                self.tracks[track.track_id] = track
        for track in list(self.tracks.values()):
            unseen = track.age_unseen_s(t_s)
            if track.state == TENTATIVE and unseen > p.track_lost_after_s:
                del self.tracks[track.track_id]  # never confirmed: a one-off false detection
            elif unseen > p.track_forget_after_s:
                del self.tracks[track.track_id]
            elif unseen > p.track_lost_after_s:
                track.state = LOST
        return list(self.tracks.values())

    def published(self) -> list[Track]:
        """Tracks worth reporting: confirmed ones, visible or lost."""
        return [t for t in self.tracks.values() if t.state != TENTATIVE]
