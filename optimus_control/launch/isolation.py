"""Running a launch file in isolation: its own ROS domain, its own session, nothing left behind.

What the launcher tests, the benchmarks and the demo app need to start a stack beside other stacks on one
machine: a ROS domain id nobody else holds (a lock file per id under /tmp, so concurrent pytest workers,
benchmarks and clones never share one), the environment that keeps discovery on this host, and a
launched ``optimus-launch`` that can be stopped with SIGINT and then cleaned up to the last child.
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

# Domain ids that Fast DDS maps to ports outside Linux's ephemeral range.
DOMAIN_IDS = range(1, 101)


def ros_env(domain_id: int) -> dict[str, str]:
    """Environment for a ROS 2 process isolated on its own domain, discovery limited to this host."""
    env = dict(os.environ)
    env.update(ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               RMW_IMPLEMENTATION="rmw_fastrtps_cpp", PYTHONUNBUFFERED="1")
    return env


def claim_free_ros_domain(first: int = DOMAIN_IDS.start) -> tuple[int, IO]:
    """The first domain id from ``first`` that no other process holds, and the open lock file that holds it
    (close it to release the id; the kernel releases it when the process dies)."""
    for domain_id in range(first, DOMAIN_IDS.stop):
        handle = open(f"/tmp/optimus_control_ros_domain_{domain_id}.lock", "w")  # noqa: SIM115 (held open)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        return domain_id, handle
    raise RuntimeError(f"no free ROS domain id in [{first}, {DOMAIN_IDS.stop - 1}]: every lock under /tmp is held")


class LaunchedStack:
    """A command (``optimus-launch`` or one node) in its own session with its output in a log file;
    :meth:`stop` ends it and anything it left behind."""

    def __init__(self, cmd: list[str], env: dict[str, str], log: Path, cwd: Path | None = None):
        self.log_path = Path(log)
        self._log = open(self.log_path, "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=cwd,
                                     start_new_session=True)

    @classmethod
    def launch(cls, launch_file: Path, domain_id: int, log: Path, *arguments: str, cwd: Path | None = None) -> LaunchedStack:
        """``optimus-launch launch_file arguments...`` on ``domain_id``, its ROS logs beside ``log``."""
        env = ros_env(domain_id) | {"ROS_LOG_DIR": str(Path(log).parent / "ros_log")}
        return cls([sys.executable, "-m", "optimus_control.launch.cli", str(launch_file), *arguments], env, log, cwd)

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_log(self, pattern: str, timeout_s: float, what: str, start: int = 0) -> re.Match:
        """The first match of ``pattern`` in the output from character ``start`` on; RuntimeError with the output's
        tail when it does not come within ``timeout_s`` or the command ends first."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            match = re.search(pattern, self.output()[start:])
            if match:
                return match
            if self.proc.poll() is not None:
                raise RuntimeError(f"the launch ended (code {self.proc.returncode}) while waiting for {what}:\n"
                                   f"{self.output()[-5000:]}")
            time.sleep(0.1)
        raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}:\n{self.output()[-5000:]}")

    def child_pids(self) -> dict[str, int]:
        """{label: pid} of the processes the launcher reported starting."""
        return {m[0]: int(m[1]) for m in re.findall(r"process started \[([^\]]+)\] with pid (\d+)", self.output())}

    def stop(self, timeout_s: float = 40.0) -> int | None:
        """SIGINT to the launcher and its exit status (None if it did not end within ``timeout_s``); then
        SIGKILL to the process group of anything left (the launcher gives each child its own)."""
        children = list(self.child_pids().values())
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            code = None
        for pgid in [self.proc.pid, *children]:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if code is None:
            self.proc.wait(timeout=10)
        self._log.close()
        return code
