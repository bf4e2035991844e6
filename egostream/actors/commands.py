"""What ``egostream run`` and ``egostream extract`` do, behind the CLI's argument parsing.

:func:`run_stream` wires one source through decode → extract → engine → sink as Ray actors (or in this process),
showing a live table of the stream (rich) and returning the final report; :func:`run_sources` runs several sources
as parallel pipelines, one result file each. :func:`extract_features` spreads videos
over the cluster, one ``<video_uid>.pt`` each (:mod:`egostream.actors.extraction`).
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console, Group

from egostream.actors.batch import BatchItem, BatchReport, run_batch
from egostream.actors.extraction import FeatureExtractionJob, extraction_items, find_videos
from egostream.actors.perception import (EmitterEngineFactory, ExtractorSpec, VideoWindows, annotate_latency,
                                         checkpoint_feature_name)
from egostream.actors.pipeline import Emitted, PipelineConfig, StreamPipeline, StreamReport, run_streams
from egostream.errors import InputError
from egostream.io.live_run import run_live
from egostream.io.live_table import stage_table
from egostream.io.sinks import ResultFileFactory, seed_resume

__all__ = ["run_stream", "run_sources", "stream_id_of", "extract_features", "extractor_window_frames",
           "replay_on_cluster", "ReplayTaskJob", "device_placement", "DEFAULT_GPUS_PER_STREAM"]

_ROW_PERIOD_S = 16 / 30


def stream_id_of(source: str) -> str:
    """A source's stream id: the file name without its suffix (the Ego4D video uid of ``<uid>.mp4``)."""
    return os.path.splitext(os.path.basename(source.rstrip("/")))[0] or source


def _publisher(server: Any, latest: list[Any]) -> Callable[[Emitted], None]:
    """``on_result``: remember the newest result for the table and publish it (with the pipeline's stage times
    as the sink writes them) on ``server`` when there is one."""

    def on_result(emitted: Emitted) -> None:
        latest[0] = emitted.result
        if server is not None:
            server.publish(annotate_latency(emitted.result, {
                **emitted.stage_ms, "end_to_end_ms": 1e3 * (time.time() - emitted.received_s)}))

    return on_result


#: GPUs the engine and the extractor actor of one stream each request when the device is CUDA (four streams share
#: one GPU).
DEFAULT_GPUS_PER_STREAM = 0.25


def device_placement(device: str, backend: str, gpus: float) -> tuple[str, float]:
    """Where the model stages of a run go: ``(device setting for the stage factories, GPUs each stage actor
    requests)``. ``device`` is resolved once here (InputError, field ``device``, for one this machine cannot use).
    On the CPU no GPU is requested. On CUDA, a Ray actor requests ``gpus`` and uses the GPU Ray assigns it
    (``cuda``); the local backend uses the resolved device itself."""
    from egostream.device import resolve_device

    resolved = resolve_device(device)
    if resolved.type != "cuda":
        return "cpu", 0.0
    if gpus <= 0:
        raise InputError(None, "gpus_per_stream", f"a CUDA run needs a positive GPU share, not {gpus}")
    return ("cuda" if backend == "ray" else str(resolved)), gpus


def _prepare_model(checkpoints: str | Mapping[str, str], extractor: str, extractor_options: Mapping[str, Any],
                   backpack: str | None, window_frames: int | None,
                   device: str = "cpu") -> tuple[Any, ExtractorSpec, int]:
    """Load the model, the extractor and the backpack once before anything starts, so that a missing checkpoint,
    an extractor of the wrong width or feature set or a bad backpack fail fast; returns the model (on the CPU; the
    engines take it from here, so each checkpoint file is read once), the extractor and its frames per window
    (:func:`extractor_window_frames`). The extractor is built with ``device``."""
    from egostream.bundles import load_bundle
    from egostream.model import read_checkpoints

    spec = dict(checkpoints) if isinstance(checkpoints, Mapping) else checkpoints
    read = read_checkpoints(spec)
    bundle = load_bundle(read)
    first_checkpoint = next(iter(spec.values())) if isinstance(spec, dict) else spec
    first_read = next(iter(read.values())) if isinstance(read, dict) else read
    extractor_spec = ExtractorSpec(extractor, dict(extractor_options), bundle.feature_dim, str(first_checkpoint),
                                   checkpoint_feature_name(first_read), device=device)
    built = extractor_spec()  # fail fast: unknown extractor, missing weights, wrong width or feature set
    if getattr(built, "samples_whole_video", False):
        raise InputError(None, "sampling", f"the {extractor} extractor's sampling reads a whole video first: use it "
                                           "with `egostream extract`, and stream with its window sampling")
    if backpack is not None:
        from egostream.backpack.prototypes import Backpack
        from egostream.stream.readouts import EvidenceReader

        EvidenceReader.from_bundle(bundle, Backpack.load(backpack), 1)
    return bundle, extractor_spec, extractor_window_frames(built, window_frames)


