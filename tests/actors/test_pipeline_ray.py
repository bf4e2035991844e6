"""The stream pipeline as Ray actors on the shared local cluster: a stage actor killed mid-stream (inside, with
os._exit, or from outside with ray.kill) is restarted by Ray and the results are still exactly 0..N-1 once each;
several streams share the cluster."""
from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from egostream.actors.pipeline import Emitted, PipelineConfig, StreamPipeline, run_streams
from tests.actors.stubs import (CountingSource, CrashOnce, JsonlSink, PolynomialExtractor, RunningSumEngine,
                                assert_exact_stream, read_jsonl)

pytestmark = pytest.mark.cluster

WINDOWS, EMIT_EVERY = 48, 2
CONFIG = PipelineConfig(queue_size=4, batch_size=4, checkpoint_every=8, poll_s=0.05)


def _stream(out: Path, *, engine_crash: CrashOnce | None = None, name: str = "stream",
            on_result=None) -> StreamPipeline:
    return StreamPipeline.from_factories(
        partial(CountingSource, WINDOWS, period_s=0.002), partial(PolynomialExtractor),
        partial(RunningSumEngine, EMIT_EVERY, crash_at_row=21, crash=engine_crash), partial(JsonlSink, out),
        backend="ray", config=CONFIG, name=name, on_result=on_result)


def test_an_engine_actor_that_exits_mid_stream_resumes_exactly(ray_cluster, tmp_path: Path) -> None:
    report = _stream(tmp_path / "out.jsonl", engine_crash=CrashOnce(tmp_path / "crashed", hard=True)).run()
    assert (tmp_path / "crashed").exists() and report.restarts["engine"] == 1
    assert_exact_stream(read_jsonl(tmp_path / "out.jsonl"), WINDOWS, EMIT_EVERY)


def test_a_sink_actor_killed_by_ray_mid_stream_resumes_exactly(ray_cluster, tmp_path: Path) -> None:
    import ray

    pipeline: StreamPipeline | None = None

    def kill_sink_once(emitted: Emitted) -> None:
        if emitted.number == 5:
            ray.kill(pipeline.handles["sink"].actor, no_restart=False)

    pipeline = _stream(tmp_path / "out.jsonl", on_result=kill_sink_once)
    report = pipeline.run()
    assert report.restarts["sink"] == 1
    assert_exact_stream(read_jsonl(tmp_path / "out.jsonl"), WINDOWS, EMIT_EVERY)


def test_several_streams_share_the_cluster(ray_cluster, tmp_path: Path) -> None:
    outputs = [tmp_path / f"stream{number}.jsonl" for number in range(2)]
    reports = run_streams([_stream(out, name=out.stem) for out in outputs])
    assert [report.name for report in reports] == [out.stem for out in outputs]
    for out in outputs:
        assert_exact_stream(read_jsonl(out), WINDOWS, EMIT_EVERY)
