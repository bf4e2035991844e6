"""Issue 15's input reproductions through the command line (items 4, 5, 6 and 8), each as a user would meet it.

Every one must exit 2 with one error line naming the file (and the field or row), no traceback, and leave every
file that existed before the command byte-identical (and write no result file).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from egostream.cli import main
from egostream.config import load_config
from egostream.ego4d.baselines import write_prior_submission
from egostream.ego4d.layout import Ego4dLayout
from egostream.ego4d.synthetic import SynthConfig, generate_dataset
from egostream.model import ModelConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TASKS = ("ar", "lta", "oscc", "pnr", "mq")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("inputs")
    generate_dataset(root / "data", SynthConfig(videos=3, min_video_sec=150, max_video_sec=160, seed=1))
    load_config(ModelConfig, CONFIGS / "model" / "tiny.yaml").build(seed=0).save(root / "tiny.pth")
    return root


def _snapshot(root: Path) -> dict[Path, str]:
    return {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(root.rglob("*")) if path.is_file()}


def _features(world: Path) -> list[Path]:
    return sorted(Ego4dLayout.from_root(world / "data").features_dir("synthetic").glob("*.pt"))


@pytest.fixture()
def broken_features(world: Path):
    """Rewrite every feature file of the world with ``change(tensor)``; the originals come back afterwards."""
    originals = {path: path.read_bytes() for path in _features(world)}

    def rewrite(change) -> None:
        for path in originals:
            torch.save(change(torch.load(path, weights_only=True)), path)

    yield rewrite
    for path, content in originals.items():
        path.write_bytes(content)


def _fails_cleanly(argv: list[str], world: Path, capsys: pytest.CaptureFixture[str], *named: str) -> str:
    before = _snapshot(world)
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    # replay draws progress bars on stderr before it reaches the bad sample; the error itself is one line
    (line,) = [line for line in err.splitlines() if line.startswith(f"egostream {argv[0]}: error: ")]
    for text in named:
        assert text in line
    assert _snapshot(world) == before
    return line


def _replay(world: Path, task: str, out: Path) -> list[str]:
    return ["replay", "--task", task, "--data", str(world / "data"), "--checkpoint", str(world / "tiny.pth"),
            "--features", "synthetic", "--out", str(out)]


def _stream(world: Path, out: Path, checkpoint: Path | None = None) -> list[str]:
    return ["replay", "--stream", "--data", str(world / "data"), "--video", _features(world)[0].stem, "--features",
            "synthetic", "--checkpoint", str(checkpoint or world / "tiny.pth"), "--out", str(out / "s.msgpack")]


# Item 4: empty or too-short feature files, in every replay task and replay --stream.

@pytest.mark.parametrize("task", [*TASKS, "stream"])
def test_empty_feature_files_fail_naming_the_file(world, broken_features, tmp_path, capsys, task: str) -> None:
    broken_features(lambda features: features[:0])
    argv = _stream(world, tmp_path) if task == "stream" else _replay(world, task, tmp_path / "out")
    line = _fails_cleanly(argv, world, capsys, "features/synthetic/", ".pt: shape: empty feature file")
    assert not (tmp_path / "s.msgpack").exists() and not (tmp_path / "out" / f"{task}.json").exists(), line


@pytest.mark.parametrize("task", TASKS)
def test_feature_files_too_short_for_the_samples_fail_naming_the_file(world, broken_features, tmp_path, capsys,
                                                                       task: str) -> None:
    broken_features(lambda features: features[:3])
    _fails_cleanly(_replay(world, task, tmp_path / "out"), world, capsys, ".pt: shape: the feature file has 3 rows")


# Item 5: non-finite features (NaN rows, 1e38) and a wrong dtype, in replay and replay --stream.

def _with_row(value: float):
    def change(features: torch.Tensor) -> torch.Tensor:
        changed = features.clone()
        changed[5] = value
        return changed
    return change


@pytest.mark.parametrize("task", ["ar", "pnr", "stream"])
@pytest.mark.parametrize(("change", "words"), [(_with_row(float("nan")), "rows[5]: non-finite value nan"),
                                               (_with_row(1e38), "rows[5]: value 1e+38"),
                                               (lambda features: features.long(), "dtype: expected a floating")])
def test_non_finite_or_integer_features_fail_naming_the_file_and_row(world, broken_features, tmp_path, capsys,
                                                                     task: str, change, words: str) -> None:
    broken_features(change)
    argv = _stream(world, tmp_path) if task == "stream" else _replay(world, task, tmp_path / "out")
    _fails_cleanly(argv, world, capsys, ".pt: ", words)


# Item 6: checkpoints with non-finite weights; a config with a cyclic interpolation.

def test_nan_weights_fail_at_load_naming_the_first_bad_key(world, tmp_path, capsys) -> None:
    content = torch.load(world / "tiny.pth", weights_only=True)
    key = sorted(content["backbone"])[0]
    content["backbone"][key] = torch.full_like(content["backbone"][key], float("nan"))
    torch.save(content, tmp_path / "nan.pth")
    _fails_cleanly(_stream(world, tmp_path, tmp_path / "nan.pth"), world, capsys, f"nan.pth: backbone.{key}:",
                   "non-finite weight")


def test_cyclic_config_interpolation_fails_naming_the_key(world, tmp_path, capsys) -> None:
    from egostream.backbone.hierarchy import authors_backbone_keys

    content = torch.load(world / "tiny.pth", weights_only=True)
    model = authors_backbone_keys(content["backbone"], content["backbone_config"]["n_layers"], to_authors=True)
    torch.save({"model": model, "task": content["tasks"], "config": {"a": "${b}", "b": {"c": "${a}"}}},
               tmp_path / "cyclic.pth")
    _fails_cleanly(_stream(world, tmp_path, tmp_path / "cyclic.pth"), world, capsys,
                   "cyclic.pth: config.b.c: cyclic interpolation")


# Item 8: eval with non-UTF-8 files, JSON nested 1,200 deep, --labels a folder, AR vectors of the wrong size.

@pytest.fixture(scope="module")
def submissions(world: Path) -> dict[str, Path]:
    layout = Ego4dLayout.from_root(world / "data")
    return {"ar": write_prior_submission("ar", layout.lta_annotations("val"), world / "predictions" / "ar.json"),
            "mq": write_prior_submission("mq", layout.moments_annotations("val"), world / "predictions" / "mq.json")}


def _eval(world: Path, task: str, predictions: Path, *extra: str) -> list[str]:
    layout = Ego4dLayout.from_root(world / "data")
    annotations = layout.lta_annotations("val") if task == "ar" else layout.moments_annotations("val")
    return ["eval", "--task", task, "--annotations", str(annotations), "--predictions", str(predictions), *extra]


@pytest.mark.parametrize("content", [b"\xff\xfe{}", b'{"a": "caf\xe9"}'])
def test_eval_of_a_non_utf8_file(world, submissions, tmp_path, capsys, content: bytes) -> None:
    (tmp_path / "p.json").write_bytes(content)
    _fails_cleanly(_eval(world, "ar", tmp_path / "p.json"), world, capsys, "p.json: encoding: not UTF-8")


def test_eval_of_json_nested_1200_deep(world, submissions, tmp_path, capsys) -> None:
    (tmp_path / "p.json").write_text("[" * 1200 + "]" * 1200)
    _fails_cleanly(_eval(world, "ar", tmp_path / "p.json"), world, capsys, "p.json: JSON nested too deeply")


def test_eval_with_labels_pointing_at_a_folder(world, submissions, tmp_path, capsys) -> None:
    _fails_cleanly(_eval(world, "mq", submissions["mq"], "--labels", str(tmp_path)), world, capsys,
                   f"{tmp_path}: is a folder")


def test_eval_of_ar_vectors_longer_than_the_vocabulary_names_the_predictions(world, submissions, tmp_path,
                                                                             capsys) -> None:
    document = json.loads(submissions["ar"].read_text())
    verbs = len(next(iter(document.values()))["verb"])
    for entry in document.values():
        entry["verb"] += [0.0] * 50
    (tmp_path / "ar165.json").write_text(json.dumps(document))
    _fails_cleanly(_eval(world, "ar", tmp_path / "ar165.json"), world, capsys,
                   f"ar165.json: {next(iter(document))}.verb: {verbs + 50} scores, but the taxonomy has {verbs} verbs")
