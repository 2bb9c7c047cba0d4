"""Live latency estimates: an EWMA and a windowed p95 over recent samples (clock passed in)."""

from __future__ import annotations

import math
from collections import deque

EWMA_ALPHA = 0.2
WINDOW_S = 60.0
MAX_SAMPLES = 256
MIN_SAMPLES = 10  # fewer samples in the window: no prediction (no evidence either way)
REFRESH_S = 0.1  # the p95 is recomputed at most this often (sorting the window on every request cost 8 %)


class Estimate:
    """Seconds, e.g. time to first byte of one cluster's attempts."""

    __slots__ = ("_at", "_p95", "_samples", "_stale", "ewma", "window_s")

    def __init__(self, window_s: float = WINDOW_S, max_samples: int = MAX_SAMPLES) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, float]] = deque(maxlen=max_samples)
        self.ewma: float | None = None
        self._p95: float | None = None
        self._stale = False
        self._at = 0.0

    def observe(self, now: float, seconds: float) -> None:
        self._samples.append((now, seconds))
        self.ewma = seconds if self.ewma is None else self.ewma + EWMA_ALPHA * (seconds - self.ewma)
        self._stale = True

    def _trim(self, now: float) -> None:
        cutoff = now - self.window_s
        while self._samples and self._samples[0][0] < cutoff:
            self._samples.popleft()
            self._stale = True

    def count(self, now: float) -> int:
        self._trim(now)
        return len(self._samples)

    def p95(self, now: float) -> float | None:
        """The 95th percentile of the samples in the window (at most ``REFRESH_S`` old), or None with fewer
        than ``MIN_SAMPLES``."""
        self._trim(now)
        if len(self._samples) < MIN_SAMPLES:
            return None
        if self._p95 is None or (self._stale and now - self._at >= REFRESH_S):
            values = sorted([v for _, v in self._samples])
            self._p95 = values[min(len(values) - 1, math.ceil(0.95 * len(values)) - 1)]
            self._stale = False
            self._at = now
        return self._p95
