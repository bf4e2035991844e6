"""Fuzz-style test of the command line: hundreds of generated malformed inputs, every one a clean input error.

Each case takes one valid input of a small synthetic world (annotation files, prediction files, the MQ label file,
feature files, checkpoints, a video), breaks it in one way (truncation, random bytes, a bad encoding, deep nesting,
a wrong top-level type, a wrong type, a missing required field, NaN / infinite / huge values, a wrong shape, an
empty or non-tensor file), and runs the command that reads it in-process through ``egostream.cli.main``. Every case
must exit 2 with exactly one line on stderr, naming the broken file, with no traceback, and leave every file that
existed before the command byte-identical. Cases are drawn from a fixed seed, so the run is deterministic.
"""
from __future__ import annotations

import hashlib
import io
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from egostream.backbone.hierarchy import authors_backbone_keys
from egostream.cli import main
from egostream.config import load_config
from egostream.ego4d.baselines import write_prior_submission
from egostream.ego4d.layout import Ego4dLayout
from egostream.ego4d.synthetic import SynthConfig, generate_dataset
from egostream.io.synthetic_video import render_video
from egostream.model import ModelConfig

SEED = 20261206
# Random variants (position, field, value) of every (input, mutation) pair: fewer where each command builds the
# model first (feature files, videos), to keep the whole run near a minute on two cores.
VARIANTS = {"eval": 3, "checkpoint": 3, "features": 2, "video": 1}
MINIMUM_CASES = 200
CONFIGS = Path(__file__).resolve().parents[1] / "configs"

# Fields every record of a file must hold (the readers of egostream.ego4d.annotations / .submission require them).
REQUIRED = {
    "lta": {"clip_uid", "video_uid", "action_idx", "clip_parent_start_frame", "clip_parent_end_frame",
            "action_clip_start_frame", "action_clip_end_frame"},
    "state_change": {"unique_id", "video_uid", "parent_start_frame", "parent_end_frame", "parent_start_sec",
                     "parent_end_sec"},
    "moments": {"clip_uid", "video_start_sec", "video_end_sec", "video_start_frame", "video_end_frame", "label",
                "start_time", "end_time", "primary"},
    "ar": {"verb", "noun"}, "lta_predictions": {"verb", "noun"}, "oscc": {"unique_id", "state_change"},
    "pnr": {"unique_id", "pnr_frame"}, "mq": {"label", "score", "segment"},
}
# Fields holding numbers (or vectors of numbers) that must be finite.
NUMERIC = {"state_change": {"parent_start_sec", "parent_end_sec"},
           "moments": {"video_start_sec", "video_end_sec", "start_time", "end_time"},
           "ar": {"verb", "noun"}, "pnr": {"pnr_frame"}, "mq": {"score", "segment"}}


@dataclass(frozen=True)
class World:
    root: Path
    data: Path
    checkpoint: Path
    video: Path
    feature_files: list[Path]
    inputs: dict[str, Path]  # annotation and prediction files by role


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("fuzz")
    data = root / "data"
    generate_dataset(data, SynthConfig(videos=2, train_fraction=0.5, min_video_sec=120.0, max_video_sec=130.0,
                                       moments_per_video=4, seed=4))
    checkpoint = load_config(ModelConfig, CONFIGS / "model" / "tiny.yaml").build(seed=0).save(root / "tiny.pth")
    layout = Ego4dLayout.from_root(data)
    predictions = root / "predictions"
    inputs = {"lta": layout.lta_annotations("val"), "state_change": layout.state_change_annotations("val"),
              "moments": layout.moments_annotations("val")}
    for role, truth in (("ar", "lta"), ("lta_predictions", "lta"), ("oscc", "state_change"),
                        ("pnr", "state_change"), ("mq", "moments")):
        inputs[role] = write_prior_submission(role.removesuffix("_predictions"), inputs[truth],
                                              predictions / f"{role}.json")
    inputs["labels"] = layout.mq_labels()
    (root / "video").mkdir()
    video = render_video(root / "video" / "clip.mp4", [0] * 40 + [1] * 40, size=(32, 32))
    feature_files = sorted(layout.features_dir("synthetic").glob("*.pt"))
    return World(root, data, checkpoint, Path(video), feature_files, inputs)


