"""Shared fixtures: the robot model, ROS 2 environment isolation, and a colcon install of the package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def robot():
    from optimus_control.model import RobotModel

    return RobotModel.load()


def ros_env(domain_id: int) -> dict[str, str]:
    """Environment for a ROS 2 process isolated on its own domain, discovery limited to this host."""
    env = dict(os.environ)
    env.update(ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               RMW_IMPLEMENTATION="rmw_fastrtps_cpp", PYTHONUNBUFFERED="1")
    return env


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
