"""The report page in headless Chromium: it renders offline with no console message, and a screenshot shows each
track's marks inside that track's area (the page reports the areas' pixel boxes in ``<body data-tracks>``)."""
from __future__ import annotations

import numpy as np
from PIL import Image

from egostream.io.sinks import read_results
from egostream.report import write_report
from egostream.report.page import PALETTE, TRACKS, TRUTH_COLOR
from tests.report.chromium import load_page, needs_chromium, screenshot
from tests.report.synthetic_stream import SyntheticStream
from tests.report.test_build import colour_pixels

pytestmark = needs_chromium
COLOR = {track.key: track.color for track in TRACKS}


def _crop(image: np.ndarray, box: list[float]) -> np.ndarray:
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    return image[y0:y1, x0:x1]


def _saturated(area: np.ndarray) -> int:
    rgb = area[..., :3].astype(int)
    return int(((rgb.max(-1) - rgb.min(-1)) > 60).sum())


def test_the_report_renders_every_track_with_its_marks(synthetic_stream: SyntheticStream, tmp_path) -> None:
    summary = write_report(synthetic_stream.results, tmp_path / "report", annotations=synthetic_stream.data,
                           video=synthetic_stream.video)
    url = summary.page.resolve().as_uri()
    page = load_page(url)
    assert page.console == [] and page.body["status"] == "rendered" and page.json("errors") == []
    assert int(page.body["windows"]) == len(read_results(synthetic_stream.results).results)
    boxes = {key.split("/", 1)[1]: box for key, box in page.json("tracks").items()}
    assert set(boxes) == {track.key for track in TRACKS}
    assert ">truth +1<" in page.dom and ">predicted<" in page.dom  # the ground-truth rows under the tracks
    image = np.asarray(Image.open(screenshot(url, tmp_path / "shot.png")).convert("RGB"))
    area = {key: _crop(image, box) for key, box in boxes.items()}
    assert _saturated(area["video"]) > 0.2 * area["video"].shape[0] * area["video"].shape[1]   # thumbnails
    assert sum(colour_pixels(area["lta"], colour, 8) for colour in PALETTE) > 300              # next-action squares
    assert _saturated(area["ar"]) > 0.1 * area["ar"].shape[0] * area["ar"].shape[1]             # action bars
    assert colour_pixels(area["oscc"], COLOR["oscc"], 30) > 300                                # OSCC curve
    assert colour_pixels(area["latency"], COLOR["latency"], 30) > 300                          # latency curve
    # each curve only in its own track; the MQ track holds the annotated moments (grey bars)
    assert colour_pixels(area["latency"], COLOR["oscc"], 30) == 0 == colour_pixels(area["oscc"], COLOR["latency"], 30)
    grey = np.abs(area["mq"].astype(int) - 178).max(-1) <= 12   # TRUTH_COLOR at opacity 0.6 on white
    assert TRUTH_COLOR == "#7f7f7f" and grey.sum() > 1000
