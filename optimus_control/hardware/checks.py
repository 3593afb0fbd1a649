"""Two checks of a hardware description, each returning rows and printing a table:

* bus load: each bus's worst-case load at its rate, bit stuffing included; above 80 % the plan is refused;
* actuator fit: through its gear ratio each motor's position, velocity and torque ranges cover the joint's
  URDF limits, and the joint's kp/kd (config/<robot>.yaml gains) map into the motor's KP/KD ranges. A joint
  that does not fit is refused unless the description declares it derated (the figures it may use and why).
"""

from __future__ import annotations

from dataclasses import dataclass

from optimus_control.errors import ConfigError
from optimus_control.hardware.description import HardwareDescription

MAX_BUS_LOAD = 0.80
MIN_GAIN_QUANTA = 10  # a non-zero gain coarser than this many codec steps is flagged


def frame_bits(data_bytes: int, worst_case: bool = True) -> int:
    """Bits on the wire of a classic CAN frame with an 11-bit id: 47 + 8n, plus worst-case stuffing
    floor((34 + 8n - 1) / 4) (8 bytes: 111 / 135; 6 bytes: 95 / 115)."""
    bits = 47 + 8 * data_bytes
    return bits + (34 + 8 * data_bytes - 1) // 4 if worst_case else bits


@dataclass(frozen=True)
class BusLoad:
    bus: str
    motors: int
    rate_hz: float
    bits_per_cycle: int     # worst case, commands + replies
    load: float             # fraction of the bitrate
    cycle_us: float         # wire time of one cycle [us]

    @property
    def ok(self) -> bool:
        return self.load <= MAX_BUS_LOAD


def bus_load(desc: HardwareDescription) -> list[BusLoad]:
    rows = []
    for bus in desc.buses.values():
        bits = 0
        joints = desc.joints_on(bus.name)
        for jh in joints:
            reply = 8 if desc.models[jh.model].damiao else 6
            bits += frame_bits(8) + frame_bits(reply)
        rows.append(BusLoad(bus.name, len(joints), bus.rate_hz, bits, bits * bus.rate_hz / bus.bitrate,
                            bits / bus.bitrate * 1e6))
    return rows


def format_bus_load(rows: list[BusLoad]) -> str:
    lines = [f"{'bus':<14}{'motors':>7}{'rate Hz':>9}{'bits/cycle':>12}{'wire us':>9}{'load':>8}  verdict"]
    for r in rows:
        verdict = "ok" if r.ok else f"REFUSED (> {MAX_BUS_LOAD:.0%})"
        lines.append(f"{r.bus:<14}{r.motors:>7}{r.rate_hz:>9g}{r.bits_per_cycle:>12}{r.cycle_us:>9.0f}"
                     f"{r.load:>8.1%}  {verdict}")
    return "\n".join(lines)


def check_bus_load(desc: HardwareDescription) -> list[BusLoad]:
    """The rows, or ConfigError naming every bus above the limit and its figure."""
    rows = bus_load(desc)
    bad = [r for r in rows if not r.ok]
    if bad:
        detail = "; ".join(f"bus '{r.bus}' at {r.load:.1%} ({r.motors} motors at {r.rate_hz:g} Hz)" for r in bad)
        raise ConfigError(f"{desc.source}: bus load above {MAX_BUS_LOAD:.0%}: {detail}: move motors to another bus "
                          "or lower the bus rate\n" + format_bus_load(rows))
    return rows


@dataclass(frozen=True)
class JointFit:
    joint: str
    model: str
    scale: float                  # motor rad per joint unit
    position_motor: tuple[float, float]
    velocity_motor: float
    torque_joint: float           # the motor's torque range through the gear, joint side
    kp_motor: float
    kd_motor: float
    needs: dict[str, float]       # joint figures checked (URDF or derated): velocity, effort, kp, kd
    problems: tuple[str, ...]     # empty: fits
    notes: tuple[str, ...]        # resolution warnings
    derated: bool

    @property
    def ok(self) -> bool:
        return not self.problems


def joint_scale(gear_ratio: float, prismatic: bool) -> float:
    """Motor radians per joint unit (rad, or m for a prismatic joint whose ratio is m per motor rad)."""
    return 1.0 / gear_ratio if prismatic else gear_ratio


def is_prismatic(robot, joint_index: int) -> bool:
    """Whether actuated joint ``joint_index`` (bus order) slides (Pinocchio joint index + 2: after the universe
    and the free flyer)."""
    return robot.model.joints[joint_index + 2].shortname().replace("JointModel", "").startswith("P")


