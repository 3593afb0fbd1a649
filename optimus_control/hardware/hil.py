"""Hardware in the loop: the motors of a hardware description emulated in C on top of the simulated robot.

``HilEmulator`` takes the controller side of the simulator's joint bus and serves one SLCAN pty per bus of
the description (linked at ``<pty_dir>/<bus name>``), so the controller in hardware mode opens
``slcan:<pty_dir>/<bus>`` exactly as it opens a USB adapter: nothing in it knows it is not on a robot.
Each motor applies its own MIT law at every physics step (rt_emu.c); the mechanics (gear, direction, zero
offset) are the description's, so a host calibration that disagrees with them shows as a wrong joint angle.

Firmware command timeouts are emulator settings (real units keep theirs in flash): Damiao units damp after
``DAMIAO_TIMEOUT_S`` without a command, MIT-firmware units go limp after ``MIT_TIMEOUT_S``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from optimus_control.errors import HardwareError, suggest
from optimus_control.hardware.checks import is_prismatic, joint_scale
from optimus_control.hardware.description import HardwareDescription
from optimus_control.model.settings_schema import setting
from optimus_control.rt import _rtcore

DAMIAO_TIMEOUT_S, DAMIAO_TIMEOUT_KD = 0.1, 1.0   # [s], [N m s/rad] motor side
MIT_TIMEOUT_S, MIT_TIMEOUT_KD = 0.5, 0.0         # limp


def default_pty_dir(bus_name: str) -> Path:
    """Where a HIL rig on the joint bus ``bus_name`` links its adapters (one stack per bus name)."""
    return Path(os.environ.get("TMPDIR", "/tmp")) / "optimus_hil" / bus_name


def bus_paths(pty_dir: str | os.PathLike, desc: HardwareDescription) -> dict[str, str]:
    """The path of each bus's emulated adapter: ``<pty_dir>/<bus name>``."""
    return {name: str(Path(pty_dir) / name) for name in desc.buses}


def motor_table(desc: HardwareDescription, robot) -> list[tuple]:
    """The emulator's motor per joint (bus order): bus index, id, ranges, Damiao?, scale, direction, offset,
    firmware timeout and its damping."""
    bus_index = {name: i for i, name in enumerate(desc.buses)}
    rows = []
    for i, name in enumerate(robot.joint_names):
        jh = desc.joints[name]
        model = desc.models[jh.model]
        timeout_s, timeout_kd = (DAMIAO_TIMEOUT_S, DAMIAO_TIMEOUT_KD) if model.damiao else (MIT_TIMEOUT_S, MIT_TIMEOUT_KD)
        rows.append((bus_index[jh.bus], jh.motor_id, model.range10(), model.damiao,
                     joint_scale(jh.gear_ratio, is_prismatic(robot, i)),
                     float(jh.direction), float(jh.zero_offset), timeout_s, timeout_kd))
    return rows


@dataclass(frozen=True)
class PlantSample:
    """One state of the simulated robot as the emulated motors and IMU saw it (robot IMU frame)."""

    tick: int
    time_s: float
    q: np.ndarray                     # joint positions [rad | m]
    v: np.ndarray
    imu_angular_velocity: np.ndarray  # [rad/s]
    imu_linear_acceleration: np.ndarray  # specific force [m/s²]
    tau: np.ndarray                   # joint torques the motors produced [N m | N]


