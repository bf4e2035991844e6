"""The stream supervisor: runs decode → extract → engine → sink concurrently and recovers any stage that dies.

One :class:`StreamPipeline` drives one stream (one engine); several run side by side on one cluster
(:func:`run_streams`). Each stage is driven by a thread of the supervisor, linked by bounded queues of
``queue_size`` items that block the producer when full (the live drop-oldest policy lives in the decoder's own
queue, where frames arrive at the camera's pace; see :class:`~egostream.actors.stages.DecodeStage`).

Exactly once, after any crash. Every result gets a sequence number (its position in the stream of results) when
the engine emits it; the sink is the commit point.

- *Decoder* dies: restarted at the first window not yet received (file sources seek there; live sources lose the
  windows of the outage, which the engine sees as dropped).
- *Extractor* dies: restarted; the batch in hand is extracted again (extraction is a pure function).
- *Engine* dies: restarted from the last snapshot (``state_dict``; or an empty engine when it has none) and fed
  again the rows pushed since then, which the supervisor keeps; the results of that replay were already handed on
  and are discarded (the supervisor checks the engine emits exactly as many, i.e. that it is deterministic).
- *Sink* dies: re-opened for appending; it reports how many complete records the output holds, and writing resumes
  at that sequence number, so no result is lost or written twice.

Windows dropped by a live source leave gaps in the row indices; the supervisor fills each gap by repeating the last
feature row (counted as ``filled``) so that row ``i`` always sits at stream time ``i × row_period_s``; a result
that has a ``filled`` field and a ``rows`` count (a :class:`~egostream.stream.schema.WindowResult`) is marked
``filled=True`` when a refilled row lies between the previous result's ``rows`` and its own.

Source health: a window that carries ``source_counts`` (:class:`~egostream.io.frames.FrameWindow`) updates the
report's ``source`` counters (decoder damage, timestamp repairs, reconnects); a window flagged ``discontinuity`` or
``decode_errors`` flags the first result whose rows include it (results with those fields, i.e.
:class:`~egostream.stream.schema.WindowResult`). A source that fails (gives up) ends reading, but the windows read
before it are still extracted, pushed and written before :meth:`StreamPipeline.run` raises its error (the output
is published when the source gave at least one window, and left as it was when it gave none).
"""
from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch

from egostream.actors.handles import LocalStage, StageCrashed, StageHandle
from egostream.actors.latency import LatencyRecorder
from egostream.actors.stages import DecodeStage, EngineStage, ExtractStage, Packet, SinkStage
from egostream.io.queues import BoundedQueue, QueueClosed

__all__ = ["PipelineConfig", "StreamPipeline", "StreamReport", "Emitted", "run_streams", "STAGES"]

STAGES = ("decode", "extract", "engine", "sink")


@dataclass(frozen=True)
class PipelineConfig:
    """``queue_size`` items between stages; the extractor takes up to ``batch_size`` windows per call; the engine is
    snapshotted every ``checkpoint_every`` rows (when it supports it); a stage may be restarted ``max_recoveries``
    times; ``row_period_s`` stream seconds per window (16 / 30) give the x-real-time rate."""

    queue_size: int = 8
    batch_size: int = 4
    checkpoint_every: int = 64
    max_recoveries: int = 10
    row_period_s: float = 16 / 30
    poll_s: float = 0.2


@dataclass
class Emitted:
    """A result with its sequence ``number``, the receive time of the newest row it saw, its stage times (ms) and
    ``arrival_s``, the UNIX time the last frame of its newest window came out of the decoder (None if unknown, and
    for a backpadded last window, which is only cut once the stream has ended)."""

    number: int
    result: Any
    received_s: float
    stage_ms: dict[str, float]
    arrival_s: float | None = None