def actuator_fit(desc: HardwareDescription, robot) -> list[JointFit]:
    """Per actuated joint in bus order (robot: an optimus_control.model.RobotModel)."""
    rows = []
    lim = robot.limits
    for i, name in enumerate(robot.joint_names):
        jh = desc.joints[name]
        m = desc.models[jh.model]
        prismatic = is_prismatic(robot, i)
        s = joint_scale(jh.gear_ratio, prismatic)
        offset = desc.zero_offset(name)
        p_lo, p_hi = sorted((jh.direction * s * (lim.lower[i] - offset), jh.direction * s * (lim.upper[i] - offset)))
        needs = {"velocity": float(lim.velocity[i]), "effort": float(lim.effort[i]),
                 "kp": float(robot.kp[i]), "kd": float(robot.kd[i])}
        needs.update(jh.derated)
        v_m = needs["velocity"] * s
        t_joint = min(abs(m.torque[0]), abs(m.torque[1])) * s
        kp_m, kd_m = needs["kp"] / s**2, needs["kd"] / s**2
        unit = "m" if prismatic else "rad"
        problems, notes = [], []
        if p_lo < m.position[0] or p_hi > m.position[1]:
            problems.append(f"position: the joint's [{lim.lower[i]:g}, {lim.upper[i]:g}] {unit} is "
                            f"[{p_lo:.3g}, {p_hi:.3g}] rad at the motor, outside its [{m.position[0]:g}, {m.position[1]:g}]")
        if v_m > min(abs(m.velocity[0]), m.velocity[1]):
            problems.append(f"velocity: {needs['velocity']:g} {unit}/s is {v_m:.3g} rad/s at the motor, above its "
                            f"{min(abs(m.velocity[0]), m.velocity[1]):g}")
        if needs["effort"] > t_joint:
            problems.append(f"torque: the joint needs {needs['effort']:g}, the motor gives {t_joint:.3g} through the gear")
        for key, value, rng in (("kp", kp_m, m.kp), ("kd", kd_m, m.kd)):
            if not rng[0] <= value <= rng[1]:
                problems.append(f"{key}: {needs[key]:g} at the joint is {value:.3g} at the motor, "
                                f"outside [{rng[0]:g}, {rng[1]:g}]")
            elif value > 0:
                quantum = (rng[1] - rng[0]) / 4095
                if value < MIN_GAIN_QUANTA * quantum:
                    notes.append(f"{key} {value:.3g} is only {value / quantum:.0f} codec steps")
        rows.append(JointFit(name, jh.model, s, (p_lo, p_hi), v_m, t_joint, kp_m, kd_m, needs, tuple(problems),
                             tuple(notes), bool(jh.derated)))
    return rows


def format_fit(rows: list[JointFit], desc: HardwareDescription | None = None) -> str:
    lines = [f"{'joint':<18}{'model':<14}{'scale':>7}{'motor pos rad':>17}{'v rad/s':>9}{'tau joint':>10}"
             f"{'KP':>8}{'KD':>7}  verdict"]
    for r in rows:
        verdict = "ok" if r.ok else "REFUSED: " + "; ".join(r.problems)
        if r.ok and r.derated:
            reason = desc.joints[r.joint].derate_reason if desc else ""
            verdict = "ok, DERATED (" + ", ".join(f"{k} {v:g}" for k, v in desc.joints[r.joint].derated.items()) + \
                      f"): {reason}" if desc else "ok, derated"
        if r.notes:
            verdict += " [" + "; ".join(r.notes) + "]"
        lines.append(f"{r.joint:<18}{r.model:<14}{r.scale:>7.3g}{f'[{r.position_motor[0]:.2f}, {r.position_motor[1]:.2f}]':>17}"
                     f"{r.velocity_motor:>9.3g}{r.torque_joint:>10.4g}{r.kp_motor:>8.3g}{r.kd_motor:>7.3g}  {verdict}")
    return "\n".join(lines)


def check_fit(desc: HardwareDescription, robot) -> list[JointFit]:
    """The rows, or ConfigError naming every joint that does not fit and why."""
    rows = actuator_fit(desc, robot)
    bad = [r for r in rows if not r.ok]
    if bad:
        detail = "\n".join(f"  joint '{r.joint}' ({r.model}, gear {desc.joints[r.joint].gear_ratio:g}): "
                           + "; ".join(r.problems) for r in bad)
        raise ConfigError(f"{desc.source}: {len(bad)} joint(s) do not fit their motor (change the model or the "
                          f"gear ratio, or declare the joint derated with a reason):\n{detail}")
    return rows

