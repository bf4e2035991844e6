"""``egostream report``: the page is self-contained, the PNGs show the tracks, bad input exits 2 naming the file."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from egostream.cli import main
from egostream.io.sinks import read_results
from egostream.report.page import TRACKS
from tests.report.synthetic_stream import SyntheticStream

COLOR = {track.key: track.color for track in TRACKS}


def _rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])


def colour_pixels(image: np.ndarray, hex_colour: str, tolerance: int = 24) -> int:
    """Pixels of ``image`` ([H, W, 3]) within ``tolerance`` of the colour in every channel."""
    return int((np.abs(image[..., :3].astype(int) - _rgb(hex_colour)).max(axis=-1) <= tolerance).sum())


def _report(tmp_path: Path, stream: SyntheticStream, capsys: pytest.CaptureFixture[str], *extra: str) -> dict:
    code = main(["report", str(stream.results), "--out", str(tmp_path / "report"), *extra])
    assert code == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_report_writes_a_self_contained_page_and_pngs(synthetic_stream: SyntheticStream, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    summary = _report(tmp_path, synthetic_stream, capsys, "--annotations", str(synthetic_stream.data))
    windows = len(read_results(synthetic_stream.results).results)
    assert summary["windows"] == {synthetic_stream.video_uid: windows} and summary["problems"] == ""
    page = Path(summary["page"]).read_text()
    # nothing is fetched: no external script, stylesheet or image; plotly.js and every window are inside
    assert not re.search(r"<(script|img|link)[^>]+(src|href)=", page)
    assert "Plotly" in page and page.count('"window_index":') == windows
    assert {Path(p).name for p in summary["pngs"]} == {"timeline.png", *(f"{t.key}.png" for t in TRACKS
                                                                        if t.key != "video")}


def test_timeline_png_draws_each_curve_in_its_track(synthetic_stream: SyntheticStream, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    summary = _report(tmp_path, synthetic_stream, capsys, "--annotations", str(synthetic_stream.data))
    pngs = {Path(p).stem: np.asarray(Image.open(p).convert("RGB")) for p in summary["pngs"]}
    assert colour_pixels(pngs["oscc"], COLOR["oscc"]) > 200 and colour_pixels(pngs["oscc"], COLOR["latency"]) == 0
    assert colour_pixels(pngs["latency"], COLOR["latency"]) > 200 and colour_pixels(pngs["latency"], COLOR["oscc"]) == 0
    timeline = pngs["timeline"]
    red_rows = np.nonzero((np.abs(timeline.astype(int) - _rgb(COLOR["oscc"])).max(-1) <= 24).any(1))[0]
    green_rows = np.nonzero((np.abs(timeline.astype(int) - _rgb(COLOR["latency"])).max(-1) <= 24).any(1))[0]
    assert red_rows.size and green_rows.size and red_rows.max() < green_rows.min()  # OSCC above latency


def test_report_with_the_video_draws_thumbnails(synthetic_stream: SyntheticStream, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    summary = _report(tmp_path, synthetic_stream, capsys, "--video", str(synthetic_stream.video))
    assert "video.png" in {Path(p).name for p in summary["pngs"]}
    assert Path(summary["page"]).read_text().count("data:image/png;base64,") >= 20
    video = np.asarray(Image.open(tmp_path / "report" / "video.png").convert("RGB")).astype(int)
    saturated = (video.max(-1) - video.min(-1)) > 120  # the rendered frames are fully saturated colours
    assert saturated.mean() > 0.2


@pytest.mark.parametrize("argument", ["RESULTS", "--annotations", "--video"])
def test_bad_input_exits_2_naming_the_file(synthetic_stream: SyntheticStream, tmp_path: Path, argument: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing"
    argv = {"RESULTS": ["report", str(missing), "--out", str(tmp_path / "r")],
            "--annotations": ["report", str(synthetic_stream.results), "--out", str(tmp_path / "r"),
                              "--annotations", str(missing)],
            "--video": ["report", str(synthetic_stream.results), "--out", str(tmp_path / "r"), "--video",
                        str(missing)]}[argument]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(missing) in err[0]
