"""Incremental readouts (head outputs of final nodes cached) equal recomputed ones (every head over its span) on the
same stream: every task, MQ segments, labels, nodes and order exact, scores to 1e-5; horizons shorter and longer
than the stream, single-row and random pushes, a stream longer than twice the horizon; and the whole recompute
window (offline backbone + recomputed readouts) equals the incremental one while the horizon holds the stream."""
from __future__ import annotations

import dataclasses
import functools
from typing import Any

import pytest
import torch

from egostream.config import CONFIG_DIR, load_config
from egostream.errors import InputError
from egostream.model import ModelBundle, ModelConfig
from egostream.stream.config import ReadoutConfig, StreamConfig
from egostream.stream.engine import StreamEngine
from egostream.stream.readouts import MQReadout, NodeView, Readouts, ReadoutSet
from egostream.stream.labels import LabelNames
from egostream.stream.schema import WindowResult
from egostream.stream.windows import WindowEmitter
from tests.stream.streams import push_sizes, single_threaded_torch  # noqa: F401 (autouse fixture)

SCORE_ATOL = 1e-5
ROW_PERIOD_S = 16 / 30
NAMES = LabelNames(verbs=tuple(f"v{i}" for i in range(7)), nouns=tuple(f"n{i}" for i in range(9)),
                   moments=tuple(f"m{i}" for i in range(5)))
# Every MQ moment reported (the random model scores ~0.01), spans that fit the shortest horizon below.
SPANS = ReadoutConfig(ar_span_s=2.0, lta_span_s=4.0, oscc_span_s=4.0, pnr_span_s=4.0, mq_min_score=0.0)


@functools.cache
def bundle() -> ModelBundle:
    """The tiny preset, small vocabularies, random weights (seed 0), the MQ output layer redrawn so that moment
    scores spread over (0, 1): with the preset's prior (every score ~0.01) thousands of scores lie within a few ulps
    of each other, where the order of two float32 sums that differ only in rounding is a coin toss."""
    config = load_config(ModelConfig, CONFIG_DIR / "model" / "tiny.yaml",
                         ["num_verbs=7", "num_nouns=9", "num_mq_classes=5", "num_future=4"])
    built = config.build(seed=0)
    torch.manual_seed(1)
    with torch.no_grad():
        output = built.head("mq").classifier.cls
        output.weight.normal_(0.0, 1.0)
        output.bias.normal_(-1.0, 1.0)
    return built


def rows_of(count: int, seed: int) -> torch.Tensor:
    return torch.randn(count, bundle().feature_dim, generator=torch.Generator().manual_seed(seed))


def moment_key(moment: Any) -> tuple[int, int, int, bool]:
    return moment.label.id, moment.level, moment.node, moment.final


def assert_same_moments(ours: tuple, truth: tuple, context: str, segments_atol: float) -> None:
    """The same moments (label, node, finality; segments to ``segments_atol`` s, default exact), scores by rank to
    :data:`SCORE_ATOL`, in the same order except where two scores tie within float32 rounding: a moment may take
    another's rank only if their true scores are closer than :data:`SCORE_ATOL` (two sums of the same terms,
    rounded differently, can order such a pair either way)."""
    assert sorted(map(moment_key, ours)) == sorted(map(moment_key, truth)), context
    assert [m.score for m in ours] == pytest.approx([m.score for m in truth], abs=SCORE_ATOL), context
    truth_of = {moment_key(m): m for m in truth}
    for rank, (mine, other) in enumerate(zip(ours, truth)):
        expected = truth_of[moment_key(mine)]
        assert abs(expected.score - other.score) < SCORE_ATOL, f"{context}: rank {rank}"
        assert (mine.start_s, mine.end_s) == pytest.approx((expected.start_s, expected.end_s), abs=segments_atol,
                                                           rel=0), f"{context}: rank {rank}"


def assert_same_readouts(ours: ReadoutSet | WindowResult, truth: ReadoutSet | WindowResult, context: str, *,
                         segments_atol: float = 0.0) -> None:
    """Labels, nodes and order exact (MQ: up to float32 near-ties, :func:`assert_same_moments`), MQ segments to
    ``segments_atol`` seconds (default exact); scores and probabilities to :data:`SCORE_ATOL`."""
    def scores(labels: tuple) -> list[float]:
        return [label.score for label in labels]

    assert ours.ar is not None and truth.ar is not None, context
    assert ours.ar.span == truth.ar.span, context
    for field in ("verbs", "nouns"):
        mine, other = getattr(ours.ar, field), getattr(truth.ar, field)
        assert [label.id for label in mine] == [label.id for label in other], context
        assert scores(mine) == pytest.approx(scores(other), abs=SCORE_ATOL), context
    assert ours.lta is not None and truth.lta is not None
    assert ours.lta.samples == truth.lta.samples, context
    assert [(a.verb.id, a.noun.id) for a in ours.lta.top1] == [(a.verb.id, a.noun.id) for a in truth.lta.top1]
    assert ours.oscc is not None and truth.oscc is not None
    assert ours.oscc.state_change == truth.oscc.state_change, context
    assert ours.oscc.probability == pytest.approx(truth.oscc.probability, abs=SCORE_ATOL), context
    assert ours.pnr is not None and truth.pnr is not None
    assert (ours.pnr.index, ours.pnr.frame) == (truth.pnr.index, truth.pnr.frame), context
    assert ours.pnr.score == pytest.approx(truth.pnr.score, abs=SCORE_ATOL), context
    assert ours.mq is not None and truth.mq is not None
    assert ours.mq.horizon == truth.mq.horizon, context
    assert_same_moments(ours.mq.moments, truth.mq.moments, context, segments_atol)


