"""``egostream report``: a result file (msgpack frames or JSONL) to ``report.html`` and PNGs in a folder.

One timeline per stream of the file (results grouped by ``stream_id``, in file order); the ground truth of each stream
(its ``stream_id`` is the Ego4D video uid) when an annotation root is given; thumbnails of the video when one is
given (for the stream named like the video file, or for the file's only stream).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from egostream.errors import InputError
from egostream.io.atomic import write_text_atomic
from egostream.io.sinks import read_results
from egostream.report.figures import save_pngs
from egostream.report.page import build_page
from egostream.report.thumbnails import Thumbnail, thumbnail_times, video_thumbnails
from egostream.report.truth import GroundTruth, load_ground_truth
from egostream.stream.schema import WindowResult

__all__ = ["ReportSummary", "write_report", "group_by_stream", "REPORT_PAGE", "THUMBNAILS"]

REPORT_PAGE = "report.html"
#: Thumbnails drawn on the video track.
THUMBNAILS = 24


@dataclass(frozen=True)
class ReportSummary:
    """What :func:`write_report` wrote: the page, the PNGs, the streams and their window counts, and the problems
    of the result file (a truncated last record, corrupt records; empty when it read cleanly)."""

    page: Path
    pngs: tuple[Path, ...]
    windows: dict[str, int]
    problems: str

    def as_dict(self) -> dict[str, object]:
        return {"page": str(self.page), "pngs": [str(path) for path in self.pngs], "windows": self.windows,
                "problems": self.problems}


def group_by_stream(results: Sequence[WindowResult]) -> dict[str, list[WindowResult]]:
    """Results per ``stream_id``, in order of first appearance, each list in file order."""
    groups: dict[str, list[WindowResult]] = {}
    for result in results:
        groups.setdefault(result.stream_id, []).append(result)
    return groups


def write_report(results_path: str | PathLike[str], out_dir: str | PathLike[str], *,
                 annotations: str | PathLike[str] | None = None, video: str | PathLike[str] | None = None,
                 title: str | None = None) -> ReportSummary:
    """Write ``out_dir/report.html`` and the PNGs (``timeline.png`` and one per track; ``<stream>_`` prefixed when
    the file holds several streams) for the result file ``results_path``.

    Raises:
        InputError: the result file is missing or holds no window; the annotation root or the video is unusable.
    """
    path = Path(results_path)
    if not path.is_file():
        raise InputError(path, "RESULTS", "no such result file")
    read = read_results(path)
    if not read.results:
        raise InputError(path, "RESULTS", f"no window result in the file ({read.report.summary()})")
    streams = group_by_stream(read.results)
    truth: dict[str, GroundTruth] = {}
    if annotations is not None:
        truth = {stream: load_ground_truth(annotations, stream) for stream in streams}
    thumbnails: dict[str, list[Thumbnail]] = {}
    if video is not None:
        video_path = Path(video)
        if not video_path.is_file():
            raise InputError(video_path, "--video", "no such video file")
        stream = video_path.stem if video_path.stem in streams else next(iter(streams))
        if video_path.stem not in streams and len(streams) > 1:
            raise InputError(video_path, "--video", f"matches none of the file's streams: {', '.join(streams)}")
        thumbnails[stream] = video_thumbnails(video_path, thumbnail_times(streams[stream][-1].time_s, THUMBNAILS))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pngs: list[Path] = []
    for stream, results in streams.items():
        prefix = "" if len(streams) == 1 else f"{stream}_"
        pngs.extend(save_pngs(results, out, prefix, truth.get(stream), thumbnails.get(stream, ())))
    page = write_text_atomic(out / REPORT_PAGE, build_page(
        read.results, mode="static", title=title or f"egostream report: {path.name}", truth=tuple(truth.values()),
        thumbnails=thumbnails))
    return ReportSummary(page, tuple(pngs), {stream: len(results) for stream, results in streams.items()},
                         "" if read.report.ok else read.report.summary())
