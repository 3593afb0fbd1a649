"""Read one node's ``ros__parameters`` from a ROS 2 parameter file, as the launch files pass them.

Libraries that are configured like their nodes (the controller settings, the in-process episode runner)
read the same files from config/ without rclpy.
"""

from __future__ import annotations

import os

import yaml

from optimus_control.errors import ConfigError
from optimus_control.model.paths import resolve_data_path


def node_parameters(path: str | os.PathLike, node: str) -> tuple[dict, str]:
    """(parameters, where they are for messages) of ``node`` in a parameter file (relative paths: config/).

    The node section may be written ``node``, ``/**/node`` or ``/ns/node``.
    """
    source = resolve_data_path(path, "config")
    if not source.exists():
        raise ConfigError(f"parameter file of '{node}' not found: {source}")
    data = yaml.safe_load(source.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of node names")
    keys = [k for k in data if str(k).rstrip("/").split("/")[-1] == node]
    if not keys:
        raise ConfigError(f"{source}: no '{node}:' section (top-level keys: {sorted(map(str, data))})")
    return (data[keys[0]] or {}).get("ros__parameters", {}) or {}, f"{source}: {keys[0]}.ros__parameters"
