"""Build throw-away install prefixes in the colcon layout for launcher tests.

A prefix gets `lib/<package>/<exec>` shell stubs that exec fixture_process.py with this Python, and
(optionally) the ament index marker and a share directory, exactly what colcon installs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

FIXTURE_PROCESS = Path(__file__).resolve().parent / "fixture_process.py"


def make_prefix(root: Path, package: str, executables: list[str], with_share: bool = True) -> Path:
    """Create <root>/<package>-prefix with stub executables; returns the prefix path."""
    prefix = root / f"{package}-prefix"
    lib = prefix / "lib" / package
    lib.mkdir(parents=True, exist_ok=True)
    for name in executables:
        stub = lib / name
        stub.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FIXTURE_PROCESS}" "$@"\n')
        stub.chmod(0o755)
    if with_share:
        marker = prefix / "share" / "ament_index" / "resource_index" / "packages"
        marker.mkdir(parents=True, exist_ok=True)
        (marker / package).write_text("")
        (prefix / "share" / package / "launch").mkdir(parents=True, exist_ok=True)
    return prefix


def with_prefix(env: dict[str, str], prefix: Path) -> dict[str, str]:
    """A copy of `env` with `prefix` first on AMENT_PREFIX_PATH."""
    out = dict(env)
    out["AMENT_PREFIX_PATH"] = os.pathsep.join(p for p in (str(prefix), env.get("AMENT_PREFIX_PATH", "")) if p)
    return out
