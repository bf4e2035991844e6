"""``egostream run`` and ``egostream extract`` end to end on a real H.264 file, in-process and on the cluster."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from egostream.cli import main
from egostream.io import EGOVLP_WINDOWS, expected_window_count
from egostream.io.sinks import read_results
from tests.actors.conftest import FRAMES

WINDOWS = expected_window_count(FRAMES, EGOVLP_WINDOWS)


def _stream_config(tmp_path: Path) -> Path:
    path = tmp_path / "stream.yaml"
    path.write_text("emit_every_s: 2.1333333333333333\nhorizon_s: 60.0\n")  # a result every 4 rows
    return path


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict | None, str]:
    code = main(argv)
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()  # the report is the last line (Ray may log above it)
    return code, json.loads(lines[-1]) if lines else None, captured.err


def _run_argv(video: Path, checkpoint: Path, out: Path, tmp_path: Path, *extra: str) -> list[str]:
    return ["run", str(video), "--checkpoint", str(checkpoint), "--extractor", "pixel_projection", "--out", str(out),
            "--format", "jsonl", "--stream-config", str(_stream_config(tmp_path)), "--no-table", *extra]


def test_run_streams_a_file_into_results(video: Path, checkpoint: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results.jsonl"
    code, report, _ = _run(capsys, _run_argv(video, checkpoint, out, tmp_path, "--local", "--extractor-option",
                                             "dim=32", "--extractor-option", "device=cpu"))
    assert code == 0 and report["rows"] == WINDOWS and report["results"] == 5 and report["dropped"] == 0
    assert set(report["latency_ms"]) == {"decode", "extract", "engine", "sink", "end_to_end", "glass_to_answer"}
    results = read_results(out)
    assert results.report.ok and [r.window_index for r in results.results] == list(range(5))
    assert results.results[-1].rows == WINDOWS and results.results[0].stream_id == "clip"


def test_run_refuses_an_extractor_of_the_wrong_width(video: Path, checkpoint: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results.jsonl"
    code, _, err = _run(capsys, _run_argv(video, checkpoint, out, tmp_path, "--local", "--extractor-option",
                                          "dim=16", "--extractor-option", "device=cpu"))
    assert code == 2 and str(checkpoint) in err and "feature width" in err and "32" in err and "16" in err
    assert not out.exists()


def test_extract_writes_ego4d_feature_files(video: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "videos").mkdir()
    for uid in ("uid_a", "uid_b"):
        (tmp_path / "videos" / f"{uid}.mp4").write_bytes(video.read_bytes())
    argv = ["extract", str(tmp_path / "videos"), "--out", str(tmp_path / "features"), "--extractor",
            "pixel_projection", "--extractor-option", "dim=32", "--extractor-option", "device=cpu"]
    code, report, _ = _run(capsys, argv)
    assert code == 0 and report["written"] == 2 and report["failed"] == {}
    first = torch.load(tmp_path / "features" / "uid_a.pt", weights_only=True)
    assert first.shape == (WINDOWS, 32) and torch.equal(first, torch.load(tmp_path / "features" / "uid_b.pt"))
    code, report, _ = _run(capsys, argv)
    assert code == 0 and report["written"] == 0 and report["skipped"] == 2


@pytest.mark.cluster
def test_run_and_extract_on_the_cluster(ray_cluster, video: Path, checkpoint: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results.jsonl"
    code, report, _ = _run(capsys, _run_argv(video, checkpoint, out, tmp_path, "--ray-address", ray_cluster.address,
                                             "--extractor-option", "dim=32", "--extractor-option", "device=cpu"))
    assert code == 0 and report["rows"] == WINDOWS and report["results"] == 5
    assert [r.window_index for r in read_results(out).results] == list(range(5))
    (tmp_path / "videos").mkdir()
    for uid in ("uid_a", "uid_b", "uid_c"):
        (tmp_path / "videos" / f"{uid}.mp4").write_bytes(video.read_bytes())
    code, report, _ = _run(capsys, ["extract", str(tmp_path / "videos"), "--out", str(tmp_path / "features"),
                                    "--extractor", "pixel_projection", "--extractor-option", "dim=32",
                                    "--extractor-option", "device=cpu", "--ray-address", ray_cluster.address])
    assert code == 0 and report["written"] == 3
    assert torch.load(tmp_path / "features" / "uid_c.pt", weights_only=True).shape == (WINDOWS, 32)
