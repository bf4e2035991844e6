"""Streaming translation: the translator over a bounded window of the newest level-0 nodes of a live stream.

One :class:`~egostream.stream.engine.StreamEngine` per distinct source backbone grows the prefix-exact hierarchy
(``shared/DESIGN.md`` §4). At every call of :meth:`StreamingTranslation.current` the translator attends over the
newest ``window_nodes`` level-0 nodes (fewer at the stream start, and never before the engines' horizon): the
tokens of every source task are built from the nodes' neck outputs, a FINAL node's tokens (no future row can change
its backbone feature) are built once and cached until the node leaves the window, and only the non-final frontier's
and new nodes' tokens are built again; the time encoding (seconds before the newest node) is added per call. So
per-window work is bounded by ``window_nodes`` whatever the stream length: ``K * window_nodes`` tokens through the
encoder, at most the frontier plus the new rows through the token builder (:attr:`StreamingTranslation.last_built`).

:func:`translate_prefix` is the offline definition the stream must equal: the offline backbone on rows ``[0, n)``
(one video, the stream's row times), the newest ``window_nodes`` level-0 nodes, the same translator and head.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from egostream.backbone.graphs import VideoBatch
from egostream.stream.config import StreamConfig
from egostream.stream.engine import StreamEngine
from egostream.tasks import TaskInputs
from egostream.translation.bundle import TranslationBundle, translated_graphs
from egostream.translation.sources import SourceViews
from egostream.translation.translator import Translation

__all__ = ["StreamingTranslation", "TranslatedWindow", "translate_prefix"]


@dataclass
class TranslatedWindow:
    """One window's translation.

    Attributes:
        outputs: the primary head's outputs (the task's own type, e.g. ``AROutput``) for ``inputs``.
        translation: the translated primary tokens of the window's nodes and the attention shares.
        views: the window's nodes (times in stream seconds, absolute node indices).
        attention: source task -> share of the primary task's attention in this window.
    """

    outputs: Any
    translation: Translation
    views: SourceViews
    attention: dict[str, float]


class StreamingTranslation:
    """A translation model on a stream of feature rows (see the module docstring).

    Args:
        bundle: the translation model (put in eval mode).
        config: the stream's row grid and horizon.
        window_nodes: level-0 nodes attended over (default: the model's ``config.window_nodes``).
    """

    def __init__(self, bundle: TranslationBundle, config: StreamConfig | None = None,
                 window_nodes: int | None = None) -> None:
        self.bundle = bundle.eval()
        self.config = config if config is not None else StreamConfig()
        self.window_nodes = window_nodes if window_nodes is not None else bundle.config.window_nodes
        if self.window_nodes < 1:
            raise ValueError(f"window_nodes must be >= 1, got {self.window_nodes}")
        sources = bundle.sources.bundle
        self._backbone_of = {task: sources.backbone_index[task] for task in bundle.sources.tasks}
        self.engines = {index: StreamEngine(sources.backbones[index], self.config)  # type: ignore[arg-type]
                        for index in sorted(set(self._backbone_of.values()))}
        self._cache: dict[str, dict[int, Tensor]] = {task: {} for task in bundle.sources.tasks}
        #: Tokens built (not taken from the cache) by the last :meth:`current`, over all source tasks.
        self.last_built = 0

    @property
    def num_rows(self) -> int:
        return next(iter(self.engines.values())).num_rows

    def push(self, rows: Tensor) -> None:
        """Append feature row(s) (``[D]`` or ``[m, D]``) to every source engine."""
        for engine in self.engines.values():
            engine.push(rows)

    def first_node(self) -> int:
        """Absolute index of the oldest level-0 node of the current window."""
        engine = next(iter(self.engines.values()))
        return max(engine.horizon_first_row, self.num_rows - self.window_nodes)

    @torch.no_grad()
    def current(self, inputs: TaskInputs, *, report: bool = True) -> TranslatedWindow:
        """The translated primary output over the current window (``inputs`` in stream seconds, one video)."""
        first = self.first_node()
        sources = self.bundle.sources
        level0 = {}
        for index, engine in self.engines.items():
            graphs = engine.graphs(first)
            keep = graphs.depth == 0
            level0[index] = (graphs.x[keep], graphs.pos[keep], graphs.indices[keep], int(engine.final_counts[0]))
        _, pos, indices, _ = next(iter(level0.values()))
        tokens: dict[str, Tensor] = {}
        built = 0
        for task in sources.tasks:
            x, _, _, final = level0[self._backbone_of[task]]
            cache = self._cache[task]
            for stale in [node for node in cache if node < first]:
                del cache[stale]
            missing = [row for row, node in enumerate(indices.tolist()) if node not in cache]
            fresh = {}
            if missing:
                rows = torch.tensor(missing, dtype=torch.long)
                built_tokens = self.bundle.translator.tokens(task, sources.bundle.head(task).project(x[rows]))
                built += len(missing)
                for row, token in zip(missing, built_tokens):
                    node = int(indices[row])
                    fresh[node] = token
                    if node < final:
                        cache[node] = token
            tokens[task] = torch.stack([fresh[node] if node in fresh else cache[node] for node in indices.tolist()])
        self.last_built = built
        views = SourceViews({}, pos, torch.zeros_like(indices), indices, 1)
        outputs, translation = self.bundle.forward_views(views, inputs, report=report, base_tokens=tokens)
        return TranslatedWindow(outputs, translation, views, translation.attention_report(0) if report else {})


@torch.no_grad()
def translate_prefix(bundle: TranslationBundle, rows: Tensor, inputs: TaskInputs, *, window_nodes: int,
                     config: StreamConfig | None = None, report: bool = True) -> TranslatedWindow:
    """The offline translated primary output on the stream prefix ``rows`` (``[n, D]``): the offline backbones on
    the whole prefix as one video (node times on the stream's row grid), then the newest ``window_nodes`` nodes."""
    config = config if config is not None else StreamConfig()
    batch = VideoBatch.from_videos([rows], [config.row_positions_s(0, len(rows))])
    bundle.eval()
    translation, views = bundle.translate(batch, window=window_nodes, report=report)
    outputs = bundle.primary_head(translated_graphs(translation, views), inputs)
    return TranslatedWindow(outputs, translation, views, translation.attention_report(0) if report else {})
