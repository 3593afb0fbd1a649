"""The ground-truth evaluation: what a fall is, which boxes count, when an episode succeeded."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pinocchio as pin
import pytest

from optimus_control.apps.evaluation import (
    FALL_BASE_HEIGHT_FRACTION,
    FALL_TILT_RAD,
    FallCriteria,
    base_tilt_rad,
    count_falls,
    evaluate_episode,
    in_bin,
    is_fallen,
    scorable_bins,
    score_boxes,
    standing_base_height_m,
)
from optimus_control.errors import ConfigError
from optimus_control.planning import load_job
from optimus_control.planning.job_spec import BinSpec

CRITERIA = FallCriteria(min_base_height_m=0.6, max_base_tilt_rad=math.radians(30.0))
RED_BIN = (0.34, 0.56, 0.75)  # centre of bin_red's outer box in sort_two_boxes.yaml; size 0.22 x 0.26 x 0.30


def quaternion_xyzw(roll: float, pitch: float, yaw: float) -> np.ndarray:
    return pin.Quaternion(pin.rpy.rpyToMatrix(roll, pitch, yaw)).coeffs()


@pytest.fixture(scope="module")
def job():
    return load_job("sort_two_boxes")


def test_fall_threshold_scales_with_the_robot_s_standing_pelvis_height(robot):
    standing = standing_base_height_m(robot)
    assert 0.9 < standing < 1.05  # the Optimus pelvis, soles flat on the floor
    criteria = FallCriteria.for_robot(robot)
    assert criteria.min_base_height_m == pytest.approx(FALL_BASE_HEIGHT_FRACTION * standing)
    assert criteria.max_base_tilt_rad == FALL_TILT_RAD


def test_the_robot_standing_is_not_fallen(robot):
    q = robot.standing_configuration()
    assert not is_fallen(q[2], base_tilt_rad(q[3:7]), FallCriteria.for_robot(robot))


@pytest.mark.parametrize(("height_m", "tilt_deg", "fallen"), [
    (0.95, 0.0, False),   # standing
    (0.80, 15.0, False),  # crouched and leaning over the conveyor
    (0.59, 0.0, True),    # sunk to the floor upright: height alone
    (0.95, 31.0, True),   # toppling with the pelvis still high: tilt alone
    (0.30, 80.0, True),   # on the floor
    (0.60, 30.0, False),  # exactly at both limits: not yet
])
def test_fallen_means_too_low_or_too_tilted(height_m, tilt_deg, fallen):
    assert is_fallen(height_m, math.radians(tilt_deg), CRITERIA) is fallen


@pytest.mark.parametrize(("rpy", "tilt_deg"), [((0.0, 0.0, 2.0), 0.0), ((0.3, 0.0, 0.0), 17.19),
                                               ((0.0, -0.5, 1.0), 28.65), ((0.0, 0.0, 0.0), 0.0),
                                               ((math.pi, 0.0, 0.0), 180.0)])
def test_tilt_is_the_angle_of_the_pelvis_z_axis_from_vertical_whatever_the_yaw(rpy, tilt_deg):
    assert math.degrees(base_tilt_rad(quaternion_xyzw(*rpy))) == pytest.approx(tilt_deg, abs=0.01)


def test_each_fallen_stretch_counts_once():
    up, down, tilted = (0.95, 0.0), (0.3, 1.2), (0.9, 0.9)
    assert count_falls([], CRITERIA) == 0
    assert count_falls([up, up, up], CRITERIA) == 0
    assert count_falls([up, down, down, down], CRITERIA) == 1
    assert count_falls([up, tilted, down, up, down], CRITERIA) == 2


def test_a_box_is_in_its_bin_inside_the_footprint_and_below_the_rim():
    spec = BinSpec("bin_red", "bin", RED_BIN, (0.22, 0.26, 0.30))
    x, y, rim = RED_BIN[0], RED_BIN[1], RED_BIN[2] + 0.15
    assert in_bin((x, y, 0.65), spec)
    assert in_bin((x + 0.10, y - 0.12, rim), spec)
    assert not in_bin((x + 0.12, y, 0.65), spec)      # beside the bin
    assert not in_bin((x, y, rim + 0.01), spec)        # stacked above the rim
    assert not in_bin((x, y, 0.65), replace(spec, position_m=None))  # no geometry: cannot count


def test_boxes_are_scored_against_the_bin_of_their_colour(job):
    objects = {"red_box": ("red", RED_BIN), "blue_box": ("blue", RED_BIN), "green_box": ("green", RED_BIN)}
    boxes = {b.name: b for b in score_boxes(job, objects)}
    assert set(boxes) == {"red_box", "blue_box"}  # the job sorts no green boxes
    assert boxes["red_box"].in_bin and boxes["red_box"].bin == "bin_red"
    assert not boxes["blue_box"].in_bin and boxes["blue_box"].bin == "bin_blue"
    assert boxes["red_box"].as_dict()["position_m"] == list(RED_BIN)


def test_an_episode_succeeds_only_with_every_box_in_its_bin_no_fall_and_the_job_done(job):
    blue_bin = job.bins["bin_blue"].position_m
    sorted_boxes = {"red_box": ("red", RED_BIN), "blue_box": ("blue", blue_bin)}
    standing = [(0.95, 0.0)] * 3
    good = evaluate_episode(job, sorted_boxes, standing, True, CRITERIA)
    assert good.succeeded and good.boxes_in_right_bin == good.boxes_total == 2 and good.falls == 0
    assert not evaluate_episode(job, sorted_boxes, standing, False, CRITERIA).succeeded
    assert not evaluate_episode(job, sorted_boxes, standing + [(0.2, 1.5)], True, CRITERIA).succeeded
    one_left = {"red_box": ("red", RED_BIN), "blue_box": ("blue", (0.5, -0.2, 0.84))}
    assert evaluate_episode(job, one_left, standing, True, CRITERIA).boxes_in_right_bin == 1
    assert not evaluate_episode(job, one_left, standing, True, CRITERIA).succeeded
    assert not evaluate_episode(job, {}, standing, True, CRITERIA).succeeded  # nothing seen: nothing proven


def test_a_job_whose_bins_have_no_geometry_cannot_be_scored(job, tmp_path: Path):
    scorable_bins(job)
    path = tmp_path / "perceived_bins.yaml"
    perceived = ", position_m: [0.22, -0.56, 0.75], size_m: [0.22, 0.26, 0.30]"  # the planner finds it by class
    path.write_text(Path(job.source).read_text().replace(perceived, ""))
    with pytest.raises(ConfigError, match=r"bins\.bin_blue: ground truth cannot score"):
        scorable_bins(load_job(path))
