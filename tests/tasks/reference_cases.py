"""Shared plumbing of the task reference tests: discover the ``task_<task>_depth*`` cases of the reference fixtures,
build each head from the case's ``configs/<checkpoint>.json``, load its weights, and rebuild the inputs."""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from egostream.backbone.graphs import LevelGraphs, VideoBatch
from egostream.checkpoint import LoadedCheckpoint, load_backbone, load_checkpoint
from egostream.tasks import Task, TaskInputs, task_class
from egostream.testing import reference_dir
from tests.reference_fixtures import reference_manifest


@dataclass(frozen=True)
class ReferenceCase:
    """One ``task_*`` case of the manifest."""

    name: str
    task: str  # authors' name, e.g. "ego4d/ar"
    checkpoint: Path
    config: Path
    inputs: Path
    expected: Path


def case_ids(cases: list[ReferenceCase]) -> list[str]:
    return [case.name for case in cases]


def task_cases(short_name: str) -> list[ReferenceCase]:
    """Every manifest case ``task_<short_name>_*`` of the reference folder (empty if the folder is absent)."""
    root = reference_dir()
    cases = []
    for name, case in sorted(reference_manifest()["cases"].items()):
        if not name.startswith(f"task_{short_name}_"):
            continue
        checkpoint = root / case["checkpoint"]
        cases.append(ReferenceCase(name, case["task"], checkpoint, root / "configs" / f"{checkpoint.stem}.json",
                                   root / case["inputs_file"], root / case["expected_file"]))
    return cases


@lru_cache(maxsize=8)
def _checkpoint(path: Path) -> LoadedCheckpoint:
    return load_checkpoint(path)


def task_state_dict(case: ReferenceCase) -> dict[str, Tensor]:
    return _checkpoint(case.checkpoint).task_state(case.task)


def run_backbone(case: ReferenceCase) -> LevelGraphs:
    """The checkpoint's backbone run on the case's input batch (the end-to-end path)."""
    batch = inputs(case)
    backbone = load_backbone(_checkpoint(case.checkpoint))
    videos = VideoBatch.from_padded(batch["input.x"].flatten(1), batch["input.pos"], batch["input.batch"],
                                    batch["input.indices"], batch["input.mask"])
    with torch.no_grad():
        _, graphs = backbone(videos)
    return graphs


def build_task(case: ReferenceCase, **overrides: Any) -> Task:
    """The head of ``case`` built from its JSON config, with the checkpoint's weights loaded strictly, in eval mode."""
    cfg = json.loads(case.config.read_text())["tasks"][case.task]
    cls = task_class(case.task)
    config = cls.config_class.from_authors(cfg)
    task = cls(replace(config, **overrides))
    task.load_state_dict(task_state_dict(case), strict=True)
    return task.eval()


def forward_with_loss_terms(task: Task, graphs: LevelGraphs, inputs: TaskInputs) -> tuple[Any, dict[str, Tensor]]:
    """The head's output on ``graphs`` and its loss terms for ``inputs`` (``task.loss_terms``), without gradients."""
    with torch.no_grad():
        out = task(graphs, inputs)
        return out, task.loss_terms(out, inputs)


def verb_noun_results(task: Task, graphs: LevelGraphs, inputs: TaskInputs, name: str,
                      loss_unit: str) -> dict[str, Tensor]:
    """The values a verb/noun head (AR, LTA) is compared on, under the case keys ``expected.<name>.*``; the
    per-item loss is ``loss_per_<loss_unit>`` (segment for AR, step for LTA)."""
    out, terms = forward_with_loss_terms(task, graphs, inputs)
    prefix = f"expected.{name}."
    return {prefix + "verb_logits": out.verb_logits, prefix + "noun_logits": out.noun_logits,
            prefix + "features": out.features, prefix + f"loss_per_{loss_unit}": terms["total"],
            prefix + "verb_loss": terms["verb"], prefix + "noun_loss": terms["noun"],
            prefix + "loss_mean": terms["total"].mean()}


def expected(case: ReferenceCase) -> dict[str, Tensor]:
    return torch.load(case.expected, map_location="cpu", weights_only=True)


def inputs(case: ReferenceCase) -> dict[str, Tensor]:
    return torch.load(case.inputs, map_location="cpu", weights_only=True)


def expected_graphs(values: dict[str, Tensor]) -> LevelGraphs:
    """The backbone graphs stored in a task case (``expected.backbone.graphs.*``)."""

    def get(name: str) -> Tensor:
        return values[f"expected.backbone.graphs.{name}"]

    video = get("video")
    return LevelGraphs(x=get("x"), pos=get("pos"), video=video, depth=get("depth"), extent=get("extent"),
                       indices=get("indices"), num_videos=int(video.max()) + 1)


def video_graphs(graphs: LevelGraphs, video: int) -> LevelGraphs:
    """The nodes of one video, renumbered as video 0 (what a batch of that video alone gives)."""
    keep = graphs.video == video
    return LevelGraphs(x=graphs.x[keep], pos=graphs.pos[keep], video=torch.zeros_like(graphs.video[keep]),
                       depth=graphs.depth[keep], extent=graphs.extent[keep], indices=graphs.indices[keep],
                       num_videos=1)


def task_inputs(case: ReferenceCase) -> TaskInputs:
    return TaskInputs.from_collated(inputs(case))


def assert_close(actual: Tensor, wanted: Tensor, name: str, atol: float = 1e-5) -> None:
    torch.testing.assert_close(actual.to(wanted.dtype), wanted, atol=atol, rtol=0, msg=lambda m: f"{name}: {m}")


def assert_expected(values: dict[str, Tensor], computed: dict[str, Tensor], prefix: str) -> None:
    """Compare EVERY fixture tensor whose name starts with ``prefix`` (none may be left unchecked)."""
    wanted = sorted(name for name in values if name.startswith(prefix))
    assert wanted, f"the case has no {prefix}* tensors"
    missing = [name for name in wanted if name not in computed]
    assert not missing, f"not computed by the test: {missing}"
    for name in wanted:
        assert_close(computed[name], values[name], name)

