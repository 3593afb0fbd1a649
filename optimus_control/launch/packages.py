"""Find package share directories and node executables in colcon/ROS and pip install layouts.

colcon / ROS 2: every prefix on AMENT_PREFIX_PATH that has the ament index marker
`share/ament_index/resource_index/packages/<pkg>` holds `share/<pkg>/` and `lib/<pkg>/<exec>`.
pip: the package's console scripts (entry points of the distribution named like the package) live
in `<sys.prefix>/bin`; when the script file is missing the entry point is run with this Python.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
from pathlib import Path

from optimus_control.errors import LaunchError, suggest

OWN_PACKAGE = "optimus_control"
_MARKER = Path("share/ament_index/resource_index/packages")


def ament_prefixes() -> list[Path]:
    """AMENT_PREFIX_PATH entries in order, then this Python environment's prefix (ROS wheels use it)."""
    prefixes = [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    if Path(sys.prefix) not in prefixes:
        prefixes.append(Path(sys.prefix))
    return prefixes


def _ament_prefix_of(package: str) -> Path | None:
    for prefix in ament_prefixes():
        if (prefix / _MARKER / package).is_file():
            return prefix
    return None


def find_package_share(package: str) -> Path:
    """`$(find-pkg-share package)`: our own package via model.share_dir(), others via the ament index."""
    if package == OWN_PACKAGE:
        from optimus_control.model import share_dir

        try:
            return share_dir()
        except FileNotFoundError as exc:
            raise LaunchError(str(exc)) from None
    prefix = _ament_prefix_of(package)
    if prefix is None:
        known = [p.name for prefix in ament_prefixes() if (prefix / _MARKER).is_dir() for p in (prefix / _MARKER).iterdir()]
        raise LaunchError(
            f"package '{package}' not found in the ament index (AMENT_PREFIX_PATH="
            f"{os.environ.get('AMENT_PREFIX_PATH', '')!r}, {sys.prefix}){suggest(package, known + [OWN_PACKAGE])}"
        )
    return prefix / "share" / package


def _console_scripts(package: str) -> dict[str, str]:
    """Entry-point name -> 'module:function' of the Python distribution(s) called `package` on sys.path
    (a checkout's *.egg-info and the installed *.dist-info can both be visible; the first wins)."""
    scripts: dict[str, str] = {}
    for dist in importlib.metadata.distributions(name=package):
        for ep in dist.entry_points:
            if ep.group == "console_scripts":
                scripts.setdefault(ep.name, ep.value)
    return scripts


def _is_executable_file(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def resolve_executable(package: str, executable: str) -> list[str]:
    """argv prefix that runs `executable` of `package`, searched like `ros2 run`, then pip's layout."""
    searched: list[str] = []
    candidates: set[str] = set()
    for prefix in ament_prefixes():
        lib_dir = prefix / "lib" / package
        path = lib_dir / executable
        if _is_executable_file(path):
            return [str(path)]
        searched.append(str(lib_dir))
        if lib_dir.is_dir():
            candidates.update(p.name for p in lib_dir.iterdir() if _is_executable_file(p))
    scripts = _console_scripts(package)
    candidates.update(scripts)
    if executable in scripts:
        script = Path(sys.prefix) / "bin" / executable
        if _is_executable_file(script):
            return [str(script)]
        module, _, attribute = scripts[executable].partition(":")
        attributes = (attribute.split("[")[0].strip() or "main").split(".")
        if not all(a.isidentifier() for a in attributes + module.strip().split(".")):
            raise LaunchError(f"entry point {executable} = {scripts[executable]!r} of '{package}' is malformed")
        call = f"importlib.import_module(\"{module.strip()}\").{'.'.join(attributes)}()"
        code = f"import importlib, sys; sys.exit({call})"
        return [sys.executable, "-c", code]
    searched.append(f"console scripts of the Python distribution '{package}' in {sys.prefix}")
    raise LaunchError(
        f"executable '{executable}' of package '{package}' not found{suggest(executable, candidates)}; "
        f"looked in: {'; '.join(searched)}. Is the package installed (pip install -e . or colcon build + "
        f"source install/setup.bash)?"
    )
