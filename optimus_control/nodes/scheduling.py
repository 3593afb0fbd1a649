"""CPU scheduling of a node's threads: SCHED_IDLE for work that must never delay the control path, and
CPU pinning for the threads of the control path itself.

In real time the sim's physics thread, the controller's 1 kHz loop and its QP thread must run within a
millisecond or so of waking; perception, the planner and the camera render are bulk work whose late
results cost little. Without the privileges for SCHED_FIFO, the strongest separation an unprivileged
process can make is to put the bulk work into SCHED_IDLE: it runs only on CPU time nothing else wants,
which is far stronger than niceness (a nice-10 task still gets ~10 % of a contended core at once).
Pinning the sim and the controller to different CPUs keeps the loop's 1 kHz wake-ups from preempting
the physics step they answer.
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


def pin_process(cpu: int) -> str:
    """Pin every thread of this process to ``cpu`` (< 0: leave them floating); threads created later inherit
    it. The whole process, not one thread: its threads share the GIL, and a thread holding it while
    descheduled on a busy CPU would stall the pinned one. Returns "" or why it was not pinned (a CPU this
    machine does not have, a cpuset that excludes it): pinning is an optimisation, its absence no error."""
    if cpu < 0:
        return ""
    try:
        for tid in os.listdir(f"/proc/{os.getpid()}/task"):
            try:
                os.sched_setaffinity(int(tid), {cpu})
            except ProcessLookupError:
                pass
    except (OSError, ValueError) as exc:
        return f"cannot pin to CPU {cpu}: {exc}"
    return ""
