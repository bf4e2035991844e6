"""Issue 15, item 3: SIGINT / SIGTERM stop ``egostream run`` on Ray cleanly; the driver's Ray does not outlive it.

Each test starts ``egostream run`` on a local Ray instance (no ``--ray-address``) in its own process group, waits
until results are being written, signals it, and checks the exit status, the published result file (complete up to
its last window, no partial file left) and that no process of that run's process tree is still alive.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from egostream.io.sinks import partial_path, read_results

pytestmark = [pytest.mark.cluster, pytest.mark.skipif(not Path("/proc/self/stat").exists(),
                                                       reason="reads the process tree from /proc")]

_REPO_ROOT = Path(__file__).resolve().parents[2]
_MINUTES_OF_VIDEO = 10  # long enough that the stream is still running when the signal arrives


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from egostream.io.synthetic_video import render_video

    path = tmp_path_factory.mktemp("long") / "long.mp4"
    frames = 30 * 60 * _MINUTES_OF_VIDEO
    render_video(path, [(frame // 45) % 3 for frame in range(frames)], 30.0, num_classes=3, size=(32, 32))
    return path


def _process_tree(root: int) -> dict[int, str]:
    """pid -> start time (clock ticks) of ``root`` and all its descendants now."""
    parents: dict[int, int] = {}
    started: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        started[int(entry.name)] = fields[19]
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return {pid: started[pid] for pid in tree if pid in started}


def _alive(pid: int, started: str) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[19] == started and fields[0] != "Z"


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143),
                                                (signal.SIGKILL, -signal.SIGKILL)])
def test_a_signalled_run_ends_its_results_at_the_last_window_and_leaves_no_process(
        long_video: Path, checkpoint: Path, tmp_path: Path, signum: int, status: int) -> None:
    out = tmp_path / "results.jsonl"
    config = tmp_path / "stream.yaml"
    config.write_text("emit_every_s: 2.1333333333333333\nhorizon_s: 60.0\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(_REPO_ROOT), os.environ.get("PYTHONPATH")])),
           "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    command = [sys.executable, "-m", "egostream", "run", str(long_video), "--checkpoint", str(checkpoint),
               "--extractor", "pixel_projection", "--out", str(out), "--format", "jsonl", "--stream-config",
               str(config), "--no-table", "--extractor-option", "dim=32", "--extractor-option", "device=cpu"]
    process = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while process.poll() is None and time.monotonic() < deadline:
            if partial_path(out).exists() and partial_path(out).read_bytes().count(b"\n") >= 2:
                break
            time.sleep(0.2)
        assert process.poll() is None, "the run ended before it could be signalled"
        tree = _process_tree(process.pid)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == status
    if signum == signal.SIGKILL:  # no chance to clean up: the result is not published, the partial file is kept
        assert not out.exists() and partial_path(out).exists()
        _assert_no_survivor(tree)
        return
    assert "Traceback" not in stderr and f"interrupted ({signal.Signals(signum).name})" in stderr
    results = read_results(out)
    assert results.report.ok and len(results.results) >= 2 and not partial_path(out).exists()
    assert [r.window_index for r in results.results] == list(range(len(results.results)))
    assert results.results[-1].rows < 30 * 60 * _MINUTES_OF_VIDEO // 16  # stopped early, not run to the end
    assert stderr.count("Started a local Ray instance") == 1
    _assert_no_survivor(tree)


def _assert_no_survivor(tree: dict[int, str]) -> None:
    deadline = time.monotonic() + 30  # Ray's processes get a few seconds to notice their driver is gone
    survivors = [pid for pid, started in tree.items() if _alive(pid, started)]
    while survivors and time.monotonic() < deadline:
        time.sleep(0.5)
        survivors = [pid for pid, started in tree.items() if _alive(pid, started)]
    assert survivors == []
