"""The hardware description of a robot (config/hardware/<robot>.yaml): CAN buses, one MIT-mode motor per
actuated joint, the IMU, and the calibration file of measured zero offsets.

Every field is validated with the file, the key and a "did you mean" on a misspelt name; names are
checked against the robot model (``RobotModel``), which knows the joints and their limits.

Joint <-> motor (applied by the C transport, in one place): motor angle = direction * scale * (q - zero_offset),
with scale = gear_ratio for a revolute joint (motor rad per joint rad) and 1 / gear_ratio for a prismatic
one (gear_ratio = metres of travel per motor radian).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from optimus_control.errors import ConfigError, suggest
from optimus_control.model.paths import resolve_data_path
from optimus_control.model.yaml_reader import YamlReader

RANGE_KEYS = ("position", "velocity", "kp", "kd", "torque")


@dataclass(frozen=True)
class MotorModel:
    """An MIT-mode motor: the ranges its frames encode (motor side: rad, rad/s, N m/rad, N m s/rad, N m)."""

    name: str
    position: tuple[float, float]
    velocity: tuple[float, float]
    kp: tuple[float, float]
    kd: tuple[float, float]
    torque: tuple[float, float]
    damiao: bool = False        # Damiao 8-byte reply (error nibble, temperatures)
    source: str = ""

    def range10(self) -> tuple[float, ...]:
        """(p_min, p_max, v_min, v_max, kp_min, kp_max, kd_min, kd_max, t_min, t_max) for the C codec."""
        return (*self.position, *self.velocity, *self.kp, *self.kd, *self.torque)


def known_models() -> dict[str, MotorModel]:
    """The C codec's table of known models (Damiao models are never here: their ranges live in flash)."""
    from optimus_control.rt import _rtcore

    out = {}
    for name, r, source in _rtcore.mit_models():
        out[name] = MotorModel(name, (r[0], r[1]), (r[2], r[3]), (r[4], r[5]), (r[6], r[7]), (r[8], r[9]),
                               False, source)
    return out


@dataclass(frozen=True)
class BusConfig:
    name: str
    url: str            # socketcan:<interface> | slcan:<tty>
    bitrate: int        # [bit/s]
    rate_hz: float      # command/reply cycles per second
    # consecutive cycles in which a motor sends no reply at all (a late reply counts) before the transport
    # faults and every bus damps: 3 on the robot (a silent joint damps within 3 periods); an emulated plan on a
    # loaded test machine may raise it so that a pty holding a burst for ~150 ms is not taken for a silent motor
    fault_after_missed_cycles: int = 3


@dataclass(frozen=True)
class JointHardware:
    joint: str
    bus: str
    motor_id: int
    model: str
    gear_ratio: float   # revolute: motor rad / joint rad; prismatic: joint m / motor rad
    direction: int      # +1 or -1
    zero_offset: float  # [rad | m] joint position where the motor reads 0 (calibration file overrides)
    derated: dict[str, float] = field(default_factory=dict)  # velocity/effort/kp/kd used instead of the model's
    derate_reason: str = ""


@dataclass(frozen=True)
class ImuConfig:
    frame: str
    xyz: tuple[float, float, float]   # [m] in the frame
    rpy: tuple[float, float, float]   # [rad] mounting rotation (the topic is the node's imu_topic parameter)


@dataclass(frozen=True)
class HardwareDescription:
    source: Path
    robot_config: str
    buses: dict[str, BusConfig]
    models: dict[str, MotorModel]
    joints: dict[str, JointHardware]
    imu: ImuConfig
    calibration_path: Path | None
    calibration: dict[str, float]      # measured zero offsets [rad | m]

    def zero_offset(self, joint: str) -> float:
        """The calibrated offset when measured, else the configured one."""
        return self.calibration.get(joint, self.joints[joint].zero_offset)

    def joints_on(self, bus: str) -> list[JointHardware]:
        return [j for j in self.joints.values() if j.bus == bus]


TOP_KEYS = {"robot", "calibration", "buses", "models", "joints", "imu"}
JOINT_KEYS = {"bus", "id", "model", "gear_ratio", "direction", "zero_offset", "derated"}
DERATE_KEYS = {"velocity", "effort", "kp", "kd", "reason"}


