"""Plain stub stages for the pipeline tests: a counting source, a deterministic extractor, a running-sum engine with
snapshots, a JSONL sink that can resume, and a once-only crash trigger (marker file) usable inside Ray actors."""
from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from egostream.actors.handles import StageCrashed

DIM = 3


class CrashOnce:
    """Crashes the calling process the first time ``hit()`` runs (a marker file remembers it across restarts).

    ``hard=True`` exits the process (a Ray actor dies); otherwise raises :class:`StageCrashed` (in-process tests).
    """

    def __init__(self, marker: Path, hard: bool) -> None:
        self.marker = Path(marker)
        self.hard = hard

    @property
    def armed(self) -> bool:
        return not self.marker.exists()

    def hit(self) -> None:
        if not self.armed:
            return
        self.marker.write_text("crashed")
        if self.hard:
            os._exit(1)
        raise StageCrashed(f"simulated crash ({self.marker.name})")


class CountingSource:
    """Windows 0..n-1 whose payload is the window number; ``period_s`` between windows (a live camera's pace)."""

    def __init__(self, n: int, period_s: float = 0.0, crash_at: int | None = None,
                 crash: CrashOnce | None = None) -> None:
        self.n, self.period_s, self.crash_at, self.crash = n, period_s, crash_at, crash

    def __iter__(self) -> Iterator[int]:
        for window in range(self.n):
            if self.period_s:
                time.sleep(self.period_s)
            if self.crash is not None and window == self.crash_at:
                self.crash.hit()
            yield window


def expected_row(window: int) -> torch.Tensor:
    """The feature row of a window: [w, w², -w] (the independent truth the engine sums)."""
    return torch.tensor([window, window * window, -window], dtype=torch.float32)


class PolynomialExtractor:
    def __init__(self, delay_s: float = 0.0, crash_at: int | None = None, crash: CrashOnce | None = None) -> None:
        self.delay_s, self.crash_at, self.crash = delay_s, crash_at, crash

    def extract(self, windows: list[int]) -> torch.Tensor:
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.crash is not None and self.crash_at in windows:
            self.crash.hit()
        return torch.stack([expected_row(window) for window in windows])


class RunningSumEngine:
    """Emits one result every ``emit_every`` rows: its number, the rows seen and the running sum of the rows."""

    def __init__(self, emit_every: int = 2, crash_at_row: int | None = None, crash: CrashOnce | None = None,
                 snapshots: bool = True) -> None:
        self.emit_every, self.crash_at_row, self.crash = emit_every, crash_at_row, crash
        self.rows, self.total, self.emitted = 0, torch.zeros(DIM), 0
        if not snapshots:
            self.state_dict = None  # type: ignore[assignment]

    def push(self, rows: torch.Tensor) -> list[dict[str, Any]]:
        results = []
        for row in rows:
            if self.crash is not None and self.rows == self.crash_at_row:
                self.crash.hit()
            self.rows += 1
            self.total = self.total + row
            if self.rows % self.emit_every == 0:
                results.append({"index": self.emitted, "rows": self.rows, "sum": self.total.tolist()})
                self.emitted += 1
        return results

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "total": self.total.clone(), "emitted": self.emitted}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rows, self.total, self.emitted = state["rows"], state["total"].clone(), state["emitted"]


class JsonlSink:
    """One JSON line per result; ``resume=True`` keeps the complete lines and cuts a partly written last one."""

    def __init__(self, path: Path, resume: bool, crash_at: int | None = None, crash: CrashOnce | None = None) -> None:
        self.path, self.crash_at, self.crash = Path(path), crash_at, crash
        if resume and self.path.exists():
            data = self.path.read_bytes()
            self.path.write_bytes(data[:data.rfind(b"\n") + 1])
        else:
            self.path.write_bytes(b"")
        self.stream = self.path.open("a", encoding="utf-8")

    def write(self, result: dict[str, Any]) -> None:
        if self.crash is not None and self.crash.armed and result["index"] == self.crash_at:
            self.stream.write(json.dumps(result)[:7])  # a torn record, as a crash mid-write leaves
            self.stream.flush()
            self.crash.hit()
        self.stream.write(json.dumps(result) + "\n")

    def flush(self) -> None:
        self.stream.flush()

    def close(self) -> None:
        self.stream.close()

    def records(self) -> int:
        return self.path.read_bytes().count(b"\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_exact_stream(records: list[dict[str, Any]], windows: int, emit_every: int) -> None:
    """Results 0..N-1 once each, each with the brute-force running sum of the rows it covers."""
    count = windows // emit_every
    assert [record["index"] for record in records] == list(range(count))
    for record in records:
        truth = torch.stack([expected_row(w) for w in range(record["rows"])]).sum(0)
        assert record["rows"] == (record["index"] + 1) * emit_every
        assert record["sum"] == truth.tolist()
