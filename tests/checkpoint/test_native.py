"""Our own checkpoint format: round trip, atomic write, versions (:mod:`egostream.checkpoint.native`)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from egostream.backbone.graphs import VideoBatch
from egostream.backbone.hierarchy import HierarchicalBackbone
from egostream.checkpoint import load_backbone, load_checkpoint, save_checkpoint
from egostream.errors import InputError
from tests.checkpoint.tiny import tiny_config


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
