"""A minimal progress bar on stderr (only on a terminal, never with --quiet)."""

from __future__ import annotations

import sys
import time


class Progress:
    """Counts units of work (replicate-generations) and shows percent done and an ETA."""

    def __init__(self, total: int, enabled: bool = True, label: str = "") -> None:
        self.total = max(1, total)
        self.done = 0
        self.label = label
        self.enabled = enabled and sys.stderr.isatty()
        self.start = time.monotonic()
        self._last = 0.0

    def advance(self, units: int) -> None:
        self.done += units
        now = time.monotonic()
        if self.enabled and (now - self._last > 0.2 or self.done >= self.total):
            self._last = now
            frac = min(1.0, self.done / self.total)
            elapsed = now - self.start
            eta = elapsed / frac - elapsed if frac > 0 else 0.0
            bar = "#" * int(30 * frac)
            sys.stderr.write(f"\r[{bar:<30}] {100 * frac:5.1f}% {self.label} ETA {eta:5.0f}s ")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()
