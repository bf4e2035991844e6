"""``egostream run`` complete: backpack evidence in every window, stream overrides apart from extractor options,
several sources in one command, and every window published to subscribers while it runs."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch

import egostream
from egostream.actors.commands import run_stream
from egostream.backpack.prototypes import Backpack
from egostream.cli import main
from egostream.io import EGOVLP_WINDOWS, expected_window_count
from egostream.io.result_server import ResultServer
from egostream.io.sinks import read_results
from egostream.model import ModelConfig
from egostream.stream.schema import WindowResult
from tests.actors.conftest import FRAMES, STREAM

ROWS = expected_window_count(FRAMES, EGOVLP_WINDOWS)
EXTRACTOR = ["--extractor", "pixel_projection", "--extractor-option", "dim=32", "--extractor-option", "device=cpu"]


def _stream_config(tmp_path: Path) -> Path:
    path = tmp_path / "stream.yaml"
    path.write_text(f"emit_every_s: {STREAM.emit_every_s!r}\nhorizon_s: {STREAM.horizon_s!r}\n")
    return path


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    code = main(argv)
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    return json.loads(lines[-1])


def _backpack(path: Path) -> Backpack:
    vocabulary = ModelConfig()
    generator = torch.Generator().manual_seed(7)
    backpack = Backpack({"ego4d/ar": torch.randn(12, 16, generator=generator)}, torch.arange(12) * 5,
                        torch.arange(12) * 11, torch.ones(12, dtype=torch.long), vocabulary.num_verbs,
                        vocabulary.num_nouns)
    backpack.save(path)
    return backpack


def test_run_with_a_backpack_reports_evidence_every_window(video: Path, checkpoint: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    backpack = _backpack(tmp_path / "backpack.pt")
    out = tmp_path / "out.msgpack"
    _run(capsys, ["run", str(video), "--checkpoint", str(checkpoint), *EXTRACTOR, "--out", str(out), "--local",
                  "--no-table", "--stream-config", str(_stream_config(tmp_path)), "--backpack",
                  str(tmp_path / "backpack.pt")])
    results = read_results(out).results
    assert results and all(set(r.evidence) == {"ego4d/ar"} for r in results)
    k = STREAM.readouts.evidence_k
    for result in results:
        matches = result.evidence["ego4d/ar"]
        assert len(matches) == k and [m.similarity for m in matches] == sorted(
            (m.similarity for m in matches), reverse=True)
        assert all((m.verb.id, m.noun.id) == (int(backpack.verb_labels[m.prototype]),
                                              int(backpack.noun_labels[m.prototype])) for m in matches)


def test_a_stream_override_changes_the_emission_period(video: Path, checkpoint: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    rows_per_window = STREAM.emit_every_rows // 2
    out = tmp_path / "out.jsonl"
    report = _run(capsys, ["run", str(video), f"emit_every_s={rows_per_window * STREAM.row_period_s!r}",
                           "--checkpoint", str(checkpoint), *EXTRACTOR, "--out", str(out), "--format", "jsonl",
                           "--local", "--no-table", "--stream-config", str(_stream_config(tmp_path))])
    rows = [r.rows for r in read_results(out).results]
    assert rows == [*range(rows_per_window, ROWS + 1, rows_per_window), *([ROWS] if ROWS % rows_per_window else [])]
    assert report["results"] == len(rows) and all(not r.evidence for r in read_results(out).results)


def test_two_sources_in_one_command_give_a_result_file_and_a_report_each(
        video: Path, checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sources = []
    for name in ("left", "right"):
        sources.append(tmp_path / f"{name}.mp4")
        sources[-1].write_bytes(video.read_bytes())
    report = _run(capsys, ["run", *map(str, sources), "--checkpoint", str(checkpoint), *EXTRACTOR, "--out",
                           str(tmp_path / "out"), "--local", "--no-table", "--stream-config",
                           str(_stream_config(tmp_path))])
    assert [stream["name"] for stream in report["streams"]] == ["left", "right"]
    files = {name: read_results(tmp_path / "out" / f"{name}.msgpack").results for name in ("left", "right")}
    expected = ROWS // STREAM.emit_every_rows + (ROWS % STREAM.emit_every_rows > 0)
    for name, results in files.items():
        assert [r.stream_id for r in results] == [name] * expected
        assert [r.window_index for r in results] == list(range(expected))
        assert (tmp_path / "out" / name / "report.html").is_file()
    # the same video through the same model: the same answers (the extractor's batches may differ: float rounding)
    left, right = ([score.score for r in files[name] for score in (*r.ar.verbs, *r.ar.nouns)] for name in files)
    assert left == pytest.approx(right, abs=1e-5)


def test_run_publishes_every_window_to_a_subscriber_with_a_stalled_one_connected(video: Path, checkpoint: Path,
                                                                           tmp_path: Path) -> None:
    received: list[WindowResult] = []
    with ResultServer(queue_size=1) as server:
        def listen() -> None:
            for result in egostream.subscribe(server.url):
                received.append(result)

        thread = threading.Thread(target=listen, daemon=True)
        thread.start()
        from websockets.sync.client import connect

        with connect(server.url, max_queue=1):  # connected and never reading
            while len(server.stats()) < 2:
                threading.Event().wait(0.05)
            report = run_stream(str(video), str(checkpoint), "pixel_projection", str(tmp_path / "out.msgpack"),
                                extractor_options={"dim": 32, "device": "cpu"}, stream_config=STREAM,
                                backend="local", live_table=False, server=server)
        while server.published > len(received) and thread.is_alive():
            thread.join(timeout=0.1)
    written = read_results(tmp_path / "out.msgpack").results
    assert report.results == len(written) == server.published
    assert [(r.window_index, r.rows, r.ar) for r in received] == [(r.window_index, r.rows, r.ar) for r in written]


def test_run_serve_publishes_on_the_named_port_and_serves_the_live_page(video: Path, checkpoint: Path,
                                                                         tmp_path: Path) -> None:
    from urllib.request import urlopen

    from egostream.errors import InputError
    from tests.io.video_factory import free_tcp_port

    port = free_tcp_port()
    out = tmp_path / "out.msgpack"
    argv = ["run", str(video), "--checkpoint", str(checkpoint), *EXTRACTOR, "--out", str(out), "--local",
            "--no-table", "--stream-config", str(_stream_config(tmp_path)), "--serve", f"127.0.0.1:{port}"]
    codes: list[int] = []
    runner = threading.Thread(target=lambda: codes.append(main(argv)), daemon=True)
    received: list[WindowResult] = []

    def listen() -> None:  # subscribes as soon as the server is up, until the stream ends
        while runner.is_alive():
            try:
                received.extend(egostream.subscribe(f"ws://127.0.0.1:{port}/ws"))
                return
            except InputError:
                threading.Event().wait(0.05)

    runner.start()
    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    page = ""
    while not page and runner.is_alive():
        try:
            page = urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
        except OSError:
            threading.Event().wait(0.05)
    runner.join(timeout=300)
    listener.join(timeout=30)
    assert codes == [0] and '"mode":"live"' in page
    written = [r.window_index for r in read_results(out).results]
    # what the subscriber got is every window from the one after it connected on, in order
    assert received and [r.window_index for r in received] == written[len(written) - len(received):]
