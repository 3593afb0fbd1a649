"""optimus-launch run as a subprocess, with its output collected, for end-to-end launcher tests."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

WAIT_S = 60.0  # generous bound for a loaded machine; never reached when things work


class Launcher:
    """optimus-launch in a subprocess, with its stdout and stderr collected line by line."""

    def __init__(self, launch_file: Path, env: dict[str, str], *arguments: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "optimus_control.launch.cli", str(launch_file), *arguments],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._changed = threading.Condition()
        self._threads = [threading.Thread(target=self._pump, args=(s, out), daemon=True)
                         for s, out in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr))]
        for t in self._threads:
            t.start()

    def _pump(self, stream, lines: list[str]) -> None:
        for line in stream:
            with self._changed:
                lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_for(self, text: str, count: int = 1) -> None:
        """Block until `text` appeared in `count` output lines (fails if the launcher ended first)."""
        deadline = time.monotonic() + WAIT_S
        with self._changed:
            while sum(text in line for line in self.stdout + self.stderr) < count:
                ended = not any(t.is_alive() for t in self._threads)
                if ended or time.monotonic() > deadline:
                    raise AssertionError(f"never saw {text!r} x{count}" + self.transcript())
                self._changed.wait(timeout=0.2)

    def finish(self) -> int:
        code = self.proc.wait(timeout=WAIT_S)
        for t in self._threads:
            t.join(timeout=WAIT_S)
        return code

    def pids(self, label: str, key: str = "PID") -> list[int]:
        prefix = f"[{label}] {key} "
        return [int(line[len(prefix):]) for line in self.stdout if line.startswith(prefix)]

    def started_pids(self) -> dict[str, int]:
        """label -> pid, from the launcher's 'process started [label] with pid N' lines."""
        out = {}
        for line in self.stdout:
            if "process started [" in line:
                label = line.split("process started [", 1)[1].split("]", 1)[0]
                out[label] = int(line.rsplit(" ", 1)[1])
        return out

    def transcript(self) -> str:
        return "\n--- stdout\n" + "\n".join(self.stdout) + "\n--- stderr\n" + "\n".join(self.stderr)


def is_running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def assert_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + 10.0  # init may take a moment to reap re-parented helpers
    while any(is_running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in pids if is_running(p)], "stray processes left behind"
