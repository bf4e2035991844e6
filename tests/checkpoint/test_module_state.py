"""Strict loading into modules, saying what differs (:mod:`egostream.checkpoint.module_state`)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from egostream.backbone.hierarchy import HierarchicalBackbone
from egostream.checkpoint import load_backbone, load_module_state, save_checkpoint
from egostream.errors import InputError
from tests.checkpoint.tiny import tiny_config


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
