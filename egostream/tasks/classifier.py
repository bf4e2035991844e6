"""MLP classification and regression heads shared by the tasks.

Reproduces ``Classifier`` and ``Regressor`` of sapeirone/hier-egopack@4fff4e5:models/tasks/utils/classifier.py with
the same parameter names (``net.0``, ``net.1``, ``net.3``, ``net.4``, ``cls``; ``layers.0.0``, ``layers.0.1``,
``head.0``), so the authors' state dicts load unchanged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from torch import Tensor, nn

__all__ = ["ClassifierConfig", "MLPClassifier", "RegressorConfig", "OffsetRegressor"]


@dataclass(frozen=True)
class ClassifierConfig:
    """Constructor arguments of :class:`MLPClassifier` (the authors' ``Classifier``).

    ``prior_prob > 0`` initialises the output bias to ``-log((1 - p) / p)`` (RetinaNet prior), so that every class
    starts with probability ``p`` under a sigmoid.
    """

    n_classes: int
    hidden_size: int = 512
    n_layers: int = 2
    prior_prob: float = 0.01
    bias: bool = True
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.prior_prob < 1:
            raise ValueError(f"prior_prob must be in [0, 1), got {self.prior_prob}")

    @classmethod
    def from_authors(cls, cfg: Mapping[str, Any]) -> ClassifierConfig:
        """Read an authors' hydra ``Classifier`` node (``features_size`` is set by the task, not here)."""
        return cls(
            n_classes=int(cfg["n_classes"]),
            hidden_size=int(cfg.get("hidden_size", 512)),
            n_layers=int(cfg.get("n_layers", 2)),
            prior_prob=float(cfg.get("prior_prob", 0.01)),
            bias=bool(cfg.get("bias", True)),
            dropout=float(cfg.get("dropout", 0.0)),
        )


class MLPClassifier(nn.Module):
    """``n_layers`` x (Linear, LayerNorm, ReLU), then a Linear to ``n_classes`` logits.

    Input ``[N, features_size]``, output ``[N, n_classes]`` logits.
    """

    def __init__(self, features_size: int, config: ClassifierConfig) -> None:
        super().__init__()
        self.features_size = features_size
        self.dropout = nn.Dropout(config.dropout)
        layers: list[nn.Module] = []
        for i in range(config.n_layers):
            layers += [
                nn.Linear(features_size if i == 0 else config.hidden_size, config.hidden_size),
                nn.LayerNorm(config.hidden_size),
                nn.ReLU(),
            ]
        self.net = nn.Sequential(*layers)
        self.cls = nn.Linear(config.hidden_size, config.n_classes, bias=config.bias)
        if config.bias and config.prior_prob > 0:
            nn.init.constant_(self.cls.bias, -math.log((1 - config.prior_prob) / config.prior_prob))

    def forward(self, x: Tensor) -> Tensor:
        return self.cls(self.net(self.dropout(x)))

    @property
    def first(self) -> nn.Linear:
        """The first linear layer (``net[0]``, or ``cls`` without hidden layers)."""
        return self.net[0] if len(self.net) else self.cls

    def after_first(self, hidden: Tensor) -> Tensor:
        """The logits from the first linear layer's output ``hidden`` (eval mode: the input dropout is off), so a
        caller may apply that layer its own way (the streaming LTA readout stacks the verb and noun classifiers'
        first layers into one GEMM)."""
        return self.cls(self.net[1:](hidden)) if len(self.net) else hidden


@dataclass(frozen=True)
class RegressorConfig:
    """Constructor arguments of :class:`OffsetRegressor` (the authors' ``Regressor``).

    ``hidden_size=None`` means "same as the input width".
    """

    n_layers: int = 1
    hidden_size: int | None = None
    use_ln: bool = True
    use_bias: bool = True
    dropout: float = 0.0

    @classmethod
    def from_authors(cls, cfg: Mapping[str, Any]) -> RegressorConfig:
        hidden = cfg.get("hidden_size")
        return cls(
            n_layers=int(cfg.get("n_layers", 1)),
            hidden_size=None if hidden is None else int(hidden),
            use_ln=bool(cfg.get("use_ln", True)),
            use_bias=bool(cfg.get("use_bias", True)),
            dropout=float(cfg.get("dropout", 0.0)),
        )


class OffsetRegressor(nn.Module):
    """MLP predicting non-negative (left, right) offsets: ``[N, features_size] -> [N, 2]``, ReLU at the end.

    Each layer is Linear (no bias when followed by LayerNorm), LayerNorm (or identity), ReLU.
    """

    def __init__(self, features_size: int, config: RegressorConfig) -> None:
        super().__init__()
        hidden = config.hidden_size or features_size
        self.dropout = nn.Dropout(config.dropout)
        self.layers = nn.Sequential(*[
            nn.Sequential(
                nn.Linear(features_size if i == 0 else hidden, hidden, bias=not config.use_ln),
                nn.LayerNorm(hidden) if config.use_ln else nn.Identity(),
                nn.ReLU(),
            )
            for i in range(config.n_layers)
        ])
        self.head = nn.Sequential(nn.Linear(hidden, 2, bias=config.use_bias), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.layers(self.dropout(x)))

