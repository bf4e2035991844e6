"""Batch runs: one atomic result per video, resumable, bad input a counted skip, and exactly once per video on the
two-node cluster even when a worker node is killed mid-run."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from egostream.actors.batch import BatchItem, run_batch
from egostream.errors import InputError
from tests.actors.batch_jobs import EchoJob, attempts, expected_bytes


def _items(out: Path, keys: list[str]) -> list[BatchItem]:
    return [BatchItem(key, f"{key}.mp4", out / f"{key}.txt") for key in keys]


def test_a_run_writes_every_result_once_and_resumes(tmp_path: Path) -> None:
    out, log = tmp_path / "out", tmp_path / "attempts.log"
    job = EchoJob(log)
    items = _items(out, ["a", "b", "c"]) + [BatchItem("d", "bad.mp4", out / "d.txt")]
    first = run_batch(items, job, backend="local")
    assert sorted(first.written) == ["a", "b", "c"] and first.skipped == [] and list(first.failed) == ["d"]
    assert "bad.mp4: video: cannot decode" in first.failed["d"] and not (out / "d.txt").exists()
    for key in "abc":
        assert (out / f"{key}.txt").read_bytes() == expected_bytes(key)
    assert sorted(name.name for name in out.iterdir()) == ["a.txt", "b.txt", "c.txt"]  # no temporary files left

    (out / "b.txt").write_bytes(b"half a res")  # a damaged result is computed again; valid ones are skipped
    log.unlink()
    second = run_batch(items, job, backend="local")
    assert second.written == ["b"] and sorted(second.skipped) == ["a", "c"] and list(second.failed) == ["d"]
    assert sorted(key for event, key, _ in attempts(log) if event == "start") == ["b", "d"]


def test_two_videos_with_one_uid_are_refused(tmp_path: Path) -> None:
    items = [BatchItem("a", "x/a.mp4", tmp_path / "a.txt"), BatchItem("a", "y/a.mp4", tmp_path / "a.txt")]
    with pytest.raises(InputError, match="video uid"):
        run_batch(items, EchoJob(tmp_path / "log"), backend="local")


def _worker_node_ids() -> set[str]:
    import ray

    return {node["NodeID"] for node in ray.nodes()
            if node["Alive"] and "node:__internal_head__" not in node["Resources"]}


@pytest.mark.cluster
def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(ray_cluster, tmp_path: Path) -> None:
    out, log = tmp_path / "out", tmp_path / "attempts.log"
    keys = [f"video{number:02d}" for number in range(8)]
    worker_group = ray_cluster.workers[-1]
    deadline = time.monotonic() + 20
    while not _worker_node_ids() and time.monotonic() < deadline:
        time.sleep(0.2)
    worker_nodes = _worker_node_ids()
    killed: list[str] = []
    done: list[str] = []

    def kill_worker_while_it_works(key: str, status: str) -> None:
        done.append(key)
        if killed:
            return
        while time.monotonic() < deadline:  # wait until the worker node is inside a task, then kill it
            events = attempts(log)
            running = {k for e, k, node in events if e == "start" and node in worker_nodes} - {
                k for e, k, _ in events if e == "end"}
            if running:
                killed.extend(running)
                ray_cluster.kill_group(worker_group)
                return
            time.sleep(0.05)

    try:
        report = run_batch(_items(out, keys), EchoJob(log, seconds=0.6), backend="ray", max_retries=3,
                           on_done=kill_worker_while_it_works)
    finally:
        ray_cluster.workers.append(ray_cluster.add_worker())  # later tests get two nodes again
    assert killed, "the worker node never ran a task"
    assert sorted(report.written) == keys and report.failed == {} and sorted(done) == keys
    for key in keys:
        assert (out / f"{key}.txt").read_bytes() == expected_bytes(key)
    starts = [key for event, key, _ in attempts(log) if event == "start"]
    assert all(starts.count(key) == 2 for key in killed)  # the interrupted video ran again, and was written once