def run_stream(source: str, checkpoints: str | Mapping[str, str], extractor: str, out: str, *,
               extractor_options: Mapping[str, Any] | None = None, format: str = "msgpack",
               stream_config: Any = None, backend: str = "ray", ray_address: str | None = None,
               extractor_gpus: float = 0.0, window_frames: int | None = None, decoder_backend: str = "pyav",
               live_table: bool = True, console: Console | None = None, backpack: str | None = None,
               server: Any = None, force: bool = False, resume: bool = False,
               source_options: Mapping[str, str] | None = None, device: str = "auto",
               gpus_per_stream: float = DEFAULT_GPUS_PER_STREAM) -> StreamReport:
    """Stream ``source`` (file, camera or network URL) through the model of ``checkpoints`` into ``out``: one
    source of :func:`run_sources` (see there for outputs, ``force``/``resume``, interrupts and fail-fast checks)."""
    return run_sources([source], checkpoints, extractor, [out], extractor_options=extractor_options, format=format,
                       stream_config=stream_config, backend=backend, ray_address=ray_address,
                       extractor_gpus=extractor_gpus, window_frames=window_frames, decoder_backend=decoder_backend,
                       live_table=live_table, console=console, backpack=backpack, server=server, force=force,
                       resume=resume, source_options=source_options, device=device,
                       gpus_per_stream=gpus_per_stream)[0]


