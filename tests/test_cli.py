"""The ``egostream`` command: ``synth`` then ``eval`` of class-prior submissions, for every task and protocol."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from egostream.cli import main
from egostream.ego4d.baselines import write_prior_submission

ANNOTATION_FILES = {"ar": "fho_lta_val.json", "lta": "fho_lta_val.json", "oscc": "fho_oscc-pnr_val.json",
                    "pnr": "fho_oscc-pnr_val.json", "mq": "moments_val.json"}
SMALL = ["min_video_sec=120", "max_video_sec=150", "feature_dim=4", "moments_per_video=4", "train_fraction=0.5"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "data"
    assert main(["synth", str(root), *SMALL, "--videos", "4", "--seed", "3"]) == 0
    return root


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict | None, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out.strip() else None, captured.err


def test_synth_prints_a_summary_of_the_files(data_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, summary, _ = _run(capsys, ["synth", str(data_root.parent / "again"), *SMALL, "--videos", "4", "--seed", "3"])
    assert code == 0
    assert summary["config"]["videos"] == 4 and summary["config"]["seed"] == 3
    for relative, count in summary["files"].items():
        assert (data_root / relative).read_bytes() == (data_root.parent / "again" / relative).read_bytes()
        assert count > 0


@pytest.mark.parametrize("protocol", ["official", "hier-egopack"])
@pytest.mark.parametrize("task", list(ANNOTATION_FILES))
def test_eval_scores_the_prior_at_chance(data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         task: str, protocol: str) -> None:
    annotations = data_root / "annotations" / "v1" / ANNOTATION_FILES[task]
    predictions = write_prior_submission(task, annotations, tmp_path / "predictions.json", protocol=protocol)
    code, metrics, _ = _run(capsys, ["eval", "--task", task, "--protocol", protocol, "--annotations",
                                     str(annotations), "--predictions", str(predictions)])
    assert code == 0 and metrics["task"] == task and metrics["protocol"] == protocol
    document = json.loads(annotations.read_text())
    if task in ("ar", "lta"):
        verbs = Counter(record["verb_label"] for record in document["clips"])
        if task == "ar":
            assert metrics["verb_top1_pct"] == pytest.approx(100 * max(verbs.values()) / sum(verbs.values()))
        else:
            per_clip = Counter(record["clip_uid"] for record in document["clips"])
            extra = 1 if protocol == "official" else 0
            assert metrics["n_samples"] == sum(n - 22 + extra for n in per_clip.values())
            assert 0.0 < metrics["verb_ed"] < 1.0
    elif task in ("oscc", "pnr"):
        changes = [record["state_change"] for record in document["clips"]]
        if task == "oscc":
            assert metrics["accuracy_pct"] == pytest.approx(100 * max(Counter(changes).values()) / len(changes))
        else:
            assert metrics["n_positive"] == sum(changes) and metrics["mean_error_s"] > 0
    else:
        assert metrics["n_clips"] == sum(len(video["clips"]) for video in document["videos"])
        assert len(metrics["mAP"]) == 5


def test_eval_reports_a_bad_prediction_file_and_exits_2(data_root: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    predictions = tmp_path / "oscc.json"
    predictions.write_text(json.dumps([{"unique_id": "nobody", "state_change": "yes"}]))
    annotations = data_root / "annotations" / "v1" / "fho_oscc-pnr_val.json"
    code, _, err = _run(capsys, ["eval", "--task", "oscc", "--annotations", str(annotations),
                                 "--predictions", str(predictions)])
    assert code == 2
    assert str(predictions) in err and "nobody.state_change" in err


def test_baseline_command_writes_the_same_file_as_the_library(data_root: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    annotations = data_root / "annotations" / "v1" / "fho_oscc-pnr_val.json"
    prior = data_root / "annotations" / "v1" / "fho_oscc-pnr_train.json"
    out = tmp_path / "cli.json"
    assert main(["baseline", "--task", "oscc", "--annotations", str(annotations), "--prior", str(prior),
                 "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    expected = write_prior_submission("oscc", annotations, tmp_path / "lib.json", prior=prior)
    assert out.read_bytes() == expected.read_bytes()


def test_overrides_may_follow_options_and_unknown_arguments_are_refused(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synth", str(tmp_path / "d"), "--videos", "2", "feature_dim=3", *SMALL[:2]]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["config"]["feature_dim"] == 3 and summary["config"]["videos"] == 2
    with pytest.raises(SystemExit):
        main(["synth", str(tmp_path / "e"), "--bogus"])
    with pytest.raises(SystemExit):
        main(["eval", "--task", "ar", "--annotations", "a", "--predictions", "b", "x=1"])


@pytest.mark.parametrize("override, message", [("bogus=1", "bogus: unknown replay option"),
                                               ("batch_size=four", "batch_size: expected int")])
def test_replay_options_are_checked_by_name_and_type(data_root: Path, tmp_path: Path, override: str, message: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["replay", "--task", "ar", "--data", str(data_root), "--checkpoint", str(tmp_path / "none.pt"),
                 "--out", str(tmp_path / "out"), override])
    assert code == 2 and message in capsys.readouterr().err


def test_eval_into_a_closed_pipe_exits_quietly(data_root: Path, tmp_path: Path) -> None:
    """``egostream eval ... | head -c 1``: the reader is gone before the JSON is written; no BrokenPipeError trace."""
    annotations = data_root / "annotations" / "v1" / ANNOTATION_FILES["mq"]
    predictions = write_prior_submission("mq", annotations, tmp_path / "mq.json")
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to the pipe now fails with EPIPE
    try:
        process = subprocess.run([sys.executable, "-m", "egostream", "eval", "--task", "mq", "--annotations",
                                  str(annotations), "--predictions", str(predictions)], stdout=write_end,
                                 stderr=subprocess.PIPE, text=True, timeout=300,
                                 env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    finally:
        os.close(write_end)
    assert process.returncode == 128 + signal.SIGPIPE
    assert process.stderr == ""
