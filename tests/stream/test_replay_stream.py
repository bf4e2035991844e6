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


def test_an_interrupt_publishes_the_windows_written_so_far_and_resume_completes_them(
        data_root: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import _thread
    import threading

    import egostream.replay_stream as module
    from egostream.io.sinks import partial_path

    root, checkpoint = data_root
    full = replay_stream(root, "v1", checkpoint, tmp_path / "full.msgpack", features="synthetic",
                         stream_config=GRID, console=Console(file=io.StringIO()), live=False)
    stopped = threading.Event()
    real_run_live = module.run_live

    def run_live(job, stop, view, console, **options):  # noqa: ANN001, ANN003 - the real one, its stop observed
        def observed_stop() -> None:
            stop()
            stopped.set()
        return real_run_live(job, observed_stop, view, console, **options)

    class InterruptedAtRow8(module.WindowEmitter):
        def push(self, rows: torch.Tensor, *args, **kwargs):  # noqa: ANN002, ANN003
            results = super().push(rows, *args, **kwargs)
            if self.num_rows == 8:  # the first window: Ctrl-C arrives while it is written
                _thread.interrupt_main()
                assert stopped.wait(10)
            return results

    monkeypatch.setattr(module, "run_live", run_live)
    monkeypatch.setattr(module, "WindowEmitter", InterruptedAtRow8)
    out = tmp_path / "cut.msgpack"
    with pytest.raises(KeyboardInterrupt):
        replay_stream(root, "v1", checkpoint, out, features="synthetic", stream_config=GRID,
                      console=Console(file=io.StringIO()), live=True)
    # the window of rows [0, 8) was written and published, nothing after it
    assert [r.rows for r in read_results(out).results] == [8] and not partial_path(out).exists()
    monkeypatch.setattr(module, "WindowEmitter", module.WindowEmitter.__mro__[1])
    summary = replay_stream(root, "v1", checkpoint, out, features="synthetic", stream_config=GRID,
                            console=Console(file=io.StringIO()), live=False, resume=True)
    assert summary.windows == 2 and full.windows == 3
    assert [(r.window_index, r.rows, r.ar) for r in read_results(out).results] == [
        (r.window_index, r.rows, r.ar) for r in read_results(tmp_path / "full.msgpack").results]
