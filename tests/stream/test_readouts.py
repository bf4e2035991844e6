"""Readouts against hand-computed values, the PNR protocol's own sampling, brute-force cosine search, the moment
ledger's rules and the emitter's cadence."""
from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from egostream.backbone.graphs import LevelGraphs
from egostream.backpack.prototypes import Backpack
from egostream.config import CONFIG_DIR, load_config
from egostream.ego4d.features import FeatureSpec
from egostream.ego4d.protocol.pnr import PNRSample, pnr_window
from egostream.errors import InputError
from egostream.model import ModelBundle, ModelConfig
from egostream.stream.config import StreamConfig
from egostream.stream.readouts import (EvidenceReader, MomentLedger, NodeView, ReadoutConfig, Readouts, pnr_view,
                                       read_action, read_anticipation, read_keyframe, read_moments)
from egostream.stream.labels import LabelNames
from egostream.stream.schema import Label, Moment, MomentsReadout, Span
from egostream.stream.windows import WindowEmitter
from egostream.tasks.base import TaskInputs
from egostream.tasks.pnr import keyframe_index

GRID = StreamConfig(horizon_s=12.0, emit_every_s=8 * 16 / 30)
NAMES = LabelNames(verbs=tuple(f"v{i}" for i in range(7)), nouns=tuple(f"n{i}" for i in range(9)),
                   moments=tuple(f"m{i}" for i in range(5)))
# The random model's MQ scores are ~0.01 after soft-NMS: no live score floor, so its moments are reported.
SPANS = ReadoutConfig(ar_span_s=2.0, lta_span_s=4.0, oscc_span_s=8.0, pnr_span_s=8.0, mq_min_score=0.0)


@functools.cache
def tiny_bundle() -> ModelBundle:
    """The tiny preset with small vocabularies and a 4-step future, random weights (seed 0)."""
    config = load_config(ModelConfig, CONFIG_DIR / "model" / "tiny.yaml",
                         ["num_verbs=7", "num_nouns=9", "num_mq_classes=5", "num_future=4"])
    return config.build(seed=0)


