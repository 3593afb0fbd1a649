"""Run every benchmarks/bench_*.py module's main() in turn (`python -m benchmarks [name ...]`).

Modules are discovered by file name, so a new benchmark only needs a `bench_<topic>.py` with a `main()`.
Arguments select benchmarks by topic (`python -m benchmarks rt` runs bench_rt only); options after the names
reach the benchmarks that read them (`python -m benchmarks realtime --seconds 15 --json out.json`).
bench_realtime launches the whole sim stack (sim.launch.xml) in real-time and lockstep mode, with and without the
camera (4 runs, about 2.5 min with the default 30 s window; OPTIMUS_BENCH_REALTIME_S sets it).
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from pathlib import Path


def discover() -> list[str]:
    here = Path(__file__).resolve().parent
    return sorted(p.stem for p in here.glob("bench_*.py"))


def main(argv: list[str] | None = None) -> int:
    wanted = set(argv if argv is not None else sys.argv[1:])
    names = [n for n in discover() if not wanted or n in wanted or n.removeprefix("bench_") in wanted]
    if wanted and not names:
        print(f"no benchmark matches {sorted(wanted)}; available: {discover()}", file=sys.stderr)
        return 2
    failed = []
    for name in names:
        print(f"\n{'=' * 100}\n== {name}\n{'=' * 100}", flush=True)
        start = time.perf_counter()
        try:
            importlib.import_module(f"benchmarks.{name}").main()
        except Exception:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            failed.append(name)
        print(f"-- {name}: {time.perf_counter() - start:.1f} s", flush=True)
    if failed:
        print(f"\nbenchmarks that raised: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
