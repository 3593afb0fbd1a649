"""Tracker: stable ids, smoothing, 'lost' after the configured time, revival, partial views."""

from __future__ import annotations

import numpy as np
import pytest

from optimus_control.perception import Detection, PerceptionParams
from optimus_control.perception.tracker import LOST, VISIBLE, Tracker


def det(x: float, y: float, cls: str = "red", yaw: float = 0.0, size=(0.12, 0.08, 0.1), partial: bool = False) -> Detection:
    return Detection(cls, np.array([x, y, 0.8]), yaw, np.array(size, dtype=float), partial=partial)


def test_ids_are_stable_and_distinct_across_frames():
    """Three boxes seen over 20 frames with 3 mm jitter keep their three ids; order of detections does not matter."""
    tracker = Tracker(PerceptionParams())
    rng = np.random.default_rng(0)
    truth = [(1.0, 0.2, "red"), (1.1, -0.1, "blue"), (0.9, 0.0, "red")]
    ids = None
    for k in range(20):
        dets = [det(x + rng.normal(0, 0.003), y + rng.normal(0, 0.003), c) for x, y, c in truth]
        rng.shuffle(dets)
        tracks = tracker.update(dets, 0.1 * k)
        by_pos = {tuple(np.round([t.position_m[0], t.position_m[1]], 1)): t.track_id for t in tracks}
        assert len(tracks) == 3
        if ids is None:
            ids = by_pos
        assert by_pos == ids


def test_smoothing_reduces_jitter():
    """The smoothed position jitters less than the measurements (smoothing 0.3)."""
    tracker = Tracker(PerceptionParams(track_smoothing=0.3))
    rng = np.random.default_rng(1)
    meas, est = [], []
    for k in range(200):
        m = np.array([1.0, 0.0]) + rng.normal(0, 0.004, 2)
        tracks = tracker.update([det(*m)], 0.1 * k)
        meas.append(m)
        est.append(tracks[0].position_m[:2].copy())
    assert np.std(np.array(est)[20:], axis=0).max() < 0.6 * np.std(np.array(meas)[20:], axis=0).min()


def test_unseen_box_becomes_lost_then_forgotten_and_ids_are_not_reused():
    p = PerceptionParams(track_lost_after_s=1.0, track_forget_after_s=3.0)
    tracker = Tracker(p)
    tracker.update([det(1.0, 0.0), det(1.2, 0.3, "blue")], 0.0)
    red_id = next(t.track_id for t in tracker.tracks.values() if t.class_name == "red")
    for k in range(1, 8):  # the red box is gone, the blue one stays
        tracks = {t.track_id: t for t in tracker.update([det(1.2, 0.3, "blue")], 0.2 * k)}
    assert tracks[red_id].state == LOST and tracks[red_id].position_m[0] == pytest.approx(1.0)
    assert all(t.state == VISIBLE for i, t in tracks.items() if i != red_id)
    tracker.update([det(1.2, 0.3, "blue")], 3.5)
    assert red_id not in tracker.tracks
    new = tracker.update([det(1.0, 0.0), det(1.2, 0.3, "blue")], 3.6)
    assert max(t.track_id for t in new) > red_id


def test_lost_box_seen_again_at_its_place_keeps_its_id():
    tracker = Tracker(PerceptionParams(track_lost_after_s=0.5))
    tid = tracker.update([det(1.0, 0.0)], 0.0)[0].track_id
    tracker.update([], 1.0)
    assert tracker.tracks[tid].state == LOST
    tracks = tracker.update([det(1.03, 0.01)], 1.1)
    assert [t.track_id for t in tracks] == [tid] and tracks[0].state == VISIBLE
    assert tracks[0].position_m[0] == pytest.approx(1.03)  # a revived track takes the new pose


def test_classes_do_not_mix_and_far_detections_start_new_tracks():
    tracker = Tracker(PerceptionParams(track_gate_m=0.1))
    a = tracker.update([det(1.0, 0.0, "red")], 0.0)[0].track_id
    tracks = tracker.update([det(1.0, 0.0, "blue"), det(1.5, 0.0, "red")], 0.1)
    assert a not in {t.track_id for t in tracks if t.last_seen_s == pytest.approx(0.1)}
    assert len(tracker.tracks) == 3


def test_quarter_turn_yaw_ambiguity_keeps_sides_consistent():
    """A square-ish box whose measured yaw flips by 90 deg (sides swapped) keeps its size and yaw."""
    tracker = Tracker(PerceptionParams(track_smoothing=0.5))
    tracker.update([det(1.0, 0.0, yaw=0.7, size=(0.101, 0.1, 0.1))], 0.0)
    tracks = tracker.update([det(1.0, 0.0, yaw=0.7 - np.pi / 2 + 0.01, size=(0.1, 0.101, 0.1))], 0.1)
    t = tracks[0]
    assert t.yaw_rad == pytest.approx(0.705, abs=1e-6)
    assert t.size_m[0] == pytest.approx(0.101, abs=1e-6)


def test_partial_views_keep_tracks_alive_without_moving_or_creating_them():
    tracker = Tracker(PerceptionParams(track_lost_after_s=0.5))
    tid = tracker.update([det(1.0, 0.0)], 0.0)[0].track_id
    for k in range(1, 10):  # half hidden: the visible part's centre is 4 cm off
        tracks = tracker.update([det(1.04, 0.0, size=(0.05, 0.08, 0.1), partial=True)], 0.2 * k)
    assert tracks[0].track_id == tid and tracks[0].state == VISIBLE
    assert tracks[0].position_m[0] == pytest.approx(1.0) and tracks[0].size_m[0] == pytest.approx(0.12)
    assert tracker.update([det(0.5, 0.5, partial=True)], 2.0) and len(tracker.tracks) == 1


def test_min_hits_suppresses_one_off_detections():
    tracker = Tracker(PerceptionParams(track_min_hits=2, track_lost_after_s=0.3))
    tracker.update([det(1.0, 0.0)], 0.0)
    assert tracker.published() == []
    tracker.update([det(1.0, 0.0)], 0.1)
    assert len(tracker.published()) == 1
    tracker.update([det(0.5, 0.5)], 0.2)  # a one-off
    tracker.update([det(1.0, 0.0)], 0.6)
    tracker.update([det(1.0, 0.0)], 0.7)
    assert len(tracker.published()) == 1 and len(tracker.tracks) == 1  # the unconfirmed one-off was dropped
