"""Hardware in the loop vs the shared-memory path: the same standing robot through hil.launch.xml (the controller
in hardware mode, CAN driver threads, SLCAN ptys, the rig's emulated motors) and through sim.launch.xml
mode:=realtime, camera off, each over a fixed wall-clock window after the hand-over (bench_realtime's run).

Figures: the 1 kHz loop's ticks and deadline misses, the sim's real-time factor per second, CPU per process (the
rig too), and for HIL per bus: cycles, missing and late replies over the window, round trip p99 and max (pty, not
USB). Judged by: real time holds when the sim's real-time factor is >= 0.98 in every one-second sample and the
loop's deadline misses are <= 0.5 %, as in real-time mode. Options: --seconds (default env OPTIMUS_BENCH_HIL_S,
else 20), --domain, --json PATH.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from benchmarks.bench_realtime import print_table, run
from optimus_control.launch.isolation import claim_free_ros_domain


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("OPTIMUS_BENCH_HIL_S", "20")))
    parser.add_argument("--domain", type=int, default=92)
    parser.add_argument("--json", type=Path)
    args, _ = parser.parse_known_args(argv if argv is not None else sys.argv[1:])
    domain_id, lock = claim_free_ros_domain(args.domain)
    print(f"hil.launch.xml vs sim.launch.xml mode:=realtime, camera off, {args.seconds:g} s wall per run after the "
          f"hand-over; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)
    results: dict[str, dict[str, dict]] = {"camera off": {}}
    try:
        with tempfile.TemporaryDirectory(prefix="optimus_bench_hil_") as tmp:
            for mode in ("hil", "realtime"):
                print(f"  {mode} ...", flush=True)
                results["camera off"][mode] = run(mode, False, args.seconds, domain_id, Path(tmp) / mode)
    finally:
        lock.close()
    print_table(results)
    buses = results["camera off"]["hil"].get("buses", {})
    if buses:
        print(f"\nHIL buses over the window (pty + C emulator, not a USB adapter):\n{'bus':12}{'cycles':>9}{'missing':>9}"
              f"{'late':>7}{'reconn.':>9}{'rtt p99 us':>12}{'rtt max us':>12}")
        for name, b in buses.items():
            print(f"{name:12}{b['cycles']:>9}{b['missing']:>9}{b['late']:>7}{b['reconnects']:>9}"
                  f"{b['round_trip_p99_us']:>12}{b['round_trip_max_us']:>12}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
