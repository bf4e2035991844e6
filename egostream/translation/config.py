"""Settings of a task-translation model (EgoT2-s) and which tasks it can be trained for.

The sizes follow EgoT2 (Xue et al., CVPR 2023; facebookresearch/EgoT2@686c305), whose recipes set, per primary
task, the translator width ``TRANSLATION_INPUT_FEATURES`` and depth ``TRANSLATION_LAYERS``: PNR 128 / 6
(HOI/configs/pnr/ts_pnr.yaml), OSCC 256 / 5 (HOI/configs/pnr/ts_oscc.yaml), AR 128 / 3
(HOI/configs/recognition/ts_ar.yaml), LTA 1024 / 1 (HOI/configs/lta/ts_lta_4task.yaml); 8 attention heads and a
feed-forward width of ``2 d`` (HOI/models/pnr/video_model_transfer_3task.py ``nn.TransformerEncoderLayer(...,
nhead=8, dim_feedforward=feature_dim * 2, batch_first=True)``). The presets are the ``translation:`` blocks of
``configs/train/translation_<task>.yaml``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from egostream.errors import InputError

__all__ = ["TranslationConfig", "PRIMARY_TASKS"]

#: Tasks a translation model can be trained for: the level-0 tasks EgoT2 covers. MQ reads every level of the
#: hierarchy, which the level-0 tokens do not carry; an MQ model can still be a SOURCE.
PRIMARY_TASKS = ("ar", "lta", "oscc", "pnr")


@dataclass(frozen=True)
class TranslationConfig:
    """One task translator.

    Attributes:
        sources: the frozen task-specific models: ONE multi-task checkpoint (each task's neck output is that task's
            view; one backbone pass) or several single-task checkpoints (one backbone pass each, backbones with
            equal weights run once).
        source_tasks: the source tasks whose tokens the translator reads (empty: every task the sources provide);
            the primary task must be one of them.
        d_model: token width ``d`` (EgoT2 ``TRANSLATION_INPUT_FEATURES``).
        num_heads: attention heads.
        num_layers: encoder layers (EgoT2 ``TRANSLATION_LAYERS``).
        feature_dropout: dropout on each projected view before the LayerNorm (EgoT2 ``FEAT_DROPOUT_RATE`` /
            ``TRANSLATION_DROPOUT``).
        dropout: dropout inside the encoder layers.
        time_base_s: base of the sinusoidal encoding of a node's time in seconds (channel pair ``i`` turns at
            ``time_base_s ** (-2 i / d)`` radians per second); times are relative to the newest node of the video.
        window_nodes: streaming: level-0 nodes (per source task) the translator attends over, the newest ones;
            offline samples use all their nodes.
    """

    sources: tuple[Path, ...] = ()
    source_tasks: tuple[str, ...] = ()
    d_model: int = 128
    num_heads: int = 8
    num_layers: int = 3
    feature_dropout: float = 0.1
    dropout: float = 0.1
    time_base_s: float = 10000.0
    window_nodes: int = 64

    def __post_init__(self) -> None:
        if self.d_model < 2 or self.d_model % 2:
            raise InputError(None, "translation.d_model", f"must be an even number >= 2, got {self.d_model}")
        if self.num_heads < 1 or self.d_model % self.num_heads:
            raise InputError(None, "translation.num_heads",
                             f"{self.num_heads} heads must divide d_model={self.d_model}")
        if self.num_layers < 1:
            raise InputError(None, "translation.num_layers", f"must be >= 1, got {self.num_layers}")
        if self.window_nodes < 1:
            raise InputError(None, "translation.window_nodes", f"must be >= 1, got {self.window_nodes}")
        for name in ("feature_dropout", "dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise InputError(None, f"translation.{name}", f"must be in [0, 1), got {getattr(self, name)}")
        if self.time_base_s <= 1.0:
            raise InputError(None, "translation.time_base_s", f"must be > 1, got {self.time_base_s}")
