"""A plug-in task defined in one file (``tests/toy_task.py``) runs through train -> replay -> stream -> eval.

Nothing in the package knows the task: it is registered by :func:`tests.toy_task.registered` and removed after this
module. Truths: the clip verb sets read here straight from the annotation JSON; the training loop's validation
meter and the replay's writer + evaluator are two separate paths that must agree; the streamed readout must equal
the readout of the offline backbone on the same rows; the registries hold no trace of the task afterwards.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from egostream.cli import build_parser, main
from egostream.config import to_dict
from egostream.ego4d.synthetic import SynthConfig
from egostream.io.sinks import read_results
from egostream.model import ModelBundle
from egostream.replay import replay
from egostream.replay_stream import replay_stream
from egostream.stream.config import load_stream_config
from egostream.stream.readouts import NodeView, Readouts
from egostream.tasks.base import TASKS, task_names
from egostream.train.loop import TrainResult, train
from egostream.train.recipe import TRAIN_CONFIG_DIR, load_recipe
from tests.synthetic_setup import data_root, one_thread, workdir
from tests.toy_task import NAME, registered

__all__ = ["one_thread", "workdir", "data_root"]

DATA = SynthConfig(videos=6, seed=0)
PROTOCOL = "hier-egopack"


@pytest.fixture(scope="module", autouse=True)
def toy_task() -> Iterator[None]:
    with registered():
        yield


@pytest.fixture(scope="module")
def trained(data_root: Path, workdir: Path) -> TrainResult:
    recipe = load_recipe("single", [NAME], TRAIN_CONFIG_DIR / "tiny_single.yaml")
    return train(recipe, data_root, workdir / "train")


def verb_sets(annotations: Path) -> dict[str, set[int]]:
    """clip_uid -> the labelled verbs of its actions, from the raw annotation file."""
    sets: dict[str, set[int]] = {}
    for action in json.loads(annotations.read_text())["clips"]:
        if action.get("verb_label") is not None:
            sets.setdefault(action["clip_uid"], set()).add(action["verb_label"])
    return sets


def val_annotations(data_root: Path) -> Path:
    return data_root / "annotations" / "v1" / "fho_lta_val.json"


def test_the_plugin_is_a_registered_task_everywhere_the_task_list_is_read() -> None:
    assert NAME in task_names() and task_names()[:5] == ("ar", "lta", "oscc", "pnr", "mq")
    args = build_parser().parse_args(["train", "single", "--task", NAME, "--data", "d", "--out", "o"])
    assert args.task == [NAME]


def test_train_then_replay_and_eval_agree_with_the_annotations(trained: TrainResult, data_root: Path,
                                                              workdir: Path, capsys: pytest.CaptureFixture) -> None:
    losses = [record[f"loss/{NAME}"] for record in trained.records]
    assert losses[-1] < losses[0]
    out = workdir / "replay"
    metrics = replay(NAME, PROTOCOL, data_root, "val", trained.checkpoint, out, features=DATA.feature_name,
                     progress=False)[NAME]
    submission = json.loads((out / f"{NAME}.json").read_text())
    truth = verb_sets(val_annotations(data_root))
    assert sorted(submission) == sorted(truth)
    expected = 100.0 * sum(submission[clip] in verbs for clip, verbs in truth.items()) / len(truth)
    assert metrics["hit_pct"] == pytest.approx(expected) and metrics["n_clips"] == len(truth)
    # the training loop's meter (decoded in the loop) and the replay (writer + evaluator) agree on the final model
    assert trained.records[-1]["val"][NAME]["hit_pct"] == pytest.approx(expected)
    # egostream eval scores the same file the same way
    rc = main(["eval", "--task", NAME, "--protocol", PROTOCOL, "--annotations", str(val_annotations(data_root)),
               "--predictions", str(out / f"{NAME}.json")])
    assert rc == 0
    assert json.loads(capsys.readouterr().out)["hit_pct"] == pytest.approx(expected)


def test_stream_reports_the_plugin_readout_equal_to_offline(trained: TrainResult, data_root: Path,
                                                           workdir: Path) -> None:
    video = json.loads(val_annotations(data_root).read_text())["clips"][0]["video_uid"]
    config = load_stream_config(overrides=["emit_every_s=8"])
    out = workdir / "stream.msgpack"
    summary = replay_stream(data_root, video, trained.checkpoint, out, features=DATA.feature_name,
                            stream_config=config, live=False)
    results = read_results(out).results
    assert len(results) == summary.windows > 1
    assert all(result.ar is None and set(result.plugins) == {NAME} for result in results)
    bundle = ModelBundle.from_checkpoints(trained.checkpoint)
    rows = torch.load(data_root / "features" / DATA.feature_name / f"{video}.pt")
    readouts = Readouts(bundle, config, config.readouts, names=None)
    for result in results:
        view = NodeView.offline(bundle.backbone(NAME), rows[:result.rows], config)
        offline = to_dict(readouts.read({NAME: view}).plugins[NAME])
        streamed = result.plugins[NAME]
        assert streamed["verb"]["id"] == offline["verb"]["id"]
        assert streamed["verb"]["score"] == pytest.approx(offline["verb"]["score"], abs=1e-5)
        assert streamed["span"] == pytest.approx(offline["span"])


def test_built_in_records_carry_no_plugins_key() -> None:
    from egostream.stream.schema import WindowResult, result_from_record, result_to_record

    record = result_to_record(WindowResult("s", 0, 1, 0.5, 1.0, 1.0))
    assert "plugins" not in record and result_from_record(record).plugins == {}


def test_leaving_the_registration_removes_the_task() -> None:
    # a nested registration fails (names are unique) and leaves the outer one intact
    with pytest.raises(KeyError, match="registered twice"), registered():
        pass
    assert NAME in TASKS
