"""Step 4 of ``egostream demo``: a held-out video through the Ray pipeline, with a live table of its windows."""
from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from egostream.demo.config import STRIDE_FRAMES, DemoConfig, DemoPaths
from egostream.ego4d.annotations import read_lta_annotations
from egostream.ego4d.layout import Ego4dLayout
from egostream.ego4d.synthetic import FPS
from egostream.errors import InputError
from egostream.io.live_run import run_live
from egostream.io.live_table import (ACTION, BEST_MOMENT, OSCC_STATE, TIME, Column, next_actions_cell, pnr_cell,
                                     truth_column, window_table)

__all__ = ["held_out_video", "truth_actions", "window_truth", "stream_held_out"]


def held_out_video(cfg: DemoConfig, paths: DemoPaths) -> str:
    """The uid of the streamed video: the ``cfg.held_out_video``-th video of the val split."""
    annotations = read_lta_annotations(Ego4dLayout(paths.data).lta_annotations("val"))
    uids = list(dict.fromkeys(action.video_uid for action in annotations.actions))
    if cfg.held_out_video >= len(uids):
        raise InputError("DemoConfig", "held_out_video", f"{cfg.held_out_video} is past the {len(uids)} val videos")
    return uids[cfg.held_out_video]


@dataclass(frozen=True)
class _TruthAction:
    start_s: float
    end_s: float
    verb: int
    noun: int
    name: str


def truth_actions(paths: DemoPaths, video_uid: str) -> list[_TruthAction]:
    """The ground-truth actions of ``video_uid`` (val split) in video seconds."""
    actions = read_lta_annotations(Ego4dLayout(paths.data).lta_annotations("val")).actions
    return [_TruthAction((a.clip_parent_start_frame + a.action_clip_start_frame) / FPS,
                         (a.clip_parent_start_frame + a.action_clip_end_frame) / FPS, int(a.verb_label or 0),
                         int(a.noun_label or 0), f"{a.verb} {a.noun}")
            for a in actions if a.video_uid == video_uid]


def window_truth(actions: Sequence[Any], start_s: float, end_s: float) -> Any | None:
    """The action overlapping the span ``[start_s, end_s]`` (seconds) the most, or None when none overlaps;
    ``actions`` have ``start_s`` / ``end_s``."""
    best, best_overlap = None, 0.0
    for action in actions:
        overlap = min(end_s, action.end_s) - max(start_s, action.start_s)
        if overlap > best_overlap:
            best, best_overlap = action, overlap
    return best


def _live_columns(truth: Sequence[_TruthAction]) -> tuple[Column, ...]:
    """The demo's live table: time, AR with its ground truth (:func:`window_truth`), LTA, OSCC, PNR and MQ; the name
    columns share the console's width."""
    return (Column(TIME.header, TIME.cell, 5), Column("now (AR)", ACTION.cell),
            truth_column(lambda start_s, end_s: window_truth(truth, start_s, end_s)),
            Column("next (LTA)", next_actions_cell(" → ")), OSCC_STATE, Column("PNR (s)", pnr_cell(1), 7),
            BEST_MOMENT)


@contextlib.contextmanager
def _local_ray(object_store_mb: int) -> Iterator[None]:
    """A new local Ray instance for the duration of the block (:func:`egostream.actors.ray_stages.connect`: no
    dashboard; no auth; a small object store), unless this process is already connected to one. Its worker processes
    inherit ``PYTHONPATH`` with this package's folder first, so a source checkout works uninstalled."""
    from egostream.actors.ray_stages import connect, disconnect

    package_root = str(Path(__file__).resolve().parent.parent)
    saved = {name: os.environ.get(name) for name in ("RAY_AUTH_MODE", "RAY_USAGE_STATS_ENABLED", "PYTHONPATH")}
    os.environ.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0",
                      PYTHONPATH=os.pathsep.join(filter(None, [package_root, saved["PYTHONPATH"]])))
    try:
        owns_ray = connect(None, object_store_memory=object_store_mb * 1024 * 1024)
        try:
            yield
        finally:
            if owns_ray:
                disconnect()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def stream_held_out(cfg: DemoConfig, paths: DemoPaths, console: Console, device: str = "cpu") -> dict[str, Any]:
    """Step 4: stream the held-out video through decode → extract → engine → sink (one Ray actor each) into
    ``stream/<uid>.msgpack``, showing the newest windows live; returns the pipeline report. The extractor (unless
    its options name a device) and the engine run on ``device``; on CUDA their actors request a GPU share."""
    from egostream.actors.commands import DEFAULT_GPUS_PER_STREAM, device_placement
    from egostream.actors.perception import EmitterEngineFactory, ExtractorSpec, VideoWindows, annotate_latency
    from egostream.actors.pipeline import Emitted, PipelineConfig, StreamPipeline
    from egostream.io.sinks import ResultFileFactory

    uid = held_out_video(cfg, paths)
    truth = truth_actions(paths, uid)
    output = paths.stream / f"{uid}.msgpack"
    dim = cfg.train.model.feature_dim
    stage_device, gpus = device_placement(device, "ray", DEFAULT_GPUS_PER_STREAM)
    extractor = ExtractorSpec(cfg.extractor, dict(cfg.extractor_options), dim, str(paths.checkpoint),
                              device=stage_device)
    extractor()  # a wrong width fails here, before Ray starts
    recent: deque[Any] = deque(maxlen=cfg.table_rows)
    title = f"held-out video {uid[:8]}: Ray actors decode → extract → engine → sink"

    def remember(emitted: Emitted) -> None:
        recent.append(emitted.result)

    columns = _live_columns(truth)

    def table(caption: str) -> Table:
        return window_table(list(recent), columns, title, caption=caption, console_width=console.width)

    with _local_ray(cfg.ray_object_store_mb):
        pipeline = StreamPipeline.from_factories(
            VideoWindows(str(paths.videos / f"{uid}.mp4"), cfg.window_frames, STRIDE_FRAMES, cfg.decoder),
            extractor, EmitterEngineFactory(str(paths.checkpoint), uid, cfg.stream, dim, device=stage_device),
            ResultFileFactory(str(output), "msgpack"), live=False, backend="ray", config=PipelineConfig(), name=uid,
            on_result=remember, annotate=annotate_latency,
            actor_options={"extract": {"num_gpus": gpus}, "engine": {"num_gpus": gpus}} if gpus else None)
        # a stopped stream (Ctrl-C) ends early and the demo carries on with the windows it wrote
        report = run_live(pipeline.run, pipeline.stop,
                          lambda: table(f"windows so far: {pipeline.snapshot_report().results}"),
                          console if cfg.live_table else None, transient=True, name="egostream-demo-stream").value
    summary = report.as_dict(cfg.stream.row_period_s)
    console.print(table(f"{report.results} windows, {report.rows} rows, x-real-time "
                        f"{summary['x_real_time']:.1f}, end-to-end p50 "
                        f"{summary['latency_ms'].get('end_to_end', {}).get('p50_ms', 0.0):.0f} ms → {output}"))
    return {"video_uid": uid, "results_file": str(output), "report": summary}
