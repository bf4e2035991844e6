"""Replay end to end on a tiny synthetic dataset with a tiny random model: every submission file is written,
metrics.json equals ``egostream eval`` (evaluate_files) on those files, tasks resume, LTA decoding does not depend on
the batch size, and the command line runs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from egostream.cli import main
from egostream.config import load_config
from egostream.ego4d.evaluation import evaluate_files
from egostream.ego4d.layout import Ego4dLayout
from egostream.ego4d.synthetic import SynthConfig, generate_dataset
from egostream.errors import InputError
from egostream.model import ModelConfig
from egostream.replay import checkpoint_spec, replay

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "model"
TASKS = ("ar", "lta", "oscc", "pnr", "mq")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("replay")
    generate_dataset(root / "data", SynthConfig(videos=3, min_video_sec=150, max_video_sec=160, seed=1))
    checkpoint = load_config(ModelConfig, CONFIGS / "tiny.yaml").build(seed=0).save(root / "tiny.pth")
    return root / "data", checkpoint


def _annotations(data: Path, task: str) -> Path:
    layout = Ego4dLayout.from_root(data)
    return {"ar": layout.lta_annotations, "lta": layout.lta_annotations, "oscc": layout.state_change_annotations,
            "pnr": layout.state_change_annotations, "mq": layout.moments_annotations}[task]("val")


@pytest.mark.parametrize("protocol", ["hier-egopack", "official"])
def test_replay_writes_every_file_and_metrics_equal_eval(dataset, tmp_path, protocol: str) -> None:
    data, checkpoint = dataset
    out = tmp_path / "out"
    returned = replay("all", protocol, data, "val", checkpoint, out, features="synthetic", progress=False)
    metrics = json.loads((out / "metrics.json").read_text())
    assert sorted(metrics) == sorted(TASKS) and returned == metrics
    for task in TASKS:
        assert (out / f"{task}.json").is_file()
        labels = Ego4dLayout.from_root(data).mq_labels() if task == "mq" else None
        assert metrics[task] == evaluate_files(task, protocol, _annotations(data, task), out / f"{task}.json",
                                               labels=labels)
    assert metrics["oscc"]["n_samples"] > 0 and metrics["lta"]["n_samples"] > 0 and metrics["pnr"]["n_positive"] > 0


def test_replay_resumes_per_task_and_force_reruns(dataset, tmp_path) -> None:
    data, checkpoint = dataset
    out = tmp_path / "out"
    replay("oscc", "hier-egopack", data, "val", checkpoint, out, features="synthetic", progress=False)
    submission = out / "oscc.json"
    submission.write_text(json.dumps([{"unique_id": entry["unique_id"], "state_change": True}
                                      for entry in json.loads(submission.read_text())]))
    resumed = replay("oscc", "hier-egopack", data, "val", checkpoint, out, features="synthetic", progress=False)
    assert all(entry["state_change"] for entry in json.loads(submission.read_text()))  # not run again
    assert resumed["oscc"] == evaluate_files("oscc", "hier-egopack", _annotations(data, "oscc"), submission)
    replay("pnr", "hier-egopack", data, "val", checkpoint, out, features="synthetic", progress=False)
    assert sorted(json.loads((out / "metrics.json").read_text())) == ["oscc", "pnr"]
    replay("oscc", "hier-egopack", data, "val", checkpoint, out, features="synthetic", progress=False, force=True)
    assert not all(entry["state_change"] for entry in json.loads(submission.read_text()))


def test_lta_predictions_do_not_depend_on_the_batch_size(dataset, tmp_path) -> None:
    data, checkpoint = dataset
    files = []
    for batch_size in (1, 5):
        out = tmp_path / f"bs{batch_size}"
        replay("lta", "hier-egopack", data, "val", checkpoint, out, features="synthetic", batch_size=batch_size,
               progress=False)
        files.append((out / "lta.json").read_text())
    assert files[0] == files[1]
    authors = []
    for run in range(2):
        out = tmp_path / f"authors{run}"
        replay("lta", "hier-egopack", data, "val", checkpoint, out, features="synthetic", authors_batched_lta=True,
               lta_batch_size=4, progress=False)
        authors.append((out / "lta.json").read_text())
    assert authors[0] == authors[1]
    assert json.loads(authors[0]).keys() == json.loads(files[0]).keys()


def test_checkpoint_arguments(dataset, tmp_path) -> None:
    _, checkpoint = dataset
    assert checkpoint_spec([str(checkpoint)], "all") == checkpoint
    other = tmp_path / "other.pth"
    assert checkpoint_spec([str(checkpoint), f"mq={other}"], "all") == {
        **{task: checkpoint for task in TASKS if task != "mq"}, "mq": other}
    assert checkpoint_spec([f"ar={other}"], "ar") == {"ar": other}
    with pytest.raises(InputError, match="'lta'"):
        checkpoint_spec([f"ar={other}"], "lta")


def test_cli_replay(dataset, tmp_path, capsys) -> None:
    data, checkpoint = dataset
    out = tmp_path / "cli"
    code = main(["replay", "--task", "oscc", "--data", str(data), "--checkpoint", str(checkpoint), "--out", str(out),
                 "--features", "synthetic", "batch_size=2"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((out / "metrics.json").read_text())
    assert main(["replay", "--task", "oscc", "--data", str(data), "--checkpoint", str(checkpoint), "--out",
                 str(out), "--features", "egovlp"]) == 2
    assert "D=32" in capsys.readouterr().err
    assert main(["replay", "--task", "oscc", "--data", str(data), "--checkpoint", str(checkpoint), "--out",
                 str(out), "--features", "synthetic", "colour=red"]) == 2


def test_every_kernel_on_the_emulated_cuda_path_writes_the_same_files(dataset, tmp_path, request) -> None:
    data, checkpoint = dataset
    replay("all", "hier-egopack", data, "val", checkpoint, tmp_path / "cpu", features="synthetic", progress=False)
    builds = request.getfixturevalue("emulated_kernels_everywhere")  # from here on every kernel call is emulated
    replay("all", "hier-egopack", data, "val", checkpoint, tmp_path / "cuda", features="synthetic", progress=False)
    assert set(builds.calls) == {"edges", "nms"}  # the tiny model has no backpack, hence no top-k
    for task in TASKS:
        assert (tmp_path / "cuda" / f"{task}.json").read_bytes() == (tmp_path / "cpu" / f"{task}.json").read_bytes()
    metrics = (tmp_path / "cuda" / "metrics.json").read_text().replace(str(tmp_path / "cuda"), str(tmp_path / "cpu"))
    assert metrics == (tmp_path / "cpu" / "metrics.json").read_text()  # the same, but for the file paths it names
