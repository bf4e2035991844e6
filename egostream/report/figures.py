"""The report's PNGs, drawn with matplotlib (Agg backend, no display): the same tracks as the HTML page.

:func:`timeline_figure` draws one stream's whole timeline (video thumbnails, MQ, AR, LTA, OSCC / PNR, latency, with
the ground truth under each track); :func:`save_pngs` writes it and one PNG per track.
"""
from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from egostream.io.atomic import write_bytes_atomic
from egostream.report.page import FILLED_COLOR, PALETTE, PNR_COLOR, TRACKS, TRUTH_COLOR, Track
from egostream.report.thumbnails import Thumbnail
from egostream.report.truth import GroundTruth
from egostream.stream.schema import WindowResult

__all__ = ["timeline_figure", "save_pngs", "LTA_STEPS"]

#: Future steps of the LTA track.
LTA_STEPS = 5
_COLOR = {track.key: track.color for track in TRACKS}


def _verb_color(verb_id: int) -> str:
    return PALETTE[verb_id % len(PALETTE)]


def _window_starts(results: Sequence[WindowResult]) -> list[float]:
    """Each window's left edge on the AR track: the previous window's time (the first: its AR span start)."""
    starts = []
    for i, result in enumerate(results):
        if i > 0:
            starts.append(results[i - 1].time_s)
        else:
            starts.append(max(0.0, result.ar.span.start_s) if result.ar is not None else 0.0)
    return starts


def _draw_mq(ax: Any, results: Sequence[WindowResult], truth: GroundTruth | None) -> None:
    finals = [m for r in results if r.mq is not None for m in r.mq.moments if m.final]
    live = [m for m in results[-1].mq.moments if not m.final] if results and results[-1].mq is not None else []
    rows = [("final", [(m.start_s, m.end_s, f"{m.label.name} {m.score:.2f}") for m in finals], 0.85),
            ("live", [(m.start_s, m.end_s, f"{m.label.name} {m.score:.2f}") for m in live], 0.4)]
    if truth is not None:
        rows.append(("truth", [(m.start_s, m.end_s, m.label) for m in truth.moments], 0.6))
    for y, (name, spans, alpha) in enumerate(reversed(rows)):
        color = TRUTH_COLOR if name == "truth" else _COLOR["mq"]
        for start, end, label in spans:
            ax.barh(y, max(end - start, 1e-3), left=start, height=0.7, color=color, alpha=alpha)
            ax.text(start, y, " " + label, va="center", ha="left", fontsize=6, clip_on=True)
    ax.set_yticks(range(len(rows)), [name for name, _, _ in reversed(rows)])


def _draw_ar(ax: Any, results: Sequence[WindowResult], truth: GroundTruth | None) -> None:
    labels = ["predicted"] if truth is None else ["truth", "predicted"]
    y = labels.index("predicted")
    for start, r in zip(_window_starts(results), results):
        if r.ar is None or not r.ar.verbs or not r.ar.nouns:
            continue
        ax.barh(y, max(r.time_s - start, 1e-3), left=start, height=0.7, color=_verb_color(r.ar.verbs[0].id))
    if truth is not None:
        for a in truth.actions:
            ax.barh(0, max(a.end_s - a.start_s, 1e-3), left=a.start_s, height=0.7, color=_verb_color(a.verb_id),
                    alpha=0.55)
            ax.text(a.start_s, 0, f" {a.verb} {a.noun}", va="center", ha="left", fontsize=6, clip_on=True)
    ax.set_yticks(range(len(labels)), labels)


def _draw_lta(ax: Any, results: Sequence[WindowResult], truth: GroundTruth | None) -> None:
    for step in range(LTA_STEPS):
        points = [(r.time_s, _verb_color(r.lta.top1[step].verb.id)) for r in results
                  if r.lta is not None and len(r.lta.top1) > step]
        if points:
            ax.scatter([x for x, _ in points], [step + 1] * len(points), c=[c for _, c in points], marker="s", s=14)
    labels = [f"+{k + 1}" for k in range(LTA_STEPS)]
    if truth is not None and truth.actions:
        points = []
        for r in results:
            upcoming = next((a for a in truth.actions if a.start_s >= r.time_s), None)
            if r.lta is not None and upcoming is not None:
                points.append((r.time_s, _verb_color(upcoming.verb_id)))
        if points:
            ax.scatter([x for x, _ in points], [0] * len(points), facecolors="none",
                       edgecolors=[c for _, c in points], marker="s", s=14)
        ax.set_yticks(range(LTA_STEPS + 1), ["truth +1", *labels])
    else:
        ax.set_yticks(range(1, LTA_STEPS + 1), labels)


