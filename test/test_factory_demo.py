"""The factory demo end to end through optimus-launch: a 2-box sorting episode (job sort_two_boxes).

Sim, whole-body controller, perception and task planner run as separate processes on their own ROS
domain, exactly as `make demo` runs them but under the namespace r1 (every name of the stack relative,
so the planner finds its controller and perception inside it); the demo's monitor, in the same
namespace, scores the run from ground truth (r1/sim/objects, r1/sim/base_pose), which only the test and
the report read. The scene is the sorting
cell (furniture from config/scenes/sorting_cell.yaml) with exactly one red box on the robot's left and one
blue box on its right, at fixed poses, written to a temporary scene file: each box goes to the bin on
its own side.
"""

from __future__ import annotations

import json

import pytest
from conftest import free_ros_domain, two_box_scene

pytestmark = pytest.mark.launcher

DOMAIN_ID = free_ros_domain()
SEED = 0
NAMESPACE = "r1"
WALL_LIMIT_S = 600.0  # a hung episode ends here instead of blocking CI; the job's own limit is 120 s of sim time


@pytest.fixture(scope="module")
def episode(tmp_path_factory):
    from optimus_control.apps.demo import run_demo

    tmp = tmp_path_factory.mktemp("factory_demo")
    mp = pytest.MonkeyPatch()
    for key, value in {"ROS_DOMAIN_ID": str(DOMAIN_ID), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
                       "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp"}.items():
        mp.setenv(key, value)
    try:
        code, folder, summary = run_demo("sort_two_boxes", two_box_scene(tmp), SEED, tmp / "runs", WALL_LIMIT_S,
                                         DOMAIN_ID, quiet=True, namespace=NAMESPACE)
    finally:
        mp.undo()
    yield code, folder, summary


def _context(folder) -> str:
    log = (folder / "launch.log").read_text() if (folder / "launch.log").exists() else ""
    return "\n" + (folder / "report.md").read_text() + "\n--- launch.log (tail)\n" + "\n".join(log.splitlines()[-60:])


def test_both_boxes_end_in_the_bin_of_their_colour_by_ground_truth(episode):
    _, folder, summary = episode
    truth = summary["ground_truth_boxes"]
    assert {b["colour"] for b in truth} == {"red", "blue"}, _context(folder)
    assert all(b["in_bin"] for b in truth), _context(folder)


def test_robot_never_falls_and_the_job_succeeds(episode):
    code, folder, summary = episode
    assert summary["metrics"]["falls"] == 0, _context(folder)
    assert summary["result"]["state"] == "succeeded", _context(folder)
    assert summary["demo_succeeded"], _context(folder)
    assert code == 0, _context(folder)


def test_run_folder_has_report_plots_and_snapshots(episode):
    _, folder, summary = episode
    saved = json.loads((folder / "summary.json").read_text())
    assert saved["boxes"]["sorted"] == 2 and len(saved["per_box"]) == 2
    for key in ("falls", "max_torque_ratio", "loop_deadline_misses", "qp_failures"):
        assert key in saved["metrics"]
    # The monitor kept r1's controller status from the global /diagnostics (named /r1/whole_body_controller).
    assert saved["metrics"]["controller_state_at_end"] == "running", _context(folder)
    assert (folder / "report.md").read_text().startswith("# Run report: sort_two_boxes")
    for name in ("com_cop_support.png", "hand_tracking_error.png", "loop_timing.png"):
        assert (folder / name).stat().st_size > 1000, name
    assert len(list(folder.glob("camera_*.png"))) >= 2
