"""Issue 15, items 1 and 7, through the CLI: outputs are checked before anything opens, never lost or truncated.

Every failing command must exit 2 with one stderr line naming the file and the option, no traceback, and leave the
folder exactly as it was (same files, same bytes, no temporary or partial file).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from egostream.cli import main
from egostream.io.sinks import complete_records, read_results

SMALL = ["min_video_sec=120", "max_video_sec=150", "feature_dim=32", "moments_per_video=3", "train_fraction=0.5"]


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` (hidden ones too) -> its bytes (None for folders)."""
    return {str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes() for p in sorted(folder.rglob("*"))}


def _fails(capsys: pytest.CaptureFixture[str], argv: list[str], *named: str) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("egostream ")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    for name in named:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def _stream_config(folder: Path) -> Path:
    path = folder / "stream.yaml"
    path.write_text("emit_every_s: 2.1333333333333333\nhorizon_s: 60.0\n")  # a result every 4 rows
    return path


def _run_argv(source: Path, checkpoint: Path, out: Path, config: Path, *extra: str) -> list[str]:
    return ["run", str(source), "--checkpoint", str(checkpoint), "--extractor", "pixel_projection", "--out", str(out),
            "--format", "jsonl", "--stream-config", str(config), "--no-table", "--local", *extra,
            "--extractor-option", "dim=32", "--extractor-option", "device=cpu"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("outputs") / "data"
    assert main(["synth", str(root), *SMALL, "--videos", "4", "--seed", "1"]) == 0
    return root


def test_run_refuses_to_write_over_its_input(video: Path, checkpoint: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Item 1: ``run v.mp4 --out v.mp4`` (also through a symbolic or hard link, and with --force) destroyed the
    input video."""
    source = tmp_path / "v.mp4"
    source.write_bytes(video.read_bytes())
    (tmp_path / "link.mp4").symlink_to(source)
    os.link(source, tmp_path / "hard.mp4")
    config = _stream_config(tmp_path)
    before = _snapshot(tmp_path)
    for out in (source, tmp_path / "link.mp4", tmp_path / "hard.mp4"):
        line = _fails(capsys, _run_argv(source, checkpoint, out, config, "--force"), str(out), "--out")
        assert "is the input" in line
    _fails(capsys, _run_argv(source, checkpoint, checkpoint, config, "--force"), str(checkpoint), "is the input")
    assert _snapshot(tmp_path) == before


def test_a_failed_run_leaves_an_existing_result_untouched(video: Path, checkpoint: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Item 1: ``--out important.txt`` with a missing source truncated it to 0 bytes; an existing result was
    overwritten without --force."""
    important = tmp_path / "important.txt"
    important.write_text("keep me\n")
    config = _stream_config(tmp_path)
    before = _snapshot(tmp_path)
    line = _fails(capsys, _run_argv(video, checkpoint, important, config), str(important), "--out")
    assert "--force" in line and "--resume" in line
    _fails(capsys, _run_argv(tmp_path / "missing.mp4", checkpoint, important, config, "--force"),
           str(tmp_path / "missing.mp4"))
    _fails(capsys, _run_argv(video, checkpoint, important, config, "--force", "--resume"), "--resume")
    assert _snapshot(tmp_path) == before


def test_run_resumes_an_interrupted_result_and_force_replaces_one(video: Path, checkpoint: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    config = _stream_config(tmp_path)
    full = tmp_path / "full.jsonl"
    assert main(_run_argv(video, checkpoint, full, config)) == 0
    expected = read_results(full).results
    assert len(expected) >= 3
    # an interrupted result: its first two windows, then a torn record
    data = full.read_bytes()
    kept = data[:complete_records(data, "jsonl")[0]].split(b"\n")[:2]
    partial = tmp_path / "partial.jsonl"
    partial.write_bytes(b"\n".join(kept) + b'\n{"schema_vers')
    capsys.readouterr()
    assert main(_run_argv(video, checkpoint, partial, config, "--resume")) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    resumed = read_results(partial)
    assert resumed.report.ok and report["results"] == len(expected)
    assert resumed.results[:2] == read_results(full).results[:2]  # the kept records are the same bytes
    assert [(r.window_index, r.rows, r.ar) for r in resumed.results] == [
        (r.window_index, r.rows, r.ar) for r in expected]
    assert not (tmp_path / ".partial.jsonl.partial").exists()
    assert main(_run_argv(video, checkpoint, partial, config, "--force")) == 0
    assert [r.window_index for r in read_results(partial).results] == [r.window_index for r in expected]


def test_replay_stream_refuses_an_existing_result_and_resumes_one(data_root: Path, checkpoint: Path,
                                                                  tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    video = sorted((data_root / "features" / "synthetic").glob("*.pt"))[0].stem
    out = tmp_path / "windows.msgpack"
    argv = ["replay", "--stream", "--video", video, "--data", str(data_root), "--checkpoint", str(checkpoint),
            "--features", "synthetic", "--out", str(out)]
    assert main(argv) == 0
    capsys.readouterr()
    expected = read_results(out).results
    data = out.read_bytes()
    before = _snapshot(tmp_path)
    _fails(capsys, argv, str(out), "--out", "already exists")
    assert _snapshot(tmp_path) == before
    end = len(data) // 2
    out.write_bytes(data[:end])  # interrupted in the middle of a record
    held = complete_records(data[:end], "msgpack")[1]
    assert 0 < held < len(expected)
    assert main([*argv, "--resume"]) == 0
    resumed = read_results(out)
    assert resumed.report.ok and [(r.window_index, r.rows, r.mq) for r in resumed.results] == [
        (r.window_index, r.rows, r.mq) for r in expected]


def test_unwritable_outputs_are_one_line_errors(video: Path, checkpoint: Path, data_root: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Item 7: a read-only folder, an output path that is a folder, ``--out`` an existing file for ``replay`` and
    ``extract``: each raised PermissionError / IsADirectoryError / FileExistsError tracebacks."""
    config = _stream_config(tmp_path)
    folder = tmp_path / "a_folder"
    folder.mkdir()
    existing = tmp_path / "existing.txt"
    existing.write_text("keep me\n")
    if os.geteuid() == 0:  # permission bits do not stop root: /sys refuses new files to everyone
        read_only = Path("/sys/egostream-read-only")
    else:
        read_only = tmp_path / "read_only"
        read_only.mkdir()
        read_only.chmod(0o500)
    video_uid = sorted((data_root / "features" / "synthetic").glob("*.pt"))[0].stem
    replay = ["replay", "--task", "ar", "--data", str(data_root), "--checkpoint", str(checkpoint), "--features",
              "synthetic"]
    stream = ["replay", "--stream", "--video", video_uid, "--data", str(data_root), "--checkpoint", str(checkpoint),
              "--features", "synthetic"]
    extract = ["extract", str(video), "--extractor", "pixel_projection", "--extractor-option", "dim=32",
               "--extractor-option", "device=cpu"]
    before = _snapshot(tmp_path)
    _fails(capsys, _run_argv(video, checkpoint, folder, config), str(folder), "--out", "is a folder")
    _fails(capsys, _run_argv(video, checkpoint, read_only / "out.jsonl", config), str(read_only), "--out")
    _fails(capsys, [*stream, "--out", str(folder)], str(folder), "--out", "is a folder")
    _fails(capsys, [*stream, "--out", str(read_only / "w.msgpack")], str(read_only), "--out")
    _fails(capsys, [*replay, "--out", str(existing)], str(existing), "--out", "is a file")
    _fails(capsys, [*replay, "--out", str(read_only / "replay")], str(read_only), "--out")
    _fails(capsys, [*extract, "--out", str(existing)], str(existing), "--out", "is a file")
    _fails(capsys, [*extract, "--out", str(read_only / "features")], str(read_only), "--out")
    _fails(capsys, [*extract, "--out", str(existing / "features")], str(existing), "--out")
    assert _snapshot(tmp_path) == before
