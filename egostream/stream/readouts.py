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

Per window, :class:`Readouts` runs one :class:`TaskReadout` per task (built by the task's :data:`READOUTS` hook, each
with its own caches, living as long as the stream). In incremental mode (the default) they reuse what
cannot change, the head outputs of final nodes (:class:`NodeCache`): AR, LTA and OSCC cache their neck outputs; MQ
its neck features, regression and the node part of the classifier's first layer, and skips the cached nodes that
cannot reach ``mq_min_score`` (:class:`MQReadout`); PNR recomputes its 16 nodes. Caches drop the nodes that leave
the spans, so they are bounded by the horizon. ``incremental=False`` runs the functions above (every head over its
span, the authors' way); both modes give the same answers (``tests/stream/test_incremental_readouts.py``).

Dispatch: ``READOUTS`` maps each task (its registry name, :mod:`egostream.tasks.base`) to its :class:`ReadoutHook`,
which builds the task's :class:`TaskReadout` for a stream; :meth:`Readouts.read` runs the readout of every task of the
bundle and files it under the task's ``result_field``. A plug-in task registers its own hook here
(:meth:`ReadoutHook.stateless` for a readout without caches).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from egostream.backbone.graphs import LevelGraphs, VideoBatch
from egostream.backbone.hierarchy import HierarchicalBackbone
from egostream.backpack.prototypes import Backpack
from egostream.ego4d.protocol.pnr import NUM_CANDIDATES, pnr_sampling
from egostream.errors import InputError
from egostream.kernels.cosine_topk import PrototypeIndex
from egostream.kernels.stacked_linear import PackedSequential, StackedLinear
from egostream.model import ModelBundle
from egostream.stream.config import ReadoutConfig, StreamConfig
from egostream.stream.edge_gates import EdgeGates
from egostream.stream.finality import level_final_counts, neighbour_reach
from egostream.stream.labels import LabelNames
from egostream.stream.row_buffer import RowBuffer
from egostream.registry import Registry
from egostream.stream.schema import (Action, ActionReadout, AnticipationReadout, KeyframeReadout, Moment,
                                     MomentsReadout, PrototypeMatch, ScoredAction, ScoredLabel, Span,
                                     StateChangeReadout)
from egostream.tasks.alignment import segment_mean
from egostream.tasks.ar import AROutput, ARTask
from egostream.tasks.base import Task, TaskInputs, task_class, task_names
from egostream.tasks.lta import LTAOutput, LTATask, future_graph, future_nodes
from egostream.tasks.mq import MQTask, mq_candidates
from egostream.tasks.mq_postprocessing import postprocess_mq_detections
from egostream.tasks.neck import ProjectionNeck
from egostream.tasks.oscc import OSCCOutput, OSCCTask

__all__ = ["ReadoutConfig", "NodeView", "PNRView", "pnr_view", "span_graphs", "read_action", "read_anticipation",
           "read_state_change", "read_keyframe", "read_moments", "MomentLedger", "EvidenceReader", "NodeCache",
           "TaskReadout", "ARReadout", "LTAReadout", "OSCCReadout", "PNRReadout", "MQReadout", "ReadoutHook",
           "READOUTS", "Readouts", "ReadoutSet"]


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
    rows = torch.nonzero(keep, as_tuple=True)[0]  # one search, then six gathers
    return LevelGraphs(graphs.x[rows], graphs.pos[rows], graphs.video[rows], graphs.depth[rows], graphs.extent[rows],
                       graphs.indices[rows], 1)


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
    return _anticipation(bundle, outputs, span, seed, names)


def _anticipation(bundle: ModelBundle, outputs: LTAOutput, span: Span, seed: int,
                  names: LabelNames) -> AnticipationReadout:
    """The LTA readout from the head's outputs: top-1 per future step, sequences sampled with seed ``seed``."""
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
    outputs = bundle.forward_graphs("mq", graphs, TaskInputs())
    return _decode_moments(bundle, view, span, graphs, outputs.cls_logits, outputs.reg_preds, names, min_score)


def _decode_moments(bundle: ModelBundle, view: NodeView, span: Span, graphs: LevelGraphs, cls_logits: Tensor,
                    reg_preds: Tensor, names: LabelNames, min_score: float, *,
                    skip_below_floor: bool = False) -> MomentsReadout:
    """The MQ readout from the head's outputs on the span's nodes ``graphs`` (``cls_logits [N, C]``,
    ``reg_preds [N, 2]``): candidates, soft-NMS, clipping to ``[0, T]``, the score floor, finality.

    ``skip_below_floor`` leaves out, before the candidates, every (node, class) whose score is below ``min_score``;
    the reported moments are the same. Soft-NMS only lowers scores, so such a candidate is never reported; it
    decays others only once picked, and picks come by decreasing score, so it only decays candidates scoring below
    it, which are not reported either (the per-level cap keeps the best candidates, the same ones with or without
    it; only exactly equal scores could be ordered differently).
    """
    head = bundle.head("mq")
    assert isinstance(head, MQTask)
    if skip_below_floor and min_score > 0:
        cls_logits = cls_logits.masked_fill(cls_logits.sigmoid() < min_score, float("-inf"))
    # One call over all levels: extent = 2**d, so it walks the levels in increasing order as the authors' meter does.
    found = mq_candidates(cls_logits, reg_preds, graphs.pos, graphs.extent,
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


class NodeCache:
    """Per-level cache of per-node head outputs of FINAL nodes, evicted with the readout span.

    Final node features never change (:mod:`egostream.stream.finality`), so a head's per-node outputs computed once
    for a final node hold for every later window. Level ``d``'s cache holds the outputs of the consecutive nodes
    ``start[d] .. start[d] + len - 1``; a window asks for the consecutive nodes ``lo .. hi - 1`` of its span, gets
    the cached rows of the final ones, computes the rest (the nodes that became final since the last window, which it
    caches, and the non-final frontier, which it does not), and drops the cached nodes before ``lo`` (the span only
    moves forward, so they are never read again).

    Args:
        compute: ``(features [n, F_in], level) -> {name: [n, ...]}``, the per-node outputs.
    """

    def __init__(self, compute: Callable[[Tensor, int], dict[str, Tensor]]) -> None:
        self.compute = compute
        self._start: dict[int, int] = {}
        self._rows: dict[int, dict[str, Tensor]] = {}

    def __len__(self) -> int:
        """Cached nodes over all levels."""
        return sum(len(next(iter(rows.values()))) for rows in self._rows.values() if rows)

    def level_rows(self, level: int, indices: Tensor, x: Tensor, final_count: int) -> dict[str, Tensor]:
        """The outputs of the level's span nodes: ``indices [n]`` consecutive absolute node indices, ``x [n, F_in]``
        their features, ``final_count`` the level's final nodes (``0 .. final_count - 1``)."""
        if len(indices) == 0:
            return self.compute(x, level)
        lo, hi = int(indices[0]), int(indices[-1]) + 1
        start, rows = self._start.get(level, lo), self._rows.get(level, {})
        cached = len(next(iter(rows.values()))) if rows else 0
        if start < lo:  # evict the nodes before the span
            drop = min(lo - start, cached)
            rows = {name: value[drop:] for name, value in rows.items()}
            start, cached = start + drop, cached - drop
        if cached == 0:
            start = lo
        first_new = start + cached  # cached nodes are start .. first_new - 1 (all final, inside the span)
        fresh = self.compute(x[first_new - lo:], level)
        final_end = max(first_new, min(final_count, hi))
        newly_final = final_end - first_new
        if newly_final:
            rows = {name: torch.cat((rows[name], value[:newly_final])) if rows else value[:newly_final].clone()
                    for name, value in fresh.items()}
        self._start[level], self._rows[level] = start, rows
        if not rows:
            return fresh
        return {name: torch.cat((rows[name][lo - start:], value[newly_final:])) for name, value in fresh.items()}


class TaskReadout:
    """One task's readout with its own caches: ``read(view)`` at each window (see the module docstring).

    A readout of the bundle's ``task`` answers with the same values in both modes: ``incremental=True`` reuses the
    per-node outputs of final nodes (:class:`NodeCache`), ``False`` recomputes the head over the span, as the
    authors' code does per clip. A task with an EgoPack head is always recomputed (its fusion reads the support
    tasks' nodes), and so is a translation model's primary task (its head reads translated tokens).

    Args:
        task: the short task name (``"ar"``...), also its key in :data:`READOUTS`.
    """

    task: ClassVar[str]

    def __init__(self, readouts: Readouts, incremental: bool) -> None:
        self.bundle = readouts.bundle
        self.grid = readouts.stream_config
        self.config = readouts.config
        self.names = readouts.names
        # caches hold the task head's per-node outputs, so they apply where the head reads the backbone's nodes: a
        # ModelBundle task without EgoPack fusion (a translation model's head reads translated tokens instead)
        self.incremental = (incremental and isinstance(self.bundle, ModelBundle)
                            and self.task not in self.bundle.egopack)

    def read(self, view: NodeView) -> object | None:  # pragma: no cover - abstract
        raise NotImplementedError


def packed_neck(head: Task) -> Callable[[Tensor], Tensor]:
    """``head.project`` with the neck's linear layers as oneDNN-packed GEMMs (:class:`PackedSequential`) when the
    head keeps the standard :class:`~egostream.tasks.neck.ProjectionNeck`; else ``head.project`` itself."""
    if type(head).project is Task.project and type(head.projector) is ProjectionNeck:
        return PackedSequential(head.projector.net)
    return head.project


class _Level0Projection:
    """``(x, level) -> {"projected": head.project(x)}``: a task's neck as a :class:`NodeCache` computation (a class,
    not a closure, so a stream snapshot can pickle the cache with the head as a reference)."""

    def __init__(self, head: Task) -> None:
        self.head = head
        self.project = packed_neck(head)

    def __getstate__(self) -> dict[str, object]:
        return {"head": self.head}

    def __setstate__(self, state: dict[str, Task]) -> None:
        self.head = state["head"]
        self.project = packed_neck(self.head)

    def __call__(self, x: Tensor, level: int) -> dict[str, Tensor]:
        return {"projected": self.project(x)}


class _Level0Readout(TaskReadout):
    """A readout of the level-0 nodes of a trailing span whose neck outputs of final nodes are cached."""

    def __init__(self, readouts: Readouts, incremental: bool) -> None:
        super().__init__(readouts, incremental)
        self.cache = NodeCache(_Level0Projection(self.bundle.head(self.task)))

    def _projected(self, view: NodeView, span_s: float) -> tuple[Span, LevelGraphs, Tensor]:
        """The trailing span of ``span_s`` seconds, its level-0 graphs and their neck outputs ``[n, F]`` (cached for
        final nodes)."""
        span = _trailing_span(view.rows, span_s, self.grid)
        graphs = span_graphs(view.graphs, span, level0_only=True)
        self.bundle.head(self.task).check_graphs(graphs)
        projected = self.cache.level_rows(0, graphs.indices, graphs.x, view.outputs_final[0])["projected"]
        return span, graphs, projected

    def _segment_features(self, view: NodeView, span_s: float, *, clamp_empty: bool) -> tuple[Span, Tensor]:
        """The trailing span of ``span_s`` seconds as one segment: its ``[1, F]`` mean neck output, as the task's
        forward pools it (``clamp_empty``: AR's guard against an empty segment, which OSCC does not have)."""
        span, graphs, projected = self._projected(view, span_s)
        inputs = _one_segment(span)
        return span, segment_mean(projected, graphs.pos, graphs.video, inputs.segments, inputs.segment_video,
                                  clamp_empty=clamp_empty)


class ARReadout(_Level0Readout):
    """AR (:func:`read_action`); incremental: the neck output of each final level-0 node is cached, then the
    segment mean and the classifiers run as ``ARTask.forward`` does (egostream.tasks.ar)."""

    task = "ar"

    @torch.no_grad()
    def read(self, view: NodeView) -> ActionReadout:
        if not self.incremental:
            return read_action(self.bundle, view, self.config.ar_span_s, self.grid, self.names)
        head = self.bundle.head("ar")
        assert isinstance(head, ARTask)
        span, features = self._segment_features(view, self.config.ar_span_s, clamp_empty=True)
        prediction = head.decode(AROutput(head.verb_classifier(features), head.noun_classifier(features), features))
        return ActionReadout(span, _scored(prediction.verb_ids[0], prediction.verb_scores[0], self.names.verb),
                             _scored(prediction.noun_ids[0], prediction.noun_scores[0], self.names.noun))


class _RepeatedRowLinears:
    """A TDGC layer's ``(lin_rel(x), lin_root(x))`` for ``x [Z, F]`` whose rows are all equal (the LTA future graph's
    input: one pooled feature repeated, :func:`~egostream.tasks.lta.future_nodes`): computed on the first row and
    broadcast to ``Z`` rows: equal to computing every row, bit for bit where each output row depends on its own input
    row only (the oneDNN path of :class:`StackedLinear`), else to float32 rounding."""

    def __init__(self, linears: StackedLinear) -> None:
        self.linears = linears

    def __call__(self, x: Tensor) -> tuple[Tensor, ...]:
        return tuple(out.expand(len(x), -1) for out in self.linears(x[:1]))


class LTAReadout(_Level0Readout):
    """LTA (:func:`read_anticipation`); incremental: cached neck outputs of final level-0 nodes, then the max-pool,
    the future graph and the classifiers as ``LTATask.forward`` does (egostream.tasks.lta); the future graph (its
    positions, edges and distance gates) is built once, only its node features change from window to window."""

    task = "lta"

    def __init__(self, readouts: Readouts, incremental: bool) -> None:
        super().__init__(readouts, incremental)
        self.gates = EdgeGates()
        #: The future graph's ``(pos [Z], edge_index [2, E])``, built at the first window.
        self.future: tuple[Tensor, Tensor] | None = None
        head = self.bundle.head("lta")
        assert isinstance(head, LTATask)
        first, second = (StackedLinear([conv.lin_rel, conv.lin_root]) for conv in head.head.convs)
        #: The future graph's two TDGC layers, each layer's two linear maps as one GEMM; the first layer's input
        #: rows are one pooled feature repeated, so its maps run on one row.
        self.graph_linears = (_RepeatedRowLinears(first), second)
        #: The verb and noun classifiers' first layers (same input) as one GEMM.
        self.classifier_first = StackedLinear([head.verb_classifier.first, head.noun_classifier.first])

    @torch.no_grad()
    def read(self, view: NodeView) -> AnticipationReadout:
        seed = self.config.lta_seed + view.rows
        if not self.incremental:
            return read_anticipation(self.bundle, view, self.config.lta_span_s, seed, self.grid, self.names)
        head = self.bundle.head("lta")
        assert isinstance(head, LTATask)
        span, _, projected = self._projected(view, self.config.lta_span_s)
        pooled = projected.max(0, keepdim=True).values
        if self.future is None:  # one video, the same future graph every window: only its node features change
            graph = future_graph(pooled, head.config.num_future, head.config.future_radius,
                                 authors_batched=head.config.authors_batched_graph)
            self.future = graph.pos, graph.edge_index
        pos, edge_index = self.future
        features = head.head(future_nodes(pooled, head.config.num_future), edge_index, pos,
                             self.gates.weights(head.head.convs, edge_index, pos), self.graph_linears)
        verb, noun = self.classifier_first(features)
        outputs = LTAOutput(head.verb_classifier.after_first(verb), head.noun_classifier.after_first(noun), features)
        return _anticipation(self.bundle, outputs, span, seed, self.names)


class OSCCReadout(_Level0Readout):
    """OSCC (:func:`read_state_change`); incremental: cached neck outputs of final level-0 nodes, then the segment
    mean (no clamp) and the classifier as ``OSCCTask.forward`` (egostream.tasks.oscc)."""

    task = "oscc"

    @torch.no_grad()
    def read(self, view: NodeView) -> StateChangeReadout:
        if not self.incremental:
            return read_state_change(self.bundle, view, self.config.oscc_span_s, self.grid)
        head = self.bundle.head("oscc")
        assert isinstance(head, OSCCTask)
        span, features = self._segment_features(view, self.config.oscc_span_s, clamp_empty=False)
        prediction = head.decode(OSCCOutput(head.classifier(features), features))
        return StateChangeReadout(span, bool(prediction.state_change[0]), float(prediction.probability[0]))


class PNRReadout(TaskReadout):
    """PNR (:func:`read_keyframe`), recomputed every window in both modes: its 16 nodes get the positional encoding
    of their frame index INSIDE the window, which changes as the window slides, so no node's input repeats."""

    task = "pnr"

    @torch.no_grad()
    def read(self, view: NodeView) -> KeyframeReadout:
        return read_keyframe(self.bundle, view, self.config.pnr_span_s, self.grid)


class _MQLevel:
    """The cached final nodes ``start .. start + len - 1`` of one level (see :class:`MQReadout`), one
    :class:`~egostream.stream.row_buffer.RowBuffer` per output: appending the nodes that became final and dropping
    those that left the span cost O(rows moved), not a copy of the level's whole cache every window."""

    def __init__(self, start: int) -> None:
        self.start = start
        self._buffers: dict[str, RowBuffer] = {}

    def __len__(self) -> int:
        return len(self._buffers["features"]) if self._buffers else 0

    @property
    def rows(self) -> dict[str, Tensor]:
        """The cached outputs by name, ``[len, ...]`` views (valid until the next :meth:`append`; writes into them
        update the cache)."""
        return {name: buffer.rows for name, buffer in self._buffers.items()}

    def drop_front(self, count: int) -> dict[str, Tensor]:
        """Drop the first ``count`` nodes; returns their rows (views, valid until the next :meth:`append`)."""
        dropped = {name: buffer.rows[:count] for name, buffer in self._buffers.items()}
        for buffer in self._buffers.values():
            buffer.drop_front(count)
        self.start += count
        return dropped

    def append(self, rows: dict[str, Tensor]) -> None:
        """Cache the next nodes' outputs (one ``[m, ...]`` tensor per name, the same names every time)."""
        for name, value in rows.items():
            if name not in self._buffers:
                self._buffers[name] = RowBuffer(tuple(value.shape[1:]), value.dtype, device=value.device)
            self._buffers[name].append(value)

    def replace(self, name: str, values: Tensor) -> None:
        """Overwrite output ``name`` of every cached node with ``values`` ``[len, ...]``."""
        self._buffers[name].truncate(0)
        self._buffers[name].append(values)


class MQReadout(TaskReadout):
    """MQ (:func:`read_moments`), every ``mq_every_s`` of stream time (``None``: every window; a window in between
    has no MQ readout), the last readout reused while no row arrived.

    Incremental, per final node of the span (cached, evicted when the span leaves it): the neck features ``f``, the
    regression and the node part of the classifier's first linear layer ``f W_f^T + b``. The classifier reads
    ``concat(f, pooled)`` with ``pooled`` the mean of ``f`` over the span (kept as a float64 running sum over the
    cached nodes plus the frontier), so its first layer is ``f W_f^T + b + c`` with ``c = pooled W_p^T``: one added
    ``[H]`` term per window. The layers after the first depend on ``c``, hence on the whole span; they run on

    * the non-final frontier and the nodes that became final (always), and
    * a cached node only if it may report a moment: a moment needs a score ``>= mq_min_score`` (the reported ones,
      see :func:`_decode_moments`), and a node's logits move by at most ``L_i * ||c - c_i||`` from those computed
      at its last exact run (context ``c_i``), ``L_i`` the product of the layers' Lipschitz bounds at that node
      (a LayerNorm of input spread ``s``: ``max|gamma| / (s - ||delta|| / sqrt(H))``, a linear layer: its spectral
      norm, the output layer: its largest row norm, ReLU: 1). A node whose best logit plus that bound (and a margin
      for float32 rounding) stays below the floor's logit cannot report anything and is skipped; the others are
      recomputed exactly. With ``mq_min_score = 0`` (or a classifier of other layers, or max pooling) every node
      runs every window.

    The reported moments are those of :func:`read_moments` (``tests/stream/test_incremental_readouts.py``).
    """

    task = "mq"
    #: Slack on the logit bound, in logits, for float32 rounding (scores near the floor are ~1e-7 apart in float32).
    LOGIT_MARGIN = 1e-3

    def __init__(self, readouts: Readouts, incremental: bool) -> None:
        super().__init__(readouts, incremental)
        head = self.bundle.head("mq")
        assert isinstance(head, MQTask)
        self.head = head
        self.span_s = readouts.mq_span_s
        self.first = head.classifier.first
        self.rest = [*list(head.classifier.net)[1:], head.classifier.cls] if len(head.classifier.net) else []
        self._width = head.config.features_size
        every = self.config.mq_every_s
        self.every_rows = 1 if every is None else max(1, round(every / self.grid.row_period_s))
        self._next_row = 0
        self._last: tuple[int, MomentsReadout] | None = None
        self.levels: dict[int, _MQLevel] = {}
        self._sum = torch.zeros(self._width, dtype=torch.float64)  # features of the cached nodes, summed
        self._contexts: list[Tensor] = []  # the contexts c_i of the cached nodes' last exact runs
        floor = self.config.mq_min_score
        prunable = (0.0 < floor < 1.0 and head.config.pool_features in (None, "mean")
                    and all(isinstance(m, (nn.LayerNorm, nn.ReLU, nn.Linear)) for m in self.rest) and bool(self.rest))
        self.floor_logit = math.log(floor / (1.0 - floor)) if prunable else None
        self._lipschitz = self._layer_bounds() if prunable else []
        #: Cached nodes skipped (not recomputed) and recomputed by the last window (the pruning at work).
        self.last_skipped, self.last_recomputed = 0, 0

    def __len__(self) -> int:
        """Cached nodes."""
        return sum(len(level) for level in self.levels.values())

    @property
    def _w_node(self) -> Tensor:
        """The node part ``W_f`` of the classifier's first layer (a view of the weight, never stored)."""
        return self.first.weight[:, :self._width]

    @property
    def _w_pooled(self) -> Tensor:
        """The pooled-context part ``W_p`` of the classifier's first layer (a view of the weight)."""
        return self.first.weight[:, self._width:]

    @torch.no_grad()
    def _layer_bounds(self) -> list[tuple[str, float, float]]:
        """Per layer after the first: ``("norm", max|gamma|, sqrt(H))``, ``("linear", bound, 0)`` or ``("relu")``."""
        bounds: list[tuple[str, float, float]] = []
        for index, module in enumerate(self.rest):
            if isinstance(module, nn.LayerNorm):
                gamma = float(module.weight.abs().max()) if module.weight is not None else 1.0
                bounds.append(("norm", gamma, math.sqrt(module.normalized_shape[0])))
            elif isinstance(module, nn.Linear):
                last = index == len(self.rest) - 1  # one logit at a time: the largest row norm
                norm = module.weight.norm(dim=1).max() if last else torch.linalg.matrix_norm(module.weight, ord=2)
                bounds.append(("linear", float(norm) * (1 + 1e-4), 0.0))
            else:
                bounds.append(("relu", 1.0, 0.0))
        return bounds

    def _node_outputs(self, x: Tensor, depth: Tensor) -> dict[str, Tensor]:
        """Per-node outputs of nodes ``x [m, F_in]`` at levels ``depth [m]``, all levels in one batch."""
        head = self.head
        features = head.project(x)
        first = features @ self._w_node.T
        if self.first.bias is not None:
            first = first + self.first.bias
        reg = head.regressor(features) * head.scales.index_select(0, depth)[:, None]
        return {"features": features, "reg": reg, "first": first}

    def _exact(self, first: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        """Logits ``[m, C]`` of nodes with first-layer node parts ``first [m, H]``, and the input spread
        ``sqrt(var + eps)`` of each LayerNorm ``[m, #norms]``."""
        hidden = first + context
        spreads = []
        for module in self.rest:
            if isinstance(module, nn.LayerNorm):
                spreads.append(torch.sqrt(hidden.var(-1, unbiased=False) + module.eps))
            hidden = module(hidden)
        return hidden, torch.stack(spreads, 1) if spreads else hidden.new_zeros(len(hidden), 0)

    def _logit_bound(self, distance: Tensor, spreads: Tensor) -> Tensor:
        """``[m]`` bound on how far any logit moves for a context change of ``distance [m]``."""
        bound, norm = distance * (1 + 1e-4), 0
        for kind, factor, root in self._lipschitz:
            if kind == "norm":
                denominator = spreads[:, norm] - bound / root
                bound = torch.where(denominator > 0, factor * bound / denominator.clamp(min=1e-30),
                                    torch.full_like(bound, float("inf")))
                norm += 1
            elif kind == "linear":
                bound = bound * factor
        return bound

    @torch.no_grad()
    def read(self, view: NodeView) -> MomentsReadout | None:
        if self._last is not None and self._last[0] == view.rows:
            return self._last[1]
        if view.rows < self._next_row:
            return None
        self._next_row = (view.rows // self.every_rows + 1) * self.every_rows
        if self.incremental:
            readout = self._read_incremental(view)
        else:
            readout = read_moments(self.bundle, view, self.span_s, self.grid, self.names, self.config.mq_min_score)
        self._last = (view.rows, readout)
        return readout

    def _evict(self, level: int, lo: int) -> int:
        """Drop the level's cached nodes before node ``lo`` (the span's first); returns the first uncached node."""
        store = self.levels.setdefault(level, _MQLevel(lo))
        if store.start < lo and len(store):
            dropped = store.drop_front(min(lo - store.start, len(store)))
            self._sum -= dropped["features"].sum(0, dtype=torch.float64)
        if len(store) == 0:
            store.start = lo
        return store.start + len(store)

    def _update_levels(self, span_rows: dict[int, Tensor], view: NodeView) -> dict[int, dict[str, Tensor]]:
        """Evict each level's cached nodes before its span rows (``view.graphs`` rows, consecutive nodes), compute
        the uncached ones in one batch, cache those that are final; returns each level's non-final frontier."""
        graphs = view.graphs
        todo = {level: rows[self._evict(level, int(graphs.indices[rows[0]])) - int(graphs.indices[rows[0]]):]
                for level, rows in span_rows.items()}
        every = torch.cat(list(todo.values()))
        fresh = self._node_outputs(graphs.x[every], graphs.depth[every])
        frontier, offset = {}, 0
        for level, rows in todo.items():
            part = {name: value[offset:offset + len(rows)] for name, value in fresh.items()}
            offset += len(rows)
            store = self.levels[level]
            hi = int(graphs.indices[span_rows[level][-1]]) + 1
            newly_final = max(0, min(view.outputs_final[level], hi) - (store.start + len(store)))
            if newly_final:
                new = {name: value[:newly_final] for name, value in part.items()}
                new["max_logit"] = torch.full((newly_final,), float("inf"))
                new["context"] = torch.full((newly_final,), -1, dtype=torch.long)
                new["spreads"] = torch.zeros(newly_final, sum(isinstance(m, nn.LayerNorm) for m in self.rest))
                store.append(new)
                self._sum += new["features"].sum(0, dtype=torch.float64)
            frontier[level] = {name: value[newly_final:] for name, value in part.items()}
        return frontier

    def _read_incremental(self, view: NodeView) -> MomentsReadout:
        head, graphs = self.head, view.graphs
        head.check_graphs(graphs)
        span = _trailing_span(view.rows, self.span_s, self.grid)
        inside = torch.nonzero((graphs.pos >= span.start_s) & (graphs.pos <= span.end_s), as_tuple=True)[0]
        depth = graphs.depth[inside]
        # graphs are level-major, each level's nodes consecutive
        levels, counts = torch.unique_consecutive(depth, return_counts=True)
        span_rows = dict(zip(levels.tolist(), inside.split(counts.tolist())))
        frontier = self._update_levels(span_rows, view)
        for level in [level for level in self.levels if level not in span_rows]:
            del self.levels[level]  # a level the span no longer reaches
        count = len(inside)
        pooled_sum = self._sum + sum((part["features"].sum(0, dtype=torch.float64) for part in frontier.values()),
                                    torch.zeros_like(self._sum))
        context = torch.zeros(self._w_node.shape[0])
        if head.config.pool_features == "mean":
            context = (pooled_sum / count).float() @ self._w_pooled.T
        elif head.config.pool_features == "max":
            every = [part["features"] for part in frontier.values()] + \
                [store.rows["features"] for store in self.levels.values() if len(store)]
            context = torch.cat(every).max(0).values @ self._w_pooled.T
        distances = (torch.stack(self._contexts) - context).norm(dim=1) if self._contexts else torch.zeros(0)
        context_id = len(self._contexts)
        self._contexts.append(context)
        runs, firsts = [], []
        for level in span_rows:
            store, part = self.levels[level], frontier[level]
            cached = store.rows
            run = torch.ones(len(store), dtype=torch.bool)
            if len(store) and self.floor_logit is not None:
                known = cached["context"] >= 0
                moved = torch.full((len(store),), float("inf"))
                moved[known] = self._logit_bound(distances[cached["context"][known]], cached["spreads"][known])
                run = ~(cached["max_logit"] + moved + self.LOGIT_MARGIN < self.floor_logit)
            runs.append(run)
            firsts += [cached["first"][run] if len(store) else part["first"][:0], part["first"]]
        # the classifier's later layers once over every level's chosen cached nodes and frontier
        logits, spreads = self._exact(torch.cat(firsts), context)
        chosen_rows, chosen_logits, chosen_reg = [], [], []
        skipped = recomputed = offset = 0
        for (level, rows), run in zip(span_rows.items(), runs):
            store, part = self.levels[level], frontier[level]
            count, fresh = int(run.sum()), len(part["first"])
            if count:
                mine, cached = logits[offset:offset + count], store.rows
                cached["max_logit"][run] = mine.max(1).values
                cached["spreads"][run] = spreads[offset:offset + count]
                cached["context"][run] = context_id
                chosen_rows.append(rows[:len(store)][run])
                chosen_logits.append(mine)
                chosen_reg.append(cached["reg"][run])
            if fresh:
                chosen_rows.append(rows[len(store):])
                chosen_logits.append(logits[offset + count:offset + count + fresh])
                chosen_reg.append(part["reg"])
            offset += count + fresh
            skipped += len(run) - count
            recomputed += count
        self.last_skipped, self.last_recomputed = skipped, recomputed
        self._forget_contexts()
        rows = torch.cat(chosen_rows)
        subset = LevelGraphs(graphs.x.new_empty(len(rows), 0), graphs.pos[rows], graphs.video[rows],
                             graphs.depth[rows], graphs.extent[rows], graphs.indices[rows], 1)
        return _decode_moments(self.bundle, view, span, subset, torch.cat(chosen_logits), torch.cat(chosen_reg),
                               self.names, self.config.mq_min_score, skip_below_floor=True)

    def _forget_contexts(self) -> None:
        """Renumber the contexts still referenced by cached nodes, dropping the others (bounded memory)."""
        if len(self._contexts) <= 64:
            return
        used = torch.cat([store.rows["context"] for store in self.levels.values() if len(store)]
                         + [torch.tensor([len(self._contexts) - 1])])
        keep = torch.unique(used[used >= 0])
        renumber = torch.full((len(self._contexts),), -1, dtype=torch.long)
        renumber[keep] = torch.arange(len(keep))
        self._contexts = [self._contexts[i] for i in keep.tolist()]
        for store in self.levels.values():
            if len(store):
                ids = store.rows["context"]
                store.replace("context", torch.where(ids >= 0, renumber[ids.clamp(min=0)], ids))


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


class _StatelessReadout(TaskReadout):
    """A readout without caches: ``read(readouts, view)`` every window (:meth:`ReadoutHook.stateless`)."""

    def __init__(self, readouts: Readouts, read: Callable[[Readouts, NodeView], Any]) -> None:
        self.readouts = readouts
        self.read_fn = read

    def read(self, view: NodeView) -> Any:
        return self.read_fn(self.readouts, view)


@dataclass(frozen=True)
class ReadoutHook:
    """How one task is read from the stream (its entry in :data:`READOUTS`).

    Attributes:
        create: ``create(readouts, incremental) -> TaskReadout``, the task's readout for one stream (with its own
            caches; ``incremental=False`` recomputes every window).
        span_s: ``span_s(readouts) -> seconds`` the readout looks back (checked against the engine's horizon).
    """

    create: Callable[[Readouts, bool], TaskReadout]
    span_s: Callable[[Readouts], float]

    @classmethod
    def stateless(cls, read: Callable[[Readouts, NodeView], Any], span_s: Callable[[Readouts], float]) -> ReadoutHook:
        """A hook for a readout that caches nothing: ``read(readouts, view) -> readout`` (a frozen dataclass of
        plain fields) from the nodes of the task's backbone."""
        return cls(lambda readouts, incremental: _StatelessReadout(readouts, read), span_s)


READOUTS: Registry[ReadoutHook] = Registry("stream readout")
READOUTS.register("ar")(ReadoutHook(ARReadout, lambda r: r.config.ar_span_s))
READOUTS.register("lta")(ReadoutHook(LTAReadout, lambda r: r.config.lta_span_s))
READOUTS.register("oscc")(ReadoutHook(OSCCReadout, lambda r: r.config.oscc_span_s))
READOUTS.register("pnr")(ReadoutHook(PNRReadout, lambda r: r.config.pnr_span_s))
READOUTS.register("mq")(ReadoutHook(MQReadout, lambda r: r.mq_span_s))


class Readouts:
    """All readouts of a bundle (only the tasks it has), with per-readout timing.

    Args:
        bundle: the model, in eval mode.
        stream_config: the row grid and horizon (MQ's default look-back).
        config: the readout spans.
        names: class names for the ids.
        evidence: the backpack reader, or ``None`` for no evidence.
        incremental: reuse the outputs of final nodes across windows (:class:`TaskReadout`; same answers), or
            recompute every head over its span as the authors' code does (the benchmark baseline).
    """

    def __init__(self, bundle: ModelBundle, stream_config: StreamConfig, config: ReadoutConfig | None = None,
                 names: LabelNames | None = None, evidence: EvidenceReader | None = None,
                 incremental: bool = True) -> None:
        self.bundle = bundle
        self.stream_config = stream_config
        self.config = config or ReadoutConfig()
        self.names = names or LabelNames()
        self.evidence = evidence
        if self.lookback_s > self.horizon_span_s:
            raise InputError(None, "readouts", f"a readout span ({self.lookback_s} s) is longer than the "
                                               f"{self.horizon_span_s} s the engine's horizon retains")
        self.tasks: dict[str, TaskReadout] = {task: READOUTS.get(task).create(self, incremental)
                                              for task in task_names() if task in bundle.tasks}

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
        for task, readout in self.tasks.items():
            result_field = task_class(task).field_name()
            with timer(result_field):
                result = readout.read(views[task])
            if result is None:  # not due in this window (``mq_every_s``): no readout, no latency entry
                del out.latency_ms[result_field]
            else:
                out.put(result_field, result)
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