@pytest.mark.parametrize(("horizon_rows", "stream_rows", "max_push", "floor"), [
    (200, 120, 1, 0.0),    # horizon longer than the stream, single-row pushes, every moment reported
    (40, 150, 1, 0.0),     # stream longer than three horizons, single-row pushes
    (40, 150, 9, 0.0),     # the same with random pushes
    (64, 130, 17, 0.0),    # longer than twice the horizon, random pushes
    (64, 150, 1, 0.6),     # a live score floor: MQ skips the cached nodes that cannot reach it
    (200, 120, 5, 0.3),
])
def test_incremental_readouts_equal_recomputed_ones(horizon_rows: int, stream_rows: int, max_push: int,
                                                     floor: float) -> None:
    spans = dataclasses.replace(SPANS, mq_min_score=floor)
    grid = StreamConfig(horizon_s=horizon_rows * ROW_PERIOD_S, emit_every_s=3 * ROW_PERIOD_S, readouts=spans)
    engine = StreamEngine(bundle().backbone("ar"), grid)
    incremental = Readouts(bundle(), grid, spans, NAMES, incremental=True)
    recomputed = Readouts(bundle(), grid, spans, NAMES, incremental=False)
    mq = incremental.tasks["mq"]
    assert isinstance(mq, MQReadout)
    assert incremental.tasks.keys() == {"ar", "lta", "oscc", "pnr", "mq"}
    rows, windows, cached, skipped = rows_of(stream_rows, seed=horizon_rows + max_push), 0, [], 0
    for size in push_sizes(stream_rows, max_push, seed=stream_rows):
        engine.push(rows[engine.num_rows:engine.num_rows + size])
        if engine.num_rows < 12:
            continue
        view = NodeView(engine.graphs(), engine.final_counts, engine.num_rows)
        views = {task: view for task in bundle().tasks}
        assert_same_readouts(incremental.read(views), recomputed.read(views), f"at {engine.num_rows} rows")
        windows += 1
        skipped += mq.last_skipped
        if floor > 0:  # a window still reports every moment at or above the floor, and some
            assert all(m.score >= floor for m in mq.read(view).moments)
        cached.append(len(incremental.tasks["mq"]))  # type: ignore[arg-type]
    assert windows > 10
    assert (skipped > 0) == (floor > 0)  # the floor lets MQ skip nodes; without one every node runs
    # The cache holds final nodes of the span only: bounded by the horizon's nodes, and it does hold some.
    assert 0 < max(cached) <= sum(-(-horizon_rows // 2 ** d) + 1 for d in range(bundle().backbone("ar").depth))


def test_recompute_windows_equal_incremental_windows_while_the_horizon_holds_the_stream() -> None:
    results = {}
    for mode in ("incremental", "recompute"):
        grid = StreamConfig(horizon_s=300 * ROW_PERIOD_S, emit_every_s=4 * ROW_PERIOD_S, engine_mode=mode,
                            readouts=SPANS)
        emitter = WindowEmitter(bundle(), grid, names=NAMES)
        sizes = push_sizes(90, 7, seed=5)
        rows = rows_of(90, seed=6)
        results[mode] = [w for size in sizes for w in emitter.push(rows[emitter.num_rows:emitter.num_rows + size])]
    assert len(results["incremental"]) == len(results["recompute"]) > 5
    for ours, truth in zip(results["incremental"], results["recompute"]):
        assert ours.rows == truth.rows
        # the two engines' node features agree to 1e-5 (prefix exactness), not bit for bit: the segments'
        # seconds (node time + offset * 2**d) agree to about that times the largest level's extent
        assert_same_readouts(ours, truth, f"window {ours.window_index}", segments_atol=1e-4)
        assert {"engine", "ar", "lta", "oscc", "pnr", "mq", "total"} <= set(ours.latency_ms)


def test_mq_every_s_runs_mq_on_its_own_grid() -> None:
    every_rows = 10
    spans = ReadoutConfig(ar_span_s=2.0, lta_span_s=4.0, oscc_span_s=4.0, pnr_span_s=4.0, mq_min_score=0.0,
                          mq_every_s=every_rows * ROW_PERIOD_S)
    grid = StreamConfig(horizon_s=100 * ROW_PERIOD_S, emit_every_s=4 * ROW_PERIOD_S, readouts=spans)
    emitter = WindowEmitter(bundle(), grid, names=NAMES)
    windows = emitter.push_many(rows_of(45, seed=2).split(1))
    with_mq = [w.rows for w in windows if w.mq is not None]
    # windows at rows 4, 8, ..., 44; MQ at the first window reaching rows 0 (the first window), 10, 20, 30, 40
    assert [w.rows for w in windows] == list(range(4, 45, 4))
    assert with_mq == [4, 12, 20, 32, 40]
    assert all(("mq" in w.latency_ms) == (w.mq is not None) for w in windows)
    # a second window at unchanged rows reuses the MQ readout instead of recomputing it
    readouts = Readouts(bundle(), grid, SPANS, NAMES)
    views = emitter.views()
    first = readouts.read(views)
    assert first.mq is not None and readouts.read(views).mq is first.mq


def test_mq_every_s_must_be_positive() -> None:
    with pytest.raises(InputError, match="readouts.mq_every_s"):
        ReadoutConfig(mq_every_s=0.0)
