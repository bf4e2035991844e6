"""``egostream replay --stream``: stream one video's pre-extracted features through the engine, write every window.

The features ``features/<name>/<video>.pt`` (``[T, D]``) are pushed row by row into a
:class:`~egostream.stream.windows.WindowEmitter`, as a live source would deliver them; every emitted
:class:`~egostream.stream.schema.WindowResult` goes to ``out`` (length-prefixed msgpack frames or JSONL, written
atomically) and to a live table on the terminal (rich). Class names come from the Ego4D vocabularies shipped with
the package.
"""
from __future__ import annotations

import statistics
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from egostream.backpack.prototypes import Backpack
from egostream.ego4d.features import FeatureStore
from egostream.errors import InputError
from egostream.io.live_run import run_live
from egostream.io.live_table import REPLAY_COLUMNS, window_table
from egostream.io.outputs import check_output_file
from egostream.io.sinks import ResultFile, SinkFormat, seed_resume
from egostream.bundles import load_bundle
from egostream.model import CheckpointSpec
from egostream.stream.config import StreamConfig, load_stream_config
from egostream.stream.labels import LabelNames
from egostream.stream.readouts import EvidenceReader, ReadoutConfig
from egostream.stream.schema import WindowResult
from egostream.stream.windows import WindowEmitter

__all__ = ["StreamReplaySummary", "replay_stream"]

_TABLE_ROWS = 12


@dataclass(frozen=True)
class StreamReplaySummary:
    """What a stream replay did: rows pushed, windows written (and final MQ moments among them), the output file,
    and the median / worst receive-to-emit latency in milliseconds."""

    video: str
    rows: int
    windows: int
    final_moments: int
    out: Path
    format: SinkFormat
    latency_ms_p50: float
    latency_ms_max: float


def _checkpoint_files(checkpoint: CheckpointSpec) -> list[str]:
    return [str(path) for path in (checkpoint.values() if isinstance(checkpoint, Mapping) else [checkpoint])]


def replay_stream(data: str | Path, video: str, checkpoint: CheckpointSpec, out: str | Path, *,
                  features: str = "egovlp", format: SinkFormat | None = None,
                  stream_config: StreamConfig | None = None, readout_config: ReadoutConfig | None = None,
                  backpack: str | Path | None = None, rows_per_push: int = 1,
                  console: Console | None = None, live: bool = True, force: bool = False,
                  resume: bool = False, device: str = "auto") -> StreamReplaySummary:
    """Stream the features of ``video`` through the model of ``checkpoint`` and write every window to ``out``.

    Args:
        data: Ego4D data root (``features/<features>/<video>.pt``).
        video: the video uid.
        checkpoint: one checkpoint for every task, or ``{task: path}`` (as ``egostream replay``).
        out: the result file (:class:`~egostream.io.sinks.ResultFile`: it appears complete, or not at all).
        features: feature folder name under ``features/``.
        format: ``"msgpack"`` (length-prefixed frames) or ``"jsonl"``; default from the suffix (``.jsonl`` ->
            JSONL, otherwise msgpack).
        stream_config: horizon, row grid, ``emit_every_s`` (default ``configs/stream/default.yaml``).
        readout_config: readout spans (default ``stream_config.readouts``).
        backpack: a backpack file (``egostream backpack build``) for the evidence; none without it.
        rows_per_push: rows per engine push (1 = as a live source).
        console: where the table goes (default: stdout); ``live=False`` prints only the last windows at the end.
        force: replace an existing ``out`` (otherwise it is refused, see
            :func:`~egostream.io.outputs.check_output_file`).
        resume: continue an interrupted ``out`` (:func:`~egostream.io.sinks.seed_resume`: the complete records of
            ``out`` or of the partial file a killed or failed replay left, whichever holds more, are kept), the rows
            are pushed again from the start (the engine needs them all) and only the windows after them are
            written.
        device: where the model and the engine state live (``auto``, ``cpu``, ``cuda:N``); InputError (field
            ``device``) for one this machine cannot use.

    The rows are pushed on a worker thread while this thread draws the table (:func:`~egostream.io.live_run.run_live`).
    A :class:`KeyboardInterrupt` (Ctrl-C, SIGTERM) stops the pushes after the one in progress, publishes the windows
    written so far (``out`` ends at the last complete window, ready for ``resume``) and is raised again; any other
    failure leaves ``out`` as it was (and the windows written so far in its partial file, for ``resume``).
    """
    out = Path(out)
    chosen: SinkFormat = format or ("jsonl" if out.suffix == ".jsonl" else "msgpack")
    if rows_per_push < 1:
        raise InputError(None, "rows_per_push", f"must be >= 1, got {rows_per_push}")
    stream_config = stream_config or load_stream_config()
    bundle = load_bundle(checkpoint, device=device)
    store = FeatureStore(data, features, expected_dim=bundle.feature_dim)
    if not store.has(video):
        raise InputError(store.path(video), "video", f"no features for video {video!r}")
    check_output_file(out, inputs=[store.path(video), *_checkpoint_files(checkpoint), backpack], force=force,
                      resume=resume, resumable=True)
    rows = store.get(video)
    evidence = None
    if backpack is not None:
        evidence = EvidenceReader.from_bundle(bundle, Backpack.load(backpack),
                                              (readout_config or stream_config.readouts).evidence_k)
    emitter = WindowEmitter(bundle, stream_config, readout_config, LabelNames.ego4d(), evidence, stream_id=video)
    console = console or Console()
    recent: deque[WindowResult] = deque(maxlen=_TABLE_ROWS)
    latencies: list[float] = []
    final_moments = 0
    title = f"egostream replay --stream {video} ({len(rows)} rows)"
    done = seed_resume(out, chosen) if resume else 0
    stop = threading.Event()

    def emitted() -> Iterator[list[WindowResult]]:
        for start in range(0, len(rows), rows_per_push):
            yield emitter.push(rows[start:start + rows_per_push])
        yield emitter.finish()

    def write_windows() -> None:
        """The worker: push the rows, write the new windows; a stop ends it after the push in progress."""
        nonlocal final_moments
        for batch_results in emitted():
            for result in batch_results:
                if result.window_index < done:
                    continue
                sink.write(result)
                recent.append(result)
                latencies.append(result.latency_ms.get("total", 0.0))
                final_moments += sum(m.final for m in result.mq.moments) if result.mq else 0
            if stop.is_set():
                return

    def view() -> Table:
        return window_table(list(recent), REPLAY_COLUMNS, title)  # list(): one step, while the worker appends

    sink = ResultFile(out, chosen, resume=resume)
    try:
        run = run_live(write_windows, stop.set, view if live else None, console, name="egostream-replay-stream")
    except KeyboardInterrupt:
        sink.close()
        raise
    except BaseException:
        sink.abort()
        raise
    sink.close()
    if run.interrupt is not None:
        raise run.interrupt
    if not live:
        console.print(view())
    return StreamReplaySummary(video, len(rows), len(latencies), final_moments, out, chosen,
                               statistics.median(latencies) if latencies else 0.0, max(latencies, default=0.0))
