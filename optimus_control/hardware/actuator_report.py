"""The actuators' health in words and numbers: what the controller node puts on /diagnostics on hardware.

Per motor: replies, Damiao state nibble (error codes) and temperatures; per bus: cycles, missing and late
replies, reconnects, round trip; the latched transport fault. Pure Python over ``CanDriver``'s counters,
so a bring-up tool can print the same report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MOTOR_TEMPERATURE_WARN_C = 70   # [deg C] MOSFET or rotor: WARN above this (the drives derate near 80-100)
DAMIAO_ERRORS = {8: "over-voltage", 9: "under-voltage", 0xA: "over-current", 0xB: "MOSFET over-temperature",
                 0xC: "rotor over-temperature", 0xD: "lost communication", 0xE: "overload"}
OK, WARN, ERROR = 0, 1, 2       # the levels of diagnostic_msgs/DiagnosticStatus


@dataclass
class ActuatorReport:
    level: int
    message: str
    values: dict[str, str]


def actuator_report(driver) -> ActuatorReport:
    """The report of every motor and bus of a started ``CanDriver``."""
    desc = driver.desc
    status, buses = driver.transport.motor_status(), driver.transport.bus_stats()
    level, problems, values = OK, [], {}
    fault = driver.fault_message()
    if fault:
        level, problems = ERROR, [f"transport fault: {fault}"]
    for name, st in zip(driver.joint_names, status):
        jh = desc.joints[name]
        model = desc.models[jh.model]
        entry = f"bus {jh.bus} id {jh.motor_id}, replies {st['replies']}"
        if model.damiao:
            code = int(st["error"])
            entry += f", state {code:#x}, MOSFET {st['t_mos']} C, rotor {st['t_rotor']} C"
            if code >= 8:
                level = ERROR
                problems.append(f"{name}: {DAMIAO_ERRORS.get(code, f'error {code:#x}')}")
            hottest = max(st["t_mos"], st["t_rotor"])
            if hottest > MOTOR_TEMPERATURE_WARN_C:
                level = max(level, WARN)
                problems.append(f"{name}: {hottest} C")
        values[f"motor {name}"] = entry
    for bus_name, b in zip(driver.bus_names, buses):
        values[f"bus {bus_name}"] = (f"{'connected' if b['connected'] else 'DISCONNECTED'}, cycles {b['cycles']}, missing "
                                     f"{b['missing']}, late {b['late_replies']}, reconnects {b['reconnects']}, round trip "
                                     f"p99 {b['rtt_p99_us']:.0f} us, max {b['rtt_max_us']:.0f} us")
        if not b["connected"]:
            level = ERROR
            problems.append(f"bus '{bus_name}' disconnected ({b['last_error'] or 'adapter gone'})")
    return ActuatorReport(level, "; ".join(problems) or "all motors answer", values)


BUS_FIGURES = re.compile(r"cycles (\d+), missing (\d+), late (\d+), reconnects (\d+), round trip p99 (\d+) us, "
                         r"max (\d+) us")
BUS_KEYS = ("cycles", "missing", "late", "reconnects", "round_trip_p99_us", "round_trip_max_us")


def bus_figures(values: dict[str, str]) -> dict[str, dict[str, int]]:
    """bus -> its counters, read back from the values of an actuator report (a /diagnostics status)."""
    out = {}
    for key, value in values.items():
        if key.startswith("bus ") and (m := BUS_FIGURES.search(value)):
            out[key[4:]] = dict(zip(BUS_KEYS, (int(g) for g in m.groups())))
    return out
