"""Parameter files optimus-launch writes for a node's `<param name value>` tags, as launch_ros does.

Why files and not `-p name:=value`: rcl keeps one entry per node-name key, in the order each key first
appears, and a later entry wins. Every `-p` lands in the single `/**` entry, so once a `<set_parameter>`
global (`-p`, emitted first) has created it, a `-p` given after a `--params-file` keyed `/**/node`
loses to that file. A file keyed by the node's own name is a new, later entry and wins, which is the
layout launch_ros produces. Files are content-addressed in a private per-user directory: the same
launch gives the same paths (stable `--print`) and repeated launches do not pile up files.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path

import yaml

from optimus_control.errors import LaunchError


def parameters_dir() -> Path:
    """The launcher's private directory for generated parameter files (created 0700, checked owned)."""
    path = Path(tempfile.gettempdir()) / f"optimus_launch_{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise LaunchError(f"{path} is not a private directory of this user; remove it and launch again")
    return path


def node_parameters_key(name: str | None, namespace: str | None) -> str:
    """The YAML key that addresses exactly this node: its full name when known, else a wildcard."""
    if name is None:
        return "/**"
    if namespace is None:
        return "/**/" + name
    return ("" if namespace == "/" else namespace) + "/" + name


def write_parameters_file(key: str, values: dict[str, object], stem: str) -> Path:
    """`key: ros__parameters: values` as a file; returns its path (same content -> same path)."""
    text = yaml.safe_dump({key: {"ros__parameters": values}}, default_flow_style=False, sort_keys=False)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    directory = parameters_dir()
    path = directory / f"{stem}_{digest}.yaml"
    if path.is_file() and path.read_text() == text:
        return path
    with tempfile.NamedTemporaryFile("w", dir=directory, prefix=".tmp_", suffix=".yaml", delete=False) as f:
        f.write(text)
    os.replace(f.name, path)
    return path
