"""Shared fixtures: the robot model, ROS 2 environment isolation, and a colcon install of the package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from optimus_control.launch.isolation import claim_free_ros_domain, ros_env  # noqa: F401 (tests import them from here)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def robot():
    from optimus_control.model import RobotModel

    return RobotModel.load()


def two_box_scene(tmp_path: Path) -> str:
    """The sorting cell (furniture of config/scenes/sorting_cell.yaml) with one red box on the robot's left and
    one blue box on its right at fixed poses, written to a scene file; returns its path."""
    import yaml

    scene = yaml.safe_load((REPO / "config" / "scenes" / "sorting_cell.yaml").read_text())
    group = {key: scene["boxes"][0][key] for key in ("size", "mass", "friction")}
    top = next(f for f in scene["furniture"] if f["name"] == "infeed")["size"][2]
    z = top + 0.5 * group["size"][2]
    scene["scene"]["name"] = "sorting_cell_two_boxes"
    scene["boxes"] = [{**group, "name": "red_box", "position": [0.45, 0.16, z], "yaw_deg": 10, "colours": ["red"]},
                      {**group, "name": "blue_box", "position": [0.45, -0.16, z], "yaw_deg": -10, "colours": ["blue"]}]
    path = tmp_path / "sorting_cell_two_boxes.yaml"
    path.write_text(yaml.safe_dump(scene, sort_keys=False))
    return str(path)


_held_domains: list[object] = []


def free_ros_domain() -> int:
    """A domain id held by this test process until it exits (for module-level constants)."""
    domain_id, handle = claim_free_ros_domain()
    _held_domains.append(handle)
    return domain_id


@pytest.fixture(scope="module")
def ros_domain_id():
    """A ROS_DOMAIN_ID of this test module's own for the nodes it starts (held until the module ends)."""
    domain_id, handle = claim_free_ros_domain()
    yield domain_id
    handle.close()


@pytest.fixture(scope="session")
def colcon_install(tmp_path_factory) -> Path:
    """`colcon build` of this repository into a temporary workspace; returns its install/ directory."""
    colcon = Path(sys.executable).with_name("colcon")
    if not colcon.exists():
        pytest.fail(f"colcon is not installed in this environment ({colcon}); run `make test` to set up")
    ws = tmp_path_factory.mktemp("colcon_ws")
    src = ws / "src" / "optimus_control"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".venv", ".git", "build", "install", "log", "runs",
                                                             "__pycache__", "*.so", "*.egg-info", ".pytest_cache"))
    result = subprocess.run(
        [str(colcon), "build", "--base-paths", "src", "--event-handlers", "console_direct-"],
        cwd=ws, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PATH": f"{colcon.parent}{os.pathsep}{os.environ['PATH']}"},
    )
    assert result.returncode == 0, f"colcon build failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return ws / "install"


@pytest.fixture
def isolated(ros_domain_id, monkeypatch) -> int:
    """This process's own rclpy contexts discover like the nodes: Fast DDS, this host only."""
    for key in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "RMW_IMPLEMENTATION"):
        monkeypatch.setenv(key, ros_env(ros_domain_id)[key])
    return ros_domain_id
