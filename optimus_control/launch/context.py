"""The state a launch file is interpreted in, with the scoping rules of ROS 2 launch.

A scope holds the launch configurations (`<arg>`, `<let>`, include arguments, command-line
`name:=value`), the environment given to processes, and the ROS-specific settings that launch_ros
keeps among the launch configurations: the pushed namespace, `<set_parameter>` globals and
`<set_remap>` rules. A scoped `<group>` pushes a copy and pops it at its end; `<include>` does NOT
scope (its arguments and whatever it sets stay visible afterwards), exactly as in ROS 2.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Scope:
    configurations: dict[str, str]
    environment: dict[str, str]
    ros_namespace: str | None = None
    global_parameters: list[tuple[str, str]] = field(default_factory=list)
    global_remaps: list[tuple[str, str]] = field(default_factory=list)


class LaunchContext:
    """Current scope plus a stack of saved ones; `current_file` is the file being interpreted."""

    def __init__(self, arguments: dict[str, str] | None = None, environment: dict[str, str] | None = None):
        base_env = dict(os.environ if environment is None else environment)
        self.initial_environment = dict(base_env)
        self.scope = Scope(configurations=dict(arguments or {}), environment=base_env)
        self._saved: list[Scope] = []
        self.current_file = Path("<command line>")

    @property
    def configurations(self) -> dict[str, str]:
        return self.scope.configurations

    @property
    def environment(self) -> dict[str, str]:
        return self.scope.environment

    def push(self) -> None:
        """Save the scope; later changes are undone by pop()."""
        self._saved.append(copy.deepcopy(self.scope))

    def pop(self) -> None:
        self.scope = self._saved.pop()

    def reset(self, keep: dict[str, str]) -> None:
        """`<group forwarding="false">`: start from no configurations (but `keep`) and the original env."""
        self.scope = Scope(configurations=dict(keep), environment=dict(self.initial_environment))


def prefix_namespace(base: str | None, ns: str | None) -> str | None:
    """`ns` under `base` unless `ns` is absolute; None only when both are None; no trailing '/'."""
    if base is None and ns is None:
        return None
    if ns is None:
        combined = base
    elif not base or ns.startswith("/"):
        combined = ns
    else:
        combined = ("" if base == "/" else base) + "/" + ns
    assert combined is not None
    return combined if combined == "/" else combined.rstrip("/")


def make_namespace_absolute(ns: str | None) -> str | None:
    if ns is None or ns.startswith("/"):
        return ns
    return "/" + ns
