"""The small pieces real-time mode is made of: status change events, update timing, idle scheduling."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from optimus_control.control.controller_status import ControllerState
from optimus_control.control.status_changes import Level, StatusChanges
from optimus_control.control.update_timing import UpdateTiming
from optimus_control.nodes.scheduling import use_idle_scheduling


def test_status_changes_report_each_change_once_with_its_level_and_reason():
    changes = StatusChanges()
    assert changes.update(ControllerState.IDLE, "", "INIT", "") == []          # a quiet start says nothing
    events = changes.update(ControllerState.RUNNING, "", "RUNNING", "")
    assert [(e.level, e.text) for e in events] == [(Level.INFO, "controller running"), (Level.INFO, "1 kHz loop RUNNING")]
    assert changes.update(ControllerState.RUNNING, "", "RUNNING", "") == []    # no change, no event
    events = changes.update(ControllerState.RUNNING, "", "DAMPING", "references are 0.051 s old")
    assert len(events) == 1 and events[0].level is Level.ERROR
    assert "DAMPING: references are 0.051 s old" in events[0].text and "not controlled" in events[0].text
    events = changes.update(ControllerState.HOLDING, "QP failed: X", "DAMPING", "references are 0.051 s old")
    assert [(e.level, e.text) for e in events] == [(Level.WARN, "controller holding: QP failed: X")]


def test_a_fault_at_the_first_look_is_reported():
    events = StatusChanges().update(ControllerState.DAMPING, "damping requested", "FAULT", "no state")
    assert [e.level for e in events] == [Level.ERROR, Level.ERROR]


def test_update_timing_needs_steady_updates_for_the_whole_period():
    timing = UpdateTiming(steady_s=0.5, max_gap_s=0.025)
    t, steady = 0.0, False
    for _ in range(100):           # 8 ms apart: steady after 0.5 s
        steady = timing.tick(t)
        if steady:
            break
        t += 0.008
    assert steady and 0.5 <= t < 0.52
    assert not timing.tick(t + 0.06)     # one 60 ms gap starts the count again
    assert timing.longest_gap_s > 0.059
    timing.reset()
    assert not timing.tick(10.0) and timing.longest_gap_s == 0.0


def test_idle_scheduling_moves_every_thread_of_a_process():
    child = subprocess.Popen([sys.executable, "-c", "import threading, time; threading.Thread(target=time.sleep, "
                              "args=(30,), daemon=True).start(); time.sleep(30)"])
    try:
        deadline = time.monotonic() + 30.0
        while len(os.listdir(f"/proc/{child.pid}/task")) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert use_idle_scheduling(child.pid) == 2
        for tid in os.listdir(f"/proc/{child.pid}/task"):
            assert os.sched_getscheduler(int(tid)) == os.SCHED_IDLE
    finally:
        child.kill()
        child.wait()