class HilEmulator:
    """The description's motors on the simulator's joint bus (``transport``: an open ShmTransport)."""

    def __init__(self, desc: HardwareDescription, robot, transport, pty_dir: str | os.PathLike, wire: bool = True,
                 latency_us: int = 0, jitter_us: int = 0):
        self.desc, self.robot = desc, robot
        self.bus_names = list(desc.buses)
        self.paths = bus_paths(pty_dir, desc)
        Path(pty_dir).mkdir(parents=True, exist_ok=True)
        self.core = _rtcore.MotorEmulator(transport, motor_table(desc, robot))
        self._layout = _rtcore.bus_layout(robot.n_joints, transport.n_feet)
        for k, bus in enumerate(desc.buses.values()):  # each burst's answers wait for its frames' time on the wire
            self.core.set_wire(k, bus.bitrate if wire else 0, int(latency_us), int(jitter_us))
        self._faults = {b: [0, 0, False] for b in self.bus_names}  # drop ppm, corrupt ppm, silent

    def start(self, rt_priority: int = 0, first_state_timeout_s: float = 10.0) -> None:
        """Once the sim has published a state (motors answer with their joint's state), the adapters appear."""
        self.core.start([self.paths[b] for b in self.bus_names], rt_priority=rt_priority,
                        first_state_timeout_s=first_state_timeout_s)

    def stop(self) -> None:
        """Threads stopped, ptys closed and unlinked, the joint bus's controller side released."""
        self.core.close()

    def joint(self, name: str) -> int:
        if name not in self.desc.joints:
            raise HardwareError(f"no joint '{name}' in {self.desc.source}{suggest(name, self.robot.joint_names)}")
        return self.robot.joint_index(name)

    def bus(self, name: str) -> int:
        if name not in self.desc.buses:
            raise HardwareError(f"no bus '{name}' in {self.desc.source}{suggest(name, self.bus_names)}")
        return self.bus_names.index(name)

    # ---- fault injection ----------------------------------------------------------------------------------
    def set_silent(self, joint: str, silent: bool = True) -> None:
        self.core.set(self.joint(joint), "silent", int(silent))

    def set_error(self, joint: str, code: int) -> None:
        """A Damiao state code (>= 8: a fault) in the motor's replies; 0 clears it."""
        self.core.set(self.joint(joint), "error", int(code))

    def set_temperature(self, joint: str, mosfet_c: int, rotor_c: int | None = None) -> None:
        self.core.set(self.joint(joint), "temperature", int(mosfet_c), int(mosfet_c if rotor_c is None else rotor_c))

    def set_encoder_error(self, joint: str, error: float) -> None:
        """The joint's encoder reads ``error`` [rad | m, joint side] off (a lost or wrong zero offset); 0 clears."""
        i = self.joint(joint)
        jh = self.desc.joints[joint]
        # the host reads q = p_reported / (direction * scale) + offset, and p_reported = p_motor - shift
        self.core.set_zero_shift(i, -float(error) * jh.direction * joint_scale(jh.gear_ratio, is_prismatic(self.robot, i)))

    def set_bus_faults(self, bus: str, drop: float | None = None, corrupt: float | None = None,
                       silent: bool | None = None) -> None:
        """Replies lost (``drop``) or garbled (``corrupt``) on the wire as a fraction in [0, 1]; the whole bus silent."""
        f = self._faults[self.bus_names[self.bus(bus)]]
        for i, value in ((0, drop), (1, corrupt)):
            if value is not None:
                if not 0.0 <= value <= 1.0:
                    raise HardwareError(f"fault injection: a fraction in [0, 1] is needed, got {value}")
                f[i] = int(round(value * 1e6))
        if silent is not None:
            f[2] = bool(silent)
        self.core.set_bus_faults(self.bus(bus), f[0], f[1], f[2])

    def set_wire(self, bus: str, latency_us: int, jitter_us: int = 0) -> None:
        k = self.bus(bus)
        self.core.set_wire(k, self.desc.buses[self.bus_names[k]].bitrate, int(latency_us), int(jitter_us))

    def unplug(self, bus: str) -> None:
        self.core.vanish(self.bus(bus))

    def plug_in(self, bus: str) -> None:
        self.core.reappear(self.bus(bus))

    def inject(self, command: str) -> str:
        """One fault-injection command in words; returns what was done (HardwareError if not understood):
        ``silent JOINT`` / ``resume JOINT``, ``error JOINT CODE`` (Damiao state code, 0 clears),
        ``temperature JOINT MOSFET_C [ROTOR_C]``, ``unplug BUS`` / ``plug BUS``, ``drop BUS FRACTION``,
        ``corrupt BUS FRACTION``, ``cut BUS`` / ``mend BUS`` (the whole bus silent), ``latency BUS US [JITTER_US]``,
        ``encoder JOINT ERROR`` (the joint reads ERROR [rad | m] off: a wrong zero offset)."""
        words = command.split()
        verb, args = (words[0], words[1:]) if words else ("", [])
        try:
            if verb in ("silent", "resume") and len(args) == 1:
                self.set_silent(args[0], verb == "silent")
            elif verb == "error" and len(args) == 2:
                self.set_error(args[0], int(args[1], 0))
            elif verb == "temperature" and len(args) in (2, 3):
                self.set_temperature(args[0], *(int(a) for a in args[1:]))
            elif verb in ("unplug", "plug") and len(args) == 1:
                (self.unplug if verb == "unplug" else self.plug_in)(args[0])
            elif verb == "encoder" and len(args) == 2:
                self.set_encoder_error(args[0], float(args[1]))
            elif verb in ("drop", "corrupt") and len(args) == 2:
                self.set_bus_faults(args[0], **{verb: float(args[1])})
            elif verb in ("cut", "mend") and len(args) == 1:
                self.set_bus_faults(args[0], silent=verb == "cut")
            elif verb == "latency" and len(args) in (2, 3):
                self.set_wire(args[0], *(int(a) for a in args[1:]))
            else:
                raise HardwareError(f"fault injection: cannot read '{command}'; one of: silent JOINT, resume JOINT, "
                                    "error JOINT CODE, temperature JOINT MOSFET_C [ROTOR_C], unplug BUS, plug BUS, "
                                    "drop BUS FRACTION, corrupt BUS FRACTION, cut BUS, mend BUS, "
                                    "latency BUS US [JITTER_US], encoder JOINT ERROR")
        except ValueError:
            raise HardwareError(f"fault injection: '{command}': a number was expected") from None
        return command

    # ---- what the plant sees ------------------------------------------------------------------------------
    def motor_status(self) -> dict[str, dict]:
        return dict(zip(self.robot.joint_names, self.core.motor_status()))

    def latest(self) -> PlantSample | None:
        """The newest state the motors answered (what the plant's sensors read) and their torques; None before
        the first."""
        snap = self.core.snapshot()
        if snap is None:
            return None
        tick, words, tau = snap
        w = np.asarray(words)
        lay = self._layout

        def part(key: str, count: int) -> np.ndarray:
            start = lay[key] - 1  # bus_layout counts the tick as word 0; the snapshot's words start at the time
            return w[start:start + count]

        n = len(tau)
        return PlantSample(tick, float(part("word_time", 1)[0]), part("word_q", n), part("word_v", n),
                           part("word_imu_angular_velocity", 3), part("word_imu_linear_acceleration", 3),
                           np.asarray(tau))

    def stats(self) -> dict:
        return self.core.stats()


