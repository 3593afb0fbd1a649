"""CAN driver layer: the shipped plan's bus load, and the CAN transport at 1 kHz over a pty.

Over the pty the C transport speaks SLCAN to the emulated adapter + motors running in a child process
(Python). A pty is not a USB adapter: the round trips below measure the host path (SLCAN framing, the
kernel's tty layer, the bus thread's burst/collect cycle) plus a Python emulator's reply time; they say
nothing about USB latency or real CAN wire time. Durations: OPTIMUS_BENCH_HW_S (default 15 s per run).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from optimus_control.hardware import bus_load, format_bus_load, load_hardware
from optimus_control.hardware.description import known_models
from optimus_control.rt import Dynamics, Loop, LoopConfig, LoopState, _rtcore

ARM_URDF = """<?xml version="1.0"?><robot name="arm2"><link name="base"/>
<link name="l1"><inertial><mass value="1"/><inertia ixx="0.01" iyy="0.01" izz="0.01" ixy="0" ixz="0" iyz="0"/></inertial></link>
<link name="l2"><inertial><mass value="1"/><inertia ixx="0.01" iyy="0.01" izz="0.01" ixy="0" ixz="0" iyz="0"/></inertial></link>
<joint name="j1" type="revolute"><parent link="base"/><child link="l1"/><axis xyz="0 0 1"/>
<limit lower="-1.5" upper="1.5" effort="15" velocity="10"/></joint>
<joint name="j2" type="revolute"><parent link="l1"/><child link="l2"/><origin xyz="0.2 0 0"/><axis xyz="0 0 1"/>
<limit lower="-1.5" upper="1.5" effort="15" velocity="10"/></joint></robot>
"""


class Emulator:
    """The emulator in its own process: this process's CPU time is then the transport's alone."""

    def __init__(self, motor_ids: list[int]):
        args = [sys.executable, "-m", "optimus_control.hardware.emulator"]
        for i in motor_ids:
            args += ["--motor", f"mini_cheetah:{i}"]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        try:  # the rig answers with priority, as a real motor would (below the bus thread's 80)
            os.sched_setscheduler(self.proc.pid, os.SCHED_FIFO, os.sched_param(70))
            self.priority = "SCHED_FIFO 70"
        except OSError:
            self.priority = "normal priority"
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "ready":
            raise RuntimeError(f"emulator did not start: {line}")
        self.path = line[1]

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        try:
            self.send("quit")
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


def transport_for(path: str, n: int, rate_hz: float, prio: int):
    r = known_models()["mini_cheetah"].range10()
    joints = [(0, i + 1, r, False, 1.0, 1.0, 0.0, -1.5, 1.5, 1.0) for i in range(n)]
    # the robot's default fault_after_missed_cycles (3): the silent-motor -> damping figure is measured with it
    tr = _rtcore.CanTransport([(f"slcan:{path}", 1_000_000, rate_hz, 3)], joints, 0, ["pty"])
    tr.start(rt_priority=prio, open_timeout_s=2.0)
    return tr


def wait_modes(tr, mode, timeout_s=3.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(m != mode for m in tr.modes()):
        time.sleep(0.005)


def bench_round_trip(n_motors: int, seconds: float, prio: int) -> None:
    emu = Emulator(list(range(1, n_motors + 1)))
    try:
        tr = transport_for(emu.path, n_motors, 1000.0, prio)
        tr.set_mode(_rtcore.CAN_ENTERING)
        wait_modes(tr, _rtcore.CAN_ACTIVE)
        c0, t0 = time.process_time(), time.monotonic()
        time.sleep(seconds)
        cpu, wall = time.process_time() - c0, time.monotonic() - t0
        s = tr.bus_stats()[0]
        tr.set_mode(_rtcore.CAN_EXITING)
        wait_modes(tr, _rtcore.CAN_PASSIVE)
        tr.stop()
    finally:
        emu.close()
    expected = s["cycles"] * n_motors
    print(f"  {n_motors} motor(s), {wall:.0f} s at 1 kHz (emulator at {emu.priority}): cycles {s['cycles']}, "
          f"complete {s['complete_cycles']}, overruns {s['overruns']}")
    print(f"    round trip (burst sent -> last reply) p50 {s['rtt_p50_us']:.0f} us, p99 {s['rtt_p99_us']:.0f} us, "
          f"max {s['rtt_max_us']:.0f} us")
    print(f"    missing replies {s['missing']} of {expected} = {100 * s['missing'] / max(expected, 1):.3f} % "
          f"(late: {s['late_replies']}), unknown frames {s['unknown_frames']}; "
          f"bus thread CPU {100 * cpu / wall:.1f} % of one core")


def bench_silent_to_damping(trials: int, prio: int) -> None:
    emu = Emulator([1, 2])
    tmp = Path(tempfile.mkdtemp())
    (tmp / "arm2.urdf").write_text(ARM_URDF)
    delays = []
    try:
        tr = transport_for(emu.path, 2, 1000.0, prio)
        tr.set_mode(_rtcore.CAN_ENTERING)
        wait_modes(tr, _rtcore.CAN_ACTIVE)
        loop = Loop(Dynamics.from_urdf(tmp / "arm2.urdf", floating_base=False), tr,
                    LoopConfig(rt_priority=prio, lock_memory=False, silent_ticks=0, stale_reference_timeout_s=5.0))
        loop.start()
        loop.set_references(qdd=np.zeros(2), q=np.array([0.2, 0.2]), v=np.zeros(2), kp=np.full(2, 20.0),
                            kd=np.full(2, 1.0))
        for _ in range(trials):
            deadline = time.monotonic() + 3
            while loop.status().state != LoopState.RUNNING and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(0.1)
            emu.send("silent 1 1")
            line = emu.proc.stdout.readline().split()
            if line and line[0] == "damped":
                delays.append(float(line[3]) - float(line[2]))
            emu.send("silent 1 0")
            deadline = time.monotonic() + 3
            while not tr.clear_fault() and time.monotonic() < deadline:
                time.sleep(0.01)
            loop.reset()
        loop.close()
        tr.set_mode(_rtcore.CAN_EXITING)
        wait_modes(tr, _rtcore.CAN_PASSIVE)
        tr.stop()
    finally:
        emu.close()
        (tmp / "arm2.urdf").unlink()
        tmp.rmdir()
    d = np.array(delays) * 1e3
    print(f"  {len(d)} trials: silent motor -> first damping frame at the other motor: median {np.median(d):.2f} ms, "
          f"max {d.max():.2f} ms (goal <= 5 ms: {'met' if d.max() <= 5 else 'NOT met'} at max, "
          f"{100 * np.mean(d <= 5):.0f} % of trials)")


def main() -> None:
    seconds = float(os.environ.get("OPTIMUS_BENCH_HW_S", "15"))
    desc = load_hardware("hardware/optimus.yaml")
    rows = bus_load(desc)
    print(f"Bus load of the shipped plan ({desc.source.name}: {len(desc.joints)} motors, {len(rows)} buses; "
          "worst case with bit stuffing):")
    print(format_bus_load(rows))
    print(f"  highest {max(r.load for r in rows):.1%}, limit 80 %")
    prio = 80
    print(f"\nCAN transport over a pty (NOT a USB adapter: host path + a Python emulator in another process), "
          f"bus thread SCHED_FIFO {prio} where permitted:")
    bench_round_trip(1, seconds, prio)
    bench_round_trip(3, seconds, prio)
    print("\nSilent motor -> damping (loop at 1 kHz, bus at 1 kHz, fault after 3 missed replies):")
    bench_silent_to_damping(20, prio)
    print(f"  machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, kernel {os.uname().release}")


if __name__ == "__main__":
    main()
