"""A tiny backbone configuration and an authors'-format checkpoint built from it, for the checkpoint tests."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import nn

from egostream.backbone.hierarchy import BackboneConfig, HierarchicalBackbone, authors_backbone_keys


def tiny_config(**changes: object) -> BackboneConfig:
    return dataclasses.replace(BackboneConfig(input_size=6, hidden_size=8, depth=2, pos_hidden_channels=4), **changes)


def authors_checkpoint(path: Path, config: dict) -> Path:
    """A ``train_multi_task.py``-format file at ``path``: a random tiny backbone, one AR head and ``config``."""
    state = authors_backbone_keys(HierarchicalBackbone(tiny_config()).state_dict(), 2, to_authors=True)
    torch.save({"model": state, "task": {"ego4d/ar": nn.Linear(8, 3).state_dict()}, "config": config}, path)
    return path
