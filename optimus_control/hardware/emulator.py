"""An SLCAN adapter and its MIT-mode motors, emulated on the far side of a pseudo-terminal pair.

The CAN transport opens the pty's path exactly as it opens a USB adapter's tty (``slcan:<path>``), so
the whole host path (SLCAN framing, bursts, reply collection, faults) runs for real. This is the seed
of the hardware-in-the-loop rig: a motor here is a small model (first-order dynamics under the MIT law
``tau = kp (p_ref - p) + kd (v_ref - v) + t_ff``, or a held state), and the rig can make motors silent,
start them out of range, or make the whole adapter vanish and come back at the same path.

Round-trip figures measured through a pty say nothing about USB latency.

``EmulatorProcess`` (what ``optimus-hw --emulate`` uses) serves the adapters from a child interpreter, as
real motors answer independently of the host: emulator threads inside the host process share its GIL, so
any pause of the host interpreter (a full garbage collection took 50-115 ms in a test process on a loaded
2-core VM) silences every emulated motor at once for more than the transport's reply limit (a bus's
``fault_after_missed_cycles``, 3 by default).
"""

from __future__ import annotations

import dataclasses
import gc
import json
import math
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

from optimus_control.hardware.description import MotorModel
from optimus_control.rt import _rtcore


@dataclass
class EmulatedMotor:
    """One MIT-mode motor (motor-side units)."""

    motor_id: int
    model: MotorModel
    position: float = 0.0          # [rad]
    velocity: float = 0.0          # [rad/s]
    torque: float = 0.0            # [N m]
    damping: float = 0.5           # [N m s/rad] viscous load: first-order dynamics v = tau / (damping + kd)
    hold: bool = False             # True: the state never changes (a motor on a locked joint)
    silent: bool = False           # True: never answers
    enabled: bool = False          # motor mode
    t_mos: int = 35                # [deg C] Damiao reply only
    t_rotor: int = 30
    error_code: int = 0            # Damiao: a state nibble >= 8 (e.g. 0xB MOSFET over-temperature) replaces 0/1
    command: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0)  # p, v, kp, kd, t
    frames: int = 0
    specials: list[int] = field(default_factory=list)
    commands_seen: list[tuple[float, ...]] = field(default_factory=list)
    record: bool = False           # keep every decoded command (tests)
    _t: float = field(default_factory=time.monotonic)

    def advance(self, now: float) -> None:
        """Move the motor under its law since the last frame: the first-order model
        (damping + kd) v = kp (p_ref - p) + kd v_ref + t_ff solved exactly (an exponential towards the
        equilibrium), at constant saturated velocity while the torque is at its limit."""
        dt, self._t = min(now - self._t, 0.05), now
        if self.hold or not self.enabled:
            self.velocity, self.torque = 0.0, 0.0
            return
        p_ref, v_ref, kp, kd, t_ff = self.command
        lo, hi = self.model.torque
        b = self.damping + kd
        drive = kp * (p_ref - self.position) + kd * v_ref + t_ff
        if not lo <= drive <= hi or kp <= 0.0:
            self.velocity = min(max(drive, lo), hi) / b
            self.position += self.velocity * dt
        else:
            p_eq = p_ref + (kd * v_ref + t_ff) / kp
            decay = math.exp(-kp * dt / b)
            self.position = p_eq + (self.position - p_eq) * decay
            self.velocity = kp * (p_eq - self.position) / b
        self.torque = min(max(kp * (p_ref - self.position) + kd * (v_ref - self.velocity) + t_ff, lo), hi)

    def reply(self) -> bytes:
        """The reply frame's data: the state at the time the frame arrived."""
        r = self.model.range10()
        enc = _rtcore.mit_pack(r, self.position, self.velocity, 0.0, 0.0, self.torque)[0]
        # reuse the command packer's p16 and v12 fields; t12 is the last 12 bits
        p16 = enc[0:2]
        v12 = (enc[2] << 4) | (enc[3] >> 4)
        t12 = ((enc[6] & 0xF) << 8) | enc[7]
        if self.model.damiao:
            state = self.error_code if self.error_code else (1 if self.enabled else 0)
            d0 = (state << 4) | (self.motor_id & 0xF)
            return bytes([d0]) + p16 + bytes([v12 >> 4, ((v12 & 0xF) << 4) | (t12 >> 8), t12 & 0xFF,
                                              self.t_mos, self.t_rotor])
        return bytes([self.motor_id & 0xFF]) + p16 + bytes([v12 >> 4, ((v12 & 0xF) << 4) | (t12 >> 8), t12 & 0xFF])

    def receive(self, data: bytes, now: float) -> bytes | None:
        """Handle one frame addressed to this motor; returns the reply data (None when silent)."""
        self.advance(now)
        self.frames += 1
        if self.silent:
            return None
        out = self.reply()
        kind = _rtcore.mit_special_kind(data)
        if kind:
            self.specials.append(kind)
            if kind == 0xFC:
                self.enabled = True
                self.command = (self.position, 0.0, 0.0, 0.0, 0.0)
            elif kind == 0xFD:
                self.enabled = False
                self.command = (0.0, 0.0, 0.0, 0.0, 0.0)
            elif kind == 0xFE:
                self.position = 0.0
        elif len(data) == 8:
            cmd = decode_command(self.model, data)
            if self.record:
                self.commands_seen.append(cmd)
            if self.enabled:
                self.command = cmd
        return out