@dataclass
class StreamReport:
    """Counts, restarts and latency of a stream so far; ``as_dict()`` is what the CLI and the benchmark print.
    ``failed`` is why a stream of :func:`run_streams` stopped on bad input (one line naming the file), else None.
    ``source`` holds the source's own counters, as the last window read reported them (``skipped_packets``,
    ``skipped_frames``, ``corrupt_frames``, ``discontinuities``, ...; :meth:`egostream.io.VideoSource.counts`)."""

    name: str
    windows: int = 0
    dropped: int = 0
    filled: int = 0
    rows: int = 0
    results: int = 0
    restarts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STAGES, 0))
    latency_ms: dict[str, dict[str, float | int]] = field(default_factory=dict)
    wall_s: float = 0.0
    failed: str | None = None
    source: dict[str, int] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        """Windows per second through the engine."""
        return self.rows / self.wall_s if self.wall_s > 0 else 0.0

    def x_real_time(self, row_period_s: float) -> float:
        """Stream seconds processed per wall-clock second."""
        return self.rows * row_period_s / self.wall_s if self.wall_s > 0 else 0.0

    def as_dict(self, row_period_s: float = 16 / 30) -> dict[str, Any]:
        return {"name": self.name, "windows": self.windows, "dropped": self.dropped, "filled": self.filled,
                "rows": self.rows, "results": self.results, "restarts": dict(self.restarts),
                "wall_s": round(self.wall_s, 4), "fps": round(self.fps, 3),
                "x_real_time": round(self.x_real_time(row_period_s), 3), "latency_ms": self.latency_ms,
                "source": dict(self.source), **({"failed": self.failed} if self.failed is not None else {})}


