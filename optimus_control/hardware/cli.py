"""optimus-hw: bring-up of a robot's CAN actuators from its hardware description.

  optimus-hw check [CONFIG]                 validation, bus-load and actuator-fit tables, real-time limits
  optimus-hw scan                           does every motor answer? q, v, tau, temperatures per joint
  optimus-hw jog JOINT POSITION             enable, move one joint smoothly under motor PD, hold, disable
  optimus-hw calibrate [--pose standing]    measure zero offsets with the robot held in a known pose and
                                            write the calibration file (motor flash is never written)
  optimus-hw emulate                        serve the description's buses on emulated SLCAN adapters (ptys)

scan/jog/calibrate take --config, --bus-url NAME=URL (e.g. a pty of ``emulate``), --rate NAME=HZ, --log FILE
(every frame, can-utils ``candump -l`` format) and --emulate (emulated motors, in a child process, at the standing
posture, at most 20 Hz per bus: try the tools without hardware).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

from optimus_control.errors import OptimusError

EXIT_REFUSED, EXIT_ERROR = 1, 2
EMULATED_RATE_HZ = 20.0  # --emulate: the highest bus rate


def _load(config: str):
    from optimus_control.hardware.description import check_names, load_hardware
    from optimus_control.model import RobotModel

    desc = load_hardware(config)
    robot = RobotModel.load(desc.robot_config)
    check_names(desc, robot.joint_names, robot.frame_names)
    return desc, robot


def realtime_permissions() -> list[str]:
    """Lines describing this process's SCHED_FIFO / mlockall permissions and how to grant them."""
    def fmt(v: int) -> str:
        return "unlimited" if v == resource.RLIM_INFINITY else str(v)

    rtprio = resource.getrlimit(resource.RLIMIT_RTPRIO)
    memlock = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    caps = 0
    try:
        with open("/proc/self/status") as f:
            caps = int(next(line.split()[1] for line in f if line.startswith("CapEff:")), 16)
    except (OSError, StopIteration, ValueError):
        pass
    sys_nice, ipc_lock = bool(caps >> 23 & 1), bool(caps >> 14 & 1)
    fifo_ok = sys_nice or rtprio[0] >= 80
    lock_ok = ipc_lock or memlock[0] == resource.RLIM_INFINITY
    lines = [f"rtprio limit {fmt(rtprio[0])} (hard {fmt(rtprio[1])}), CAP_SYS_NICE {'yes' if sys_nice else 'no'}: "
             f"SCHED_FIFO 80 for the loop and bus threads {'permitted' if fifo_ok else 'REFUSED'}",
             f"memlock limit {fmt(memlock[0])} bytes (hard {fmt(memlock[1])}), CAP_IPC_LOCK {'yes' if ipc_lock else 'no'}: "
             f"mlockall {'permitted' if lock_ok else 'REFUSED beyond the limit'}"]
    if not (fifo_ok and lock_ok):
        lines += ["to grant them: add '@realtime - rtprio 90' and '@realtime - memlock unlimited' to "
                  "/etc/security/limits.d/99-realtime.conf and put the user in group realtime (log in again);",
                  "  in a container: --ulimit rtprio=90 --ulimit memlock=-1 --cap-add SYS_NICE --cap-add IPC_LOCK;",
                  "  a PREEMPT_RT kernel keeps the 1 kHz deadlines (without one the threads still run, best effort)"]
    return lines


