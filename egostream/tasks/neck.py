"""The projection neck every task puts between the shared backbone and its head.

Reproduces ``Projection`` of sapeirone/hier-egopack@4fff4e5:models/tasks/utils/projection.py: Dropout, Linear,
LayerNorm, ReLU, Linear. Parameter names (``net.1``, ``net.2``, ``net.4``) equal the authors' so their task state
dicts load unchanged under the ``projector.`` prefix.
"""
from __future__ import annotations

from torch import Tensor, nn

__all__ = ["ProjectionNeck"]


class ProjectionNeck(nn.Module):
    """Per-node MLP ``[N, input_size] -> [N, features_size]``.

    Args:
        input_size: width of the backbone features (the backbone's ``hidden_size``).
        features_size: width of the task features.
        dropout: dropout applied to the input (active in training mode only).
    """

    def __init__(self, input_size: int, features_size: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.input_size = input_size
        self.features_size = features_size
        self.net = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(input_size, features_size),
            nn.LayerNorm(features_size),
            nn.ReLU(),
            nn.Linear(features_size, features_size),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Project node features ``[N, input_size]`` to ``[N, features_size]``."""
        return self.net(x)
