"""Checkpoint loading: every fixture checkpoint, format detection, the restricted unpickler, our format, bad inputs."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import torch
from torch import nn

from egostream.backbone.graphs import VideoBatch
from egostream.backbone.hierarchy import BackboneConfig, HierarchicalBackbone, authors_backbone_keys
from egostream.checkpoint import OmegaConfStub, load_backbone, load_checkpoint, load_module_state, save_checkpoint
from egostream.errors import InputError
from egostream.testing import reference_dir
from tests.reference_fixtures import reference_manifest

AUTHORS_FORMATS = {"train_multi_task.py": "multi_task", "train_egopack.py": "egopack",
                   "plain EgoPack.state_dict()": "egopack_module"}


CHECKPOINTS = sorted(reference_manifest()["checkpoints"].items())


def shapes(entries: list) -> dict[str, list[int]]:
    """Manifest state-dict listing ``[[key, shape, dtype], ...]`` -> ``{key: shape}``."""
    return {key: list(shape) for key, shape, _dtype in entries}


def tensor_shapes(state: dict[str, torch.Tensor]) -> dict[str, list[int]]:
    return {key: list(value.shape) for key, value in state.items()}


def contains_stub(value: object) -> bool:
    if isinstance(value, OmegaConfStub):
        return True
    if isinstance(value, dict):
        return any(contains_stub(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(contains_stub(v) for v in value)
    return False


@pytest.mark.skipif(not CHECKPOINTS, reason="no reference checkpoints found")
@pytest.mark.parametrize("name,entry", CHECKPOINTS, ids=[name for name, _ in CHECKPOINTS])
def test_every_reference_checkpoint_loads_with_its_parts(name: str, entry: dict) -> None:
    loaded = load_checkpoint(reference_dir() / entry["file"])
    assert loaded.format == AUTHORS_FORMATS[entry["format"]]
    if "model" in entry:
        authors = authors_backbone_keys(loaded.backbone, loaded.backbone_config.n_layers, to_authors=True)
        assert tensor_shapes(authors) == shapes(entry["model"])
        assert loaded.backbone_config.depth == len({k.split(".")[1] for k in authors if k.startswith("layers.")})
        load_backbone(loaded)
    task_entries = entry.get("task") or entry.get("tasks") or {}
    assert sorted(loaded.tasks) == sorted(task_entries)
    for task, listing in task_entries.items():
        assert tensor_shapes(loaded.task_state(task)) == shapes(listing)
    if "egopack_task" in entry:
        assert tensor_shapes(loaded.task_state(loaded.novel_task)) == shapes(entry["egopack_task"])
        assert loaded.novel_task in entry["description"]
    if "egopack" in entry:
        assert tensor_shapes(loaded.egopack_state()) == shapes(entry["egopack"])
    assert not contains_stub(loaded.config)


@pytest.mark.skipif(not CHECKPOINTS, reason="no reference checkpoints found")
def test_authors_config_becomes_plain_with_interpolations_resolved() -> None:
    name, entry = next((n, e) for n, e in CHECKPOINTS if e["format"] == "train_multi_task.py")
    config = load_checkpoint(reference_dir() / entry["file"]).config
    model = config["model"]
    assert model["conv"]["in_channels"] == model["hidden_size"]  # "${model.hidden_size}" in the yaml
    for task in config["tasks"].values():
        assert task["input_size"] == model["hidden_size"]


def test_missing_task_and_missing_egopack_are_clear_errors(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "a.pt", tasks={"ego4d/ar": nn.Linear(2, 2)})
    loaded = load_checkpoint(path)
    with pytest.raises(InputError, match="no task 'ego4d/mq'.*ego4d/ar"):
        loaded.task_state("ego4d/mq")
    with pytest.raises(InputError, match="no EgoPack"):
        loaded.egopack_state()


def test_restricted_unpickler_refuses_code_and_names_the_global(tmp_path: Path) -> None:
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    path = tmp_path / "evil.pth"
    torch.save({"model": {"proj.1.weight": torch.zeros(1)}, "task": {}, "config": Payload()}, path)
    with pytest.raises(InputError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert str(path) in message and "system" in message and "refusing" in message
    assert not marker.exists()


def test_missing_file_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_checkpoint(tmp_path / "absent.pth")
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(InputError, match="text.pth"):
        load_checkpoint(tmp_path / "text.pth")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(InputError, match="unknown checkpoint layout"):
        load_checkpoint(tmp_path / "other.pth")


def tiny_config(**changes: object) -> BackboneConfig:
    return dataclasses.replace(BackboneConfig(input_size=6, hidden_size=8, depth=2, pos_hidden_channels=4), **changes)


def test_our_format_round_trips(tmp_path: Path) -> None:
    torch.manual_seed(0)
    backbone = HierarchicalBackbone(tiny_config()).eval()
    head = nn.Linear(8, 3)
    path = save_checkpoint(tmp_path / "run" / "model.pt", backbone=backbone, tasks={"ego4d/ar": head},
                           task_configs={"ego4d/ar": {"num_verbs": 3}}, config={"seed": 5}, step=7)
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temporary file left behind
    assert torch.load(path, weights_only=True)["format"] == "egostream"  # plain data only
    loaded = load_checkpoint(path)
    assert (loaded.format, loaded.backbone_config, loaded.step) == ("egostream", backbone.cfg, 7)
    assert loaded.config["seed"] == 5 and loaded.config["task_configs"]["ego4d/ar"]["num_verbs"] == 3
    assert torch.equal(loaded.task_state("ego4d/ar")["weight"], head.weight)
    restored = load_backbone(path)
    batch = VideoBatch.from_videos([torch.randn(5, 6)], [torch.arange(5) * 0.5])
    with torch.no_grad():
        torch.testing.assert_close(restored(batch)[0], backbone(batch)[0], atol=0, rtol=0)


def test_unknown_version_is_refused(tmp_path: Path) -> None:
    torch.save({"format": "egostream", "version": 99, "tasks": {}}, tmp_path / "future.pt")
    with pytest.raises(InputError, match="version 99"):
        load_checkpoint(tmp_path / "future.pt")


def test_architecture_mismatch_names_what_differs(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "m.pt", backbone=HierarchicalBackbone(tiny_config()))
    with pytest.raises(InputError, match=r"proj\.1\.weight: checkpoint \[8, 6\] vs model \[8, 10\]"):
        load_backbone(path, tiny_config(input_size=10))
    with pytest.raises(InputError, match=r"missing keys: layers\.2\."):
        load_backbone(path, tiny_config(depth=3))
    with pytest.raises(InputError, match="allow_deeper_checkpoint"):
        load_backbone(path, tiny_config(depth=1))


def test_deeper_checkpoint_loads_its_first_levels_when_asked(tmp_path: Path) -> None:
    deep = HierarchicalBackbone(tiny_config(depth=3))
    path = save_checkpoint(tmp_path / "deep.pt", backbone=deep)
    shallow = load_backbone(path, tiny_config(depth=1), allow_deeper_checkpoint=True)
    assert torch.equal(shallow.layers[0].convs[1].lin_root.weight, deep.layers[0].convs[1].lin_root.weight)
    assert shallow.depth == 1


def test_load_module_state_reports_differences() -> None:
    with pytest.raises(InputError, match=r"task\[ego4d/ar\].*unexpected keys: extra.*shape mismatch: weight"):
        load_module_state(nn.Linear(2, 3), {"weight": torch.zeros(3, 4), "bias": torch.zeros(3),
                                            "extra": torch.zeros(1)}, source="x.pth", field_name="task[ego4d/ar]")


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_fail_at_load_naming_the_first_bad_key(tmp_path: Path, bad: float) -> None:
    backbone = HierarchicalBackbone(tiny_config())
    head = nn.Linear(8, 3)
    with torch.no_grad():
        head.weight[1, 2] = bad
        head.bias[0] = bad
    path = save_checkpoint(tmp_path / "m.pt", backbone=backbone, tasks={"ego4d/ar": head},
                           training_state={"optimizer": {"state": {0: {"exp_avg": torch.full((2,), bad)}}}})
    with pytest.raises(InputError) as caught:
        load_checkpoint(path)
    assert caught.value.path == str(path) and caught.value.field == "tasks.ego4d/ar.weight"
    assert "1 non-finite weight(s) of 24" in str(caught.value)


def test_non_finite_optimizer_state_alone_is_not_a_weight(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "m.pt", tasks={"ego4d/ar": nn.Linear(2, 2)},
                           training_state={"optimizer": {"state": {0: {"exp_avg": torch.full((2,), float("nan"))}}}})
    assert load_checkpoint(path).training_state is not None


def _authors_checkpoint(path: Path, config: dict) -> Path:
    state = authors_backbone_keys(HierarchicalBackbone(tiny_config()).state_dict(), 2, to_authors=True)
    torch.save({"model": state, "task": {"ego4d/ar": nn.Linear(8, 3).state_dict()}, "config": config}, path)
    return path


@pytest.mark.parametrize(("config", "key"), [
    ({"model": {"hidden_size": "${model.hidden_size}"}}, "config.model.hidden_size"),
    ({"model": {"conv": {"in_channels": "${model}"}}}, "config.model.conv.in_channels"),
    ({"a": "${b}", "b": {"c": "${..a}"}}, "config.b.c"),
    ({"model": {"x": "${.y}", "y": "${model.x}"}}, "config.model.y"),
])
def test_cyclic_interpolation_fails_naming_the_key(tmp_path: Path, config: dict, key: str) -> None:
    path = _authors_checkpoint(tmp_path / "cyclic.pth", config)
    with pytest.raises(InputError) as caught:
        load_checkpoint(path)
    assert caught.value.path == str(path) and caught.value.field == key
    assert "cyclic interpolation" in str(caught.value)


def test_chained_and_repeated_interpolations_still_resolve(tmp_path: Path) -> None:
    config = {"model": {"hidden_size": 8, "conv": {"in_channels": "${model.hidden_size}"}},
              "a": "${b}", "b": "${model.conv}", "c": "${a}", "d": "${..model.hidden_size}", "e": "${missing}"}
    loaded = load_checkpoint(_authors_checkpoint(tmp_path / "ok.pth", config))
    assert loaded.config["a"] == loaded.config["c"] == {"in_channels": 8}
    assert loaded.config["model"]["conv"]["in_channels"] == 8 and loaded.config["e"] == "${missing}"