def cmd_check(args) -> int:
    from optimus_control.hardware.checks import actuator_fit, bus_load, format_bus_load, format_fit

    desc, robot = _load(args.config)
    print(f"{desc.source}: {len(desc.joints)} motors on {len(desc.buses)} buses, robot {desc.robot_config}, "
          f"calibration {desc.calibration_path} ({len(desc.calibration)} measured offsets)")
    loads = bus_load(desc)
    print("\nbus load (worst case, bit stuffing included; limit 80 %):")
    print(format_bus_load(loads))
    fit = actuator_fit(desc, robot)
    print("\nactuator fit (motor side through the gear; URDF limits and config gains):")
    print(format_fit(fit, desc))
    print("\nreal-time permissions of this process:")
    print("\n".join("  " + line for line in realtime_permissions()))
    bad = [f"bus '{r.bus}' at {r.load:.1%}" for r in loads if not r.ok] + [f"joint '{r.joint}'" for r in fit if not r.ok]
    if bad:
        print(f"\nREFUSED: {', '.join(bad)}")
        return EXIT_REFUSED
    print("\nOK: the plan passes both checks")
    return 0


def _pairs(values: list[str], what: str) -> dict[str, str]:
    out = {}
    for v in values or []:
        name, sep, value = v.partition("=")
        if not sep:
            raise OptimusError(f"--{what} expects NAME=VALUE, got '{v}'")
        out[name] = value
    return out


class _Session:
    """Driver (+ emulators, + candump logger) for scan/jog/calibrate."""

    def __init__(self, args):
        from optimus_control.hardware.candump import CandumpLogger
        from optimus_control.hardware.driver import CanDriver

        self.desc, self.robot = _load(args.config)
        urls = _pairs(args.bus_url, "bus-url")
        rates = {k: float(v) for k, v in _pairs(args.rate, "rate").items()}
        self.emulator = None
        if args.emulate:
            from optimus_control.hardware.emulator import spawn_emulator

            self.emulator = spawn_emulator(self.desc, self.robot)  # a child process: see hardware.emulator
            urls.update(self.emulator.urls)
            for name, bus in self.desc.buses.items():
                # 20 Hz: a pty's tty work and a Python emulator keep pace on a CPU-loaded machine (the tools'
                # logic does not depend on the rate); the plan's fault_after_missed_cycles applies as on hardware
                rates.setdefault(name, min(bus.rate_hz, EMULATED_RATE_HZ))
        try:
            self.driver = CanDriver(self.desc, self.robot, bus_urls=urls, bus_rates=rates, log=bool(args.log))
        except BaseException:
            if self.emulator:
                self.emulator.stop()
            raise
        self.logger = CandumpLogger(self.driver.transport, self.driver.bus_names, args.log) if args.log else None

    def __enter__(self):
        try:
            self.driver.open(rt_priority=0, open_timeout_s=2.0)
        except BaseException:
            if self.emulator:
                self.emulator.stop()
            raise
        if self.logger:
            self.logger.start()
        return self.driver

    def __exit__(self, *exc):
        try:
            self.driver.close()
        finally:
            if self.logger:
                self.logger.stop()
                print(f"{self.logger.frames} frames logged to {self.logger.path} (candump -l format)")
            if self.emulator:
                self.emulator.stop()


def cmd_scan(args) -> int:
    with _Session(args) as drv:
        rows = drv.scan()
    print(f"{'joint':<18}{'bus':<13}{'id':>4}  {'answers':<8}{'q':>9}{'v':>9}{'tau':>9}{'err':>5}{'T mos':>7}{'T rotor':>8}")
    for r in rows:
        print(f"{r['joint']:<18}{r['bus']:<13}{r['id']:>4}  {'yes' if r['answers'] else 'NO':<8}{r['q']:>9.4f}"
              f"{r['v']:>9.3f}{r['tau']:>9.3f}{r['error']:>5}{r['t_mos']:>7}{r['t_rotor']:>8}")
    silent = [r["joint"] for r in rows if not r["answers"]]
    if silent:
        print(f"silent motors: {silent}")
        return EXIT_REFUSED
    return 0


def cmd_jog(args) -> int:
    with _Session(args) as drv:
        drv.enable(joints=[args.joint])  # this motor only: the others stay out of motor mode
        err = drv.jog(args.joint, args.position, duration_s=args.duration, hold_s=args.hold,
                      gain_scale=args.gain_scale)
    print(f"{args.joint}: target {args.position:g}, tracking error after {args.hold:g} s hold: {err:+.5f}")
    return 0


