"""Job files: the shipped jobs validate, and every kind of mistake is refused with the file and entry named."""

from __future__ import annotations

import textwrap

import pytest

from optimus_control.errors import ConfigError
from optimus_control.planning.job_spec import ORDER_NEAREST, load_job

KNOWN = ["red", "green", "blue", "bin", "bin_red", "bin_green", "bin_blue"]

VALID = """\
name: test_job
bins:
  bin_red: {class: bin_red}
  bin_blue: {class: bin_blue, position_m: [0.3, -0.5, 0.4], size_m: [0.3, 0.3, 0.6]}
goal:
  sort: {red: bin_red, blue: bin_blue}
constraints:
  max_attempts_per_box: 3
  time_limit_s: 60
"""


def write(tmp_path, text: str, name: str = "job.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_shipped_jobs_validate():
    """The demo job sorts >= 6 boxes of >= 2 colours; the CI job is 2 boxes."""
    demo = load_job("sort_by_colour", KNOWN)
    assert demo.kind == "sort"
    assert len(set(demo.box_classes)) >= 2
    assert demo.constraints.expected_boxes >= 6
    assert demo.constraints.max_attempts_per_box >= 1 and demo.constraints.time_limit_s > 0
    ci = load_job("sort_two_boxes.yaml", KNOWN)
    assert ci.constraints.expected_boxes == 2
    assert set(ci.box_classes) == {"red", "blue"}


def test_valid_job_fields(tmp_path):
    job = load_job(write(tmp_path, VALID), KNOWN)
    assert job.name == "test_job"
    assert job.rule_for("red").bin == "bin_red"
    assert job.bins["bin_blue"].position_m == (0.3, -0.5, 0.4)
    assert job.constraints.order == ORDER_NEAREST
    assert job.constraints.required_success_fraction == 1.0
    assert job.pick_region is None


@pytest.mark.parametrize("edit, where, what", [
    (("sort: {red: bin_red, blue: bin_blue}", "sort: {red: bin_red, purple: bin_blue}"),
     "goal.sort.purple", "unknown object class 'purple'"),
    (("sort: {red: bin_red, blue: bin_blue}", "sort: {red: bin_red, blue: bin_bleu}"),
     "goal.sort.blue", "unknown bin 'bin_bleu' (did you mean 'bin_blue'?)"),
    (("bin_red: {class: bin_red}", "bin_red: {class: bin_rouge}"), "bins.bin_red.class", "unknown object class 'bin_rouge'"),
    (("max_attempts_per_box: 3", "max_attempts_per_box: 0"), "constraints.max_attempts_per_box", "must be >= 1"),
    (("max_attempts_per_box: 3", "max_attempts_per_box: 2.5"), "constraints.max_attempts_per_box", "expected an integer"),
    (("time_limit_s: 60", "time_limit_s: -5"), "constraints.time_limit_s", "must be > 0"),
    (("time_limit_s: 60", "time_limit_s: 60\n  order: [red, green]"), "constraints.order[1]",
     "class 'green' is not a box class of this job's goal"),
    (("time_limit_s: 60", "time_limit_s: 60\n  order: fastest"), "constraints.order", "expected 'nearest'"),
    (("time_limit_s: 60", "time_limit_s: 60\n  required_success_fraction: 1.5"),
     "constraints.required_success_fraction", "must be in (0, 1]"),
    (("time_limit_s: 60", "time_limt_s: 60"), "constraints", "unknown key 'time_limt_s' (did you mean 'time_limit_s'?)"),
    (("  max_attempts_per_box: 3\n", ""), "constraints", "missing key 'max_attempts_per_box'"),
    (("goal:\n  sort: {red: bin_red, blue: bin_blue}",
      "goal:\n  sort: {red: bin_red}\n  pick_place: [{class: blue, bin: bin_blue}]"),
     "goal", "exactly one of 'sort' or 'pick_place'"),
    (("sort: {red: bin_red, blue: bin_blue}", "pick_place: [{class: red, bin: bin_red, count: 0}]"),
     "goal.pick_place[0].count", "must be >= 1"),
    (("sort: {red: bin_red, blue: bin_blue}", "pick_place: [{class: red, bin: bin_red}, {class: red, bin: bin_blue}]"),
     "goal", "object class 'red' is assigned twice"),
    (("bin_red: {class: bin_red}", "bin_red: {size_m: [0.3, 0.3, 0.3]}"), "bins.bin_red",
     "needs a perception 'class', or a fixed 'position_m' and 'size_m'"),
    (("bin_red: {class: bin_red}", "bin_red: {class: bin_red, size_m: [0.3, 0.3, 0.3]}"), "bins.bin_red",
     "'size_m' without 'position_m'"),
    (("bin_red: {class: bin_red}", "bin_red: {class: bin_red, position_m: [0, 0, 0], match_radius_m: 0}"),
     "bins.bin_red.match_radius_m", "must be > 0"),
    (("size_m: [0.3, 0.3, 0.6]", "size_m: [0.3, 0.0, 0.6]"), "bins.bin_blue.size_m[1]", "must be > 0"),
    (("size_m: [0.3, 0.3, 0.6]", "size_m: [0.3, 0.3]"), "bins.bin_blue.size_m", "expected a list of 3 numbers"),
    (("name: test_job", "name: test_job\npick_region: {min_m: [1, 0, 0], max_m: [0, 1, 1]}"), "pick_region",
     "must be below max_m"),
])
def test_invalid_job_is_refused_with_file_and_entry(tmp_path, edit, where, what):
    """Each mistake names the file, the entry and what is wrong."""
    old, new = edit
    assert old in VALID
    path = write(tmp_path, VALID.replace(old, new))
    with pytest.raises(ConfigError) as info:
        load_job(path, KNOWN)
    message = str(info.value)
    assert str(path) in message
    assert f": {where}: " in message
    assert what in message


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path, "name: x\nbins: {bin_red: {class: bin_red}\ngoal: [\n")
    with pytest.raises(ConfigError) as info:
        load_job(path, KNOWN)
    assert str(path) in str(info.value) and "not valid YAML" in str(info.value) and "line" in str(info.value)


def test_not_a_mapping_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="<top level>: expected a mapping, got list"):
        load_job(write(tmp_path, "- a\n- b\n"), KNOWN)
    with pytest.raises(ConfigError, match="job file not found: .*no_such_job.yaml"):
        load_job(tmp_path / "no_such_job.yaml", KNOWN)


def test_class_check_is_skipped_only_without_a_class_list(tmp_path):
    path = write(tmp_path, VALID.replace("blue: bin_blue}", "purple: bin_blue}"))
    assert load_job(path).rule_for("purple").bin == "bin_blue"
    with pytest.raises(ConfigError, match="unknown object class 'purple'"):
        load_job(path, KNOWN)
