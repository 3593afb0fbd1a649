"""The CAN driver's Python side: build the C CanTransport from a hardware description, and the
bring-up sequences around it (enable, disable, jog, scan, calibrate).

Lifecycle (ros2_control's words): ``open()`` opens the buses and reads every motor with zero gains
(PASSIVE: nothing moves); ``enable()`` refuses, naming the joint, when a motor is silent or outside its
joint limits after calibration (a wrapped single-turn encoder, an offset lost at a power cycle), then
enters motor mode (ACTIVE: the loop's commands, or manual PD commands, drive the motors; a loop that is
not RUNNING gets motor-side damping); ``disable()`` damps for 5 cycles then exits motor mode on every
motor; ``close()`` disables if needed and stops the bus threads. Not real-time: the 1 kHz work is in C.
"""

from __future__ import annotations

import time

import numpy as np

from optimus_control.errors import HardwareError, suggest
from optimus_control.hardware.checks import is_prismatic, joint_scale
from optimus_control.hardware.description import HardwareDescription
from optimus_control.rt import _rtcore

PASSIVE, ENTERING, ACTIVE, EXITING = (_rtcore.CAN_PASSIVE, _rtcore.CAN_ENTERING, _rtcore.CAN_ACTIVE,
                                      _rtcore.CAN_EXITING)
READ_CYCLES = 5     # cycles a read (enable check, scan) lasts
ANSWERS_NEEDED = 3  # replies in those cycles for a motor to count as answering (one stray reply is not enough)
FAULT_NAMES = {0: "none", 1: "no reply", 2: "bus-off", 3: "adapter gone", 4: "motor error"}


def joint_tuples(desc: HardwareDescription, robot, damping_kd: float | None = None) -> list[tuple]:
    """The C transport's joint table in bus order (robot.joint_names)."""
    bus_index = {name: i for i, name in enumerate(desc.buses)}
    kd = robot.config.damping_gain if damping_kd is None else damping_kd
    rows = []
    for i, name in enumerate(robot.joint_names):
        jh = desc.joints[name]
        model = desc.models[jh.model]
        rows.append((bus_index[jh.bus], jh.motor_id, model.range10(), model.damiao,
                     joint_scale(jh.gear_ratio, is_prismatic(robot, i)), float(jh.direction), desc.zero_offset(name),
                     float(robot.limits.lower[i]), float(robot.limits.upper[i]), float(kd)))
    return rows


