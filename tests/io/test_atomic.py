"""Atomic writes: the destination holds the old content or the new one, never a partial file or a stray temporary."""
from __future__ import annotations

from pathlib import Path

import pytest

from egostream.io.atomic import AtomicFile, atomic_output, write_json_atomic


def test_interrupted_write_keeps_old_content_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), atomic_output(path) as stream:
        stream.write(b"half of the new")
        raise KeyboardInterrupt
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_commit_publishes_and_abort_discards(tmp_path: Path) -> None:
    published, discarded = AtomicFile(tmp_path / "a" / "kept.bin"), AtomicFile(tmp_path / "dropped.bin")
    published.stream.write(b"new")
    discarded.stream.write(b"never seen")
    assert not published.path.exists()
    assert published.commit() == tmp_path / "a" / "kept.bin"
    discarded.abort()
    assert published.path.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["kept.bin"]


def test_json_is_written_in_key_order_and_nan_is_refused(tmp_path: Path) -> None:
    path = write_json_atomic(tmp_path / "doc.json", {"b": 1, "a": [0.5]})
    assert path.read_text() == '{"b": 1, "a": [0.5]}\n'
    with pytest.raises(ValueError):
        write_json_atomic(path, {"x": float("nan")})
    assert path.read_text() == '{"b": 1, "a": [0.5]}\n'
