"""The package installs correctly both as a wheel (pip layout) and with colcon (ROS 2 layout)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO

pytestmark = pytest.mark.launcher

SHARE = "optimus_control-0.1.0.data/data/share"
EXECUTABLES = {"sim", "whole_body_controller", "perception", "task_planner"}


def test_wheel_contains_package_data_and_extension(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path),
                          str(REPO)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    wheel = next(tmp_path.glob("optimus_control-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert f"{SHARE}/ament_index/resource_index/packages/optimus_control" in names
    for path in ("optimus_control/package.xml", "optimus_control/urdf/optimus.urdf", "optimus_control/config/optimus.yaml"):
        assert f"{SHARE}/{path}" in names, path
    if list((REPO / "launch").glob("*.launch.xml")):
        assert any(n.startswith(f"{SHARE}/optimus_control/launch/") and n.endswith(".launch.xml") for n in names)
    if list((REPO / "optimus_control/rt/src").glob("*.c")):
        assert any(n.startswith("optimus_control/rt/_rtcore") and n.endswith(".so") for n in names)
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    for exe in EXECUTABLES | {"optimus-launch"}:
        assert f"{exe} = " in entry_points


def test_colcon_build_layout(colcon_install: Path):
    pkg = colcon_install / "optimus_control"
    share = pkg / "share" / "optimus_control"
    assert (pkg / "share/ament_index/resource_index/packages/optimus_control").exists()
    assert (share / "package.xml").exists() and (share / "urdf/optimus.urdf").exists()
    assert (share / "config/optimus.yaml").exists()
    lib = pkg / "lib" / "optimus_control"
    assert EXECUTABLES <= {p.name for p in lib.iterdir()}, sorted(p.name for p in lib.iterdir())
    # The installed package (not the source tree) loads the model through the ament index.
    site = next(pkg.glob("lib/python3*/site-packages"))
    env = {**os.environ, "AMENT_PREFIX_PATH": str(pkg), "PYTHONPATH": str(site)}
    code = ("import optimus_control.model as m; r = m.RobotModel.load(); "
            "print(m.share_dir(), r.n_joints, m.__file__)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, cwd="/")
    assert out.returncode == 0, out.stderr
    share_printed, n_joints, module = out.stdout.split()
    assert Path(share_printed) == share and n_joints == "32" and module.startswith(str(pkg))
