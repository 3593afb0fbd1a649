"""A wrong file given to an entry point ends in seconds with the file's own error message, never a traceback.

The factory demo and the in-process episode runner check their inputs before starting anything (exit 2);
optimus-launch repeats the message of a node that died of a bad file at the end of its output (exit 1).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, ros_env

from optimus_control.apps.user_errors import EXIT_USAGE, describe
from optimus_control.errors import ConfigError

ENTRY_POINTS = {"demo": "optimus_control.apps.demo", "episode": "optimus_control.apps.episode"}
WALL_LIMIT_S = 60.0  # imports on a loaded 2-core machine; a launched run would take minutes
TYPO = "unknown key 'min_gapp' (did you mean 'min_gap'?)"


def typo_scene(tmp_path: Path) -> tuple[Path, int]:
    """The 2-box scene with its first box group's min_gap misspelt; returns the file and that line's number."""
    text = (REPO / "config" / "scenes" / "sorting_cell_two_boxes.yaml").read_text()
    line = next(k for k, row in enumerate(text.splitlines(), start=1) if "min_gap:" in row)
    path = tmp_path / "typo_scene.yaml"
    path.write_text(text.replace("min_gap:", "min_gapp:"))
    return path, line


def run(module: str, *args: str, cwd: Path) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                            timeout=WALL_LIMIT_S, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return result, time.monotonic() - start


def assert_reported(result: subprocess.CompletedProcess, *expected: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == EXIT_USAGE, output
    for text in expected:
        assert text in result.stderr, output
    assert "Traceback" not in output, output


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_a_typo_in_the_scene_is_reported_before_anything_starts(entry, tmp_path):
    scene, line = typo_scene(tmp_path)
    result, elapsed = run(ENTRY_POINTS[entry], "--scene", str(scene), "--job", "sort_two_boxes", cwd=tmp_path)
    assert_reported(result, f"{scene}:{line}: boxes[0] 'box_left': {TYPO}")
    assert elapsed < WALL_LIMIT_S
    assert not (tmp_path / "runs").exists(), "a run folder for a run that never started"


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_a_garbage_job_file_is_reported_with_its_line(entry, tmp_path):
    job = tmp_path / "garbage_job.yaml"
    job.write_text("name: sort\nbins:\n  bin_red: {class: bin\ngoal: [\n")
    result, _ = run(ENTRY_POINTS[entry], "--scene", "sorting_cell_two_boxes", "--job", str(job), cwd=tmp_path)
    assert_reported(result, f"{job}:4: not valid YAML: expected ',' or '}}', but got ':'")


def test_binary_garbage_and_a_missing_robot_config_are_reported(tmp_path):
    job = tmp_path / "binary.yaml"
    job.write_bytes(b"\x00\x01\x02 not yaml at all")
    result, _ = run(ENTRY_POINTS["demo"], "--job", str(job), cwd=tmp_path)
    assert_reported(result, f"{job}: not valid YAML")
    result, _ = run(ENTRY_POINTS["demo"], "--robot-config", "no_such_robot.yaml", cwd=tmp_path)
    assert_reported(result, "robot config file not found")


def test_a_job_naming_an_unknown_colour_is_reported(tmp_path):
    text = (REPO / "config" / "jobs" / "sort_two_boxes.yaml").read_text()
    job = tmp_path / "mauve.yaml"
    job.write_text(text.replace("    blue: bin_blue", "    bleu: bin_blue"))
    result, _ = run(ENTRY_POINTS["episode"], "--scene", "sorting_cell_two_boxes", "--job", str(job), cwd=tmp_path)
    assert_reported(result, "unknown object class 'bleu' (did you mean 'blue'?)")


def test_a_bad_planner_override_is_reported_like_a_file():
    result, _ = run(ENTRY_POINTS["episode"], "--scene", "sorting_cell_two_boxes", "--job", "sort_two_boxes",
                    "--planner-param", "grasp.lift_height_m=[0.2", "--seeds", "0", cwd=REPO)
    output = result.stdout + result.stderr
    assert result.returncode == EXIT_USAGE, output
    assert "--planner-param grasp.lift_height_m:1: not valid YAML" in result.stderr, output
    assert "Traceback" not in output, output


def test_os_errors_name_their_file():
    assert describe(ConfigError("plain message")) == "plain message"
    assert describe(FileNotFoundError(2, "No such file or directory", "/x.yaml")) == "/x.yaml: No such file or directory"


@pytest.mark.launcher
def test_optimus_launch_ends_with_the_dead_sim_s_own_message(ros_domain_id, tmp_path):
    scene, line = typo_scene(tmp_path)
    env = {**ros_env(ros_domain_id), "ROS_LOG_DIR": str(tmp_path / "ros_log")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "optimus_control.launch.cli", "sim.launch.xml", f"scene:={scene}",
         f"bus_name:=apps_errors_{os.getpid()}"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=120.0)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
    assert proc.returncode == 1, out + err
    last = err.strip().splitlines()[-1]
    assert last.startswith("optimus-launch: error: [sim] exited with code 2: sim: "), out + err
    assert f"{scene}:{line}: boxes[0] 'box_left': {TYPO}" in last, out + err