def stream_rows(num_rows: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(num_rows, tiny_bundle().feature_dim, generator=torch.Generator().manual_seed(seed))


@functools.cache
def offline_view(num_rows: int) -> NodeView:
    return NodeView.offline(tiny_bundle().backbone("ar"), stream_rows(num_rows), GRID)


def test_pnr_view_samples_like_the_pnr_protocol() -> None:
    spec = FeatureSpec(name="x", dim=4)
    empty = torch.zeros(0)
    rng = np.random.default_rng(0)
    for _ in range(50):
        start = int(rng.integers(0, 500))
        end = start + int(rng.integers(16, 400))
        record = PNRSample("u", "v", "c", start, end, 0.0, 0.0, (start + end) // 2, start, end, empty, empty, -1,
                           empty, empty, 0.0, spec)
        expected = pnr_window(record, start, end)
        view = pnr_view(start, end, spec.stride_frames)
        assert torch.equal(view.rows, expected.row_indices)
        assert torch.equal(view.candidate_frames, expected.candidate_frames)


def test_action_readout_is_the_segment_mean_through_the_classifiers() -> None:
    bundle, view = tiny_bundle(), offline_view(30)
    readout = read_action(bundle, view, SPANS.ar_span_s, GRID, NAMES)
    end = 30 * 16 / 30
    graphs = view.graphs
    inside = (graphs.depth == 0) & (graphs.pos >= end - SPANS.ar_span_s) & (graphs.pos <= end)
    assert int(inside.sum()) == 4  # nodes at (0.5 + i) * 0.533 s within the last 2 s: rows 26..29
    head = bundle.head("ar")
    with torch.no_grad():
        feature = head.project(graphs.x[inside]).mean(0, keepdim=True)
        verb_probs = torch.softmax(head.verb_classifier(feature), -1)[0]
    assert readout.span == Span(end - 2.0, end)
    assert [v.id for v in readout.verbs] == verb_probs.argsort(descending=True)[:5].tolist()
    assert readout.verbs[0].score == pytest.approx(float(verb_probs.max()), rel=1e-5)
    assert readout.verbs[0].name == f"v{readout.verbs[0].id}"


def test_anticipation_top1_is_the_argmax_and_samples_follow_the_seed() -> None:
    bundle, view = tiny_bundle(), offline_view(30)
    first = read_anticipation(bundle, view, SPANS.lta_span_s, 11, GRID, NAMES)
    again = read_anticipation(bundle, view, SPANS.lta_span_s, 11, GRID, NAMES)
    other = read_anticipation(bundle, view, SPANS.lta_span_s, 12, GRID, NAMES)
    assert first == again
    assert len(first.top1) == 4 and len(first.samples) == 5 and all(len(s) == 4 for s in first.samples)
    assert first.samples != other.samples
    keep = (view.graphs.depth == 0) & (view.graphs.pos >= 16.0 - 4.0)
    graphs = view.graphs
    observed = LevelGraphs(graphs.x[keep], graphs.pos[keep], graphs.video[keep], graphs.depth[keep],
                           graphs.extent[keep], graphs.indices[keep], 1)
    with torch.no_grad():
        logits = bundle.forward_graphs("lta", observed, TaskInputs()).verb_logits
    assert [a.verb.id for a in first.top1] == logits.argmax(-1).tolist()


def test_keyframe_readout_uses_the_16_sampled_rows_and_the_keyframe_rule() -> None:
    bundle, view = tiny_bundle(), offline_view(30)
    readout = read_keyframe(bundle, view, SPANS.pnr_span_s, GRID)
    sampled = pnr_view(480 - 240, 480, 16)
    head = bundle.head("pnr")
    level0 = view.graphs.x[view.graphs.depth == 0]
    with torch.no_grad():
        logits = head.classifier(head.project(level0[sampled.rows] + head.pe(torch.arange(16)))).reshape(-1)
    index = keyframe_index(logits)
    assert readout.index == index
    assert readout.frame == int(sampled.candidate_frames[index])
    assert readout.time_s == pytest.approx(readout.frame / 30)
    assert readout.offset_s == pytest.approx((readout.frame - 240) / 30)
    assert readout.span == Span(8.0, 16.0)


def test_moments_name_their_node_and_are_final_exactly_when_it_is() -> None:
    bundle, view = tiny_bundle(), offline_view(40)
    moments = read_moments(bundle, view, 10.0, GRID, NAMES).moments
    assert moments, "the random model detects something"
    assert [m.score for m in moments] == sorted((m.score for m in moments), reverse=True)
    graphs = view.graphs
    node_pos = {(d, k): p for d, k, p in zip(graphs.depth.tolist(), graphs.indices.tolist(), graphs.pos.tolist())}
    for moment in moments:
        # offsets are non-negative, so the producing node lies inside its (clipped) moment
        assert moment.start_s <= node_pos[moment.level, moment.node] <= moment.end_s
        assert moment.final == (moment.node < view.outputs_final[moment.level])
        assert 0.0 <= moment.start_s <= moment.end_s <= 40 * 16 / 30
    assert any(m.final for m in moments) and any(not m.final for m in moments)
    # the same detections as the head's own (benchmark) decoding of the span's nodes
    span_nodes = (graphs.pos >= 40 * 16 / 30 - 10.0)
    span = LevelGraphs(graphs.x[span_nodes], graphs.pos[span_nodes], graphs.video[span_nodes],
                       graphs.depth[span_nodes], graphs.extent[span_nodes], graphs.indices[span_nodes], 1)
    inputs = TaskInputs(duration=torch.tensor([40 * 16 / 30]))
    with torch.no_grad():
        (decoded,) = bundle.decode("mq", bundle.forward_graphs("mq", span, inputs), inputs)
    assert [(m.label.id, m.score) for m in moments] == list(zip(decoded.cls_idxs.tolist(), decoded.scores.tolist()))
    # the live score floor drops exactly the moments below it
    floor = moments[len(moments) // 2].score
    floored = read_moments(bundle, view, 10.0, GRID, NAMES, min_score=floor).moments
    assert floored == tuple(m for m in moments if m.score >= floor) and 0 < len(floored) < len(moments)


def _moment(level: int, node: int, final: bool, score: float = 0.5, label: int = 0) -> Moment:
    return Moment(0.0, 1.0 + score, Label(label, "x"), score, level, node, final)


def test_ledger_emits_each_final_node_class_once_and_every_provisional_one() -> None:
    ledger = MomentLedger(GRID)
    a, b, c = _moment(0, 2, True, 0.9), _moment(0, 5, False, 0.8), _moment(1, 4, True, 0.1)
    assert ledger.update(MomentsReadout(Span(0.0, 10.0), (a, b))).moments == (a, b)
    # a's node again, its score and bounds drifted: not re-emitted; another class of that node is; b still
    # provisional; c newly final.
    a_later, a_other_class = _moment(0, 2, True, 0.3), _moment(0, 2, True, 0.2, label=1)
    assert ledger.update(MomentsReadout(Span(0.0, 12.0), (a_later, b, c, a_other_class))).moments == (
        b, a_other_class, c)
    assert len(ledger) == 3
    # level-0 node 2 sits at 2.5 * 16 / 30 = 1.333 s, level-1 node 4 (row 8) at 8.5 * 16 / 30 = 4.533 s: a look-back
    # from 1.4 s forgets a's keys only (bounded memory), one from 4.6 s forgets c's too
    assert ledger.update(MomentsReadout(Span(1.4, 14.0), ())).moments == ()
    assert len(ledger) == 1
    assert ledger.update(MomentsReadout(Span(4.6, 16.0), ())).moments == ()
    assert len(ledger) == 0


def test_evidence_is_the_brute_force_nearest_prototypes() -> None:
    bundle, view = tiny_bundle(), offline_view(30)
    generator = torch.Generator().manual_seed(3)
    prototypes = {task: torch.randn(12, 16, generator=generator) for task in ("ego4d/ar", "ego4d/oscc")}
    verbs = torch.arange(12) // 3
    nouns = torch.arange(12) % 3
    backpack = Backpack(prototypes, verbs, nouns, torch.ones(12, dtype=torch.long), 7, 9)
    evidence = EvidenceReader.from_bundle(bundle, backpack, k=4).read(view, 2.0, GRID, NAMES)
    graphs = view.graphs
    inside = (graphs.depth == 0) & (graphs.pos >= 16.0 - 2.0)
    for task, matches in evidence.items():
        with torch.no_grad():
            query = bundle.head(task.split("/")[1]).project(graphs.x[inside]).mean(0)
        cosine = torch.nn.functional.cosine_similarity(query[None], prototypes[task], dim=1)
        expected = cosine.argsort(descending=True)[:4].tolist()
        assert [m.prototype for m in matches] == expected
        assert [m.similarity for m in matches] == pytest.approx(cosine[expected].tolist(), abs=1e-5)
        assert [(m.verb.id, m.noun.id) for m in matches] == [(int(verbs[i]), int(nouns[i])) for i in expected]


def test_spans_longer_than_the_horizon_are_refused() -> None:
    with pytest.raises(InputError, match="longer than"):
        Readouts(tiny_bundle(), GRID, ReadoutConfig(oscc_span_s=30.0))
    with pytest.raises(InputError, match="ar_span_s"):
        ReadoutConfig(ar_span_s=0.0)
    with pytest.raises(InputError, match="mq_min_score"):
        ReadoutConfig(mq_min_score=1.5)


def test_emitter_cadence_one_window_per_push_that_reaches_an_emission_row() -> None:
    rows = stream_rows(27)
    emitter = WindowEmitter(tiny_bundle(), GRID, SPANS, NAMES, stream_id="cadence")
    emitted = [(n + 1, len(emitter.push(rows[n]))) for n in range(10)]
    assert [n for n, count in emitted if count] == [8]
    (window,) = emitter.push(rows[10:20])  # passes row 16: one window, at row 20
    assert (window.window_index, window.rows, window.time_s) == (1, 20, pytest.approx(20 * 16 / 30))
    assert emitter.push(rows[20:23]) == []
    (last,) = emitter.finish()
    assert (last.window_index, last.rows) == (2, 23)
    assert emitter.finish() == []
    assert last.stream_id == "cadence" and last.received_wall_s <= last.emitted_wall_s
    assert {"engine", "ar", "lta", "oscc", "pnr", "mq", "total"} <= set(last.latency_ms)
