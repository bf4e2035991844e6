"""`egostream replay --stream`: one video's features streamed to a result file, with a table on the console."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from rich.console import Console

from egostream.errors import InputError
from egostream.io.sinks import read_results
from egostream.stream.config import StreamConfig
from egostream.replay_stream import replay_stream
from tests.stream.test_readouts import tiny_bundle

GRID = StreamConfig(horizon_s=20.0, emit_every_s=8 * 16 / 30)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ego4d")
    (root / "features" / "synthetic").mkdir(parents=True)
    torch.save(torch.randn(20, 32, generator=torch.Generator().manual_seed(0)), root / "features" / "synthetic" / "v1.pt")
    return root, tiny_bundle().save(root / "tiny.pth")


@pytest.mark.parametrize("suffix", [".msgpack", ".jsonl"])
def test_replay_stream_writes_every_window_and_prints_a_table(data_root: tuple[Path, Path], tmp_path: Path,
                                                              suffix: str) -> None:
    root, checkpoint = data_root
    screen = io.StringIO()
    summary = replay_stream(root, "v1", checkpoint, tmp_path / f"out{suffix}", features="synthetic",
                            stream_config=GRID, console=Console(file=screen, width=160), live=False)
    read = read_results(tmp_path / f"out{suffix}")
    assert read.report.ok
    assert [r.rows for r in read.results] == [8, 16, 20]  # every 8 rows, then the tail at the end of the video
    assert summary.windows == 3 and summary.rows == 20 and summary.format == suffix[1:]
    assert {r.stream_id for r in read.results} == {"v1"}
    # names come from the Ego4D vocabularies
    assert read.results[0].ar is not None and not read.results[0].ar.verbs[0].name.startswith("verb#")
    assert "replay --stream v1" in screen.getvalue()


def test_missing_video_is_an_input_error(data_root: tuple[Path, Path], tmp_path: Path) -> None:
    root, checkpoint = data_root
    with pytest.raises(InputError, match="no features for video 'nope'"):
        replay_stream(root, "nope", checkpoint, tmp_path / "x.msgpack", features="synthetic", stream_config=GRID)
