"""CPU scheduling of a node's threads: SCHED_IDLE for work that must never delay the control path, and
CPU pinning for the threads of the control path itself.

In real time the sim's physics thread, the controller's 1 kHz loop and its QP thread must run within a
millisecond or so of waking; perception, the planner and the camera render are bulk work whose late
results cost little. Without the privileges for SCHED_FIFO, the strongest separation an unprivileged
process can make is to put the bulk work into SCHED_IDLE: it runs only on CPU time nothing else wants,
which is far stronger than niceness (a nice-10 task still gets ~10 % of a contended core at once).
Pinning the sim's physics thread and the controller's threads to different CPUs keeps the loop's 1 kHz
wake-ups from preempting the physics step they answer.
"""

from __future__ import annotations

import os


def use_idle_scheduling(pid: int = 0) -> int:
    """Move every thread of process ``pid`` (0: this one) to SCHED_IDLE; threads created later inherit it.

    Returns the number of threads moved. Lowering one's own priority needs no privilege; a thread that
    ends meanwhile is skipped.
    """
    pid = pid or os.getpid()
    moved = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setscheduler(int(tid), os.SCHED_IDLE, os.sched_param(0))
            moved += 1
        except (ProcessLookupError, PermissionError):
            pass
    return moved


def pin_this_thread(cpu: int) -> str:
    """Pin the calling thread to ``cpu`` (< 0: leave it floating). Returns "" or why it was not pinned
    (a CPU this machine does not have, or a cpuset that excludes it): pinning is an optimisation, its
    absence is not an error."""
    if cpu < 0:
        return ""
    try:
        os.sched_setaffinity(0, {cpu})
    except (OSError, ValueError) as exc:
        return f"cannot pin to CPU {cpu}: {exc}"
    return ""