def _range(r: YamlReader, value: Any, where: str) -> tuple[float, float]:
    lo, hi = r.vector(value, where, 2, hint=" [min, max]")
    if not hi > lo:
        raise r.fail(where, f"max ({hi}) must be greater than min ({lo})")
    return lo, hi


def load_hardware(path: str | os.PathLike = "hardware/optimus.yaml",
                  calibration: str | os.PathLike | None = None) -> HardwareDescription:
    """Read and validate a hardware description (relative paths: config/); names are checked later
    against the robot by ``check_names``. ``calibration`` overrides the file's own calibration path."""
    source = resolve_data_path(path, "config")
    r, data = YamlReader.load(source, "hardware description")
    data = r.mapping(data, "<top level>", TOP_KEYS, required=("robot", "buses", "joints", "imu"))

    buses = {}
    for name, b in r.mapping(data["buses"], "buses").items():
        b = r.mapping(b, f"buses.{name}", {"url", "bitrate", "rate_hz", "fault_after_missed_cycles"},
                      required=("url", "bitrate", "rate_hz"))
        url = r.string(b["url"], f"buses.{name}.url")
        scheme, _, dev = url.partition(":")
        if scheme not in ("socketcan", "slcan") or not dev:
            raise r.fail(f"buses.{name}.url", f"'{url}' must be 'socketcan:<interface>' or 'slcan:<tty path>'"
                                              f"{suggest(scheme, ['socketcan', 'slcan'])}")
        bitrate = r.number(b["bitrate"], f"buses.{name}.bitrate", positive=True)
        if bitrate not in (10e3, 20e3, 50e3, 100e3, 125e3, 250e3, 500e3, 1e6):
            raise r.fail(f"buses.{name}.bitrate", f"{bitrate:g} bit/s is not a classic CAN rate "
                                                  "(10k 20k 50k 100k 125k 250k 500k 1M)")
        rate = r.number(b["rate_hz"], f"buses.{name}.rate_hz", positive=True)
        if rate > 1000:
            raise r.fail(f"buses.{name}.rate_hz", f"{rate:g} Hz is above the loop's 1 kHz")
        missed = b.get("fault_after_missed_cycles", 3)
        if isinstance(missed, bool) or not isinstance(missed, int) or missed < 1:
            raise r.fail(f"buses.{name}.fault_after_missed_cycles", f"must be an integer >= 1, got {missed!r}")
        buses[name] = BusConfig(name, url, int(bitrate), rate, missed)
    if not buses:
        raise r.fail("buses", "at least one bus is needed")
    urls = {}
    for b in buses.values():
        if b.url in urls:
            raise r.fail(f"buses.{b.name}.url", f"'{b.url}' is already the url of bus '{urls[b.url]}'")
        urls[b.url] = b.name

    models = known_models()
    for name, m in r.mapping(data.get("models") or {}, "models").items():
        if name in models:
            raise r.fail(f"models.{name}", f"'{name}' is a known model; give a custom model another name")
        m = r.mapping(m, f"models.{name}", set(RANGE_KEYS) | {"damiao"}, required=RANGE_KEYS)
        damiao = m.get("damiao", False)
        if not isinstance(damiao, bool):
            raise r.fail(f"models.{name}.damiao", f"expected true or false, got {damiao!r}")
        ranges = {k: _range(r, m[k], f"models.{name}.{k}") for k in RANGE_KEYS}
        for k in ("kp", "kd"):
            if ranges[k][0] < 0:
                raise r.fail(f"models.{name}.{k}", "gains cannot be negative")
        models[name] = MotorModel(name, **ranges, damiao=damiao, source=f"{source}: models.{name}")

    joints = {}
    for name, j in r.mapping(data["joints"], "joints").items():
        where = f"joints.{name}"
        j = r.mapping(j, where, JOINT_KEYS, required=("bus", "id", "model", "gear_ratio"))
        bus = r.member(r.string(j["bus"], f"{where}.bus"), f"{where}.bus", buses, "bus")
        mid = j["id"]
        if isinstance(mid, bool) or not isinstance(mid, int) or not 1 <= mid <= 0x7FF:
            raise r.fail(f"{where}.id", f"motor id must be an integer in [1, 0x7FF], got {mid!r}")
        model = r.member(r.string(j["model"], f"{where}.model"), f"{where}.model", models, "motor model",
                         f"; known: {sorted(models)} (or add it under models: with its ranges)")
        ratio = r.number(j["gear_ratio"], f"{where}.gear_ratio", positive=True)
        direction = j.get("direction", 1)
        if direction not in (1, -1) or isinstance(direction, bool):
            raise r.fail(f"{where}.direction", f"must be 1 or -1, got {direction!r}")
        offset = r.number(j.get("zero_offset", 0.0), f"{where}.zero_offset")
        derated, reason = {}, ""
        if "derated" in j:
            d = r.mapping(j["derated"], f"{where}.derated", DERATE_KEYS)
            if "reason" not in d:
                raise r.fail(f"{where}.derated", "a derated joint must say why ('reason:')")
            reason = r.string(d["reason"], f"{where}.derated.reason")
            derated = {k: r.number(v, f"{where}.derated.{k}", positive=k != "kp" and k != "kd")
                       for k, v in d.items() if k != "reason"}
        joints[name] = JointHardware(name, bus, mid, model, ratio, int(direction), offset, derated, reason)
    for bus in buses:
        ids: dict[int, str] = {}
        for jh in joints.values():
            if jh.bus != bus:
                continue
            reply_id = jh.motor_id & (0xF if models[jh.model].damiao else 0xFF)
            if reply_id in ids:
                raise r.fail(f"joints.{jh.joint}.id", f"motor id {jh.motor_id} answers with the same id as "
                                                      f"'{ids[reply_id]}' on bus '{bus}'")
            ids[reply_id] = jh.joint
        if not ids:
            raise r.fail(f"buses.{bus}", "no joint uses this bus")

    imu_map = r.exact(data["imu"], "imu", {"frame", "xyz", "rpy"})
    imu = ImuConfig(r.string(imu_map["frame"], "imu.frame"), r.vector(imu_map["xyz"], "imu.xyz", 3),
                    r.vector(imu_map["rpy"], "imu.rpy", 3))

    cal_path = calibration if calibration is not None else data.get("calibration")
    cal_file = None
    cal: dict[str, float] = {}
    if cal_path is not None:
        cal_file = Path(r.string(str(cal_path), "calibration"))
        if not cal_file.is_absolute():
            cal_file = source.parent / cal_file
        cal = load_calibration(cal_file, joints)
    return HardwareDescription(source, r.string(data["robot"], "robot"), buses, models, joints, imu, cal_file, cal)


