"""What ``egostream run`` and ``egostream extract`` do, behind the CLI's argument parsing.

:func:`run_stream` wires one source through decode → extract → engine → sink as Ray actors (or in this process),
showing a live table of the stream (rich) and returning the final report. :func:`extract_features` spreads videos
over the cluster, one ``<video_uid>.pt`` each (:mod:`egostream.actors.extraction`).
"""
from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from egostream.actors.batch import BatchItem, BatchReport, run_batch
from egostream.actors.extraction import FeatureExtractionJob, extraction_items, find_videos
from egostream.actors.perception import (EmitterEngineFactory, ExtractorSpec, ResultFileFactory, VideoWindows,
                                         annotate_latency)
from egostream.actors.pipeline import Emitted, PipelineConfig, StreamPipeline, StreamReport
from egostream.errors import InputError

__all__ = ["run_stream", "extract_features", "replay_on_cluster", "ReplayTaskJob", "stream_table"]

_ROW_PERIOD_S = 16 / 30


def stream_table(report: StreamReport, last: Any | None) -> Table:
    """The live view: counts, throughput, per-stage latency percentiles and the latest window's answers."""
    table = Table(title=f"egostream run: {report.name}", show_header=True, header_style="bold")
    table.add_column("stage")
    for column in ("p50 ms", "p95 ms", "p99 ms", "items"):
        table.add_column(column, justify="right")
    for stage, summary in report.latency_ms.items():
        table.add_row(stage, *(f"{summary[key]:.1f}" for key in ("p50_ms", "p95_ms", "p99_ms")),
                      str(summary["count"]))
    table.caption = (f"windows {report.windows}  dropped {report.dropped}  results {report.results}  "
                     f"fps {report.fps:.1f}  x-real-time {report.x_real_time(_ROW_PERIOD_S):.2f}  restarts "
                     f"{sum(report.restarts.values())}")
    source = report.source
    if source:
        table.caption += (f"\nsource: corrupt frames {source.get('corrupt_frames', 0)}  skipped packets "
                          f"{source.get('skipped_packets', 0)}  skipped frames {source.get('skipped_frames', 0)}  "
                          f"discontinuities {source.get('discontinuities', 0)}  untimed {source.get('untimed', 0)}  "
                          f"reconnects {source.get('reconnects', 0)}")
    if last is not None and last.ar is not None and last.ar.verbs and last.ar.nouns:
        verb, noun = last.ar.verbs[0], last.ar.nouns[0]
        table.caption += (f"\nt={last.time_s:.1f} s  action: {verb.name} ({verb.score:.2f}) "
                          f"{noun.name} ({noun.score:.2f})")
    return table


def run_stream(source: str, checkpoints: str | Mapping[str, str], extractor: str, out: str, *,
               extractor_options: Mapping[str, Any] | None = None, format: str = "msgpack",
               stream_config: Any = None, backend: str = "ray", ray_address: str | None = None,
               extractor_gpus: float = 0.0, window_frames: int = 16, decoder_backend: str = "pyav",
               live_table: bool = True, console: Console | None = None,
               source_options: Mapping[str, str] | None = None) -> StreamReport:
    """Stream ``source`` (file, camera or network URL) through the model of ``checkpoints`` into ``out``.

    The model is loaded here first so that a missing checkpoint or an extractor of the wrong width fails before any
    actor starts. ``backend="ray"`` joins ``ray_address`` (``None``: a local Ray instance). ``source_options``
    configure a network source (:class:`~egostream.actors.perception.VideoWindows`), checked here first too.
    """
    from egostream.model import ModelBundle

    spec = dict(checkpoints) if isinstance(checkpoints, Mapping) else checkpoints
    feature_dim = ModelBundle.from_checkpoints(spec).feature_dim
    first_checkpoint = next(iter(spec.values())) if isinstance(spec, dict) else spec
    extractor_spec = ExtractorSpec(extractor, dict(extractor_options or {}), feature_dim, str(first_checkpoint))
    extractor_spec()  # fail fast: unknown extractor, missing weights, wrong width
    windows = VideoWindows(source, window_frames, 16, decoder_backend,
                           source_options=tuple(sorted((source_options or {}).items())))
    windows.source_kwargs()  # fail fast: options of a network source, or options given to a file
    stream_id = os.path.splitext(os.path.basename(source.rstrip("/")))[0] or source
    console = console or Console(stderr=True)
    latest: list[Any] = [None]

    def remember(emitted: Emitted) -> None:
        latest[0] = emitted.result

    owns_ray = False
    if backend == "ray":
        from egostream.actors.ray_stages import connect

        owns_ray = connect(ray_address)
    try:
        pipeline = StreamPipeline.from_factories(
            windows, extractor_spec, EmitterEngineFactory(checkpoints, stream_id, stream_config, feature_dim),
            ResultFileFactory(out, format), live=windows.live, backend=backend, config=PipelineConfig(),
            name=stream_id, on_result=remember, annotate=annotate_latency,
            on_status=lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True),
            actor_options={"extract": {"num_gpus": extractor_gpus}} if extractor_gpus else None)
        if not live_table:
            return pipeline.run()
        return _run_with_table(pipeline, latest, console)
    finally:
        if owns_ray:
            import ray

            ray.shutdown()


