"""Readouts: what each task head says about the stream at one moment, from the retained hierarchy nodes.

At a stream of ``n`` rows (stream time ``T = n * stride_frames / fps`` seconds) every readout selects the nodes it
needs BY TIME from a :class:`NodeView` (the retained nodes of one backbone, positions in stream seconds), so the
same function gives the streaming answer (nodes from the incremental engine) and the offline one (nodes from the
offline backbone on rows ``[0, n)``, :meth:`NodeView.offline`), whatever the engine has evicted beyond the spans:

* **AR** (:func:`read_action`): level-0 nodes with ``T - ar_span_s <= pos <= T``, through the AR head as ONE
  segment ``[T - ar_span_s, T]`` (the head's segment mean of the projected nodes, inclusive bounds, as
  ``egostream.tasks.ar`` aligns a ground-truth segment); top-k verbs and nouns.
* **LTA** (:func:`read_anticipation`): level-0 nodes of ``[T - lta_span_s, T]`` as the observed clip; the top-1
  (verb, noun) of each of the ``Z`` future steps and ``K`` sequences sampled by the head's decoding with a
  ``torch.Generator`` seeded ``lta_seed + n`` (so a replay draws the same samples).
* **OSCC** (:func:`read_state_change`): the OSCC head on the segment ``[T - oscc_span_s, T]``.
* **PNR** (:func:`read_keyframe`): the trailing window of frames ``[max(0, 16 n - 30 * pnr_span_s), 16 n)`` is
  sampled as the PNR task samples a clip (:func:`pnr_view`: 16 candidate frames and 16 feature rows,
  ``egostream.ego4d.protocol.pnr``); the level-0 node features of those rows, with frame indices 0..15 for the
  head's positional encoding, are the 16 nodes; the keyframe rule picks one, answered in stream seconds.
* **MQ** (:func:`read_moments`): every level's nodes of ``[T - mq_span_s, T]`` (default: the horizon), the MQ head
  (its global context is the mean over these nodes), the authors' candidate decoding, soft-NMS and clipping to
  ``[0, T]``; the moments scoring at least ``mq_min_score`` are reported. A moment is *final* when the node that
  produced it is final. Its score and bounds may still drift (the global context and the soft-NMS neighbours
  change with the look-back), so :class:`MomentLedger` emits each (level, node, class) final moment once, with the
  values of the first window that finds it final.
* **Evidence** (:class:`EvidenceReader`): for each support task of a backpack, its neck on the AR span's level-0
  nodes, averaged (the EgoPack AR query, ``egostream.backpack.fusion.SegmentFusion``), and the ``k`` nearest
  prototypes by cosine similarity (``egostream.kernels.cosine_topk``) with their (verb, noun) names.

Heads run through :meth:`egostream.model.ModelBundle.forward_graphs`, so EgoPack novel tasks fuse their backpack
exactly as offline.

Dispatch: ``READOUTS`` maps each task (its registry name, :mod:`egostream.tasks.base`) to its :class:`TaskReadout`;
:meth:`Readouts.read` runs the readout of every task of the bundle and files it under the task's ``result_field``.
A plug-in task registers its own readout here.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from torch import Tensor

from egostream.backbone.graphs import LevelGraphs, VideoBatch
from egostream.backbone.hierarchy import HierarchicalBackbone
from egostream.backpack.prototypes import Backpack
from egostream.ego4d.protocol.pnr import NUM_CANDIDATES, pnr_sampling
from egostream.errors import InputError
from egostream.kernels.cosine_topk import PrototypeIndex
from egostream.model import ModelBundle
from egostream.stream.config import ReadoutConfig, StreamConfig
from egostream.stream.finality import level_final_counts, neighbour_reach
from egostream.stream.labels import LabelNames
from egostream.registry import Registry
from egostream.stream.schema import (Action, ActionReadout, AnticipationReadout, KeyframeReadout, Moment,
                                     MomentsReadout, PrototypeMatch, ScoredAction, ScoredLabel, Span,
                                     StateChangeReadout)
from egostream.tasks.alignment import segment_mean
from egostream.tasks.base import TaskInputs, task_class, task_names
from egostream.tasks.mq import MQTask, mq_candidates
from egostream.tasks.mq_postprocessing import postprocess_mq_detections

__all__ = ["ReadoutConfig", "NodeView", "PNRView", "pnr_view", "span_graphs", "read_action", "read_anticipation",
           "read_state_change", "read_keyframe", "read_moments", "MomentLedger", "EvidenceReader", "Readouts",
           "ReadoutSet", "TaskReadout", "READOUTS"]


@dataclass
class NodeView:
    """The nodes of one backbone at a stream of ``rows`` rows.

    Attributes:
        graphs: one-video :class:`LevelGraphs`: ``pos`` in stream seconds, ``indices`` the absolute node index at
            its level (node ``k`` of level ``d`` is anchored at row ``2**d * k``); any retained subset that covers
            the readout spans.
        outputs_final: per level, the number of final nodes (nodes ``0 .. count - 1`` of the level are final).
        rows: rows received so far.
    """

    graphs: LevelGraphs
    outputs_final: tuple[int, ...]
    rows: int

    @property
    def final(self) -> Tensor:
        """``[N_all]`` bool: the node can no longer change."""
        counts = torch.tensor(self.outputs_final, dtype=torch.long)
        return self.graphs.indices < counts[self.graphs.depth]

    @classmethod
    @torch.no_grad()
    def offline(cls, backbone: HierarchicalBackbone, rows: Tensor, config: StreamConfig) -> NodeView:
        """The offline reference: ``backbone`` on the ``[n, D]`` rows ``[0, n)`` of a stream, node ``i`` at
        ``(0.5 + i) * stride / fps`` s, with the finality counts of
        :func:`egostream.stream.finality.level_final_counts`."""
        batch = VideoBatch.from_videos([rows], [config.row_positions_s(0, len(rows))])
        _, graphs = backbone(batch)
        final_counts = level_final_counts(len(rows), backbone.depth, backbone.cfg.n_layers,
                                          neighbour_reach(backbone.cfg.radius_s, config.row_period_s),
                                          backbone.cfg.pool)
        return cls(graphs, final_counts, len(rows))


def _stream_time_s(rows: int, config: StreamConfig) -> float:
    return rows * config.row_period_s


def _trailing_span(rows: int, span_s: float, config: StreamConfig) -> Span:
    end = _stream_time_s(rows, config)
    return Span(max(0.0, end - span_s), end)


def span_graphs(graphs: LevelGraphs, span: Span, *, level0_only: bool) -> LevelGraphs:
    """The nodes of ``graphs`` with ``span.start_s <= pos <= span.end_s`` (float32 comparisons), level-0 only or
    every level; one video, level-major order kept."""
    keep = (graphs.pos >= span.start_s) & (graphs.pos <= span.end_s)
    if level0_only:
        keep &= graphs.depth == 0
    return LevelGraphs(graphs.x[keep], graphs.pos[keep], graphs.video[keep], graphs.depth[keep], graphs.extent[keep],
                       graphs.indices[keep], 1)


def _one_segment(span: Span) -> TaskInputs:
    return TaskInputs(segments=torch.tensor([[span.start_s, span.end_s]], dtype=torch.float32),
                      segment_video=torch.zeros(1, dtype=torch.long))


def _scored(ids: Tensor, scores: Tensor, name: Callable[[int], object]) -> tuple[ScoredLabel, ...]:
    labels = [name(int(i)) for i in ids.tolist()]
    return tuple(ScoredLabel(label.id, label.name, float(s))  # type: ignore[attr-defined]
                 for label, s in zip(labels, scores.tolist()))


@torch.no_grad()
def read_action(bundle: ModelBundle, view: NodeView, span_s: float, config: StreamConfig,
                names: LabelNames) -> ActionReadout:
    """AR over the trailing ``span_s`` seconds (see the module docstring)."""
    span = _trailing_span(view.rows, span_s, config)
    inputs = _one_segment(span)
    prediction = bundle.decode("ar", bundle.forward_graphs("ar", span_graphs(view.graphs, span, level0_only=True),
                                                           inputs), inputs)
    return ActionReadout(span, _scored(prediction.verb_ids[0], prediction.verb_scores[0], names.verb),
                         _scored(prediction.noun_ids[0], prediction.noun_scores[0], names.noun))


@torch.no_grad()
def read_anticipation(bundle: ModelBundle, view: NodeView, span_s: float, seed: int, config: StreamConfig,
                      names: LabelNames) -> AnticipationReadout:
    """LTA from the observed trailing ``span_s`` seconds; samples drawn with a generator seeded ``seed``."""
    span = _trailing_span(view.rows, span_s, config)
    outputs = bundle.forward_graphs("lta", span_graphs(view.graphs, span, level0_only=True), TaskInputs())
    verb_scores, verb_ids = torch.softmax(outputs.verb_logits, -1).max(-1)
    noun_scores, noun_ids = torch.softmax(outputs.noun_logits, -1).max(-1)
    top1 = tuple(ScoredAction(verb, noun) for verb, noun in zip(_scored(verb_ids, verb_scores, names.verb),
                                                                 _scored(noun_ids, noun_scores, names.noun)))
    sampled = bundle.decode("lta", outputs, generator=torch.Generator().manual_seed(seed))
    samples = tuple(tuple(Action(names.verb(v), names.noun(n)) for v, n in zip(verbs, nouns))
                    for verbs, nouns in zip(sampled.verbs[0].tolist(), sampled.nouns[0].tolist()))
    return AnticipationReadout(span, top1, samples, seed)


@torch.no_grad()
def read_state_change(bundle: ModelBundle, view: NodeView, span_s: float, config: StreamConfig) -> StateChangeReadout:
    """OSCC on the trailing ``span_s`` seconds as one segment."""
    span = _trailing_span(view.rows, span_s, config)
    inputs = _one_segment(span)
    prediction = bundle.decode("oscc", bundle.forward_graphs("oscc", span_graphs(view.graphs, span, level0_only=True),
                                                             inputs), inputs)
    return StateChangeReadout(span, bool(prediction.state_change[0]), float(prediction.probability[0]))


@dataclass(frozen=True)
class PNRView:
    """The PNR sampling of a window of frames ``[start_frame, end_frame)``.

    Attributes:
        candidate_frames: ``[16]`` int64 absolute frame numbers.
        rows: ``[16]`` int64 feature rows read for them (rows may repeat).
    """

    start_frame: int
    end_frame: int
    candidate_frames: Tensor
    rows: Tensor


def pnr_view(start_frame: int, end_frame: int, stride_frames: int) -> PNRView:
    """Sample a window as the PNR task does (sapeirone/hier-egopack@4fff4e5:data/ego4d/PNR.py L136-156), by
    :func:`egostream.ego4d.protocol.pnr.pnr_sampling`, the sampling of :func:`~egostream.ego4d.protocol.pnr.pnr_window`:
    candidate frames ``np.linspace(start, end, 16, endpoint=False, dtype=int)`` clipped to ``[start, end]``; rows
    ``torch.linspace(start // stride, max(start // stride, end // stride) - 1, 16, dtype=long)``."""
    candidates, rows = pnr_sampling(start_frame, end_frame, stride_frames)
    return PNRView(start_frame, end_frame, candidates, rows)


@torch.no_grad()
def read_keyframe(bundle: ModelBundle, view: NodeView, span_s: float, config: StreamConfig) -> KeyframeReadout:
    """PNR on the trailing ``span_s`` seconds (see the module docstring); the keyframe as a stream time."""
    end_frame = view.rows * config.stride_frames
    sampled = pnr_view(max(0, end_frame - round(span_s * config.fps)), end_frame, config.stride_frames)
    level0 = view.graphs.depth == 0
    first_row = int(view.graphs.indices[level0][0])  # retained level-0 nodes are consecutive rows
    if int(sampled.rows.min()) < first_row:
        raise InputError(None, "readouts.pnr_span_s", f"the PNR window needs row {int(sampled.rows.min())}, the "
                                                      f"engine retains rows from {first_row} on")
    where = sampled.rows - first_row
    frame_index = torch.arange(NUM_CANDIDATES)
    graphs = LevelGraphs(view.graphs.x[level0][where], frame_index * config.row_period_s,
                         torch.zeros(NUM_CANDIDATES, dtype=torch.long), torch.zeros(NUM_CANDIDATES, dtype=torch.long),
                         torch.ones(NUM_CANDIDATES), frame_index, 1)
    inputs = TaskInputs(indices=frame_index, candidate_frames=sampled.candidate_frames[None],
                        start_frame=torch.tensor([sampled.start_frame]))
    outputs = bundle.forward_graphs("pnr", graphs, inputs)
    index = int(bundle.decode("pnr", outputs, inputs).index[0])
    frame = int(sampled.candidate_frames[index])
    return KeyframeReadout(Span(sampled.start_frame / config.fps, end_frame / config.fps), time_s=frame / config.fps,
                           offset_s=(frame - sampled.start_frame) / config.fps, frame=frame, index=index,
                           score=float(outputs.logits.reshape(-1)[index]))


@torch.no_grad()
def read_moments(bundle: ModelBundle, view: NodeView, span_s: float, config: StreamConfig, names: LabelNames,
                 min_score: float = 0.0) -> MomentsReadout:
    """The MQ detections over the trailing ``span_s`` seconds scoring at least ``min_score`` after soft-NMS, by
    decreasing score, each with its producing node and marked final when that node is final."""
    span = _trailing_span(view.rows, span_s, config)
    graphs = span_graphs(view.graphs, span, level0_only=False)
    head = bundle.head("mq")
    assert isinstance(head, MQTask)
    outputs = bundle.forward_graphs("mq", graphs, TaskInputs())
    # One call over all levels: extent = 2**d, so it walks the levels in increasing order as the authors' meter does.
    found = mq_candidates(outputs.cls_logits, outputs.reg_preds, graphs.pos, graphs.extent,
                          score_threshold=head.config.score_threshold,
                          max_per_level=head.config.max_candidates_per_level, min_duration=head.config.min_duration)
    kept = postprocess_mq_detections(found.segments, found.scores, found.labels, span.end_s)
    rows = found.nodes[kept.orig_idx]
    levels, nodes = graphs.depth[rows], graphs.indices[rows]
    final = nodes < torch.tensor(view.outputs_final, dtype=torch.long)[levels]
    moments = tuple(Moment(start, end, names.moment(label), score, level, node, is_final)
                    for (start, end), score, label, level, node, is_final
                    in zip(kept.segs.tolist(), kept.scores.tolist(), kept.cls_idxs.tolist(), levels.tolist(),
                           nodes.tolist(), final.tolist())
                    if score >= min_score)
    return MomentsReadout(span, moments)


class MomentLedger:
    """Turns each window's detections into what is emitted: moments that became final now, and the provisional ones.

    A final moment is emitted once, in the first window that finds its node final, with that window's score and
    bounds, and never again: its key is (level, node, class), since a final node's moment still drifts from window
    to window (the MQ global context and the soft-NMS neighbours change with the look-back). A key is forgotten
    once its node's time (``config``'s row grid) lies before the look-back, which never reads it again, so the
    ledger stays bounded.
    """

    def __init__(self, config: StreamConfig) -> None:
        self.config = config
        self._emitted: dict[tuple[int, int, int], float] = {}  # key -> its node's time, seconds

    def __len__(self) -> int:
        return len(self._emitted)

    def update(self, detections: MomentsReadout) -> MomentsReadout:
        """The moments to emit for this window, by decreasing score."""
        out = []
        for moment in detections.moments:
            key = (moment.level, moment.node, moment.label.id)
            if not moment.final:
                out.append(moment)
            elif key not in self._emitted:
                self._emitted[key] = float(self.config.row_positions_s(2 ** moment.level * moment.node, 1)[0])
                out.append(moment)
        self._forget_before(detections.horizon.start_s)
        return MomentsReadout(detections.horizon, tuple(sorted(out, key=lambda m: -m.score)))

    def _forget_before(self, start_s: float) -> None:
        """Drop the keys whose node sits before ``start_s`` (float32 times, compared as :func:`span_graphs` does)."""
        if not self._emitted:
            return
        inside = torch.tensor(list(self._emitted.values()), dtype=torch.float32) >= start_s
        self._emitted = {key: pos for (key, pos), keep in zip(self._emitted.items(), inside.tolist()) if keep}


class EvidenceReader:
    """The nearest backpack prototypes of the current action, per support task (see the module docstring).

    Args:
        backpack: prototypes of the support tasks and the (verb, noun) pair of each row.
        necks: support task (authors' name, as in the backpack) -> its projection neck ``[N, F_in] -> [N, F]``.
        k: prototypes reported per task.
    """

    def __init__(self, backpack: Backpack, necks: Mapping[str, Callable[[Tensor], Tensor]], k: int) -> None:
        missing = [task for task in backpack.support_tasks if task not in necks]
        if missing:
            raise InputError(backpack.path, "support_tasks", f"the model has no neck for support tasks {missing}")
        self.backpack = backpack
        self.necks = dict(necks)
        self.k = min(k, backpack.num_prototypes)
        self.indices = {task: PrototypeIndex(backpack.task_prototypes(task).float())
                        for task in backpack.support_tasks}

    @classmethod
    def from_bundle(cls, bundle: ModelBundle, backpack: Backpack, k: int) -> EvidenceReader:
        """Necks from the bundle: an EgoPack head's support necks, else the bundle's own head of that task."""
        necks: dict[str, Callable[[Tensor], Tensor]] = {}
        for egopack in bundle.egopack.values():
            necks.update(egopack.support_necks.items())  # type: ignore[union-attr]
        for task in backpack.support_tasks:
            if task not in necks and task.split("/")[-1] in bundle.tasks:
                necks[task] = bundle.head(task).project
        return cls(backpack, necks, k)

    @torch.no_grad()
    def read(self, view: NodeView, span_s: float, config: StreamConfig,
             names: LabelNames) -> dict[str, tuple[PrototypeMatch, ...]]:
        span = _trailing_span(view.rows, span_s, config)
        graphs = span_graphs(view.graphs, span, level0_only=True)
        segment = _one_segment(span)
        result = {}
        for task, index in self.indices.items():
            query = segment_mean(self.necks[task](graphs.x), graphs.pos, graphs.video, segment.segments,
                                 segment.segment_video, clamp_empty=True)
            similarities, rows = index.topk(query, self.k)
            result[task] = tuple(
                PrototypeMatch(row, names.verb(int(self.backpack.verb_labels[row])),
                               names.noun(int(self.backpack.noun_labels[row])), similarity)
                for row, similarity in zip(rows[0].tolist(), similarities[0].tolist()))
        return result


@dataclass
class ReadoutSet:
    """The readouts of one window and the milliseconds each took; ``plugins`` holds the readouts of tasks without
    a field of their own, by result field."""

    ar: ActionReadout | None = None
    lta: AnticipationReadout | None = None
    oscc: StateChangeReadout | None = None
    pnr: KeyframeReadout | None = None
    mq: MomentsReadout | None = None
    evidence: dict[str, tuple[PrototypeMatch, ...]] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    plugins: dict[str, Any] = field(default_factory=dict)

    def put(self, result_field: str, readout: Any) -> None:
        """File a task's readout under its result field (a built-in field, else ``plugins``)."""
        if result_field in _BUILTIN_FIELDS:
            setattr(self, result_field, readout)
        else:
            self.plugins[result_field] = readout


#: The result fields :class:`ReadoutSet` (and :class:`~egostream.stream.schema.WindowResult`) have of their own.
_BUILTIN_FIELDS = frozenset(item.name for item in fields(ReadoutSet)) - {"evidence", "latency_ms", "plugins"}


@dataclass(frozen=True)
class TaskReadout:
    """How one task is read from the stream.

    Attributes:
        read: ``read(readouts, view) -> readout`` (a frozen dataclass of plain fields) from the nodes of the task's
            backbone.
        span_s: ``span_s(readouts) -> seconds`` the readout looks back (checked against the engine's horizon).
    """

    read: Callable[[Readouts, NodeView], Any]
    span_s: Callable[[Readouts], float]


READOUTS: Registry[TaskReadout] = Registry("stream readout")
READOUTS.register("ar")(TaskReadout(
    lambda r, view: read_action(r.bundle, view, r.config.ar_span_s, r.stream_config, r.names),
    lambda r: r.config.ar_span_s))
READOUTS.register("lta")(TaskReadout(
    lambda r, view: read_anticipation(r.bundle, view, r.config.lta_span_s, r.config.lta_seed + view.rows,
                                      r.stream_config, r.names),
    lambda r: r.config.lta_span_s))
READOUTS.register("oscc")(TaskReadout(
    lambda r, view: read_state_change(r.bundle, view, r.config.oscc_span_s, r.stream_config),
    lambda r: r.config.oscc_span_s))
READOUTS.register("pnr")(TaskReadout(
    lambda r, view: read_keyframe(r.bundle, view, r.config.pnr_span_s, r.stream_config),
    lambda r: r.config.pnr_span_s))
READOUTS.register("mq")(TaskReadout(
    lambda r, view: read_moments(r.bundle, view, r.mq_span_s, r.stream_config, r.names, r.config.mq_min_score),
    lambda r: r.mq_span_s))


class Readouts:
    """All readouts of a bundle (only the tasks it has), with per-readout timing.

    Args:
        bundle: the model, in eval mode.
        stream_config: the row grid and horizon (MQ's default look-back).
        config: the readout spans.
        names: class names for the ids.
        evidence: the backpack reader, or ``None`` for no evidence.
    """

    def __init__(self, bundle: ModelBundle, stream_config: StreamConfig, config: ReadoutConfig | None = None,
                 names: LabelNames | None = None, evidence: EvidenceReader | None = None) -> None:
        self.bundle = bundle
        self.stream_config = stream_config
        self.config = config or ReadoutConfig()
        self.names = names or LabelNames()
        self.evidence = evidence
        if self.lookback_s > self.horizon_span_s:
            raise InputError(None, "readouts", f"a readout span ({self.lookback_s} s) is longer than the "
                                               f"{self.horizon_span_s} s the engine's horizon retains")

    @property
    def horizon_span_s(self) -> float:
        """The longest trailing span whose nodes the engine retains: ``(horizon_rows - 0.5)`` row periods."""
        return (self.stream_config.horizon_rows - 0.5) * self.stream_config.row_period_s

    @property
    def mq_span_s(self) -> float:
        return self.config.mq_span_s if self.config.mq_span_s is not None else self.horizon_span_s

    @property
    def lookback_s(self) -> float:
        """The longest span a readout of the bundle's tasks (or the evidence, over the AR span) reads."""
        spans = [READOUTS.get(task).span_s(self) for task in self.bundle.tasks]
        if self.evidence is not None:
            spans.append(self.config.ar_span_s)
        return max(spans)

    @property
    def evidence_task(self) -> str:
        """The task whose backbone nodes the evidence queries read (an EgoPack task, else AR, else the first)."""
        for task in (*self.bundle.egopack.keys(), "ar"):
            if task in self.bundle.tasks:
                return task
        return self.bundle.tasks[0]

    def read(self, views: Mapping[str, NodeView]) -> ReadoutSet:
        """Every readout of the bundle's tasks; ``views`` maps each task to the nodes of its backbone."""
        out = ReadoutSet()
        rows = {view.rows for view in views.values()}
        if len(rows) != 1:
            raise InputError(None, "views", f"the backbones' views are at different rows {sorted(rows)}")
        timer = _Timer(out.latency_ms)
        for task in (name for name in task_names() if name in self.bundle.tasks):
            result_field = task_class(task).field_name()
            with timer(result_field):
                out.put(result_field, READOUTS.get(task).read(self, views[task]))
        if self.evidence is not None:
            with timer("evidence"):
                out.evidence = self.evidence.read(views[self.evidence_task], self.config.ar_span_s,
                                                  self.stream_config, self.names)
        return out


class _Timer:
    """Context managers that record the milliseconds of a named stage into a dict."""

    def __init__(self, into: dict[str, float]) -> None:
        self.into = into

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.into[stage] = (time.perf_counter() - start) * 1e3
