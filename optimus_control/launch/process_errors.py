"""The error a launched process died with, read from its last output lines.

A node that fails says why in its own words: an ``[ERROR]``/``[FATAL]`` log line, the last line of a
Python traceback (``ConfigError: scene.yaml: boxes[0]: unknown key ...``) or a plain message printed
just before it exits. The launcher and the demo show that message on the console instead of leaving it
inside a long log; the traceback frames are dropped (they point at code, not at the user's mistake).
"""

from __future__ import annotations

import re
import signal
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

_ROS_LOG = re.compile(r"^\[(DEBUG|INFO|WARN|ERROR|FATAL)\] \[[^\]]*\] \[[^\]]*\]: ?(.*)$")
_TRACEBACK = "Traceback (most recent call last):"
_CHAINED = ("The above exception was the direct cause", "During handling of the above exception")
_EXCEPTION = re.compile(r"^(?:[A-Za-z_]\w*\.)*([A-Z]\w*(?:Error|Exception|Exit|Interrupt|Iteration|Warning|Fault|Failure))"
                        r"(?:: (.*))?$")
_NOT_THE_CAUSE = ("KeyboardInterrupt", "SystemExit")  # how a process is stopped, not why it failed
_DIED = re.compile(r"^\[ERROR\] \[optimus-launch\]: process \[([^\]]+)\] has died \[pid \d+, exit code (-?\d+)")
_SAID = re.compile(r"^\[ERROR\] \[optimus-launch\]: \[([^\]]+)\] said: (.*)$")
MAX_MESSAGE_LINES = 3


@dataclass(frozen=True)
class ProcessFailure:
    """A launched process that exited non-zero by itself, and the message it gave."""

    label: str
    exit_code: int
    message: tuple[str, ...]

    def describe(self) -> str:
        why = " | ".join(self.message) if self.message else "(it printed nothing)"
        return f"[{self.label}] exited with code {self.exit_code}: {why}"


def last_error(*streams: Sequence[str], name: str = "", max_lines: int = MAX_MESSAGE_LINES) -> tuple[str, ...]:
    """The process's own error message from its output streams (stderr first), oldest first, at most
    ``max_lines``.

    ERROR/FATAL log lines, the exception line of each traceback and the nodes' fatal form
    ``<name>: <reason>`` count; without any, the last plain line of the first stream that has one, else
    the last non-empty line. Each stream is read on its own (stdout and stderr arrive through separate
    pipes), and order within a stream is trusted only so far: a C library's buffered print can arrive
    after Python's flushed ones.
    """
    errors: list[str] = []
    plain = ""
    for lines in streams:
        stream_errors, stream_plain = _scan(lines, f"{name}: " if name else "")
        errors += stream_errors
        plain = plain or stream_plain
    found = errors or ([plain] if plain else [])
    if not found:
        found = [raw.strip() for lines in streams for raw in lines if raw.strip()][-1:]
    return tuple(list(dict.fromkeys(found))[-max_lines:])


def _scan(lines: Sequence[str], fatal_prefix: str) -> tuple[list[str], str]:
    """(error messages in order, last plain line) of one output stream."""
    errors: list[str] = []
    plain = ""
    in_traceback = False
    for raw in lines:
        line = raw.rstrip()
        if not line.strip():
            continue
        if line.startswith(_TRACEBACK):
            in_traceback = True
        elif in_traceback and line[0].isspace():  # a frame or its source line
            continue
        elif in_traceback and (exception := _EXCEPTION.match(line)):
            in_traceback = False
            name, message = exception.group(1), (exception.group(2) or "").strip()
            if name not in _NOT_THE_CAUSE:
                errors.append(f"{name}: {message}" if message else name)
        elif line.startswith(_CHAINED):
            continue
        elif match := _ROS_LOG.match(line):
            if match.group(1) in ("ERROR", "FATAL"):
                errors.append(match.group(2))
        elif fatal_prefix and line.startswith(fatal_prefix):
            errors.append(line.strip())
        else:
            plain = line.strip()
    return errors, plain


def failures_in_launch_log(log_lines: Iterable[str]) -> list[ProcessFailure]:
    """The processes optimus-launch reported dead in its output, each with its own error message.

    The launcher's own ``[label] said:`` lines are taken when present (it read each process's streams
    apart); otherwise the message is read from the process's lines in the log.
    """
    output: dict[str, list[str]] = {}
    failures: list[ProcessFailure] = []
    said: dict[int, list[str]] = {}  # index in failures -> the launcher's lines for it
    for raw in log_lines:
        line = raw.rstrip("\n")
        match = _DIED.match(line)
        if match:
            label = match.group(1)
            failures.append(ProcessFailure(label, int(match.group(2)), last_error(output.get(label, []), name=label)))
            continue
        match = _SAID.match(line)
        if match and failures and failures[-1].label == match.group(1):
            said.setdefault(len(failures) - 1, []).append(match.group(2))
            continue
        if line.startswith("[") and "] " in line:
            label, _, text = line[1:].partition("] ")
            output.setdefault(label, []).append(text)
    return [replace(f, message=tuple(said[k])) if k in said else f for k, f in enumerate(failures)]


def launch_failure_messages(log_path: Path, exit_code: int) -> list[str]:
    """What made a launch fail, from the launcher's output saved in ``log_path``: each dead process with its
    own message, else the launcher's own last error when it exited non-zero; empty after a clean run."""
    try:
        lines = Path(log_path).read_text(errors="replace").splitlines()
    except OSError:
        return [f"optimus-launch exited with code {exit_code} and left no output"] if exit_code else []
    failures = failures_in_launch_log(lines)
    if failures:
        return [f.describe() for f in failures]
    if exit_code not in (0, -signal.SIGINT):
        return [f"optimus-launch exited with code {exit_code}: {' | '.join(last_error(lines))}"]
    return []


class LaunchLogWatch:
    """Follows the launcher's output file as it grows and notices the launcher reporting a dead process."""

    def __init__(self, path: Path):
        self.path, self.offset = Path(path), 0

    def someone_died(self) -> bool:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except OSError:
            return False
        complete = chunk[:chunk.rfind(b"\n") + 1]  # whole lines only: the last one may be half written
        self.offset += len(complete)
        return any(_DIED.match(line) for line in complete.decode("utf-8", errors="replace").splitlines())
