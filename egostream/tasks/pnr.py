"""Ego4D point-of-no-return (PNR) keyframe localisation: which of a clip's 16 sampled frames is the keyframe?

Reproduces ``PNRTask`` of sapeirone/hier-egopack@4fff4e5:models/tasks/ego4d/pnr.py: the level-0 features plus a
sinusoidal positional encoding of each frame's index in its clip (torch_geometric ``PositionalEncoding(F)``, added
BEFORE the neck), the neck, ``Linear(F, 1)``, and binary cross-entropy with logits averaged over all ``B * 16``
frames. Decoding follows the authors' meter (utils/meters/ego4d/pnr.py), see :func:`keyframe_index`.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch_geometric.nn.encoding import PositionalEncoding

from egostream.backbone.graphs import LevelGraphs
from egostream.errors import InputError
from egostream.tasks.base import TASKS, Fuse, ModelPreset, Task, TaskConfig, TaskInputs, common_preset_node

__all__ = ["PNRConfig", "PNROutput", "PNRPrediction", "PNRTask", "keyframe_index"]


@dataclass(frozen=True)
class PNRConfig(TaskConfig):
    """PNR settings.

    Attributes:
        frames_per_clip: sampled frames per clip (16 in Ego4D; every clip has exactly this many nodes).
        keyframe_threshold: logit threshold of the decoding rule (0.7 in the authors' meter).
        keyframe_centre: frame the decoding rule prefers among those above the threshold (7 in the authors' meter).
    """

    frames_per_clip: int = 16
    keyframe_threshold: float = 0.7
    keyframe_centre: int = 7

    @classmethod
    def from_authors(cls, cfg: Mapping[str, Any]) -> PNRConfig:
        return cls(**cls.common_from_authors(cfg))


class PNROutput(NamedTuple):
    """``logits`` ``[B * 16, 1]``: one keyframe logit per frame, clips in order."""

    logits: Tensor


class PNRPrediction(NamedTuple):
    """``index`` ``[B]`` int64 keyframe position in each clip (0..15); ``frame`` ``[B]`` int64 its frame number
    relative to the clip's ``start_frame`` (``candidate_frames[index] - start_frame``), or ``None`` without them."""

    index: Tensor
    frame: Tensor | None


def keyframe_index(logits: Tensor, threshold: float = 0.7, centre: int = 7) -> int:
    """The authors' keyframe rule for one clip's ``[16]`` logits (utils/meters/ego4d/pnr.py ``EvalMeter.update``).

    If no logit reaches ``threshold`` the argmax wins; otherwise, among the frames whose logit exceeds it, the one
    closest to frame ``centre``, the earlier one on a tie. The threshold is applied to raw logits, not to
    probabilities, exactly as in the authors' meter. (A logit exactly AT the threshold with none above it makes the
    authors' rule fail on an empty selection; here it gives the argmax.)
    """
    offsets = torch.argwhere(logits > threshold).flatten() - centre
    if len(offsets) == 0:
        return int(torch.argmax(logits))
    return centre + int(offsets[offsets.abs().argmin()])


@TASKS.register("pnr")
class PNRTask(Task[PNRConfig, PNROutput]):
    """Keyframe localisation head (see the module docstring)."""

    name = "pnr"
    authors_name = "ego4d/pnr"
    config_class = PNRConfig
    annotation_file = "fho_oscc-pnr"
    rank = 3

    def __init__(self, config: PNRConfig) -> None:
        super().__init__(config)
        self.classifier = nn.Linear(config.features_size, 1)
        # granularity 1: the frame index itself is the position (its buffer ``frequency`` is in the state dict).
        self.pe = PositionalEncoding(config.features_size, granularity=1)

    def forward(self, graphs: LevelGraphs, inputs: TaskInputs) -> PNROutput:
        """Score every level-0 node; ``inputs.indices`` (default: the level-0 ``graphs.indices``) are the frame
        indices the positional encoding sees (the authors use ``data.indices``, equal for unpadded PNR clips)."""
        x, _, _ = self.level0(graphs)
        indices = inputs.indices if inputs.indices is not None else graphs.indices[graphs.depth == 0]
        if indices.shape != x.shape[:1]:
            raise InputError(f"task {self.name}", "inputs.indices",
                             f"expected one frame index per level-0 node ({x.shape[0]}), got {list(indices.shape)}")
        if self.pe.out_channels != x.shape[1]:
            raise InputError(f"task {self.name}", "graphs.x",
                             f"the positional encoding has width {self.pe.out_channels}, the features {x.shape[1]}")
        return PNROutput(self.classifier(self.project(x + self.pe(indices))))

    def fused_forward(self, graphs: LevelGraphs, inputs: TaskInputs, fuse: Fuse) -> PNROutput:
        """The projected, position-encoded frame features fused, then the same classifier
        (models/tasks/ego4d/pnr.py EgoPackPNRTask.forward)."""
        x, _, _ = self.level0(graphs)
        indices = inputs.indices if inputs.indices is not None else graphs.indices[graphs.depth == 0]
        return PNROutput(self.classifier(fuse(self.project(x + self.pe(indices)))))

    @classmethod
    def preset_node(cls, preset: ModelPreset) -> dict[str, Any]:
        return common_preset_node(preset)

    def loss_terms(self, outputs: PNROutput, inputs: TaskInputs) -> dict[str, Tensor]:
        """``bce`` scalar: BCE-with-logits averaged over all ``B * 16`` frames; ``total`` = loss_weight * bce."""
        bce = F.binary_cross_entropy_with_logits(outputs.logits.squeeze(), inputs.require("labels", self.name),
                                                 reduction="mean")
        return {"total": self.config.loss_weight * bce, "bce": bce}

    def decode(self, outputs: PNROutput, inputs: TaskInputs | None = None) -> PNRPrediction:
        """The keyframe of each clip (``config.frames_per_clip`` consecutive rows per clip)."""
        per_clip = self.config.frames_per_clip
        logits = outputs.logits.reshape(-1)
        if logits.numel() % per_clip:
            raise InputError(f"task {self.name}", "outputs.logits",
                             f"{logits.numel()} frames is not a whole number of {per_clip}-frame clips")
        index = torch.tensor([keyframe_index(clip, self.config.keyframe_threshold, self.config.keyframe_centre)
                              for clip in logits.reshape(-1, per_clip)], dtype=torch.long)
        frame = None
        if inputs is not None and inputs.candidate_frames is not None and inputs.start_frame is not None:
            frame = inputs.candidate_frames.gather(1, index[:, None]).squeeze(1) - inputs.start_frame
        return PNRPrediction(index, frame)