def run_sources(sources: Sequence[str], checkpoints: str | Mapping[str, str], extractor: str, outs: Sequence[str],
                *, extractor_options: Mapping[str, Any] | None = None, format: str = "msgpack",
                stream_config: Any = None, backend: str = "ray", ray_address: str | None = None,
                extractor_gpus: float = 0.0, window_frames: int | None = None, decoder_backend: str = "pyav",
                live_table: bool = True, console: Console | None = None, backpack: str | None = None,
                server: Any = None, force: bool = False, resume: bool = False,
                source_options: Mapping[str, str] | None = None, device: str = "auto",
                gpus_per_stream: float = DEFAULT_GPUS_PER_STREAM) -> list[StreamReport]:
    """Stream every source into its result file (``outs[i]``) as parallel pipelines, each with its own four stage
    actors (:func:`~egostream.actors.pipeline.run_streams`); returns their reports in order. The stream id of each
    is its file name without the suffix; two sources with the same id are refused.

    Every ``out`` is checked before anything opens (:func:`~egostream.io.outputs.check_output_file`: not an input,
    not an existing result unless ``force`` or ``resume``, writable). Results are appended to a hidden partial file
    that replaces ``out`` when the stream ends or is stopped; a failure leaves ``out`` as it was. ``resume``
    continues an interrupted ``out``: the stream is processed again from its start (the engine needs every row) and
    the results ``out`` already holds are not written again.

    The model, extractor (width, feature set, window size) and backpack are loaded first, so a bad one fails before
    any actor starts. ``backend="ray"`` joins ``ray_address`` (``None``: a local Ray instance, shut down at the
    end). ``backpack`` adds the prototype evidence to every window; ``server`` (a started
    :class:`~egostream.io.result_server.ResultServer`) publishes every window as it is written. A
    :class:`KeyboardInterrupt` (Ctrl-C, or SIGTERM through :class:`~egostream.errors.Interrupted`) stops the streams
    cleanly: the stages drain, each ``out`` ends at its last complete window, Ray is shut down once, and the
    interrupt is raised again. ``source_options`` configure network sources
    (:class:`~egostream.actors.perception.VideoWindows`: reconnect policy, FFmpeg options), checked first too.
    ``device`` (:func:`device_placement`) is where the extractor and the engine run; on CUDA their Ray actors each
    request ``gpus_per_stream`` GPUs (``extractor_gpus``, when given, for the extractor).
    """
    from egostream.io.outputs import check_output_file

    if len(sources) != len(outs):
        raise ValueError("one output per source")
    ids = [stream_id_of(source) for source in sources]
    repeated = sorted({stream for stream in ids if ids.count(stream) > 1})
    if repeated:
        raise InputError(None, "SOURCE", f"two sources have the same stream id {repeated[0]!r} (the file name)")
    spec = dict(checkpoints) if isinstance(checkpoints, Mapping) else checkpoints
    model_files = [*(spec.values() if isinstance(spec, dict) else [spec]), *([backpack] if backpack else []),
                   *(str(value) for value in (extractor_options or {}).values() if isinstance(value, (str, os.PathLike)))]
    for out in outs:
        check_output_file(out, inputs=[*sources, *model_files], force=force, resume=resume, resumable=True)
    stage_device, stage_gpus = device_placement(device, backend, gpus_per_stream)
    model, extractor_spec, window_frames = _prepare_model(checkpoints, extractor, extractor_options or {},
                                                         backpack, window_frames, stage_device)
    actor_options = {stage: {"num_gpus": share} for stage, share in
                     (("extract", extractor_gpus or stage_gpus), ("engine", stage_gpus)) if share}
    windows_of = [VideoWindows(source, window_frames, 16, decoder_backend,
                               source_options=tuple(sorted((source_options or {}).items()))) for source in sources]
    for windows in windows_of:
        windows.source_kwargs()  # fail fast: options of a network source, or options given to a file
    if resume:
        for out in outs:
            seed_resume(out, format)
    console = console or Console(stderr=True)
    latest: list[list[Any]] = [[None] for _ in sources]
    owns_ray = False
    if backend == "ray":
        from egostream.actors.ray_stages import connect

        owns_ray = connect(ray_address)
    try:
        pipelines = []
        for windows, out, stream_id, last in zip(windows_of, outs, ids, latest):
            pipelines.append(StreamPipeline.from_factories(
                windows, extractor_spec,
                EmitterEngineFactory(checkpoints, stream_id, stream_config, model.feature_dim, backpack, stage_device,
                                     model=model),
                ResultFileFactory(out, format), live=windows.live, backend=backend, config=PipelineConfig(),
                name=stream_id, on_result=_publisher(server, last), annotate=annotate_latency,
                on_status=lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True),
                actor_options=actor_options or None, resume=resume))
        return _run_until_done(pipelines, latest, console if live_table else None)
    finally:
        if owns_ray:
            from egostream.actors.ray_stages import disconnect

            disconnect()


def _run_until_done(pipelines: Sequence[StreamPipeline], latest: Sequence[list[Any]],
                    console: Console | None) -> list[StreamReport]:
    """Run the pipelines (:func:`~egostream.actors.pipeline.run_streams`) with the live table of each on ``console``
    (none: no table) until they end (:func:`~egostream.io.live_run.run_live`): Ctrl-C / SIGTERM stop every
    pipeline, their stages drain (every call into Ray has ended before this returns), then the interrupt is raised
    again."""

    def stop() -> None:
        for pipeline in pipelines:
            pipeline.stop()

    def view() -> Group:
        return Group(*(stage_table(pipeline.snapshot_report(), last[0], _ROW_PERIOD_S)
                       for pipeline, last in zip(pipelines, latest)))

    run = run_live(lambda: run_streams(pipelines), stop, view, console, name="egostream-pipelines")
    if run.interrupt is not None:
        raise run.interrupt
    return run.value


def extractor_window_frames(extractor: Any, requested: int | None) -> int:
    """Frames per window: ``requested``, else the extractor's own ``window_frames`` (Omnivore 32), else 16. An
    extractor that declares its windows refuses another size (its rows would not be the released features)."""
    declared = getattr(extractor, "window_frames", None)
    if requested is None:
        return int(declared or 16)
    if declared is not None and requested != declared:
        raise InputError(None, "--window-frames", f"the {type(extractor).__name__} reads {declared}-frame windows, "
                                                  f"not {requested}")
    return requested


