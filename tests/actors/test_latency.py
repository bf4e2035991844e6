"""Latency percentiles against numpy's linear-interpolation percentiles of the same samples."""
from __future__ import annotations

import pytest

from egostream.actors.latency import LatencyRecorder


def test_percentiles_in_milliseconds() -> None:
    recorder = LatencyRecorder()
    for millis in range(1, 101):
        recorder.record(millis / 1000)
    summary = recorder.summary()
    # 1..100 ms: p50 = 50.5, p95 = 95.05, p99 = 99.01 (linear interpolation between order statistics)
    assert summary.count == 100
    assert (summary.p50_ms, summary.p95_ms, summary.p99_ms) == pytest.approx((50.5, 95.05, 99.01))


def test_a_batch_counts_each_item_with_the_whole_batch_duration() -> None:
    recorder = LatencyRecorder()
    recorder.record(0.2, items=4)
    summary = recorder.summary()
    assert summary.count == 4 and summary.p50_ms == pytest.approx(200.0)


def test_only_the_recent_window_is_kept() -> None:
    recorder = LatencyRecorder(window=10)
    for _ in range(100):
        recorder.record(1.0)
    for _ in range(10):
        recorder.record(0.001)
    summary = recorder.summary()
    assert summary.count == 110 and summary.p99_ms == pytest.approx(1.0)