def decode_command(model: MotorModel, data: bytes) -> tuple[float, float, float, float, float]:
    """(p, v, kp, kd, t) of an 8-byte MIT command, as the firmware reads it."""
    w = int.from_bytes(data, "big")
    fields = [(w >> 48) & 0xFFFF, (w >> 36) & 0xFFF, (w >> 24) & 0xFFF, (w >> 12) & 0xFFF, w & 0xFFF]
    ranges = [model.position, model.velocity, model.kp, model.kd, model.torque]
    bits = [16, 12, 12, 12, 12]
    return tuple(u * (hi - lo) / ((1 << n) - 1) + lo for u, (lo, hi), n in zip(fields, ranges, bits))


class EmulatedAdapter:
    """An SLCAN adapter on a pty, with motors on its bus. ``path`` is stable across vanish()/reappear()."""

    def __init__(self, motors: list[EmulatedMotor], path: str | None = None, version: str = "V1013",
                 noise: bytes = b"", rt_priority: int = 0):
        self.motors = {m.motor_id: m for m in motors}
        # > 0: the serving thread asks for SCHED_FIFO (best effort), so it answers on a CPU-loaded machine as a
        # real motor would; refused without CAP_SYS_NICE / rtprio limit (then normal priority)
        self.rt_priority = rt_priority
        self.noise = noise  # bytes sent after every answer: garbage lines, frames of unknown ids, bell errors
        self._dir = None
        if path is None:
            self._dir = tempfile.mkdtemp(prefix="optimus_slcan_")
            path = os.path.join(self._dir, "ttyEMU")
        self.path = path
        self.version = version
        self.is_open = False
        self.bitrate_code: int | None = None
        self.lines: list[bytes] = []         # adapter commands received (not frames)
        self.frames_in = 0
        self.unknown_ids: list[int] = []
        self._master = -1
        self._slave = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._parser = _rtcore.SlcanParser()
        self._buf = b""

    # ---- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> EmulatedAdapter:
        self._open_pty()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="slcan-emulator", daemon=True)
        self._thread.start()
        return self

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        os.set_blocking(master, False)
        tmp = self.path + ".new"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(os.ttyname(slave), tmp)
        os.replace(tmp, self.path)
        self._master, self._slave = master, slave
        self.is_open = False

    def vanish(self) -> None:
        """The adapter is unplugged: the tty goes away (the host reads EIO) and its path disappears."""
        with self._lock:
            if self._master >= 0:
                os.close(self._master)
                os.close(self._slave)
                self._master = self._slave = -1
            if os.path.lexists(self.path):
                os.unlink(self.path)

    def reappear(self) -> None:
        """Plugged back in: a new tty at the same path; the adapter starts closed, as after a power-up."""
        with self._lock:
            self._open_pty()
            self._parser = _rtcore.SlcanParser()
            self._buf = b""

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.vanish()
        if self._dir is not None and os.path.isdir(self._dir):
            os.rmdir(self._dir)

    def __enter__(self) -> EmulatedAdapter:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- the adapter ----------------------------------------------------------------------------------------
    def _run(self) -> None:
        if self.rt_priority > 0:
            try:  # pid 0: this thread only
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(self.rt_priority))
            except OSError:
                pass
        while not self._stop.is_set():
            fd = self._master
            if fd < 0:
                time.sleep(0.002)
                continue
            try:
                ready, _, _ = select.select([fd], [], [], 0.02)
            except (OSError, ValueError):
                continue
            if not ready:
                continue
            with self._lock:
                if fd != self._master:
                    continue
                try:
                    data = os.read(fd, 4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""  # the host closed the slave: keep serving the next opener
                if data:
                    out = self._handle(data)
                    if out:
                        self._write(out + self.noise if self.is_open else out)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        deadline = time.monotonic() + 0.5
        while view and time.monotonic() < deadline:
            try:
                n = os.write(self._master, view)
                view = view[n:]
            except BlockingIOError:
                time.sleep(0.0002)
            except OSError:
                return

    def _handle(self, data: bytes) -> bytes:
        """Split into lines (the parser is the transport's own, run here only for framing) and answer."""
        out = []
        self._buf += data
        while b"\r" in self._buf:
            line, self._buf = self._buf.split(b"\r", 1)
            out.append(self._line(line))
        return b"".join(out)

    def _line(self, line: bytes) -> bytes:
        if not line:
            return b"\a"
        k = line[:1]
        if k == b"t":
            if not self.is_open:
                return b"\a"
            events = self._parser.feed(line + b"\r")
            if not events or events[0][0] != "frame":
                return b"\a"
            _, can_id, payload, _, _ = events[0]
            self.frames_in += 1
            motor = self.motors.get(can_id)
            if motor is None:
                self.unknown_ids.append(can_id)
                return b"z\r"
            reply = motor.receive(payload, time.monotonic())
            ack = b"z\r"
            if reply is None:
                return ack
            return ack + _rtcore.slcan_encode(0, reply)
        self.lines.append(line)
        if k == b"S" and len(line) == 2 and line[1:2].isdigit() and int(line[1:2]) <= 8:
            self.bitrate_code = int(line[1:2])
            return b"\r"
        if line == b"O":
            if self.bitrate_code is None:
                return b"\a"
            self.is_open = True
            return b"\r"
        if line == b"C":
            self.is_open = False
            return b"\r"
        if line == b"V":
            return self.version.encode() + b"\r"
        if line == b"F":
            return b"F00\r"
        return b"\a"


def emulate_description(desc, robot, q=None) -> tuple[list[EmulatedAdapter], dict[str, str]]:
    """One started emulated adapter per bus of a hardware description, its motors at the joint positions q
    (default: the standing posture) through each joint's gear, direction and offset. Returns the adapters
    and the ``slcan:<path>`` url of each bus. In this process: fine on its own (``optimus-hw emulate``), not
    beside the host (``spawn_emulator``)."""
    adapters, urls = [], {}
    for bus, motors in _description_motors(desc, robot, q).items():
        a = EmulatedAdapter(motors).start()
        adapters.append(a)
        urls[bus] = f"slcan:{a.path}"
    return adapters, urls


def _description_motors(desc, robot, q=None) -> dict[str, list[EmulatedMotor]]:
    """Per bus, the description's motors at the joint positions q (default: the standing posture) through
    each joint's gear, direction and offset."""
    from optimus_control.hardware.checks import is_prismatic, joint_scale

    q = robot.standing_joint_positions() if q is None else q
    per_bus: dict[str, list[EmulatedMotor]] = {name: [] for name in desc.buses}
    for i, name in enumerate(robot.joint_names):
        jh = desc.joints[name]
        s = joint_scale(jh.gear_ratio, is_prismatic(robot, i))
        per_bus[jh.bus].append(EmulatedMotor(jh.motor_id, desc.models[jh.model],
                                             position=jh.direction * s * (q[i] - desc.zero_offset(name))))
    return per_bus


EMULATOR_PRIORITY = 70  # the rig answers with priority, as a real motor would (below the bus threads' 80)


class EmulatorProcess:
    """The emulated adapters of a description served by a child interpreter (see the module docstring for
    why not threads of this process). ``urls``: the ``slcan:<path>`` url of each bus; ``stop()`` ends it.

    While it runs: ``set_silent(bus, motor_id, flag)`` makes a motor stop (or resume) answering;
    ``motors()`` reads every motor's state (motor side: enabled, position, last command (p, v, kp, kd, t),
    special frames received), for tests and rigs that check what reached the motors."""

    def __init__(self, buses: dict[str, list[EmulatedMotor]], start_timeout_s: float = 20.0):
        spec = {bus: [[m.motor_id, dataclasses.asdict(m.model), m.position, m.hold] for m in motors]
                for bus, motors in buses.items()}
        self._lock = threading.Lock()
        self.proc = subprocess.Popen([sys.executable, "-m", "optimus_control.hardware.emulator", "--spec", "-"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.urls: dict[str, str] = {}
        try:
            self.proc.stdin.write(json.dumps(spec).encode() + b"\n")
            self.proc.stdin.flush()
            deadline = time.monotonic() + start_timeout_s  # generous: a cold import on a loaded machine
            fd, buf = self.proc.stdout.fileno(), b""
            while not buf.endswith(b"ready\n"):
                ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0.0))
                chunk = os.read(fd, 4096) if ready else b""
                if not chunk:
                    raise RuntimeError(f"the emulator process did not start within {start_timeout_s} s (exit code "
                                       f"{self.proc.poll()}, said {buf!r})")
                buf += chunk
            for words in (line.split() for line in buf.decode().splitlines()):
                if words[:1] == ["ready"] and len(words) == 3:
                    self.urls[words[1]] = f"slcan:{words[2]}"
        except BaseException:
            self.stop()
            raise

    def _ask(self, line: str) -> str:
        """One command line to the child and its one-line answer."""
        with self._lock:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the emulator process has ended (exit code {self.proc.returncode})")
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()
            answer = self.proc.stdout.readline().decode()
        if not answer.startswith("ok"):
            raise RuntimeError(f"emulator: '{line}' failed: {answer.strip() or 'no answer'}")
        return answer[2:].strip()

    def set_silent(self, bus: str, motor_id: int, silent: bool = True) -> None:
        self._ask(f"silent {bus} {int(motor_id)} {int(bool(silent))}")

    def motors(self) -> dict[str, dict[int, dict]]:
        """bus -> motor id -> {enabled, position, command [p, v, kp, kd, t], specials [0xFC, ...], frames}."""
        raw = json.loads(self._ask("state"))
        return {bus: {int(mid): m for mid, m in motors.items()} for bus, motors in raw.items()}

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b"quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            f.close()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def spawn_emulator(desc, robot, q=None, hold: bool = False) -> EmulatorProcess:
    """``emulate_description`` in a child process: what the bring-up tools' ``--emulate`` uses. ``hold``: every
    joint locked where it is (a robot in a fixture: the motors answer, their state never changes)."""
    buses = _description_motors(desc, robot, q)
    for motors in buses.values():
        for m in motors:
            m.hold = hold
    return EmulatorProcess(buses)


def _motor_state(m: EmulatedMotor) -> dict:
    return {"enabled": m.enabled, "position": m.position, "command": list(m.command), "specials": list(m.specials),
            "frames": m.frames}


def _serve_spec() -> int:
    """The child of EmulatorProcess: the spec (JSON, one line on stdin), ``ready BUS PATH`` per bus, then
    ``ready``; then one answer line (``ok ...`` or ``error ...``) per command line (``silent BUS ID 0|1``,
    ``state``) until ``quit`` or EOF on stdin."""
    from optimus_control.hardware.description import MotorModel

    spec = json.loads(sys.stdin.readline())
    adapters = {}
    try:
        for bus, motors in spec.items():
            ms = [EmulatedMotor(mid, MotorModel(**{k: tuple(v) if isinstance(v, list) else v for k, v in m.items()}),
                                position=p, hold=bool(hold)) for mid, m, p, hold in motors]
            adapters[bus] = EmulatedAdapter(ms, rt_priority=EMULATOR_PRIORITY).start()
        # Everything allocated so far lives as long as the process: out of the collector's sight, a full
        # collection scans only the few objects of the serving threads (pauses of well under a cycle)
        gc.freeze()
        for bus, a in adapters.items():
            print(f"ready {bus} {a.path}", flush=True)
        print("ready", flush=True)
        for line in sys.stdin:
            words = line.split()
            if words[:1] == ["quit"]:
                break
            try:
                if words[:1] == ["silent"] and len(words) == 4:
                    adapters[words[1]].motors[int(words[2])].silent = words[3] == "1"
                    print("ok", flush=True)
                elif words == ["state"]:
                    state = {bus: {mid: _motor_state(m) for mid, m in a.motors.items()} for bus, a in adapters.items()}
                    print("ok " + json.dumps(state), flush=True)
                else:
                    print(f"error unknown command {line.strip()!r}", flush=True)
            except (KeyError, ValueError) as exc:
                print(f"error {exc!r}", flush=True)
    finally:
        for a in adapters.values():
            a.stop()
    return 0


def _serve(argv: list[str] | None = None) -> int:
    """A standalone emulator process (benchmarks, manual HIL trials): motors given as MODEL:ID; commands on
    stdin: ``silent ID 0|1``, ``quit``. Prints ``ready <path>`` and, after a motor went silent, ``damped
    <id> <t_silent> <t_first_damping_frame>`` (CLOCK_MONOTONIC seconds) for every other motor."""
    import argparse

    from optimus_control.hardware.description import known_models

    p = argparse.ArgumentParser(prog="python -m optimus_control.hardware.emulator")
    p.add_argument("--motor", action="append", required=True, metavar="MODEL:ID")
    p.add_argument("--damping", type=float, default=5.0)
    args = p.parse_args(argv)
    models = known_models()
    motors = []
    for spec in args.motor:
        name, _, mid = spec.rpartition(":")
        motors.append(_WatchedMotor(int(mid), models[name], damping=args.damping))
    with EmulatedAdapter(motors) as adapter:
        print(f"ready {adapter.path}", flush=True)
        for line in sys.stdin:
            words = line.split()
            if not words or words[0] == "quit":
                break
            if words[0] == "silent":
                now = time.monotonic()
                for m in motors:
                    m.watch_from = now if words[2] == "1" else None
                adapter.motors[int(words[1])].silent = words[2] == "1"
    return 0


class _WatchedMotor(EmulatedMotor):
    """Reports (stdout) the first damping command it gets after another motor went silent."""

    watch_from: float | None = None

    def receive(self, data: bytes, now: float) -> bytes | None:
        if self.watch_from is not None and not self.silent and not _rtcore.mit_special_kind(data):
            _, _, kp, kd, _ = decode_command(self.model, data)
            if kp == 0.0 and kd > 0.0:
                print(f"damped {self.motor_id} {self.watch_from:.6f} {now:.6f}", flush=True)
                self.watch_from = None
        return super().receive(data, now)


if __name__ == "__main__":
    raise SystemExit(_serve_spec() if sys.argv[1:] == ["--spec", "-"] else _serve())