# ---- the rig's node settings (config/hil_emulator.yaml) -------------------------------------------------------

@dataclass
class HilEmulatorSettings:
    """The hil_emulator node: the description's motors on the sim's joint bus, the IMU as its driver publishes it."""

    robot_config: str = setting("optimus.yaml", "", "config/<name> or a path: the robot facts")
    hardware_config: str = setting("hardware/optimus.yaml", "", "the hardware description whose motors are emulated")
    bus_name: str = setting("", "", "the sim's joint bus; \"\" = derived from the ROS domain and namespace, as the "
                            "sim derives it")
    pty_dir: str = setting("", "", "where the emulated adapters are linked (<dir>/<bus name>); \"\" = "
                           "$TMPDIR/optimus_hil/<bus_name>; the controller's hardware_bus_dir must name it")
    rt_priority: int = setting(70, "", "SCHED_FIFO priority of the emulator's threads where permitted (<= 0: do not "
                               "ask); below the controller's bus threads, as motors answer within their own cycle")
    wire_model: bool = setting(True, "", "each burst's answers wait for its frames' worst-case time on the wire at the "
                               "bus's bitrate (135 bits per 8-byte frame)")
    wire_latency_us: int = setting(0, "us", "added to every burst's answers on every bus (an adapter's USB latency)")
    wire_jitter_us: int = setting(0, "us", "uniform random 0..this on top of the latency")
    encoder_errors: str = setting("", "", "joints whose encoders read off from the start, 'JOINT=ERROR[,...]' [rad | m] "
                                  "(a wrong or lost zero offset: the enable sequence must refuse it)")
    imu_topic: str = setting("imu/data_raw", "", "sensor_msgs/Imu published as the IMU vendor's driver does "
                             "(no orientation: orientation_covariance[0] = -1)")
    imu_rate_hz: float = setting(200.0, "Hz", "IMU message rate (wall clock)")
    imu_frame_id: str = setting("imu_link", "", "frame_id of the IMU messages (the sensor's own frame)")
    imu_gyro_noise_radps: float = setting(0.002, "rad/s", "white noise (std) on each gyro axis")
    imu_accel_noise_mps2: float = setting(0.02, "m/s²", "white noise (std) on each accelerometer axis")
    connect_timeout_s: float = setting(30.0, "s", "wait this long for the sim's joint bus at start-up")
    diagnostics_rate_hz: float = setting(1.0, "Hz", "/diagnostics")