# ----------------------------------------------------------------------------------------------------------------
# Mutations: each returns the new bytes of the file, always an invalid input


def _truncate(original: bytes, rng: random.Random) -> bytes:
    body = original.rstrip()
    return body[:rng.randrange(1, len(body) - 1)]


def _random_bytes(original: bytes, rng: random.Random) -> bytes:
    return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 600)))


def _bad_encoding(original: bytes, rng: random.Random) -> bytes:
    at = rng.randrange(len(original))
    return original[:at] + rng.choice([b"\xff", b"\xc3\x28", b"\xe9", b"\x80\x80"]) + original[at:]


def _deep_nesting(original: bytes, rng: random.Random) -> bytes:
    depth = rng.randrange(1_100, 4_000)
    opener, closer = rng.choice([(b"[", b"]"), (b'{"a":', b"}")])
    return opener * depth + b"1" + closer * depth


def _wrong_top_level(original: bytes, rng: random.Random) -> bytes:
    return json.dumps(rng.choice([42, "text", None, True, 1.5, [[1, 2]], {"unrelated": 1}])).encode()


def _leaves(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """(path, value) of every dict entry and list item below ``value``."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        yield (*path, key), item
        yield from _leaves(item, (*path, key))


def _field_paths(document: Any, fields: set[str]) -> list[tuple]:
    return [path for path, _ in _leaves(document) if isinstance(path[-1], str) and path[-1] in fields]


def _parent(document: Any, path: tuple) -> Any:
    for key in path[:-1]:
        document = document[key]
    return document


def _json_edit(edit: Callable[[Any, tuple, random.Random], None], fields: set[str]
               ) -> Callable[[bytes, random.Random], bytes]:
    """A mutation applying ``edit`` at one random occurrence of one of ``fields`` in the JSON document."""
    def mutate(original: bytes, rng: random.Random) -> bytes:
        document = json.loads(original)
        edit(document, rng.choice(_field_paths(document, fields)), rng)
        # NaN and Infinity are written as the literals Python's parser reads; _HUGE as a number beyond any float.
        return json.dumps(document).replace(json.dumps(_HUGE), "1e400").encode()
    return mutate


def _wrong_type(document: Any, path: tuple, rng: random.Random) -> None:
    _parent(document, path)[path[-1]] = rng.choice([[], {"k": 1}, None])  # wrong for every required field


def _missing_field(document: Any, path: tuple, rng: random.Random) -> None:
    del _parent(document, path)[path[-1]]


_HUGE = "<a number beyond the float range>"


def _non_finite(document: Any, path: tuple, rng: random.Random) -> None:
    """A NaN, an infinity or a number beyond range: beyond float32 in a score vector, beyond float64 elsewhere."""
    target = _parent(document, path)[path[-1]]
    if isinstance(target, list):  # a score vector or a segment: one bad element
        if isinstance(target[0], list):
            target = target[rng.randrange(len(target))]
        target[rng.randrange(len(target))] = rng.choice([float("nan"), float("inf"), -float("inf"), 1e39, _HUGE])
    else:
        _parent(document, path)[path[-1]] = rng.choice([float("nan"), float("inf"), -float("inf"), _HUGE])


def _wrong_shape(document: Any, path: tuple, rng: random.Random) -> None:
    """A score vector or id matrix one or more entries too long or too short."""
    target = _parent(document, path)[path[-1]]
    if isinstance(target[0], list):
        target = target[rng.randrange(len(target))]
    if rng.random() < 0.5 and len(target) > 1:
        del target[rng.randrange(len(target)):]
    else:
        target.extend([0] * rng.randrange(1, 60))


# Torch-file mutations (features, checkpoints): on the loaded object, saved back with torch.save


def _saved(value: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def _feature_mutations() -> dict[str, Callable[[bytes, random.Random], bytes]]:
    def loaded(original: bytes) -> torch.Tensor:
        return torch.load(io.BytesIO(original), weights_only=True)

    def with_value(value: float) -> Callable[[bytes, random.Random], bytes]:
        def mutate(original: bytes, rng: random.Random) -> bytes:
            features = loaded(original).clone()
            features[rng.randrange(len(features)), rng.randrange(features.shape[1])] = value
            return _saved(features)
        return mutate

    return {
        "truncated": _truncate, "random bytes": _random_bytes,
        "empty": lambda original, rng: _saved(loaded(original)[:0]),
        "NaN row": with_value(float("nan")), "infinite value": with_value(float("inf")), "1e38": with_value(1e38),
        "integer dtype": lambda original, rng: _saved(loaded(original).long()),
        "wrong width": lambda original, rng: _saved(loaded(original)[:, :rng.randrange(1, 31)]),
        "1-D tensor": lambda original, rng: _saved(loaded(original)[:, 0]),
        "not a tensor": lambda original, rng: _saved({"features": loaded(original)}),
    }


def _checkpoint_mutations() -> dict[str, Callable[[bytes, random.Random], bytes]]:
    def loaded(original: bytes) -> dict:
        return torch.load(io.BytesIO(original), weights_only=True)

    def poisoned(original: bytes, rng: random.Random) -> bytes:
        content = loaded(original)
        part = rng.choice(["backbone", "tasks"])
        state = content["backbone"] if part == "backbone" else content["tasks"][rng.choice(sorted(content["tasks"]))]
        key = rng.choice(sorted(k for k, v in state.items() if v.is_floating_point() and v.numel()))
        state[key] = state[key].clone().view(-1).index_fill(0, torch.tensor([0]), rng.choice(
            [float("nan"), float("inf")])).view(state[key].shape)
        return _saved(content)

    def cyclic(original: bytes, rng: random.Random) -> bytes:
        """The same weights as an authors' train_multi_task.py checkpoint whose config refers to itself."""
        content = loaded(original)
        authors = authors_backbone_keys(content["backbone"], content["backbone_config"]["n_layers"], to_authors=True)
        config = rng.choice([{"model": {"hidden_size": "${model.hidden_size}"}},
                             {"a": "${b}", "b": {"c": "${a}"}}, {"model": {"conv": "${model}"}}])
        return _saved({"model": authors, "task": content["tasks"], "config": config})

    def wrong_width(original: bytes, rng: random.Random) -> bytes:
        content = loaded(original)
        content["backbone"]["proj.1.weight"] = content["backbone"]["proj.1.weight"][:, :rng.randrange(1, 31)]
        return _saved(content)

    return {"truncated": _truncate, "random bytes": _random_bytes, "non-finite weight": poisoned,
            "cyclic config": cyclic, "wrong top level": lambda original, rng: _saved([1, 2, 3]),
            "unknown layout": lambda original, rng: _saved({"weights": torch.zeros(3)}),
            "wrong width": wrong_width}


def _video_mutations() -> dict[str, Callable[[bytes, random.Random], bytes]]:
    return {"truncated": lambda original, rng: original[:rng.randrange(0, 200)], "random bytes": _random_bytes,
            "text": lambda original, rng: b"not a video\n" * rng.randrange(1, 50)}


# ----------------------------------------------------------------------------------------------------------------
# Cases


@dataclass(frozen=True)
class Case:
    name: str
    target: Callable[[World], Path]
    mutate: Callable[[bytes, random.Random], bytes]
    argv: Callable[[World, Path], list[str]]
    seed: int


def _eval_argv(task: str, annotations: str, predictions: str) -> Callable[[World, Path], list[str]]:
    return lambda w, out: ["eval", "--task", task, "--protocol", "official", "--annotations",
                           str(w.inputs[annotations]), "--predictions", str(w.inputs[predictions]),
                           *(["--labels", str(w.inputs["labels"])] if task == "mq" else [])]


EVALS = {  # role -> the eval command that reads the file in that role
    "lta": _eval_argv("ar", "lta", "ar"), "state_change": _eval_argv("oscc", "state_change", "oscc"),
    "moments": _eval_argv("mq", "moments", "mq"), "ar": _eval_argv("ar", "lta", "ar"),
    "lta_predictions": _eval_argv("lta", "lta", "lta_predictions"),
    "oscc": _eval_argv("oscc", "state_change", "oscc"), "pnr": _eval_argv("pnr", "state_change", "pnr"),
    "mq": _eval_argv("mq", "moments", "mq"), "labels": _eval_argv("mq", "moments", "mq"),
}


def _stream_argv(w: World, out: Path) -> list[str]:
    return ["replay", "--stream", "--data", str(w.data), "--video", w.feature_files[0].stem, "--features", "synthetic",
            "--checkpoint", str(w.checkpoint), "--out", str(out / "stream.msgpack")]


def _cases() -> list[Case]:
    rng = random.Random(SEED)
    cases = []

    def add(name: str, target: Callable[[World], Path], mutate: Callable[[bytes, random.Random], bytes],
            argv: Callable[[World, Path], list[str]], kind: str = "eval") -> None:
        for variant in range(VARIANTS[kind]):
            cases.append(Case(f"{name} #{variant}", target, mutate, argv, rng.randrange(2 ** 31)))

    text_mutations = {"truncated": _truncate, "random bytes": _random_bytes, "bad encoding": _bad_encoding}
    for role, argv in EVALS.items():
        target = (lambda r: lambda w: w.inputs[r])(role)
        for name, mutate in text_mutations.items():
            # A label file cut anywhere in its first half loses classes the ground truth uses.
            cut = (lambda original, rng: original[:rng.randrange(1, len(original) // 2)]) if (
                role == "labels" and name == "truncated") else mutate
            add(f"{role}: {name}", target, cut, argv)
        if role == "labels":
            add(f"{role}: bad line", target, lambda original, rng: original + b"not a label line\n", argv)
            continue
        add(f"{role}: deep nesting", target, _deep_nesting, argv)
        add(f"{role}: wrong top-level type", target, _wrong_top_level, argv)
        add(f"{role}: wrong type", target, _json_edit(_wrong_type, REQUIRED[role]), argv)
        add(f"{role}: missing field", target, _json_edit(_missing_field, REQUIRED[role]), argv)
        if role in NUMERIC:
            add(f"{role}: NaN / infinite / huge", target, _json_edit(_non_finite, NUMERIC[role]), argv)
        if role in ("ar", "lta_predictions"):
            add(f"{role}: wrong shape", target, _json_edit(_wrong_shape, REQUIRED[role]), argv)
    for name, mutate in _feature_mutations().items():
        add(f"feature file: {name}", lambda w: w.feature_files[0], mutate, _stream_argv, "features")
    for name, mutate in _checkpoint_mutations().items():
        add(f"checkpoint: {name}", lambda w: w.checkpoint, mutate, _stream_argv, "checkpoint")
    for name, mutate in _video_mutations().items():
        add(f"video: {name}", lambda w: w.video, mutate,
            lambda w, out: ["run", str(w.video), "--checkpoint", str(w.checkpoint), "--extractor", "pixel_projection",
                            "--local", "--no-table", "--out", str(out / "run.msgpack"), "--extractor-option",
                            "dim=32"], "video")
    return cases


CASES = _cases()


def _snapshot(root: Path) -> dict[Path, str]:
    return {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(root.rglob("*")) if path.is_file()}


def test_at_least_the_promised_number_of_cases() -> None:
    assert len(CASES) >= MINIMUM_CASES
    assert len({case.name for case in CASES}) == len(CASES)


def test_every_malformed_input_is_one_line_exit_2_and_changes_nothing(world: World, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    failures = []
    for index, case in enumerate(CASES):
        target = case.target(world)
        original = target.read_bytes()
        broken = case.mutate(original, random.Random(case.seed))
        assert broken != original, case.name
        out = tmp_path / f"out{index}"
        out.mkdir()
        target.write_bytes(broken)
        try:
            before = _snapshot(world.root)
            code = main(case.argv(world, out))
            captured = capsys.readouterr()
            after = _snapshot(world.root)
        finally:
            target.write_bytes(original)
        lines = captured.err.strip().splitlines()
        problems = []
        if code != 2:
            problems.append(f"exit {code}")
        if len(lines) != 1 or "Traceback" in captured.err:
            problems.append(f"{len(lines)} stderr lines")
        elif str(target) not in lines[0]:
            problems.append("file not named")
        if after != before:
            problems.append("files changed: " + ", ".join(str(p) for p in set(before) ^ set(after) or
                                                          [p for p in before if before[p] != after.get(p)]))
        if problems:
            failures.append(f"{case.name}: {'; '.join(problems)}: {captured.err.strip()[-300:]!r}")
    assert not failures, f"{len(failures)} of {len(CASES)} cases:\n" + "\n".join(failures)