def load_calibration(path: Path, joints: dict[str, JointHardware]) -> dict[str, float]:
    """Measured zero offsets ``{offsets: {joint: value}}``; a missing file means "not calibrated yet"."""
    if not path.exists():
        return {}
    r, data = YamlReader.load(path, "calibration file")
    data = r.mapping(data if data is not None else {"offsets": {}}, "<top level>", {"offsets", "measured"},
                     required=("offsets",))
    out = {}
    for name, value in r.mapping(data["offsets"] or {}, "offsets").items():
        r.member(str(name), f"offsets.{name}", joints, "joint", " (the hardware description has no such joint)")
        out[name] = r.number(value, f"offsets.{name}")
    return out


def save_calibration(path: str | os.PathLike, offsets: dict[str, float], note: str = "") -> None:
    """Write measured offsets (the file only: motor flash is never written)."""
    path = Path(path)
    body = {"offsets": {k: round(float(v), 6) for k, v in sorted(offsets.items())}}
    if note:
        body["measured"] = note
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# zero offsets measured by optimus-hw calibrate [rad | m]: the joint position where the motor "
                    "reads 0\n" + yaml.safe_dump(body, sort_keys=False))


def check_names(desc: HardwareDescription, joint_names: tuple[str, ...], frames: list[str]) -> None:
    """Every actuated joint has exactly one motor; every configured joint and the IMU frame exist."""
    src = desc.source
    for name in desc.joints:
        if name not in joint_names:
            raise ConfigError(f"{src}: joints.{name}: not an actuated joint of the robot{suggest(name, joint_names)}")
    missing = [j for j in joint_names if j not in desc.joints]
    if missing:
        raise ConfigError(f"{src}: joints: actuated joints without a motor: {missing}")
    if desc.imu.frame not in frames:
        raise ConfigError(f"{src}: imu.frame: frame '{desc.imu.frame}' is not in the robot{suggest(desc.imu.frame, frames)}")
    for name in desc.calibration:
        if name not in joint_names:
            raise ConfigError(f"{desc.calibration_path}: offsets.{name}: not an actuated joint")
