#!/usr/bin/env python3
"""A stand-in node for the launcher's supervision tests (no ROS): reports, waits, reacts to signals.

Options (before any --ros-args):
  --print-argv           print 'ARGV <json of argv[1:]>' and 'ENV <name>=<value>' for --env names
  --env NAME             print that environment variable (repeatable)
  --exit-after S         exit by itself after S seconds with --code (default 0)
  --code N               exit status used by --exit-after
  --ignore-sigint        keep running on SIGINT (tests SIGTERM escalation)
  --ignore-sigterm       keep running on SIGTERM too (tests SIGKILL escalation)
  --spawn-helper         start a helper process (same process group) and print 'HELPER <pid>'
  --lines N              print N numbered lines 'line <i>' on stdout, and 'err line' on stderr
  --touch-when-ready F   create file F once set up (lets another fixture wait for this one)
  --wait-for-file F      before starting the --exit-after timer, wait until file F exists
  --fail-with TEXT       once ready, log an INFO line and fail with an uncaught RuntimeError(TEXT)
Always prints 'PID <pid>' first and 'READY' once set up; 'GOT SIGINT' / 'GOT SIGTERM' on signals.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time


def main() -> int:
    argv = sys.argv[1:]
    own = argv[: argv.index("--ros-args")] if "--ros-args" in argv else argv
    parser = argparse.ArgumentParser()
    parser.add_argument("--print-argv", action="store_true")
    parser.add_argument("--env", action="append", default=[])
    parser.add_argument("--exit-after", type=float)
    parser.add_argument("--code", type=int, default=0)
    parser.add_argument("--ignore-sigint", action="store_true")
    parser.add_argument("--ignore-sigterm", action="store_true")
    parser.add_argument("--spawn-helper", action="store_true")
    parser.add_argument("--lines", type=int, default=0)
    parser.add_argument("--touch-when-ready")
    parser.add_argument("--wait-for-file")
    parser.add_argument("--fail-with")
    opts = parser.parse_args(own)
    print(f"PID {os.getpid()}", flush=True)
    if opts.print_argv:
        print("ARGV " + json.dumps(argv), flush=True)
    for name in opts.env:
        print(f"ENV {name}={os.environ.get(name, '<unset>')}", flush=True)
    for i in range(opts.lines):
        print(f"line {i}", flush=True)
    if opts.lines:
        print("err line", file=sys.stderr, flush=True)
    if opts.spawn_helper:
        helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        print(f"HELPER {helper.pid}", flush=True)

    def on_signal(signum, _frame):
        name = signal.Signals(signum).name
        print(f"GOT {name}", flush=True)
        if (signum == signal.SIGINT and opts.ignore_sigint) or (signum == signal.SIGTERM and opts.ignore_sigterm):
            return
        sys.exit(0)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print("READY", flush=True)
    if opts.touch_when_ready:
        open(opts.touch_when_ready, "w").close()
    if opts.fail_with:
        print("[INFO] [1700000000.000000000] [worker]: about to fail", flush=True)
        raise RuntimeError(opts.fail_with)
    while opts.wait_for_file and not os.path.exists(opts.wait_for_file):
        time.sleep(0.05)
    deadline = None if opts.exit_after is None else time.monotonic() + opts.exit_after
    while deadline is None or time.monotonic() < deadline:
        time.sleep(0.05)
    print(f"EXITING {opts.code}", flush=True)
    return opts.code


if __name__ == "__main__":
    sys.exit(main())
