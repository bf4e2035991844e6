"""Streaming translation equals offline translation on the same prefix, and its per-window work is bounded.

Truth: :func:`egostream.translation.streaming.translate_prefix`, the offline backbones on rows ``[0, n)`` (one video,
the stream's row times), the newest ``window_nodes`` level-0 nodes, the same translator and primary head. The
stream pushes rows in random sizes; after every push, the primary output (the head's own output type), the translated
tokens and the attention shares must equal the offline ones to 1e-5.
"""
from __future__ import annotations

import pytest
import torch

from egostream.stream import StreamConfig
from egostream.stream.readouts import NodeView, read_action, read_state_change
from egostream.stream.labels import LabelNames
from egostream.stream.schema import result_from_record, result_to_record
from egostream.stream.windows import WindowEmitter
from egostream.tasks import TaskInputs
from egostream.translation.streaming import StreamingTranslation, translate_prefix
from tests.stream.streams import push_sizes, single_threaded_torch
from tests.translation.models import PRIMARY_TASKS, SOURCE_TASKS, source_bundle, tiny_model, translation

__all__ = ["single_threaded_torch"]

ATOL = 1e-5
WINDOW = 12


def trailing_inputs(task: str, num_rows: int, config: StreamConfig) -> TaskInputs:
    """What a readout asks at the stream's current time: AR / OSCC the trailing 4 s as one segment."""
    now = float(config.row_positions_s(num_rows - 1, 1)[0])
    if task in ("ar", "oscc"):
        return TaskInputs(segments=torch.tensor([[now - 4.0, now]]), segment_video=torch.zeros(1, dtype=torch.long))
    return TaskInputs()


@pytest.mark.parametrize("task", PRIMARY_TASKS)
def test_streaming_equals_offline_on_every_prefix(task: str) -> None:
    config = StreamConfig(horizon_s=1e5)
    model = translation(task, sources=source_bundle(seed=2), seed=3, num_layers=2).eval()
    rows = torch.randn(45, tiny_model().feature_dim, generator=torch.Generator().manual_seed(11))
    stream = StreamingTranslation(model, config, window_nodes=WINDOW)
    for size in push_sizes(len(rows), 4, seed=5):
        stream.push(rows[stream.num_rows:stream.num_rows + size])
        n = stream.num_rows
        inputs = trailing_inputs(task, n, config)
        live = stream.current(inputs)
        offline = translate_prefix(model, rows[:n], inputs, window_nodes=WINDOW, config=config)
        assert torch.equal(live.views.indices, offline.views.indices)
        assert torch.equal(live.views.pos, offline.views.pos)
        assert len(live.views.indices) == min(n, WINDOW)
        torch.testing.assert_close(live.translation.tokens, offline.translation.tokens, atol=ATOL, rtol=0)
        for ours, truth in zip(live.outputs, offline.outputs):
            if isinstance(ours, torch.Tensor):
                torch.testing.assert_close(ours, truth, atol=ATOL, rtol=0)
        assert live.attention.keys() == offline.attention.keys() == set(SOURCE_TASKS)
        for source, share in live.attention.items():
            assert abs(share - offline.attention[source]) < ATOL


def test_per_window_work_is_bounded_and_final_tokens_are_cached() -> None:
    """Past the window, each call builds tokens only for the non-final frontier and the new rows (the same number at
    row 100 as at row 400), and the encoder sees K x window tokens."""
    model = translation("oscc", seed=4).eval()
    config = StreamConfig(horizon_s=60.0)
    stream = StreamingTranslation(model, config, window_nodes=WINDOW)
    rows = torch.randn(400, tiny_model().feature_dim, generator=torch.Generator().manual_seed(1))
    built = {}
    for row in range(len(rows)):
        stream.push(rows[row])
        if row + 1 in (2, 100, 250, 400):
            window = stream.current(trailing_inputs("oscc", row + 1, config), report=False)
            built[row + 1] = stream.last_built
            assert len(window.views.indices) == min(row + 1, WINDOW)
            assert all(len(cache) <= WINDOW for cache in stream._cache.values())
    engine = next(iter(stream.engines.values()))
    frontier = engine.num_rows - engine.final_counts[0]
    # At row 2 nothing is cached; later every call rebuilds the frontier plus the rows pushed since the last call
    # that are now final, capped by the window.
    assert built[2] == 2 * len(SOURCE_TASKS)
    assert built[100] == built[250] == built[400] == WINDOW * len(SOURCE_TASKS)
    stream.current(trailing_inputs("oscc", 400, config), report=False)
    assert stream.last_built == frontier * len(SOURCE_TASKS)


