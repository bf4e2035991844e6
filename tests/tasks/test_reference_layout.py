"""The AR reference tests run unchanged on another folder of the same layout (``$EGOSTREAM_REFERENCE_DIR``).

A second reference folder is built here with the project's own modules: the shipped AR case's config with another
hidden size, random weights saved as an authors' ``train_multi_task.py`` checkpoint, the shipped AR input batch, and
the expected tensors computed by our backbone and head. ``tests/tasks/test_ar_reference.py`` must pass on it, which
it can only do if it takes every dimension from the case files.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from egostream.backbone.graphs import VideoBatch
from egostream.backbone.hierarchy import HierarchicalBackbone, authors_backbone_keys, backbone_config_from_authors
from egostream.tasks import TaskInputs, task_class
from egostream.testing import reference_dir
from tests.reference_fixtures import reference_manifest
from tests.tasks.reference_cases import verb_noun_results

REPO = Path(__file__).resolve().parents[2]
SIZE_KEYS = {"in_channels", "out_channels", "hidden_size", "input_size", "features_size"}
AR_CASES = sorted((name, case) for name, case in reference_manifest()["cases"].items() if name.startswith("task_ar_"))


def _resized(config: Any, old: int, new: int) -> Any:
    """``config`` with every width field equal to ``old`` set to ``new``."""
    if isinstance(config, dict):
        return {key: new if key in SIZE_KEYS and value == old else _resized(value, old, new)
                for key, value in config.items()}
    if isinstance(config, list):
        return [_resized(value, old, new) for value in config]
    return config


@pytest.mark.skipif(not AR_CASES, reason="no reference AR case found")
def test_ar_reference_tests_pass_on_a_case_with_another_hidden_size(tmp_path: Path) -> None:
    name, case = AR_CASES[0]
    source = reference_dir()
    config = json.loads((source / "configs" / f"{Path(case['checkpoint']).stem}.json").read_text())
    old = config["model"]["hidden_size"]
    new = old - 8
    config = _resized(config, old, new)
    inputs = torch.load(source / case["inputs_file"], weights_only=True)
    width = inputs["input.x"].shape[-1]

    torch.manual_seed(15)
    backbone = HierarchicalBackbone(backbone_config_from_authors(config["model"], input_size=width)).eval()
    head_class = task_class(case["task"])
    head = head_class(head_class.config_class.from_authors(config["tasks"][case["task"]])).eval()
    videos = VideoBatch.from_padded(inputs["input.x"].flatten(1), inputs["input.pos"], inputs["input.batch"],
                                    inputs["input.indices"], inputs["input.mask"])
    with torch.no_grad():
        _, graphs = backbone(videos)
        projected = head.project(graphs.x[graphs.depth == 0])
    expected = verb_noun_results(head, graphs, TaskInputs.from_collated(inputs), "ar", "segment")
    expected.update({f"expected.backbone.graphs.{field}": getattr(graphs, field)
                     for field in ("x", "pos", "video", "depth", "extent", "indices")})
    expected["aux.ar.projected_level0"] = projected

    for folder in ("checkpoints", "configs", "expected", "inputs"):
        (tmp_path / folder).mkdir()
    stem = f"hidden{new}"
    torch.save({"model": authors_backbone_keys(backbone.state_dict(), backbone.cfg.n_layers, to_authors=True),
                "task": {case["task"]: head.state_dict()}, "config": config}, tmp_path / "checkpoints" / f"{stem}.pth")
    (tmp_path / "configs" / f"{stem}.json").write_text(json.dumps(config))
    torch.save(expected, tmp_path / "expected" / f"task_ar_{stem}.pt")
    shutil.copy(source / case["inputs_file"], tmp_path / "inputs" / Path(case["inputs_file"]).name)
    manifest = {"cases": {f"task_ar_{stem}": {"task": case["task"], "checkpoint": f"checkpoints/{stem}.pth",
                                              "inputs_file": f"inputs/{Path(case['inputs_file']).name}",
                                              "expected_file": f"expected/task_ar_{stem}.pt"}},
                "checkpoints": {}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert expected["expected.backbone.graphs.x"].shape[1] == new != old

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/tasks/test_ar_reference.py"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**os.environ, "EGOSTREAM_REFERENCE_DIR": str(tmp_path), "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "failed" not in result.stdout and "passed" in result.stdout, name
