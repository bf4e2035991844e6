"""Window emission: feature rows in, one :class:`~egostream.stream.schema.WindowResult` every ``emit_every_s`` out.

:class:`WindowEmitter` owns one :class:`~egostream.stream.engine.StreamEngine` per distinct backbone of a
:class:`~egostream.model.ModelBundle` (one in the common five-heads-on-a-shared-backbone case), pushes every row
batch into each, and whenever the stream reaches the next emission row (a multiple of
``StreamConfig.emit_every_rows``) runs :class:`~egostream.stream.readouts.Readouts` on the engines' retained nodes.
A push that passes several emission rows gives ONE window, at the rows received. MQ moments go through a
:class:`~egostream.stream.readouts.MomentLedger`, so a final moment is emitted once.

``engine_mode`` picks the whole window's mode: ``"incremental"`` (the engine's non-final frontier, readouts that
reuse the head outputs of final nodes) or ``"recompute"`` (the offline backbone over the horizon and every head over
its span, what the authors' code does per clip; ``benchmarks/window_cost.py`` times both).

Latency (``WindowResult.latency_ms``): ``engine`` (the pushes of the window's last push call), one entry per readout
(``ar``, ``lta``, ``oscc``, ``pnr``, ``mq``, ``evidence``), and ``total`` from the receive time of the window's last
row to the emission.

Snapshots (:meth:`WindowEmitter.state_dict`) hold the stream state only (engines, readout caches, ledger, counters),
never the model: the bundle's modules and the backpack evidence reader are bound again to the restoring emitter's own
(:mod:`egostream.stream.snapshot`).
"""
from __future__ import annotations

import time
from collections.abc import Iterable

import torch
from torch import Tensor

from egostream.config import to_dict
from egostream.device import module_device
from egostream.model import ModelBundle
from egostream.stream.config import StreamConfig
from egostream.stream.engine import StreamEngine
from egostream.stream.readouts import EvidenceReader, MomentLedger, NodeView, ReadoutConfig, Readouts
from egostream.stream.labels import LabelNames
from egostream.stream.schema import WindowResult
from egostream.stream.snapshot import dumps_state, loads_state, shared_modules

__all__ = ["WindowEmitter"]


class WindowEmitter:
    """Streams feature rows through a model bundle and emits window results (see the module docstring).

    Args:
        bundle: the model, in eval mode.
        stream_config: row grid, horizon, engine mode and ``emit_every_s``.
        readout_config: readout spans (default: ``stream_config.readouts``).
        names: class names for the ids (default: ids only, named ``verb#3``...; see :meth:`LabelNames.ego4d`).
        evidence: backpack evidence reader, or ``None``.
        stream_id: recorded in every result.
    """

    def __init__(self, bundle: ModelBundle, stream_config: StreamConfig, readout_config: ReadoutConfig | None = None,
                 names: LabelNames | None = None, evidence: EvidenceReader | None = None,
                 stream_id: str = "stream") -> None:
        self.bundle = bundle
        self.config = stream_config
        self.readouts = Readouts(bundle, stream_config, readout_config or stream_config.readouts, names, evidence,
                                 incremental=stream_config.engine_mode == "incremental")
        self.engines = [StreamEngine(backbone, stream_config) for backbone in bundle.backbones]
        self.ledger = MomentLedger(stream_config)
        self.stream_id = stream_id
        self.window_index = 0
        self._next_emit_row = stream_config.emit_every_rows
        self._last_emit_row = 0

    @property
    def num_rows(self) -> int:
        return self.engines[0].num_rows

    def push(self, rows: Tensor, received_wall_s: float | None = None) -> list[WindowResult]:
        """Push the next feature row(s) (``[D]`` or ``[m, D]``) received at ``received_wall_s`` (UNIX seconds,
        default now); returns the window emitted by this push, if any (a list of zero or one result)."""
        received = time.time() if received_wall_s is None else received_wall_s
        began = time.perf_counter()
        for engine in self.engines:
            engine.push(rows)
        engine_ms = (time.perf_counter() - began) * 1e3
        if self.num_rows < self._next_emit_row:
            return []
        every = self.config.emit_every_rows
        self._next_emit_row = (self.num_rows // every + 1) * every
        return [self._emit(received, engine_ms)]

    def _shared(self) -> dict[str, object]:
        """What a snapshot refers to instead of storing: the model's modules and the backpack evidence reader."""
        evidence = self.readouts.evidence
        return {**({"evidence": evidence} if evidence is not None else {}), **shared_modules("bundle", self.bundle)}

    def state_dict(self) -> bytes:
        """The stream state as bytes: engines, readout caches, moment ledger and counters; no module of the model (a
        model module reached from the state is refused). Its size depends on the rows in the horizon, not on the
        model."""
        state = {name: value for name, value in vars(self).items() if name != "bundle"}
        return dumps_state(state, self._shared())

    def load_state_dict(self, state: bytes) -> None:
        """Continue the stream of a :meth:`state_dict` (taken from an emitter with the same model and settings)."""
        vars(self).update(loads_state(state, self._shared(), device=module_device(self.bundle)))

    def push_many(self, rows: Iterable[Tensor]) -> list[WindowResult]:
        """Push row batches one after the other; every window emitted meanwhile."""
        return [result for batch in rows for result in self.push(batch)]

    def finish(self, received_wall_s: float | None = None) -> list[WindowResult]:
        """At the end of the stream: one last window over the rows since the last emission, if there are any."""
        if self.num_rows == 0 or self.num_rows == self._last_emit_row:
            return []
        return [self._emit(time.time() if received_wall_s is None else received_wall_s, 0.0)]

    def views(self) -> dict[str, NodeView]:
        """Task -> the retained nodes of its backbone's engine now."""
        per_engine = [NodeView(engine.graphs(), engine.final_counts, engine.num_rows) for engine in self.engines]
        return {task: per_engine[self.bundle.backbone_index[task]] for task in self.bundle.tasks}

    @torch.no_grad()
    def _emit(self, received: float, engine_ms: float) -> WindowResult:
        read = self.readouts.read(self.views())
        result = WindowResult(
            stream_id=self.stream_id, window_index=self.window_index, rows=self.num_rows,
            time_s=self.num_rows * self.config.row_period_s, received_wall_s=received, emitted_wall_s=time.time(),
            latency_ms={"engine": engine_ms, **read.latency_ms}, ar=read.ar, lta=read.lta, oscc=read.oscc,
            pnr=read.pnr, mq=None if read.mq is None else self.ledger.update(read.mq), evidence=read.evidence,
            plugins={name: to_dict(readout) for name, readout in read.plugins.items()},
            attention=dict(getattr(self.bundle, "last_attention_shares", None) or {}))
        result.latency_ms["total"] = (result.emitted_wall_s - received) * 1e3
        self.window_index += 1
        self._last_emit_row = self.num_rows
        return result
