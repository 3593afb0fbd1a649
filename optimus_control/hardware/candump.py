"""Frame logging in can-utils' ``candump -l`` format: ``(seconds.micros) <bus> <ID>#<DATA>``, one line per
frame (commands and replies, in the order each bus thread saw them), so ``canplayer``, ``cansniffer``-style
scripts and log2asc read it. The bus threads push frames into per-bus lock-free rings (C); this thread
drains them to the file, so a slow disk never stalls a bus (a full ring drops frames and counts them)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TextIO


def format_line(t_ns: int, bus: str, can_id: int, ext: bool, data: bytes) -> str:
    """One candump -l line (11-bit ids as 3 hex digits, 29-bit as 8)."""
    ident = f"{can_id:08X}" if ext else f"{can_id:03X}"
    return f"({t_ns // 1_000_000_000}.{(t_ns % 1_000_000_000) // 1000:06d}) {bus} {ident}#{data.hex().upper()}\n"


class CandumpLogger:
    """Drains a CanTransport's frame log into a file (call ``transport.enable_log()`` before ``start()``)."""

    def __init__(self, transport, bus_names: list[str], path: str | Path, period_s: float = 0.05):
        self.transport, self.bus_names, self.path, self.period_s = transport, bus_names, Path(path), period_s
        self.frames = 0
        self._stop = threading.Event()
        self._file: TextIO | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> CandumpLogger:
        self._file = self.path.open("w")
        self._thread = threading.Thread(target=self._run, name="candump", daemon=True)
        self._thread.start()
        return self

    def _drain(self) -> None:
        entries = self.transport.drain_log()
        if entries and self._file is not None:
            self._file.writelines(format_line(t, self.bus_names[b], i, bool(ext), data)
                                  for t, b, _rx, i, ext, data in entries)
            self.frames += len(entries)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self._drain()

    def stop(self) -> None:
        """Stop the thread and write what is left (call after the transport stopped for a complete log)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._file is not None:
            self._drain()
            self._file.close()
            self._file = None
