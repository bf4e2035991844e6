"""The cross-task registry: EgoPack is its first kind, and a new kind is one class that the bundle picks up.

A throw-away kind (``scaled``: the novel task's features times a factor stored in the checkpoint's config) is
registered here, so the test shows what a second module such as EgoT2 translation plugs into: loading selects it
from the checkpoint, the bundle runs the head through it (``Task.fused_forward``), and without the kind registered
the same file loads as a plain head.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import torch

from egostream.backbone.graphs import VideoBatch
from egostream.checkpoint import LoadedCheckpoint
from egostream.crosstask import CROSS_TASK, CrossTaskModule, EgoPackHead
from egostream.model import ModelBundle, ModelConfig
from egostream.tasks.base import Task, TaskInputs


class ScaledFeatures(CrossTaskModule):
    """Multiplies the novel task's features by ``factor`` before its classifier (a stand-in, no support tasks)."""

    kind = "scaled"

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    @property
    def support_tasks(self) -> list[str]:
        return []

    def forward(self, head: Task, graphs: Any, inputs: TaskInputs) -> Any:
        return head.fused_forward(graphs, inputs, lambda features, neck=None: features * self.factor)

    @classmethod
    def from_checkpoint(cls, task: str, checkpoint: LoadedCheckpoint,
                        novel_node: Mapping[str, Any]) -> ScaledFeatures | None:
        factor = checkpoint.config.get("scaled_factor")
        return None if factor is None else cls(float(factor))

    def checkpoint_fields(self, novel_task: str) -> dict[str, Any]:
        return {}  # its one setting travels in the run config (``scaled_factor``), which the saver passes itself


@pytest.fixture
def scaled_kind() -> Iterator[None]:
    CROSS_TASK.register(ScaledFeatures.kind)(ScaledFeatures)
    yield
    CROSS_TASK.unregister(ScaledFeatures.kind)


def tiny_oscc() -> ModelBundle:
    return ModelConfig(feature_dim=8, hidden_size=16, depth=1, features_size=16, classifier_hidden=8,
                       pos_hidden_channels=8, tasks=("oscc",)).build(seed=0)


def oscc_inputs() -> tuple[VideoBatch, TaskInputs]:
    torch.manual_seed(1)
    batch = VideoBatch.from_videos([torch.randn(12, 8)], [(0.5 + torch.arange(12.0)) * 16 / 30])
    return batch, TaskInputs(segments=torch.tensor([[1.0, 4.0]]), segment_video=torch.tensor([0]))


def test_egopack_is_the_first_kind() -> None:
    assert CROSS_TASK.in_order()[0] == "egopack" and CROSS_TASK.get("egopack") is EgoPackHead


def test_a_registered_kind_is_selected_by_the_checkpoint_and_run_by_the_bundle(scaled_kind: None,
                                                                               tmp_path: Path) -> None:
    plain = tiny_oscc()
    path = plain.save(tmp_path / "scaled.pt", config={"scaled_factor": 0.0})
    loaded = ModelBundle.from_checkpoints(path)
    assert isinstance(loaded.crosstask["oscc"], ScaledFeatures) and loaded.egopack == {}
    batch, inputs = oscc_inputs()
    with torch.no_grad():
        outputs = loaded.run("oscc", batch, inputs)
        plain_outputs = plain.run("oscc", batch, inputs)
        # zero features: the classifier's answer to a zero vector, whatever the clip
        expected = plain.head("oscc").classifier(torch.zeros(1, 16))
    torch.testing.assert_close(outputs.logits, expected)
    assert not torch.allclose(plain_outputs.logits, expected)
    # saved again with its setting it loads again; a checkpoint without the setting loads plain
    resaved = loaded.save(tmp_path / "resaved.pt", config={"scaled_factor": 0.0})
    assert isinstance(ModelBundle.from_checkpoints(resaved).crosstask["oscc"], ScaledFeatures)
    assert len(ModelBundle.from_checkpoints(plain.save(tmp_path / "plain.pt")).crosstask) == 0


def test_without_the_kind_the_same_checkpoint_loads_plain(tmp_path: Path) -> None:
    path = tiny_oscc().save(tmp_path / "scaled.pt", config={"scaled_factor": 0.0})
    assert len(ModelBundle.from_checkpoints(path).crosstask) == 0
