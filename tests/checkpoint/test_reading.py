"""Reading checkpoint files: every fixture checkpoint with its parts, format detection, the restricted unpickler,
missing and foreign files, non-finite weights (:mod:`egostream.checkpoint.reading`)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch import nn

from egostream.backbone.hierarchy import HierarchicalBackbone, authors_backbone_keys
from egostream.checkpoint import OmegaConfStub, load_backbone, load_checkpoint, save_checkpoint
from egostream.errors import InputError
from egostream.testing import reference_dir
from tests.checkpoint.tiny import tiny_config
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
