"""A fully resolved process to start: what the interpreter produces and the supervisor runs."""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass, field

DEFAULT_SIGTERM_TIMEOUT_S = 5.0
DEFAULT_SIGKILL_TIMEOUT_S = 5.0


@dataclass
class ProcessSpec:
    """One `<node>` or `<executable>` after every substitution, condition and scope was applied."""

    label: str  # output prefix, "[label]"
    cmd: list[str]
    env: dict[str, str]
    where: str  # file:line of the tag
    cwd: str | None = None
    output: str = "log"  # screen | log | both
    on_exit_shutdown: bool = False
    sigterm_timeout_s: float = DEFAULT_SIGTERM_TIMEOUT_S
    sigkill_timeout_s: float = DEFAULT_SIGKILL_TIMEOUT_S
    node_name: str | None = None
    namespace: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)  # env differing from the launcher's own
    # parameter files the launcher generated for `<param name value>` tags: path -> their contents
    parameter_files: dict[str, dict[str, object]] = field(default_factory=dict)

    @property
    def ros_args(self) -> list[str]:
        """Everything after the last '--ros-args' (the arguments launch adds for name, ns, params, remaps)."""
        if "--ros-args" not in self.cmd:
            return []
        last = len(self.cmd) - 1 - self.cmd[::-1].index("--ros-args")
        return self.cmd[last + 1:]

    def describe(self) -> str:
        """Shell-like one-line description for `--print`."""
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.extra_env.items()))
        flags = []
        if self.on_exit_shutdown:
            flags.append("on_exit=shutdown")
        flags.append(f"output={self.output}")
        cwd = f"cd {shlex.quote(self.cwd)} && " if self.cwd and self.cwd != os.getcwd() else ""
        lines = [f"[{self.label}] ({', '.join(flags)}; {self.where})",
                 f"    {cwd}{env + ' ' if env else ''}{shlex.join(self.cmd)}"]
        for path, contents in self.parameter_files.items():
            lines.append(f"    # {path}: {json.dumps(contents)}")
        return "\n".join(lines)