class StreamPipeline:
    """Supervises one stream through four stage handles (:class:`~egostream.actors.handles.LocalStage` or
    :class:`~egostream.actors.ray_stages.RayStage`). ``on_result(emitted)`` is called after each result is written;
    ``on_status(line)`` with each status line of the source (fetched from the decode stage while no window comes).
    """

    def __init__(self, decoder: StageHandle, extractor: StageHandle, engine: StageHandle, sink: StageHandle,
                 config: PipelineConfig = PipelineConfig(), *, name: str = "stream",
                 on_result: Callable[[Emitted], None] | None = None, resume: bool = False,
                 on_status: Callable[[str], None] | None = None) -> None:
        self.handles = {"decode": decoder, "extract": extractor, "engine": engine, "sink": sink}
        self.config = config
        self.resume = resume
        self._resumed_results = 0
        self.on_result = on_result
        self.on_status = on_status
        self.report = StreamReport(name)
        self.latency = {stage: LatencyRecorder() for stage in (*STAGES, "end_to_end", "glass_to_answer")}
        size = config.queue_size
        self._decoded: BoundedQueue[Packet] = BoundedQueue(size)
        self._extracted: BoundedQueue[tuple[list[Packet], torch.Tensor, float]] = BoundedQueue(size)
        self._emitted: BoundedQueue[Emitted] = BoundedQueue(size)
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self._started = 0.0
        # engine recovery state: the last snapshot, the results emitted before it, the rows pushed since
        self._snapshot: Any = None
        self._snapshot_results = 0
        self._replay_log: list[torch.Tensor] = []
        self._rows_since_snapshot = 0
        self._supports_snapshot = False
        self._engine_needs_restore = False
        self._dropped_before_restart = 0
        self._filled_rows: list[int] = []  # indices of refilled rows not yet covered by an emitted result
        self._source_error: BaseException | None = None

    @classmethod
    def from_factories(cls, source_factory: Callable[[], Any], extractor_factory: Callable[[], Any],
                       engine_factory: Callable[[], Any], sink_factory: Callable[[bool], Any], *,
                       live: bool = False, backend: str = "ray", config: PipelineConfig = PipelineConfig(),
                       name: str = "stream", on_result: Callable[[Emitted], None] | None = None,
                       annotate: Callable[[Any, dict[str, float]], Any] | None = None,
                       actor_options: dict[str, dict[str, Any]] | None = None,
                       resume: bool = False, on_status: Callable[[str], None] | None = None) -> StreamPipeline:
        """Build the four stages from factories (picklable callables) and wrap them for ``backend``: ``"ray"``
        (one restartable actor per stage; ``actor_options[stage]`` are Ray options, e.g. ``{"num_gpus": 1}`` for
        ``"extract"``) or ``"local"`` (this process). ``live`` picks the decoder's drop-oldest policy. ``resume``:
        the sink opens its output for appending and the results it already holds are not written again."""
        stages: dict[str, Callable[[], Any]] = {
            "decode": partial(DecodeStage, source_factory, live=live, capacity=config.queue_size),
            "extract": partial(ExtractStage, extractor_factory),
            "engine": partial(EngineStage, engine_factory),
            "sink": partial(SinkStage, sink_factory, annotate),
        }
        if backend == "local":
            handles = {stage: LocalStage(factory, f"{name}/{stage}") for stage, factory in stages.items()}
        elif backend == "ray":
            from egostream.actors.ray_stages import RayStage

            options = actor_options or {}
            handles = {stage: RayStage(factory, f"{name}/{stage}", **options.get(stage, {}))
                       for stage, factory in stages.items()}
        else:
            raise ValueError(f"backend must be 'ray' or 'local', got {backend!r}")
        return cls(handles["decode"], handles["extract"], handles["engine"], handles["sink"], config, name=name,
                   on_result=on_result, resume=resume, on_status=on_status)

    # -- public ---------------------------------------------------------------------------------------------------
    def run(self) -> StreamReport:
        """Run the stream to its end (or :meth:`stop`); raises the first non-crash error of any stage.

        At the end (or a stop) the sink is closed, publishing its output; after an error it is aborted, leaving
        the output as it was. A stopped stream ends at its last emitted window (the engine's ``finish`` is not
        called, since the stream did not end)."""
        self._open_stages()
        self._started = time.monotonic()  # rates and x-real-time count from the stream's start, not actor start-up
        threads = [threading.Thread(target=self._guard, args=(body,), name=f"egostream-{stage}", daemon=True)
                   for stage, body in zip(STAGES, (self._decode_loop, self._extract_loop, self._engine_loop,
                                                   self._sink_loop))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self._finish()
        if self._failure is not None:
            raise self._failure
        if self._source_error is not None:
            raise self._source_error
        return self.snapshot_report()

    def stop(self) -> None:
        """Stop reading the source; what was read is still processed and written (thread-safe)."""
        self._stop.set()

    def snapshot_report(self) -> StreamReport:
        """The report so far (safe to call from another thread while the stream runs)."""
        self.report.wall_s = time.monotonic() - self._started if self._started else 0.0
        self.report.latency_ms = {stage: recorder.summary().as_dict() for stage, recorder in self.latency.items()}
        return self.report

    # -- stage loops ----------------------------------------------------------------------------------------------
    def _open_stages(self) -> None:
        self.handles["extract"].call("prepare")
        self.handles["engine"].call("restore", None)
        self._supports_snapshot = bool(self.handles["engine"].call("supports_snapshot"))
        self._resumed_results = int(self.handles["sink"].call("open", self.resume))
        self.report.results = self._resumed_results
        self.handles["decode"].call("start", 0)

    def _guard(self, body: Callable[[], None]) -> None:
        try:
            body()
        except QueueClosed:
            pass
        except BaseException as error:  # the first failure stops every stage and is raised by run()
            if self._failure is None:
                self._failure = error
            self._stop.set()
            for queue in (self._decoded, self._extracted, self._emitted):
                queue.close()

    def _recover(self, stage: str, recoveries: int) -> int:
        if recoveries >= self.config.max_recoveries:
            raise RuntimeError(f"stage {stage!r} crashed {recoveries + 1} times; giving up")
        self.handles[stage].recover()
        self.report.restarts[stage] += 1
        return recoveries + 1

    def _decode_loop(self) -> None:
        decoder, recoveries, next_index = self.handles["decode"], 0, 0
        try:
            while not self._stop.is_set():
                try:
                    packets, dropped = decoder.call("next", self.config.batch_size, self.config.poll_s)
                except StageCrashed:
                    recoveries = self._recover("decode", recoveries)
                    self._dropped_before_restart = self.report.dropped
                    decoder.call("start", next_index)
                    continue
                except Exception as error:  # the source failed: what was read still goes through
                    self._source_error = error
                    self._relay_status()
                    break
                self.report.dropped = self._dropped_before_restart + dropped
                if not packets:  # nothing came (or the end): say what the source waits for, or why it ended
                    self._relay_status()
                if packets is None:
                    break
                for packet in packets:
                    counts = getattr(packet.payload, "source_counts", None)
                    if counts:
                        self.report.source = dict(counts)
                    self.latency["decode"].record(packet.decode_s)
                    self._decoded.put(packet)
                    next_index = packet.index + 1
                    self.report.windows += 1
        finally:
            self._decoded.close()

    def _relay_status(self) -> None:
        """Hand the decode stage's new status lines to ``on_status``."""
        if self.on_status is not None:
            for line in self.handles["decode"].call("status_lines"):
                self.on_status(line)

    def _extract_loop(self) -> None:
        recoveries = 0
        try:
            while True:
                packets = self._decoded.get_batch(self.config.batch_size)
                if not packets:
                    break
                began = time.monotonic()
                while True:
                    try:
                        rows = self.handles["extract"].call("extract", [packet.payload for packet in packets])
                        break
                    except StageCrashed:
                        recoveries = self._recover("extract", recoveries)
                seconds = time.monotonic() - began
                self.latency["extract"].record(seconds, len(packets))
                self._extracted.put((packets, rows, seconds))
        finally:
            self._extracted.close()

    def _engine_loop(self) -> None:
        next_row, last_row, emitted, recoveries = 0, None, 0, 0
        flags: dict[int, tuple[bool, bool]] = {}  # row index -> (discontinuity, decode_errors) not yet reported
        try:
            while True:
                items = self._extracted.get_batch(1)
                if not items:
                    break
                packets, rows, extract_s = items[0]
                for packet in packets:
                    flag = (bool(getattr(packet.payload, "discontinuity", False)),
                            bool(getattr(packet.payload, "decode_errors", False)))
                    if any(flag):
                        flags[packet.index] = flag
                rows, next_row, last_row = self._fill_gaps(packets, rows, next_row, last_row)
                began = time.monotonic()
                results, recoveries = self._call_engine("push", (rows,), emitted, recoveries)
                engine_s = time.monotonic() - began
                self.latency["engine"].record(engine_s, len(packets))
                self.report.rows = next_row
                received_s = max(packet.received_s for packet in packets)
                arrivals = [packet.payload.arrival_s for packet in packets  # a backpadded last window waits for
                            if getattr(packet.payload, "arrival_s", None) is not None  # the end of the stream
                            and not getattr(packet.payload, "backpadded", False)]
                arrival_s = max(arrivals) if arrivals else None
                stage_ms = {"decode_ms": 1e3 * max(packet.decode_s for packet in packets),
                            "extract_ms": 1e3 * extract_s, "engine_ms": 1e3 * engine_s}
                for result in results:
                    self._emitted.put(Emitted(emitted, _flagged(self._mark_filled(result), flags), received_s,
                                              stage_ms, arrival_s))
                    emitted += 1
                recoveries = self._checkpoint(rows, emitted, recoveries)
            if self._failure is None and not self._stop.is_set():
                results, recoveries = self._call_engine("finish", (), emitted, recoveries)
                for result in results:
                    self._emitted.put(Emitted(emitted, _flagged(self._mark_filled(result), flags), time.time(), {}))
                    emitted += 1
        finally:
            self._emitted.close()

    def _fill_gaps(self, packets: Sequence[Packet], rows: torch.Tensor, next_row: int,
                   last_row: torch.Tensor | None) -> tuple[torch.Tensor, int, torch.Tensor]:
        """Rows for indices ``next_row .. packets[-1].index``: the missing ones repeat the previous row."""
        parts = []
        for packet, row in zip(packets, rows):
            if packet.index < next_row:
                raise RuntimeError(f"window {packet.index} arrived after window {next_row - 1}")
            gap = packet.index - next_row
            if gap:
                filler = last_row if last_row is not None else torch.zeros_like(row)
                parts.append(filler.expand(gap, -1))
                self.report.filled += gap
                self._filled_rows.extend(range(next_row, packet.index))
            parts.append(row[None])
            next_row, last_row = packet.index + 1, row
        assert last_row is not None
        return torch.cat(parts), next_row, last_row

    def _mark_filled(self, result: Any) -> Any:
        """``result`` with ``filled=True`` when a refilled row lies before its ``rows`` (and after the previous
        result's); results without a ``filled`` dataclass field pass unchanged."""
        rows = getattr(result, "rows", None)
        if not isinstance(rows, int) or not dataclasses.is_dataclass(result) or not any(
                f.name == "filled" for f in dataclasses.fields(result)):
            return result
        covered = [index for index in self._filled_rows if index < rows]
        self._filled_rows = [index for index in self._filled_rows if index >= rows]
        return dataclasses.replace(result, filled=True) if covered else result

    def _call_engine(self, method: str, args: tuple[Any, ...], emitted: int,
                     recoveries: int) -> tuple[list[Any], int]:
        """``engine.method(*args)``, restoring a crashed engine to ``emitted`` results first."""
        engine = self.handles["engine"]
        while True:
            try:
                if self._engine_needs_restore:
                    self._replay_engine(emitted)
                return engine.call(method, *args), recoveries
            except StageCrashed:
                recoveries = self._recover("engine", recoveries)
                self._engine_needs_restore = True

    def _replay_engine(self, emitted: int) -> None:
        """Bring a restarted engine to the state it had after ``emitted`` results."""
        engine = self.handles["engine"]
        engine.call("restore", self._snapshot)
        replayed = self._snapshot_results
        for rows in self._replay_log:
            replayed += len(engine.call("push", rows))
        if replayed != emitted:
            raise RuntimeError(f"the engine is not deterministic: replaying its rows gave {replayed} results, "
                               f"it had emitted {emitted}")
        self._engine_needs_restore = False

    def _checkpoint(self, rows: torch.Tensor, emitted: int, recoveries: int) -> int:
        """Log the rows just pushed; every ``checkpoint_every`` rows, snapshot the engine and clear the log."""
        self._replay_log.append(rows)
        self._rows_since_snapshot += len(rows)
        if not self._supports_snapshot or self._rows_since_snapshot < self.config.checkpoint_every:
            return recoveries
        try:
            self._snapshot = self.handles["engine"].call("snapshot")
        except StageCrashed:
            self._engine_needs_restore = True
            return self._recover("engine", recoveries)
        self._snapshot_results, self._replay_log, self._rows_since_snapshot = emitted, [], 0
        return recoveries

    def _sink_loop(self) -> None:
        sink, committed, recoveries = self.handles["sink"], self._resumed_results, 0
        while True:
            pending = [item for item in self._emitted.get_batch(self.config.batch_size) if item.number >= committed]
            if not pending and self._emitted.drained():
                break
            began = time.monotonic()
            while pending:
                try:
                    now = time.time()
                    sink.call("write", [(item.result, {**item.stage_ms,
                                                       "end_to_end_ms": 1e3 * (now - item.received_s),
                                                       **({} if item.arrival_s is None else
                                                          {"glass_to_answer_ms": 1e3 * (now - item.arrival_s)})})
                                        for item in pending])
                    committed = pending[-1].number + 1
                except StageCrashed:
                    recoveries = self._recover("sink", recoveries)
                    durable = sink.call("open", True)
                    if durable < committed:
                        raise RuntimeError(f"the sink lost results: it holds {durable}, {committed} were written")
                    committed = durable
                    pending = [item for item in pending if item.number >= committed]
                    continue
                done = time.time()
                self.latency["sink"].record(time.monotonic() - began, len(pending))
                for item in pending:
                    self.latency["end_to_end"].record(done - item.received_s)
                    if item.arrival_s is not None:
                        self.latency["glass_to_answer"].record(done - item.arrival_s)
                    self.report.results = item.number + 1
                    if self.on_result is not None:
                        self.on_result(item)
                pending = []

    def _finish(self) -> None:
        # A failed source publishes the windows it gave before failing (a live sender that gave up); one that gave
        # none leaves the output as it was, like any other failure.
        publish = self._failure is None and (self._source_error is None or self.report.results > self._resumed_results)
        for stage in STAGES:
            try:
                if stage == "sink":
                    self.handles[stage].call("close" if publish else "abort")
                self.handles[stage].shutdown()
            except StageCrashed:
                pass


def _flagged(result: Any, flags: dict[int, tuple[bool, bool]]) -> Any:
    """``result`` with ``discontinuity`` / ``decode_errors`` set from the flagged rows it is the first to include
    (rows below its ``rows``), which are then reported; results without those fields pass unchanged."""
    rows = getattr(result, "rows", None)
    if not flags or rows is None or not dataclasses.is_dataclass(result) or not hasattr(result, "decode_errors"):
        return result
    covered = [index for index in flags if index < rows]
    if not covered:
        return result
    discontinuity = any(flags[index][0] for index in covered)
    decode_errors = any(flags[index][1] for index in covered)
    for index in covered:
        del flags[index]
    return dataclasses.replace(result, discontinuity=result.discontinuity or discontinuity,
                               decode_errors=result.decode_errors or decode_errors)


def run_streams(pipelines: Sequence[StreamPipeline]) -> list[StreamReport]:
    """Run several streams at once (each with its own stage actors); returns their reports in order.

    A stream that stops on bad input (:func:`~egostream.errors.describe_failure`, also from inside a Ray actor) is
    skipped: its report says why in ``failed`` and its output is left as it was, while the other streams finish and
    keep their results. Any other error is raised after all streams have ended."""
    from egostream.errors import describe_failure

    reports: list[StreamReport | None] = [None] * len(pipelines)
    errors: list[BaseException] = []

    def run_one(position: int) -> None:
        try:
            reports[position] = pipelines[position].run()
        except BaseException as error:
            reason = describe_failure(error) if isinstance(error, Exception) else None
            if reason is None:
                errors.append(error)
                return
            report = pipelines[position].snapshot_report()
            report.failed = reason
            reports[position] = report

    threads = [threading.Thread(target=run_one, args=(position,), daemon=True) for position in range(len(pipelines))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return [report for report in reports if report is not None]
