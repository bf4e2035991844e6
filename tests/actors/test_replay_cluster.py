"""``egostream replay --ray-address``: every task's submission written once by the driver, byte-identical to the
in-process replay, metrics identical, and a second run resumes (nothing recomputed); a translation checkpoint too."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from egostream.cli import main

pytestmark = pytest.mark.cluster

SMALL = ["min_video_sec=120", "max_video_sec=150", "feature_dim=32", "moments_per_video=3", "train_fraction=0.5"]


def replay_here_and_on_the_cluster(checkpoint: Path, protocol: str, address: str, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> tuple[list[str], dict, dict]:
    """``replay --task all`` of ``checkpoint`` on the synthetic data in ``tmp_path / "data"``, in this process into
    ``tmp_path / "local"`` and on the cluster into ``tmp_path / "cluster"``: the command line (without ``--out``)
    and both printed metrics (the cluster's with its output folder written as the local one)."""
    common = ["replay", "--task", "all", "--data", str(tmp_path / "data"), "--checkpoint", str(checkpoint),
              "--features", "synthetic", "--protocol", protocol]
    assert main([*common, "--out", str(tmp_path / "local")]) == 0
    local = json.loads(capsys.readouterr().out)
    assert main([*common, "--out", str(tmp_path / "cluster"), "--ray-address", address]) == 0
    distributed = json.loads(capsys.readouterr().out.replace(str(tmp_path / "cluster"), str(tmp_path / "local")))
    for task in local:
        submission = f"{task}.json"
        assert (tmp_path / "cluster" / submission).read_bytes() == (tmp_path / "local" / submission).read_bytes()
    return common, local, distributed


def test_replay_on_the_cluster_equals_the_local_replay(ray_cluster, checkpoint: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synth", str(tmp_path / "data"), *SMALL, "--videos", "4", "--seed", "1"]) == 0
    capsys.readouterr()
    common, local, distributed = replay_here_and_on_the_cluster(checkpoint, "official", ray_cluster.address,
                                                                tmp_path, capsys)
    assert distributed == local and sorted(local) == ["ar", "lta", "mq", "oscc", "pnr"]  # paths aside
    stamps = {task: (tmp_path / "cluster" / f"{task}.json").stat().st_mtime_ns for task in local}
    assert main([*common, "--out", str(tmp_path / "cluster"), "--ray-address", ray_cluster.address]) == 0
    assert json.loads(capsys.readouterr().out.replace(str(tmp_path / "cluster"), str(tmp_path / "local"))) == local
    assert {task: (tmp_path / "cluster" / f"{task}.json").stat().st_mtime_ns for task in local} == stamps


def test_a_translation_checkpoint_replays_on_the_cluster_as_locally(ray_cluster, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A translation (EgoT2-s) checkpoint loads on the workers with its frozen source: the cluster's submission
    and metrics equal the in-process replay's."""
    from tests.translation.models import saved_translation, tiny_model

    sizes = [item for item in SMALL if not item.startswith("feature_dim=")]
    assert main(["synth", str(tmp_path / "data"), *sizes, f"feature_dim={tiny_model().feature_dim}", "--videos",
                 "4", "--seed", "1"]) == 0
    checkpoint, _ = saved_translation(tmp_path, "oscc", ("oscc", "pnr"))
    capsys.readouterr()
    _, local, distributed = replay_here_and_on_the_cluster(checkpoint, "hier-egopack", ray_cluster.address,
                                                           tmp_path, capsys)
    assert distributed == local and sorted(local) == ["oscc"]  # paths aside
