"""Latency and throughput statistics of a running pipeline: per-stage and end-to-end p50/p95/p99, and fps.

Each stage records how long it spent on every item (seconds); the recorder keeps the most recent ``window``
samples so memory stays flat on an endless stream, and counts every item for the rates.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

__all__ = ["LatencyRecorder", "LatencySummary", "PERCENTILES"]

PERCENTILES = (50, 95, 99)


@dataclass(frozen=True)
class LatencySummary:
    """Milliseconds at each of :data:`PERCENTILES` over the recent samples, items counted and their rate (items/s)."""

    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    rate_per_s: float

    def as_dict(self) -> dict[str, float | int]:
        """Milliseconds and rates rounded to microseconds / 3 decimals for reports."""
        return {"count": self.count, "p50_ms": round(self.p50_ms, 3), "p95_ms": round(self.p95_ms, 3),
                "p99_ms": round(self.p99_ms, 3), "rate_per_s": round(self.rate_per_s, 3)}


class LatencyRecorder:
    """Thread-safe recorder of per-item durations (seconds) for one stage."""

    def __init__(self, window: int = 4096) -> None:
        self._samples: deque[float] = deque(maxlen=window)
        self._count = 0
        self._first: float | None = None
        self._last: float | None = None
        self._lock = threading.Lock()

    def record(self, seconds: float, items: int = 1) -> None:
        """Record that ``items`` items were handled together in ``seconds``: each of them waited that long."""
        now = time.monotonic()
        with self._lock:
            self._samples.extend([seconds] * items)
            self._count += items
            self._first = now - seconds if self._first is None else self._first
            self._last = now

    def summary(self) -> LatencySummary:
        with self._lock:
            samples = np.asarray(self._samples, dtype=np.float64)
            count, first, last = self._count, self._first, self._last
        if samples.size == 0:
            return LatencySummary(0, 0.0, 0.0, 0.0, 0.0)
        p50, p95, p99 = (float(v) * 1e3 for v in np.percentile(samples, PERCENTILES))
        elapsed = (last - first) if first is not None and last is not None else 0.0
        return LatencySummary(count, p50, p95, p99, count / elapsed if elapsed > 0 else 0.0)