def _run_with_table(pipeline: StreamPipeline, latest: list[Any], console: Console) -> StreamReport:
    outcome: dict[str, Any] = {}

    def body() -> None:
        try:
            outcome["report"] = pipeline.run()
        except BaseException as error:
            outcome["error"] = error

    worker = threading.Thread(target=body, daemon=True)
    with Live(console=console, refresh_per_second=4, transient=False) as live:
        worker.start()
        try:
            while worker.is_alive():
                worker.join(timeout=0.25)
                live.update(stream_table(pipeline.snapshot_report(), latest[0]))
        except KeyboardInterrupt:
            pipeline.stop()
            worker.join()
        live.update(stream_table(pipeline.snapshot_report(), latest[0]))
    if "error" in outcome:
        raise outcome["error"]
    return outcome["report"]


def extract_features(videos: Sequence[str], out_dir: str, extractor: str, *,
                     extractor_options: Mapping[str, Any] | None = None, window_frames: int = 16,
                     decoder_backend: str = "pyav", ray_address: str | None = None, gpus_per_video: float = 0.0,
                     max_retries: int = 3) -> BatchReport:
    """Extract every video's features to ``<out_dir>/<video_uid>.pt`` (resumable; see
    :mod:`egostream.actors.batch`). Without ``ray_address`` the videos are processed in this process."""
    spec = ExtractorSpec(extractor, dict(extractor_options or {}))
    dim = int(spec().dim)  # fail fast, and the width that validates existing files
    files = find_videos(videos)
    if not files:
        raise InputError(None, "VIDEOS", "no video files found")
    job = FeatureExtractionJob(spec, dim, window_frames, 16, decoder_backend)
    items = extraction_items(files, out_dir)
    if ray_address is None:
        return run_batch(items, job, backend="local")
    from egostream.actors.ray_stages import connect

    owns_ray = connect(ray_address)
    try:
        return run_batch(items, job, backend="ray", num_gpus=gpus_per_video, max_retries=max_retries)
    finally:
        if owns_ray:
            import ray

            ray.shutdown()


class ReplayTaskJob:
    """One replayed task on a worker (a :class:`~egostream.actors.batch.BatchJob`): its submission file's bytes.
    The worker reads ``data_root`` itself, so the data must be on a filesystem every node sees."""

    def __init__(self, protocol: str, data_root: str, split: str, checkpoints: Any,
                 options: Mapping[str, Any]) -> None:
        self.protocol, self.data_root, self.split = protocol, data_root, split
        self.checkpoints, self.options = checkpoints, dict(options)

    def compute(self, item: BatchItem) -> bytes:
        import tempfile

        from egostream.replay import replay

        with tempfile.TemporaryDirectory(prefix="egostream-replay-") as scratch:
            replay(item.key, self.protocol, self.data_root, self.split, self.checkpoints, scratch, progress=False,
                   **self.options)
            return (Path(scratch) / f"{item.key}.json").read_bytes()

    def validate(self, path: Path) -> bool:
        import json

        try:
            return bool(json.loads(path.read_text()))
        except (ValueError, OSError):
            return False


def replay_on_cluster(task: str, protocol: str, data_root: str, split: str, checkpoints: Any, out_dir: str,
                      ray_address: str, *, force: bool = False, **options: Any) -> dict[str, Any]:
    """``egostream replay --ray-address``: each task runs as one Ray task (its submission ``<out>/<task>.json`` is
    written atomically by the driver, skipped when already there, exactly once); then the driver scores the
    submissions as ``egostream replay`` does and returns ``{task: metrics}``."""
    from egostream.model import TASK_NAMES, checkpoint_tasks
    from egostream.replay import replay

    if task == "all":
        tasks = list(checkpoints) if isinstance(checkpoints, Mapping) else [
            name for name in TASK_NAMES if name in checkpoint_tasks(checkpoints)]
    else:
        tasks = [task]
    out = Path(out_dir)
    if force:
        for name in tasks:
            (out / f"{name}.json").unlink(missing_ok=True)
    items = [BatchItem(name, str(data_root), out / f"{name}.json") for name in tasks]
    from egostream.actors.ray_stages import connect

    owns_ray = connect(ray_address)
    try:
        report = run_batch(items, ReplayTaskJob(protocol, str(data_root), split, checkpoints, options), backend="ray")
    finally:
        if owns_ray:
            import ray

            ray.shutdown()
    if report.failed:
        name, reason = next(iter(report.failed.items()))
        raise InputError(None, name, reason)
    return replay(task, protocol, data_root, split, checkpoints, out_dir, progress=False, **options)