def cmd_calibrate(args) -> int:
    from optimus_control.hardware.description import save_calibration

    with _Session(args) as drv:
        desc, robot = drv.desc, drv.robot
        pose = robot.standing_joint_positions() if args.pose == "standing" else robot.joint_vector({})
        joints = args.joints.split(",") if args.joints else list(robot.joint_names)
        for j in joints:
            robot.joint_index(j)  # names checked (did you mean)
        rows = drv.scan()
        silent = [r["joint"] for r in rows if not r["answers"] and r["joint"] in joints]
        if silent:
            print(f"calibration refused: silent motors {silent}")
            return EXIT_REFUSED
        offsets = dict(desc.calibration)
        offsets.update(drv.measure_offsets({j: pose[robot.joint_index(j)] for j in joints}))
    out = Path(args.output) if args.output else desc.calibration_path
    if out is None:
        raise OptimusError(f"{desc.source} names no calibration file: give --output")
    save_calibration(out, offsets, note=f"pose {args.pose}, {time.strftime('%Y-%m-%d %H:%M:%S')}")
    for j in joints:
        print(f"{j:<18}{offsets[j]:+.6f}")
    print(f"{len(joints)} offsets written to {out} (motor flash untouched)")
    return 0


def cmd_emulate(args) -> int:
    from optimus_control.hardware.emulator import emulate_description

    desc, robot = _load(args.config)
    adapters, urls = emulate_description(desc, robot)
    print("emulated adapters ready; run the tools with:")
    print("  " + " ".join(f"--bus-url {k}={v}" for k, v in urls.items()))
    print(f"  (a pty is not a USB adapter; keep bus rates <= {EMULATED_RATE_HZ:g} Hz with --rate NAME={EMULATED_RATE_HZ:g} "
          "for a Python emulator)")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        for a in adapters:
            a.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="optimus-hw", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="validate, bus-load and fit tables, real-time permissions")
    c.add_argument("config", nargs="?", default="hardware/optimus.yaml")
    c.set_defaults(func=cmd_check)

    def common(sp):
        sp.add_argument("--config", default="hardware/optimus.yaml")
        sp.add_argument("--bus-url", action="append", metavar="NAME=URL", help="override a bus's url")
        sp.add_argument("--rate", action="append", metavar="NAME=HZ", help="override a bus's rate")
        sp.add_argument("--log", metavar="FILE", help="log every frame (candump -l format)")
        sp.add_argument("--emulate", action="store_true", help="emulated motors (a child process) instead of hardware")

    s = sub.add_parser("scan", help="does every motor answer? state per joint")
    common(s)
    s.set_defaults(func=cmd_scan)
    j = sub.add_parser("jog", help="move one joint to POSITION [rad | m, joint side] and hold")
    j.add_argument("joint")
    j.add_argument("position", type=float)
    j.add_argument("--duration", type=float, default=2.0, help="[s] of the cosine profile")
    j.add_argument("--hold", type=float, default=1.0, help="[s] held at the target")
    j.add_argument("--gain-scale", type=float, default=0.3, help="fraction of the config's kp/kd")
    common(j)
    j.set_defaults(func=cmd_jog)
    k = sub.add_parser("calibrate", help="measure zero offsets in a known pose, write the calibration file")
    k.add_argument("--pose", choices=["standing", "zero"], default="standing")
    k.add_argument("--joints", help="comma-separated joints (default: all)")
    k.add_argument("--output", help="calibration file (default: the description's)")
    common(k)
    k.set_defaults(func=cmd_calibrate)
    e = sub.add_parser("emulate", help="emulated SLCAN adapters for every bus, on ptys")
    e.add_argument("--config", default="hardware/optimus.yaml")
    e.set_defaults(func=cmd_emulate)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except OptimusError as exc:
        print(f"optimus-hw {args.command}: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
