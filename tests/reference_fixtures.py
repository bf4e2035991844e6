"""Discovery of the authors' reference cases, shared by the reference tests of every subpackage.

Everything is found through ``manifest.json`` of :func:`egostream.testing.reference_dir` (so the same tests run on
any folder of the same layout), never by hard-coded file names; an absent folder gives no cases.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from egostream.backbone.hierarchy import HierarchicalBackbone, backbone_config_from_authors
from egostream.checkpoint import load_backbone
from egostream.testing import reference_dir

__all__ = ["reference_manifest", "backbone_cases", "authors_config", "reference_backbone", "edge_set"]


def reference_manifest() -> dict[str, Any]:
    """The reference folder's ``manifest.json`` (``cases``, ``checkpoints``); empty sections when it is absent."""
    path = reference_dir() / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else {"cases": {}, "checkpoints": {}}


def backbone_cases() -> list[tuple[str, dict[str, Any]]]:
    """``(name, case)`` of every case that records backbone level graphs for an input batch, sorted by name."""
    return [(name, case) for name, case in sorted(reference_manifest()["cases"].items())
            if "expected.backbone.graphs.x" in case.get("tensors", {}) and isinstance(case.get("inputs_file"), str)]


def authors_config(checkpoint: str | Path) -> dict[str, Any]:
    """The authors' training config of a checkpoint: ``configs/<checkpoint stem>.json`` of the reference folder."""
    return json.loads((reference_dir() / "configs" / f"{Path(checkpoint).stem}.json").read_text())


def reference_backbone(case: dict[str, Any]) -> HierarchicalBackbone:
    """The case's checkpoint backbone, built from the authors' config and loaded strictly with our loader."""
    model_config = authors_config(case["checkpoint"])["model"]
    return load_backbone(reference_dir() / case["checkpoint"], backbone_config_from_authors(model_config))


def edge_set(edge_index: torch.Tensor) -> set[tuple[int, int]]:
    """The ``(source, target)`` pairs of a ``[2, E]`` edge index, as a set (edge order is not part of a graph)."""
    return {tuple(pair) for pair in edge_index.t().tolist()}
