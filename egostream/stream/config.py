"""The streaming engine's settings: one typed, frozen :class:`StreamConfig` loaded from ``configs/stream/*.yaml``.

All times are in seconds of stream time; the feature-row grid (``stride_frames`` at ``fps``) turns them into rows
(16 / 30 = 0.533 s per row for the Ego4D features, so the default 8-minute horizon is 900 rows).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from os import PathLike
from typing import Literal

import torch
from torch import Tensor

from egostream.config import CONFIG_DIR, load_config
from egostream.errors import InputError

__all__ = ["StreamConfig", "ReadoutConfig", "EngineMode", "DEFAULT_STREAM_CONFIG", "load_stream_config", "row_positions_s"]

EngineMode = Literal["incremental", "recompute"]

#: ``configs/stream/default.yaml`` of a source checkout.
DEFAULT_STREAM_CONFIG = CONFIG_DIR / "stream" / "default.yaml"


def row_positions_s(first_row: int, num_rows: int, stride_frames: int, fps: float, *, step: int = 1) -> Tensor:
    """float32 ``[num_rows]`` node times in seconds of rows ``first_row, first_row + step, ...`` from the stream start.

    Row ``i`` sits at ``(0.5 + i) * stride_frames / fps`` seconds, evaluated in float32 exactly as the benchmark
    protocol computes a video's node positions (``egostream.ego4d.protocol.windows.centred_node_positions_s``), so
    a node at level ``d`` (the even-kept node of row ``2**d * k``) gets bit-identical seconds (``step=2**d``).
    """
    rows = torch.arange(num_rows, dtype=torch.long) * step + first_row
    return (0.5 + rows) * stride_frames / fps


@dataclass(frozen=True)
class ReadoutConfig:
    """Spans of the readouts, in seconds of stream time before the current time.

    Attributes:
        ar_span_s: AR's trailing span (the "current action").
        lta_span_s: LTA's observed span.
        oscc_span_s: OSCC's trailing window (8 s, the Ego4D OSCC clip length).
        pnr_span_s: PNR's trailing window (8 s, the Ego4D PNR clip length).
        mq_span_s: MQ's look-back; ``None`` means the engine's whole horizon, ``(horizon_rows - 0.5)`` row periods
            (the nodes from the first retained row on).
        mq_min_score: live MQ readouts report the moments scoring at least this after soft-NMS (the authors'
            decoding keeps every candidate above 0.001, thousands per look-back); the benchmark replay, which
            decodes as the authors do, is unaffected.
        mq_every_s: run MQ once every this many seconds of stream time (at the first window that reaches each
            multiple); the windows in between carry no MQ readout. ``None``: every window.
        lta_seed: base seed of the LTA samples (the window at ``n`` rows draws with seed ``lta_seed + n``).
        evidence_k: backpack prototypes reported per support task.
    """

    ar_span_s: float = 4.0
    lta_span_s: float = 16.0
    oscc_span_s: float = 8.0
    pnr_span_s: float = 8.0
    mq_span_s: float | None = None
    mq_min_score: float = 0.1
    mq_every_s: float | None = None
    lta_seed: int = 0
    evidence_k: int = 5

    def __post_init__(self) -> None:
        for name in ("ar_span_s", "lta_span_s", "oscc_span_s", "pnr_span_s", "mq_span_s", "mq_every_s"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise InputError(None, f"readouts.{name}", f"must be positive, got {value}")
        if not 0.0 <= self.mq_min_score <= 1.0:
            raise InputError(None, "readouts.mq_min_score", f"must be in [0, 1], got {self.mq_min_score}")
        if self.evidence_k < 1:
            raise InputError(None, "readouts.evidence_k", f"must be >= 1, got {self.evidence_k}")


@dataclass(frozen=True)
class StreamConfig:
    """Settings of the streaming engine (times in seconds of stream time).

    Attributes:
        horizon_s: look-back kept in memory; final nodes older than this are evicted (8 minutes = 900 rows).
        stride_frames: frames between consecutive feature rows (16 for the Ego4D features).
        fps: frame rate of the row grid (30).
        engine_mode: ``"incremental"`` recomputes only each level's non-final frontier per push (the engine);
            ``"recompute"`` runs the offline backbone over the retained horizon at every push (benchmark baseline).
        emit_every_s: one window result every this many seconds of stream time.
        readouts: the spans and options of the per-window readouts.
    """

    horizon_s: float = 480.0
    stride_frames: int = 16
    fps: float = 30.0
    engine_mode: EngineMode = "incremental"
    emit_every_s: float = 2.0
    readouts: ReadoutConfig = field(default_factory=ReadoutConfig)

    def __post_init__(self) -> None:
        for name in ("horizon_s", "fps", "emit_every_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"StreamConfig.{name} must be positive, got {getattr(self, name)}")
        if self.stride_frames < 1:
            raise ValueError(f"StreamConfig.stride_frames must be >= 1, got {self.stride_frames}")
        if self.engine_mode not in ("incremental", "recompute"):
            raise ValueError(f"StreamConfig.engine_mode must be 'incremental' or 'recompute', got {self.engine_mode!r}")
        if self.horizon_rows < 1:
            raise ValueError(f"StreamConfig.horizon_s={self.horizon_s} is shorter than one row ({self.row_period_s} s)")

    @property
    def row_period_s(self) -> float:
        """Seconds between consecutive feature rows."""
        return self.stride_frames / self.fps

    @property
    def horizon_rows(self) -> int:
        """The horizon in rows: ``round(horizon_s / row_period_s)`` (900 for 8 minutes of 16-frame rows)."""
        return round(self.horizon_s / self.row_period_s)

    @property
    def emit_every_rows(self) -> int:
        """Rows between two emitted windows (at least 1)."""
        return max(1, round(self.emit_every_s / self.row_period_s))

    def row_positions_s(self, first_row: int, num_rows: int, *, step: int = 1) -> Tensor:
        """:func:`row_positions_s` on this config's row grid."""
        return row_positions_s(first_row, num_rows, self.stride_frames, self.fps, step=step)


def load_stream_config(path: str | PathLike[str] | None = DEFAULT_STREAM_CONFIG,
                       overrides: tuple[str, ...] | list[str] = ()) -> StreamConfig:
    """:class:`StreamConfig` from a YAML file (default ``configs/stream/default.yaml``) and ``key=value`` overrides."""
    return load_config(StreamConfig, path, overrides)
