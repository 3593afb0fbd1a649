"""Start the resolved processes, prefix their output, and shut them all down like ROS 2 launch.

Each child runs in its own process group (so a signal reaches its helpers too, and nothing it
started survives the launch) and dies with the launcher (PR_SET_PDEATHSIG) if the launcher itself
is killed. Shutdown (SIGINT/SIGTERM to the launcher, or the exit of an on_exit="shutdown" process)
sends SIGINT to every running group, SIGTERM after the process's sigterm_timeout and SIGKILL after
a further sigkill_timeout. Exit status: 0, or 1 when a process failed: it exited non-zero without
being asked to stop, or an on_exit="shutdown" process could not be started. The failure's own message
(its last error lines, see :mod:`optimus_control.launch.process_errors`) follows the launcher's report.
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from optimus_control.launch.process_errors import ProcessFailure, last_error
from optimus_control.launch.process_spec import ProcessSpec

LAUNCHER = "optimus-launch"
_PR_SET_PDEATHSIG = 1
TAIL_LINES = 200  # output lines kept per process and stream to find its error message when it dies
READER_DRAIN_S = 1.0  # how long a dead process's last output may take to arrive


def _load_prctl():
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None


# Resolved once here: the child must not dlopen between fork and exec (reader threads exist then).
_PRCTL = _load_prctl()


def _die_with_parent(parent_pid: int) -> None:
    """preexec_fn: SIGTERM this child when the launcher dies (Linux PR_SET_PDEATHSIG)."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent_pid:  # the launcher died before prctl took effect
        os._exit(1)


@dataclass
class _Running:
    spec: ProcessSpec
    popen: subprocess.Popen
    pgid: int
    returncode: int | None = None
    signalled: str = ""  # last signal sent during shutdown: "", "SIGINT", "SIGTERM", "SIGKILL"
    shutdown_started_s: float = 0.0
    stdout_tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    stderr_tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    readers: list[threading.Thread] = field(default_factory=list)


def default_log_dir() -> Path:
    """ROS's log directory convention: $ROS_LOG_DIR, else $ROS_HOME/log, else ~/.ros/log."""
    if os.environ.get("ROS_LOG_DIR"):
        return Path(os.environ["ROS_LOG_DIR"]).expanduser()
    if os.environ.get("ROS_HOME"):
        return Path(os.environ["ROS_HOME"]).expanduser() / "log"
    return Path.home() / ".ros" / "log"


