"""The stream pipeline as Ray actors on the shared local cluster. Two streams share the cluster; in one, the engine
actor exits mid-stream (os._exit inside it), in the other the sink actor is killed from outside (ray.kill with
restart). Ray restarts both and each stream's results are still exactly 0..N-1 once each."""
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


def _stream(out: Path, *, engine_crash: CrashOnce | None = None, on_result=None) -> StreamPipeline:
    return StreamPipeline.from_factories(
        partial(CountingSource, WINDOWS, period_s=0.002), partial(PolynomialExtractor),
        partial(RunningSumEngine, EMIT_EVERY, crash_at_row=21, crash=engine_crash), partial(JsonlSink, out),
        backend="ray", config=CONFIG, name=out.stem, on_result=on_result)


def test_killed_stage_actors_resume_their_streams_exactly(ray_cluster, tmp_path: Path) -> None:
    import ray

    crash = CrashOnce(tmp_path / "engine-crashed", hard=True)
    exits = _stream(tmp_path / "engine_exits.jsonl", engine_crash=crash)
    killed: list[int] = []

    def kill_sink_once(emitted: Emitted) -> None:
        if emitted.number == 5 and not killed:
            killed.append(emitted.number)
            ray.kill(killed_from_outside.handles["sink"].actor, no_restart=False)

    killed_from_outside = _stream(tmp_path / "sink_killed.jsonl", on_result=kill_sink_once)
    first, second = run_streams([exits, killed_from_outside])
    assert crash.marker.exists() and first.restarts["engine"] == 1 and first.name == "engine_exits"
    assert killed and second.restarts["sink"] == 1 and second.name == "sink_killed"
    for out in (tmp_path / "engine_exits.jsonl", tmp_path / "sink_killed.jsonl"):
        assert_exact_stream(read_jsonl(out), WINDOWS, EMIT_EVERY)
