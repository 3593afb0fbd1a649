"""Whether the control updates keep time: in real time the controller takes the robot only once they do.

A freshly started controller process competes for the CPU with everything else that is starting (the
simulator, perception, DDS discovery); its first updates can come 50-100 ms apart, and a loop given
references that then go stale damps the robot the moment it took it from the support harness (or from
a gantry on hardware). So references go to the loop only after the updates have come at most
``max_gap_s`` apart for ``steady_s``; until then the loop stays in INIT and whoever holds the robot
keeps holding it.
"""

from __future__ import annotations


class UpdateTiming:
    """Counts how long the updates have been steady (each gap at most ``max_gap_s``) [s, wall clock]."""

    def __init__(self, steady_s: float, max_gap_s: float):
        self.steady_s, self.max_gap_s = steady_s, max_gap_s
        self._last: float | None = None
        self._steady_since: float | None = None
        self.longest_gap_s = 0.0  # since the last reset

    def reset(self) -> None:
        self._last = self._steady_since = None
        self.longest_gap_s = 0.0

    def tick(self, now_s: float) -> bool:
        """Record an update at ``now_s``; True once the updates have been steady for ``steady_s``."""
        if self._last is not None:
            gap = now_s - self._last
            self.longest_gap_s = max(self.longest_gap_s, gap)
            if gap > self.max_gap_s:
                self._steady_since = now_s
        if self._steady_since is None:
            self._steady_since = now_s
        self._last = now_s
        return now_s - self._steady_since >= self.steady_s