def test_stream_readouts_accept_a_translation_model() -> None:
    """With one multi-task source, the engine's readouts run the translator through ``forward_graphs`` on their
    span's nodes: the AR readout's top verbs and OSCC readout equal the offline translation of the newest nodes
    inside the span (counted here from the row grid) with the span as the segment."""
    config = StreamConfig(horizon_s=1e5)
    rows = torch.randn(40, tiny_model().feature_dim, generator=torch.Generator().manual_seed(3))
    sources = source_bundle(seed=6)
    view = NodeView.offline(sources.backbones[0], rows, config)  # type: ignore[arg-type]
    now = len(rows) * config.row_period_s
    span_nodes = int((config.row_positions_s(0, len(rows)) >= now - 4.0).sum())
    segment = TaskInputs(segments=torch.tensor([[now - 4.0, now]]), segment_video=torch.zeros(1, dtype=torch.long))
    ar = translation("ar", sources=sources, seed=8)
    readout = read_action(ar, view, 4.0, config, LabelNames.ego4d())  # type: ignore[arg-type]
    truth = translate_prefix(ar, rows, segment, window_nodes=span_nodes, config=config, report=False)
    expected = ar.decode("ar", truth.outputs)
    assert [label.id for label in readout.verbs] == expected.verb_ids[0].tolist()
    oscc = translation("oscc", sources=sources, seed=8)
    state = read_state_change(oscc, view, 4.0, config)  # type: ignore[arg-type]
    truth = translate_prefix(oscc, rows, segment, window_nodes=span_nodes, config=config, report=False)
    assert abs(state.probability - float(oscc.decode("oscc", truth.outputs).probability[0])) < ATOL


def test_window_emitter_streams_a_translation_model() -> None:
    """The engine's :class:`WindowEmitter` streams a translation model (one multi-task source): each window has the
    primary task's readout only, equal to the readout on the offline backbone of the same prefix."""
    config = StreamConfig(horizon_s=1e5, emit_every_s=4.0)
    rows = torch.randn(40, tiny_model().feature_dim, generator=torch.Generator().manual_seed(9))
    sources = source_bundle(seed=1)
    model = translation("ar", sources=sources, seed=2)
    emitter = WindowEmitter(model, config, names=LabelNames.ego4d())  # type: ignore[arg-type]
    results = emitter.push_many(rows[i:i + 3] for i in range(0, len(rows), 3))
    assert len(results) == len(rows) // config.emit_every_rows
    for result in results:
        assert result.lta is None and result.oscc is None and result.pnr is None and result.mq is None
        # the window reports where the primary task's attention went: one share per source task, summing to 1
        assert set(result.attention) == set(model.sources.tasks)
        assert abs(sum(result.attention.values()) - 1.0) < 1e-5
        assert result_from_record(result_to_record(result)).attention == result.attention
        view = NodeView.offline(sources.backbones[0], rows[:result.rows], config)  # type: ignore[arg-type]
        offline = read_action(model, view, config.readouts.ar_span_s, config, LabelNames.ego4d())  # type: ignore
        assert [v.id for v in result.ar.verbs] == [v.id for v in offline.verbs]
        for ours, truth in zip(result.ar.verbs, offline.verbs):
            assert abs(ours.score - truth.score) < ATOL