def extract_features(videos: Sequence[str], out_dir: str, extractor: str, *,
                     extractor_options: Mapping[str, Any] | None = None, window_frames: int | None = None,
                     decoder_backend: str = "pyav", ray_address: str | None = None, gpus_per_video: float = 0.0,
                     max_retries: int = 3, device: str = "auto") -> BatchReport:
    """Extract every video's features to ``<out_dir>/<video_uid>.pt`` (resumable; see
    :mod:`egostream.actors.batch`). Without ``ray_address`` the videos are processed in this process.
    ``window_frames`` defaults to the extractor's own (Omnivore 32, else 16). ``device`` goes to the extractor's
    ``device`` option unless ``extractor_options`` name one; on CUDA each Ray task requests ``gpus_per_video`` GPUs
    (:data:`DEFAULT_GPUS_PER_STREAM` when 0)."""
    backend = "local" if ray_address is None else "ray"
    stage_device, stage_gpus = device_placement(device, backend, gpus_per_video or DEFAULT_GPUS_PER_STREAM)
    spec = ExtractorSpec(extractor, dict(extractor_options or {}), device=stage_device)
    built = spec()  # fail fast
    dim = int(built.dim)  # the width that validates existing files
    files = find_videos(videos)
    if not files:
        raise InputError(None, "VIDEOS", "no video files found")
    job = FeatureExtractionJob(spec, dim, extractor_window_frames(built, window_frames), 16, decoder_backend)
    items = extraction_items(files, out_dir)
    if ray_address is None:
        return run_batch(items, job, backend="local")
    from egostream.actors.ray_stages import connect

    owns_ray = connect(ray_address)
    try:
        return run_batch(items, job, backend="ray", num_gpus=stage_gpus, max_retries=max_retries)
    finally:
        if owns_ray:
            from egostream.actors.ray_stages import disconnect

            disconnect()


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
                      ray_address: str, *, force: bool = False, device: str = "auto",
                      gpus_per_task: float = DEFAULT_GPUS_PER_STREAM, **options: Any) -> dict[str, Any]:
    """``egostream replay --ray-address``: each task runs as one Ray task (its submission ``<out>/<task>.json`` is
    written atomically by the driver, skipped when already there, exactly once); then the driver scores the
    submissions as ``egostream replay`` does and returns ``{task: metrics}``. A task that fails (bad input) is
    skipped, the others are scored, and the result then also holds ``"failed": {task: reason}``. ``device`` is
    resolved here (:func:`device_placement`); on CUDA each task requests ``gpus_per_task`` GPUs and runs on the one
    Ray assigns it."""
    from egostream.model import checkpoint_tasks
    from egostream.replay import replay
    from egostream.tasks.base import task_names

    if task == "all":
        tasks = list(checkpoints) if isinstance(checkpoints, Mapping) else [
            name for name in task_names() if name in checkpoint_tasks(checkpoints)]
    else:
        tasks = [task]
    out = Path(out_dir)
    if force:
        for name in tasks:
            (out / f"{name}.json").unlink(missing_ok=True)
    task_device, task_gpus = device_placement(device, "ray", gpus_per_task)
    items = [BatchItem(name, str(data_root), out / f"{name}.json") for name in tasks]
    from egostream.actors.ray_stages import connect

    owns_ray = connect(ray_address)
    try:
        report = run_batch(items, ReplayTaskJob(protocol, str(data_root), split, checkpoints,
                                                {**options, "device": task_device}),
                           backend="ray", num_gpus=task_gpus)
    finally:
        if owns_ray:
            from egostream.actors.ray_stages import disconnect

            disconnect()
    metrics: dict[str, Any] = {}
    for name in tasks:
        if name not in report.failed:
            # The submissions exist: the driver only scores them, on its own CPU (the workers ran the model on the
            # device of ``options``).
            metrics.update(replay(name, protocol, data_root, split, checkpoints, out_dir, progress=False,
                                  **{**options, "device": "cpu"}))
    if report.failed:
        metrics["failed"] = dict(report.failed)
    return metrics
