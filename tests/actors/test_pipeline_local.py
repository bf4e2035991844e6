"""The stream supervisor in-process (no Ray): exact result sequence after a crash of any stage, drop-oldest on a
live source that outruns the pipeline, latency and counts in the report."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch

import pytest

from egostream.actors.pipeline import PipelineConfig, StreamPipeline, run_streams
from egostream.errors import InputError
from tests.actors.stubs import (CountingSource, CrashOnce, JsonlSink, PolynomialExtractor, RunningSumEngine,
                                assert_exact_stream, read_jsonl)

WINDOWS, EMIT_EVERY = 40, 2
CONFIG = PipelineConfig(queue_size=4, batch_size=3, checkpoint_every=8, poll_s=0.05)


def _pipeline(tmp_path: Path, crashing: str | None, *, snapshots: bool = True,
              config: PipelineConfig = CONFIG) -> StreamPipeline:
    crash = CrashOnce(tmp_path / "crashed", hard=False)
    pick = {stage: (crash if stage == crashing else None) for stage in ("decode", "extract", "engine", "sink")}
    return StreamPipeline.from_factories(
        partial(CountingSource, WINDOWS, crash_at=23, crash=pick["decode"]),
        partial(PolynomialExtractor, crash_at=17, crash=pick["extract"]),
        partial(RunningSumEngine, EMIT_EVERY, crash_at_row=29, crash=pick["engine"], snapshots=snapshots),
        partial(JsonlSink, tmp_path / "out.jsonl", crash_at=11, crash=pick["sink"]),
        backend="local", config=config)


@pytest.mark.parametrize("crashing", [None, "decode", "extract", "engine", "sink"])
def test_a_crashed_stage_resumes_without_lost_or_repeated_results(tmp_path: Path, crashing: str | None) -> None:
    report = _pipeline(tmp_path, crashing).run()
    assert_exact_stream(read_jsonl(tmp_path / "out.jsonl"), WINDOWS, EMIT_EVERY)
    assert report.restarts == {stage: int(stage == crashing) for stage in report.restarts}
    assert (report.rows, report.results, report.dropped, report.filled) == (WINDOWS, WINDOWS // EMIT_EVERY, 0, 0)


def test_an_engine_without_snapshots_is_replayed_from_the_stream_start(tmp_path: Path) -> None:
    report = _pipeline(tmp_path, "engine", snapshots=False).run()
    assert_exact_stream(read_jsonl(tmp_path / "out.jsonl"), WINDOWS, EMIT_EVERY)
    assert report.restarts["engine"] == 1


def test_a_live_source_faster_than_the_pipeline_drops_the_oldest_windows(tmp_path: Path) -> None:
    windows = 60
    pipeline = StreamPipeline.from_factories(
        partial(CountingSource, windows, period_s=0.001), partial(PolynomialExtractor, delay_s=0.02),
        partial(RunningSumEngine, 1), partial(JsonlSink, tmp_path / "out.jsonl"),
        live=True, backend="local", config=PipelineConfig(queue_size=2, batch_size=1, poll_s=0.05))
    report = pipeline.run()
    records = read_jsonl(tmp_path / "out.jsonl")
    assert report.dropped > 0 and report.windows + report.dropped == windows
    # every row index has a result; a dropped window repeats the previous row, so the sum says which were real
    assert report.filled == report.dropped and report.rows == windows == len(records)
    assert [record["rows"] for record in records] == list(range(1, windows + 1))
    assert records[-1]["sum"][0] < sum(range(windows))


@dataclass(frozen=True)
class _RowResult:
    """A result with the schema's ``rows`` and ``filled`` fields; ``last`` is the first component of the newest row."""

    rows: int
    last: float
    filled: bool = False


class _LastRowEngine(RunningSumEngine):
    """One :class:`_RowResult` per row: the newest row's first component (``w`` for window ``w``)."""

    def push(self, rows: torch.Tensor) -> list[Any]:
        return [_RowResult(result["rows"], float(row[0]))
                for row, result in zip(rows, super().push(rows), strict=True)]


class _ListSink:
    def __init__(self, resume: bool) -> None:
        self.results: list[Any] = []

    def write(self, result: Any) -> None:
        self.results.append(result)

    def close(self) -> None:
        pass

    def records(self) -> int:
        return len(self.results)


def test_results_built_on_refilled_rows_are_marked_filled(tmp_path: Path) -> None:
    windows, seen = 60, []
    pipeline = StreamPipeline.from_factories(
        partial(CountingSource, windows, period_s=0.001), partial(PolynomialExtractor, delay_s=0.02),
        partial(_LastRowEngine, 1), _ListSink,
        live=True, backend="local", config=PipelineConfig(queue_size=2, batch_size=1, poll_s=0.05),
        on_result=lambda emitted: seen.append(emitted.result))
    report = pipeline.run()
    assert report.dropped > 0 and [result.rows for result in seen] == list(range(1, windows + 1))
    # row i of window i has first component i; a refilled row repeats an earlier window (row 0 would refill with
    # zeros, which equal window 0's row, so it is left out of the comparison but not of the count)
    assert [result.filled for result in seen[1:]] == [result.last != result.rows - 1 for result in seen[1:]]
    assert sum(result.filled for result in seen) == report.filled


def test_the_report_counts_and_times_every_stage(tmp_path: Path) -> None:
    report = _pipeline(tmp_path, None).run().as_dict()
    assert report["windows"] == WINDOWS and report["results"] == WINDOWS // EMIT_EVERY
    for stage in ("decode", "extract", "engine", "sink", "end_to_end"):
        summary = report["latency_ms"][stage]
        assert 0 <= summary["p50_ms"] <= summary["p95_ms"] <= summary["p99_ms"]
    assert report["latency_ms"]["end_to_end"]["count"] == WINDOWS // EMIT_EVERY
    assert report["fps"] > 0 and report["x_real_time"] == pytest.approx(report["fps"] * 16 / 30, rel=1e-2)


def _unreadable_source(path: Path) -> CountingSource:
    raise InputError(path, "container", "cannot open video")


def test_a_bad_stream_among_three_is_skipped_and_the_others_finish(tmp_path: Path) -> None:
    def pipeline(name: str, source: object) -> StreamPipeline:
        return StreamPipeline.from_factories(source, PolynomialExtractor, partial(RunningSumEngine, EMIT_EVERY),
                                             partial(JsonlSink, tmp_path / f"{name}.jsonl"), backend="local",
                                             config=CONFIG, name=name)

    bad = tmp_path / "bad.mp4"
    reports = run_streams([pipeline("a", partial(CountingSource, WINDOWS)),
                           pipeline("b", partial(_unreadable_source, bad)),
                           pipeline("c", partial(CountingSource, WINDOWS))])
    assert [report.failed for report in reports] == [None, f"{bad}: container: cannot open video", None]
    assert reports[1].as_dict()["failed"] == reports[1].failed and "failed" not in reports[0].as_dict()
    for name in ("a", "c"):
        assert_exact_stream(read_jsonl(tmp_path / f"{name}.jsonl"), WINDOWS, EMIT_EVERY)