class Supervisor:
    """Runs ProcessSpecs to completion; `run()` returns the launcher's exit status."""

    def __init__(self, specs: list[ProcessSpec], stdout: TextIO | None = None, stderr: TextIO | None = None,
                 log_dir: Path | None = None, handle_signals: bool = True):
        self.specs = specs
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.handle_signals = handle_signals
        self._log_dir = log_dir
        self._log_file: TextIO | None = None
        self._write_lock = threading.Lock()
        self._events: queue.SimpleQueue = queue.SimpleQueue()  # put() is safe from signal handlers
        self._running: list[_Running] = []
        self._readers: list[threading.Thread] = []
        self._shutting_down = False
        self._signal_seen = False  # set by the handler: stop starting further processes at once
        self.failed = False
        self.failures: list[ProcessFailure] = []  # processes that died by themselves, in order

    # --- output --------------------------------------------------------------------------------

    def info(self, message: str, error: bool = False) -> None:
        level = "ERROR" if error else "INFO"
        self._emit(self.stderr if error else self.stdout, f"[{level}] [{LAUNCHER}]: {message}\n", to_log=True)

    def _emit(self, stream: TextIO | None, text: str, to_log: bool) -> None:
        with self._write_lock:
            if stream is not None:
                try:
                    stream.write(text)
                    stream.flush()
                except (OSError, ValueError):
                    pass
            if to_log and self._log_file is not None:
                self._log_file.write(text)
                self._log_file.flush()

    def _open_log(self) -> None:
        if not any(s.output in ("log", "both") for s in self.specs):
            return
        base = self._log_dir or default_log_dir()
        run_dir = base / f"{LAUNCHER}-{time.strftime('%Y-%m-%d-%H-%M-%S')}-{os.getpid()}"
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            self._log_file = open(run_dir / "launch.log", "w", encoding="utf-8")
        except OSError as exc:
            self.info(f"cannot write the launch log in {run_dir} ({exc.strerror}); output='log' goes nowhere", True)
            return
        self.info(f"All log files can be found below {run_dir}")

    def _pump(self, pipe, running: _Running, is_stderr: bool) -> None:
        """Copy one child stream line by line, each line prefixed with [label]."""
        spec = running.spec
        screen = spec.output in ("screen", "both") or (spec.output == "log" and is_stderr)
        to_log = spec.output in ("log", "both")
        stream = self.stderr if is_stderr else self.stdout
        with pipe:
            for raw in iter(pipe.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                with self._write_lock:
                    (running.stderr_tail if is_stderr else running.stdout_tail).append(line)
                self._emit(stream if screen else None, f"[{spec.label}] {line}\n", to_log)

    # --- lifecycle -----------------------------------------------------------------------------

    def run(self) -> int:
        previous = {}
        if self.handle_signals:
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, self._on_signal)
        try:
            self._open_log()
            for spec in self.specs:
                if self._shutting_down or self._signal_seen:
                    break
                self._start(spec)
            self._loop()
        finally:
            self._reap_groups()
            for thread in self._readers:
                thread.join(timeout=2.0)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            if self._log_file is not None:
                self._log_file.close()
        return 1 if self.failed else 0

    def _on_signal(self, signum: int, _frame) -> None:
        self._signal_seen = True
        self._events.put(("signal", signal.Signals(signum).name))

    def _start(self, spec: ProcessSpec) -> None:
        parent_pid = os.getpid()
        try:
            popen = subprocess.Popen(
                spec.cmd, env=spec.env, cwd=spec.cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, start_new_session=True,
                preexec_fn=lambda: _die_with_parent(parent_pid),
            )
        except OSError as exc:
            self.info(f"cannot start [{spec.label}] ({spec.where}): {exc}", error=True)
            if spec.on_exit_shutdown:
                self.failed = True
                self._begin_shutdown(f"[{spec.label}] could not be started")
            return
        running = _Running(spec, popen, pgid=popen.pid)
        self._running.append(running)
        self.info(f"process started [{spec.label}] with pid {popen.pid}")
        for pipe, is_stderr in ((popen.stdout, False), (popen.stderr, True)):
            thread = threading.Thread(target=self._pump, args=(pipe, running, is_stderr), daemon=True)
            thread.start()
            self._readers.append(thread)
            running.readers.append(thread)
        waiter = threading.Thread(target=lambda r=running: self._events.put(("exit", r, r.popen.wait())), daemon=True)
        waiter.start()

    def _alive(self) -> list[_Running]:
        return [r for r in self._running if r.returncode is None]

    def _loop(self) -> None:
        while self._alive():
            try:
                event = self._events.get(timeout=self._next_deadline_s())
            except queue.Empty:
                self._escalate()
                continue
            if event[0] == "signal":
                if self._shutting_down:
                    self.info(f"{event[1]} received again; already shutting down")
                else:
                    self._begin_shutdown(f"{event[1]} received")
            else:
                self._on_exit(event[1], event[2])
            self._escalate()

    def _on_exit(self, running: _Running, returncode: int) -> None:
        running.returncode = returncode
        spec = running.spec
        pid = running.popen.pid
        if returncode == 0:
            self.info(f"process [{spec.label}] has finished cleanly [pid {pid}]")
        elif self._shutting_down and running.signalled:
            self.info(f"process [{spec.label}] has finished [pid {pid}, exit code {returncode} after {running.signalled}]")
        else:
            self.info(f"process [{spec.label}] has died [pid {pid}, exit code {returncode}, cmd '{' '.join(spec.cmd)}']",
                      error=True)
            self._record_failure(running, returncode)
        if spec.on_exit_shutdown and not self._shutting_down:
            if returncode != 0:
                self.failed = True
            self._begin_shutdown(f"[{spec.label}] exited (on_exit=shutdown)")

    def _record_failure(self, running: _Running, returncode: int) -> None:
        """Keep the dead process's own error message and show it right under the launcher's report."""
        deadline = time.monotonic() + READER_DRAIN_S
        for thread in running.readers:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        with self._write_lock:  # a helper of the process may still be writing to its pipes
            streams = list(running.stderr_tail), list(running.stdout_tail)
        failure = ProcessFailure(running.spec.label, returncode, last_error(*streams, name=running.spec.label))
        self.failures.append(failure)
        self.failed = True
        for line in failure.message:
            self.info(f"[{failure.label}] said: {line}", error=True)

    def _begin_shutdown(self, reason: str) -> None:
        self._shutting_down = True
        alive = self._alive()
        if alive:
            self.info(f"shutting down: {reason}; sending SIGINT to {', '.join('[' + r.spec.label + ']' for r in alive)}")
        now = time.monotonic()
        for running in alive:
            running.shutdown_started_s = now
            self._signal(running, signal.SIGINT)

    def _signal(self, running: _Running, signum: signal.Signals) -> None:
        running.signalled = signum.name
        try:
            os.killpg(running.pgid, signum)
        except ProcessLookupError:
            pass

    def _next_deadline_s(self) -> float | None:
        if not self._shutting_down:
            return None
        deadlines = []
        for r in self._alive():
            t_term = r.shutdown_started_s + r.spec.sigterm_timeout_s
            if r.signalled == "SIGINT":
                deadlines.append(t_term)
            elif r.signalled == "SIGTERM":
                deadlines.append(t_term + r.spec.sigkill_timeout_s)
        if not deadlines:
            return 0.5
        return max(0.01, min(deadlines) - time.monotonic())

    def _escalate(self) -> None:
        if not self._shutting_down:
            return
        now = time.monotonic()
        for r in self._alive():
            t_term = r.shutdown_started_s + r.spec.sigterm_timeout_s
            if r.signalled == "SIGINT" and now >= t_term:
                self.info(f"process [{r.spec.label}] still running {r.spec.sigterm_timeout_s:g} s after SIGINT; "
                          "sending SIGTERM", error=True)
                self._signal(r, signal.SIGTERM)
            elif r.signalled == "SIGTERM" and now >= t_term + r.spec.sigkill_timeout_s:
                self.info(f"process [{r.spec.label}] still running {r.spec.sigkill_timeout_s:g} s after SIGTERM; "
                          "sending SIGKILL", error=True)
                self._signal(r, signal.SIGKILL)

    def _reap_groups(self) -> None:
        """Kill whatever is left in the children's process groups (helpers a node started)."""
        for running in self._running:
            if running.returncode is None:  # only if run() was interrupted by an exception
                self._signal(running, signal.SIGKILL)
                running.returncode = running.popen.wait()
            try:
                os.killpg(running.pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
