"""Locate the package's installed data (urdf/, config/, launch/) in every install layout.

Order: $OPTIMUS_CONTROL_SHARE, the ament index (colcon / full ROS 2 install), <prefix>/share of this
Python environment (pip install), then the source tree (editable install, running from a clone).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE = "optimus_control"


def _ament_share() -> Path | None:
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix and (Path(prefix) / "share/ament_index/resource_index/packages" / PACKAGE).exists():
            return Path(prefix) / "share" / PACKAGE
    return None


def share_dir() -> Path:
    """Directory holding package.xml, urdf/, config/ and launch/ for this package."""
    candidates: list[Path | None] = []
    if os.environ.get("OPTIMUS_CONTROL_SHARE"):
        candidates.append(Path(os.environ["OPTIMUS_CONTROL_SHARE"]))
    source_tree = Path(__file__).resolve().parents[2]
    # A checkout (editable install or PYTHONPATH) wins over stale installed copies of the data.
    if (source_tree / "package.xml").exists() and (source_tree / PACKAGE).is_dir():
        candidates.append(source_tree)
    candidates += [_ament_share(), Path(sys.prefix) / "share" / PACKAGE]
    for path in candidates:
        if path is not None and (path / "package.xml").exists():
            return path
    raise FileNotFoundError(
        f"cannot find the share directory of {PACKAGE} (looked in $OPTIMUS_CONTROL_SHARE, the source "
        f"tree, $AMENT_PREFIX_PATH and {sys.prefix}/share); is the package installed?"
    )


def resolve_data_path(path: str | os.PathLike, subdir: str) -> Path:
    """An absolute path as is; a relative one is looked up under share_dir()/subdir, then the cwd."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    if p.exists():
        return p.resolve()
    try:
        return share_dir() / subdir / p
    except FileNotFoundError:
        return p