def _draw_oscc(ax: Any, results: Sequence[WindowResult], truth: GroundTruth | None) -> None:
    points = [(r.time_s, r.oscc.probability) for r in results if r.oscc is not None]
    if points:
        ax.plot([x for x, _ in points], [p if math.isfinite(p) else math.nan for _, p in points],
                color=_COLOR["oscc"], linewidth=1.8, marker="o", markersize=2)
    keyframes = [r.pnr.time_s for r in results if r.pnr is not None]
    if keyframes:
        ax.scatter(keyframes, [1.08] * len(keyframes), marker="v", color=PNR_COLOR, s=16)
    if truth is not None:
        for sample in truth.state_changes:
            ax.plot([sample.start_s, sample.end_s], [-0.12, -0.12], linewidth=4,
                    color=TRUTH_COLOR if sample.state_change else "#cccccc", solid_capstyle="butt")
            if sample.pnr_s is not None:
                ax.scatter([sample.pnr_s], [-0.12], marker="x", color=PNR_COLOR, s=20, zorder=3)
    ax.set_ylim(-0.2, 1.15)
    ax.set_yticks([0, 0.5, 1])


def _draw_latency(ax: Any, results: Sequence[WindowResult], truth: GroundTruth | None) -> None:
    def latency(r: WindowResult) -> float:
        return r.latency_ms.get("end_to_end", r.latency_ms.get("total", 0.0))

    ax.plot([r.time_s for r in results], [latency(r) for r in results], color=_COLOR["latency"], linewidth=1.5,
            marker="o", markersize=2)
    filled = [r for r in results if r.filled]
    if filled:
        ax.scatter([r.time_s for r in filled], [latency(r) for r in filled], marker="x", color=FILLED_COLOR, s=25)
    ax.set_ylim(bottom=0)


def _draw_video(ax: Any, thumbnails: Sequence[Thumbnail]) -> None:
    from PIL import Image

    step = thumbnails[1].time_s - thumbnails[0].time_s if len(thumbnails) > 1 else 1.0
    for thumbnail in thumbnails:
        image = Image.open(io.BytesIO(thumbnail.png)).convert("RGB")
        ax.imshow(image, extent=(thumbnail.time_s - step / 2, thumbnail.time_s + step / 2, 0, 1), aspect="auto")
    ax.set_yticks([])
    ax.set_ylim(0, 1)


_DRAW = {"mq": _draw_mq, "ar": _draw_ar, "lta": _draw_lta, "oscc": _draw_oscc, "latency": _draw_latency}


def _tracks(thumbnails: Sequence[Thumbnail]) -> list[Track]:
    return [track for track in TRACKS if track.key != "video" or thumbnails]


def _draw(ax: Any, track: Track, results: Sequence[WindowResult], truth: GroundTruth | None,
          thumbnails: Sequence[Thumbnail], end_s: float) -> None:
    if track.key == "video":
        _draw_video(ax, thumbnails)
    else:
        _DRAW[track.key](ax, results, truth)
    for i, r in enumerate(results):
        if r.filled:  # refilled windows shaded on every track
            ax.axvspan(results[i - 1].time_s if i else 0.0, r.time_s, color=FILLED_COLOR, alpha=0.12, linewidth=0)
    ax.set_ylabel(track.title, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_xlim(0, end_s)
    ax.grid(axis="x", color="#eeeeee")


def _end_s(results: Sequence[WindowResult], truth: GroundTruth | None) -> float:
    ends = [results[-1].time_s if results else 0.0, 1.0]
    if truth is not None:
        ends.extend(a.end_s for a in truth.actions)
    return max(ends)


def timeline_figure(results: Sequence[WindowResult], truth: GroundTruth | None = None,
                    thumbnails: Sequence[Thumbnail] = (), *, width_in: float = 14.0) -> Any:
    """A matplotlib figure of one stream's timeline (one axis per track, shared stream-time x axis in seconds)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    tracks = _tracks(thumbnails)
    figure = Figure(figsize=(width_in, 1.6 * sum(track.weight for track in tracks) + 0.8), layout="constrained")
    axes = figure.subplots(len(tracks), 1, sharex=True,
                           gridspec_kw={"height_ratios": [track.weight for track in tracks]})
    end_s = _end_s(results, truth)
    for ax, track in zip(axes, tracks):
        _draw(ax, track, results, truth, thumbnails, end_s)
    axes[-1].set_xlabel("stream time (s)")
    stream = results[0].stream_id if results else "stream"
    figure.suptitle(f"egostream: {stream} ({len(results)} windows)", fontsize=10)
    return figure


def _png_bytes(figure: Any, dpi: int) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def save_pngs(results: Sequence[WindowResult], out_dir: Path, prefix: str, truth: GroundTruth | None = None,
              thumbnails: Sequence[Thumbnail] = (), dpi: int = 100) -> list[Path]:
    """Write ``<prefix>timeline.png`` (every track) and ``<prefix><track>.png`` (one per track) into ``out_dir``
    atomically; returns their paths."""
    from matplotlib.figure import Figure

    paths = [write_bytes_atomic(out_dir / f"{prefix}timeline.png",
                                _png_bytes(timeline_figure(results, truth, thumbnails), dpi))]
    end_s = _end_s(results, truth)
    for track in _tracks(thumbnails):
        figure = Figure(figsize=(14.0, 1.6 * track.weight + 0.6), layout="constrained")
        ax = figure.subplots()
        _draw(ax, track, results, truth, thumbnails, end_s)
        ax.set_xlabel("stream time (s)")
        paths.append(write_bytes_atomic(out_dir / f"{prefix}{track.key}.png", _png_bytes(figure, dpi)))
    return paths
