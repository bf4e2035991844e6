"""The report page: one self-contained HTML file (plotly.js and the data inside it; nothing is fetched).

The same page runs in two modes: ``static`` draws the records embedded in it; ``live`` (served by the result server,
:mod:`egostream.io.result_server`) starts empty and draws every window it receives over the server's WebSocket
(``/ws?format=json``). The drawing code is ``timeline.js`` next to this module; plotly.js comes from the ``plotly``
package (:func:`plotly.offline.get_plotlyjs`), embedded as it is.
"""
from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any, Literal

from egostream.report.thumbnails import Thumbnail
from egostream.report.truth import GroundTruth
from egostream.stream.schema import WindowResult, json_safe, result_to_record

__all__ = ["Track", "TRACKS", "PALETTE", "TRUTH_COLOR", "PNR_COLOR", "FILLED_COLOR", "PageOptions", "build_page",
           "page_record"]

PageMode = Literal["static", "live"]


@dataclass(frozen=True)
class Track:
    """One horizontal band of the timeline: its ``key``, the ``title`` on its axis, the colour of its main trace
    and its share of the height (``weight``)."""

    key: str
    title: str
    color: str
    weight: float


#: The tracks, top to bottom (``video`` only when thumbnails are given).
TRACKS: tuple[Track, ...] = (
    Track("video", "video", "#000000", 0.6),
    Track("mq", "moments (MQ)", "#9467bd", 1.0),
    Track("ar", "action (AR)", "#1f77b4", 0.8),
    Track("lta", "next actions (LTA)", "#1f77b4", 1.3),
    Track("oscc", "OSCC / PNR", "#d62728", 1.0),
    Track("latency", "latency (ms)", "#2ca02c", 0.8),
)
#: Verb colours of the AR and LTA tracks (verb id modulo the length); none equals another track's colour.
PALETTE: tuple[str, ...] = ("#1f77b4", "#17becf", "#bcbd22", "#8c564b", "#393b79", "#637939", "#8c6d31",
                            "#843c39", "#7b4173", "#3182bd")
TRUTH_COLOR = "#7f7f7f"
PNR_COLOR = "#ff7f0e"
FILLED_COLOR = "#e377c2"


@dataclass(frozen=True)
class PageOptions:
    """``height`` of each stream's plot in pixels; the evidence table shows the last ``evidence_rows`` windows;
    a live page redraws at most every ``live_refresh_ms`` milliseconds."""

    height: int = 900
    evidence_rows: int = 200
    live_refresh_ms: int = 250


def page_record(result: WindowResult) -> dict[str, Any]:
    """The map the page draws from: the result's record without the LTA samples (the page shows the top-1
    sequence), NaN as ``None``."""
    record = result_to_record(result)
    if record.get("lta") is not None:
        record["lta"] = {key: value for key, value in record["lta"].items() if key != "samples"}
    return json_safe(record)


def _script_json(value: Any) -> str:
    """JSON that is safe inside a <script> element (no ``</``, no HTML comment openers)."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False).replace("</", "<\\/").replace("<!--", "<\\!--")


def _thumbnail_entry(thumbnail: Thumbnail) -> dict[str, Any]:
    return {"time_s": thumbnail.time_s, "width": thumbnail.width, "height": thumbnail.height,
            "src": "data:image/png;base64," + base64.b64encode(thumbnail.png).decode("ascii")}


def build_page(results: Iterable[WindowResult], *, mode: PageMode = "static", title: str = "egostream report",
               truth: Sequence[GroundTruth] = (), thumbnails: Mapping[str, Sequence[Thumbnail]] | None = None,
               options: PageOptions = PageOptions()) -> str:
    """The HTML text of the page.

    Args:
        results: the windows to draw (``static``); a ``live`` page may start with some and adds what it receives.
        mode: ``"static"`` or ``"live"``.
        title: the page title.
        truth: the ground truth of each stream (matched by ``GroundTruth.video_uid == stream_id``).
        thumbnails: stream id -> thumbnails for its video track (key ``"*"``: the page's only stream).
        options: plot height and table sizes.
    """
    from plotly.offline import get_plotlyjs

    config = {
        "mode": mode,
        "records": [page_record(result) for result in results],
        "truth": {item.video_uid: json_safe(asdict(item)) for item in truth},
        "thumbnails": {key: [_thumbnail_entry(t) for t in items] for key, items in (thumbnails or {}).items()},
        "tracks": [asdict(track) for track in TRACKS],
        "palette": list(PALETTE), "truth_color": TRUTH_COLOR, "pnr_color": PNR_COLOR, "filled_color": FILLED_COLOR,
        "height": options.height, "evidence_rows": options.evidence_rows, "live_refresh_ms": options.live_refresh_ms,
    }
    timeline = resources.files("egostream.report").joinpath("timeline.js").read_text(encoding="utf-8")
    return "\n".join([
        "<!DOCTYPE html>",
        "<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:12px;background:#fff;color:#222}h1{font-size:18px;margin:4px 0}"
        "h2{font-size:15px;margin:8px 0 0}table.evidence{border-collapse:collapse;font-size:12px}"
        "table.evidence td,table.evidence th{border:1px solid #ddd;padding:2px 6px;text-align:left}"
        "#summary{font-size:13px;color:#555}</style>",
        "</head><body data-status=\"loading\">",
        f"<h1>{html.escape(title)}</h1><div id=\"summary\"></div><div id=\"streams\"></div>",
        f"<script>{get_plotlyjs()}</script>",
        f"<script>window.EGOSTREAM = {_script_json(config)};</script>",
        f"<script>{timeline}</script>",
        "</body></html>",
        "",
    ])