class CanDriver:
    """Owns a CanTransport built from a hardware description; give ``transport`` to a ``Loop``."""

    def __init__(self, desc: HardwareDescription, robot, bus_urls: dict[str, str] | None = None,
                 n_feet: int | None = None, bus_rates: dict[str, float] | None = None, log: bool = False,
                 missed_cycles: int = 0):
        self.desc, self.robot = desc, robot
        self.bus_names = list(desc.buses)
        urls, rates = dict(bus_urls or {}), dict(bus_rates or {})
        for name in [*urls, *rates]:
            if name not in desc.buses:
                raise HardwareError(f"no bus '{name}' in {desc.source}{suggest(name, desc.buses)}")
        if missed_cycles < 0:
            raise HardwareError(f"missed_cycles must be >= 0 (0: each bus's own), got {missed_cycles}")
        self.missed_cycles = {b.name: missed_cycles or b.fault_after_missed_cycles for b in desc.buses.values()}
        buses = [(urls.get(b.name, b.url), b.bitrate, rates.get(b.name, b.rate_hz), self.missed_cycles[b.name])
                 for b in desc.buses.values()]
        nf = len(robot.config.feet) if n_feet is None else n_feet
        self.transport = _rtcore.CanTransport(buses, joint_tuples(desc, robot), nf, self.bus_names)
        if log:
            self.transport.enable_log()
        self.joint_names = robot.joint_names

    # ---- lifecycle ----------------------------------------------------------------------------------------
    def open(self, rt_priority: int = 0, cpu: int = -1, open_timeout_s: float = 1.0) -> None:
        """Open every adapter and start reading the motors (PASSIVE: zero gains, zero torque)."""
        self.transport.start(rt_priority=rt_priority, cpu=cpu, open_timeout_s=open_timeout_s)

    def wait_cycles(self, cycles: int = 5, timeout_s: float = 5.0) -> None:
        """Wait until every bus ran `cycles` more cycles (or the timeout)."""
        start = [s["cycles"] for s in self.transport.bus_stats()]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            now = [s["cycles"] for s in self.transport.bus_stats()]
            if all(n - s >= cycles for n, s in zip(now, start)):
                return
            time.sleep(0.005)

    def read_check(self, margin: float = 0.02, joints: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
        """Positions of every joint and the problems that forbid enabling ``joints`` (default: all): silent or
        out-of-range motors."""
        checked = set(self.joint_names if joints is None else joints)
        before = [m["replies"] for m in self.transport.motor_status()]
        self.wait_cycles(READ_CYCLES)
        after = self.transport.motor_status()
        q, _, _, _ = self.transport.monitor()
        q = np.asarray(q)
        problems = []
        lim = self.robot.limits
        for i, name in enumerate(self.joint_names):
            jh = self.desc.joints[name]
            if name not in checked:
                continue
            if after[i]["replies"] - before[i] < ANSWERS_NEEDED:
                problems.append(f"joint '{name}' (motor {jh.motor_id} on bus '{jh.bus}') does not answer")
            elif not lim.lower[i] - margin <= q[i] <= lim.upper[i] + margin:
                problems.append(f"joint '{name}' (motor {jh.motor_id} on bus '{jh.bus}') reads {q[i]:.4f}, outside "
                                f"its limits [{lim.lower[i]:g}, {lim.upper[i]:g}]: a wrapped encoder or a lost zero "
                                "offset? recalibrate (optimus-hw calibrate) before enabling")
        return q, problems

    def enable(self, margin: float = 0.02, timeout_s: float = 2.0, joints: list[str] | None = None) -> np.ndarray:
        """Refuse (HardwareError naming every bad joint) or enter motor mode; returns the measured q.

        ``joints`` (default: every joint): only these motors are checked and put in motor mode; the others
        keep getting zero frames and their silence is no fault (bring-up of one motor, the rest of the robot
        unpowered or absent)."""
        for name in joints or []:
            if name not in self.desc.joints:
                raise HardwareError(f"no joint '{name}' in {self.desc.source}{suggest(name, self.joint_names)}")
        selected = set(self.joint_names if joints is None else joints)
        if self.transport.fault()[0] and not self.transport.clear_fault():
            # a motor that just came back needs a reply before its fault can clear: give it a read's cycles
            self.wait_cycles(READ_CYCLES)
            if not self.transport.clear_fault():
                # entering motor mode under a latched fault would only damp every motor: say why instead
                raise HardwareError(f"enable refused: transport fault still present ({self.fault_message()})")
        q, problems = self.read_check(margin, sorted(selected))
        if problems:
            raise HardwareError("enable refused:\n  " + "\n  ".join(problems))
        self.transport.select([name in selected for name in self.joint_names])
        self.transport.set_mode(ENTERING)
        self._wait_modes(ACTIVE, timeout_s)
        self._check_fault("enable")
        return q

    def disable(self, timeout_s: float = 2.0) -> None:
        """Damping for 5 cycles, then exit motor mode on every motor."""
        if all(m == PASSIVE for m in self.transport.modes()):
            return
        self.transport.set_mode(EXITING)
        self._wait_modes(PASSIVE, timeout_s)

    def close(self) -> str:
        """Disable, then stop the bus threads whatever happened; returns '' or why not every motor could be taken
        out of motor mode (an adapter gone: its motors' own command timeouts take over)."""
        problem = ""
        if self.transport.started:
            try:
                self.disable()
            except HardwareError as exc:
                problem = str(exc)
            finally:
                self.transport.stop()
        return problem

    def __enter__(self) -> CanDriver:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _wait_modes(self, mode: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            modes = self.transport.modes()
            if all(m == mode for m in modes):
                return
            time.sleep(0.002)
        bad = [b for b, m in zip(self.bus_names, self.transport.modes()) if m != mode]
        raise HardwareError(f"buses {bad} did not reach mode {mode} within {timeout_s} s")

    def _check_fault(self, what: str) -> None:
        """A latched fault makes every bus send damping whatever the bring-up tool commands: stop it there,
        naming the fault, rather than report a motion that never happened."""
        if self.transport.fault()[0]:
            raise HardwareError(f"{what} aborted: {self.fault_message()}; the motors are damped")

    # ---- diagnosis ----------------------------------------------------------------------------------------
    def fault_message(self) -> str:
        """The latched transport fault in words ('' when none)."""
        kind, joint, bus, _ = self.transport.fault()
        if not kind:
            return ""
        where = f"bus '{self.bus_names[bus]}'" if 0 <= bus < len(self.bus_names) else "a bus"
        what = FAULT_NAMES[kind]
        if kind == 1 and 0 <= bus < len(self.bus_names):  # the limit is the faulting bus's own setting
            what += f" for {self.missed_cycles[self.bus_names[bus]]} cycles"
        if joint >= 0:
            jh = self.desc.joints[self.joint_names[joint]]
            return f"{what}: joint '{self.joint_names[joint]}' (motor {jh.motor_id}) on {where}"
        return f"{what} on {where}"

    # ---- manual motion (bring-up) ----------------------------------------------------------------------------
    def hold(self, q: np.ndarray, kp: np.ndarray, kd: np.ndarray) -> None:
        """Manual motor-side PD towards q (joint side; q kept inside the joint limits by the transport)."""
        n = len(self.joint_names)
        self.transport.set_manual(np.ascontiguousarray(q, dtype=float), np.zeros(n),
                                  np.ascontiguousarray(kp, dtype=float), np.ascontiguousarray(kd, dtype=float),
                                  np.zeros(n))

    def ramp_gains(self, q: np.ndarray, kp: np.ndarray, kd: np.ndarray, ramp_s: float = 0.2) -> None:
        """Hold q while kp rises from 0 (kd from the damping gain) to the given gains: no torque step even if
        the measured position and the motor's disagree slightly when motor mode starts."""
        kd0 = np.full(len(q), self.robot.config.damping_gain)
        t0 = time.monotonic()
        while (a := (time.monotonic() - t0) / ramp_s) < 1.0:
            self.hold(q, kp * a, kd0 + (kd - kd0) * a)
            time.sleep(0.002)
        self.hold(q, kp, kd)

    def jog(self, joint: str, position: float, duration_s: float = 1.0, hold_s: float = 1.0,
            gain_scale: float = 0.3) -> float:
        """Move one joint to position [rad | m] with a smooth (cosine) profile under motor PD (gains ramped in
        at the measured position first), hold, and return the tracking error at the end; the other joints are
        damped (kp 0). Needs enable(). A transport fault on the way (the buses then damp) raises HardwareError."""
        i = self.robot.joint_index(joint)
        q0 = np.asarray(self.transport.monitor()[0])
        kp = np.zeros(len(q0))
        kd = np.full(len(q0), self.robot.config.damping_gain)
        kp[i], kd[i] = self.robot.kp[i] * gain_scale, self.robot.kd[i] * gain_scale
        target = float(np.clip(position, self.robot.limits.lower[i], self.robot.limits.upper[i]))
        self.ramp_gains(q0, kp, kd)
        self._check_fault("jog")
        start, t0 = q0[i], time.monotonic()
        while (s := (time.monotonic() - t0) / duration_s) < 1.0:
            ref = q0.copy()
            ref[i] = start + (target - start) * 0.5 * (1 - np.cos(np.pi * s))
            self.hold(ref, kp, kd)
            self._check_fault("jog")
            time.sleep(0.002)
        ref = q0.copy()
        ref[i] = target
        self.hold(ref, kp, kd)
        time.sleep(hold_s)
        self._check_fault("jog")
        return float(self.transport.monitor()[0][i] - target)

    def scan(self) -> list[dict]:
        """Per joint: answers?, q, v, tau (joint side), Damiao error nibble and temperatures."""
        before = [m["replies"] for m in self.transport.motor_status()]
        self.wait_cycles(READ_CYCLES)
        status = self.transport.motor_status()
        q, v, tau, _ = self.transport.monitor()
        rows = []
        for i, name in enumerate(self.joint_names):
            jh = self.desc.joints[name]
            answers = status[i]["replies"] - before[i] >= ANSWERS_NEEDED
            rows.append({"joint": name, "bus": jh.bus, "id": jh.motor_id, "answers": answers,
                         "q": q[i], "v": v[i], "tau": tau[i], "error": status[i]["error"],
                         "t_mos": status[i]["t_mos"], "t_rotor": status[i]["t_rotor"]})
        return rows

    def measure_offsets(self, reference: dict[str, float]) -> dict[str, float]:
        """Zero offsets that make each joint read its reference position now (the robot held in a known
        pose, e.g. against its calibration jig): offset_new = offset_old + reference - q_measured."""
        q = np.asarray(self.transport.monitor()[0])
        out = {}
        for name, ref in reference.items():
            i = self.robot.joint_index(name)
            out[name] = self.desc.zero_offset(name) + float(ref) - float(q[i])
        return out
