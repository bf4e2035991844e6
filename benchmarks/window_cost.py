"""Cost of a whole stream window (its last push and every readout) at the authors' sizes: one JSON line per
measurement on stdout.

A window is what :class:`egostream.stream.windows.WindowEmitter` does when the stream reaches an emission row (every
``emit_every_s`` = 2 s of stream time): the engine push of the window's last rows, then the readouts of all five
heads (AR, LTA, OSCC, PNR, MQ with soft-NMS). Two modes, measured side by side in one run:

* ``incremental``: rows pushed one at a time as a live source delivers them (the incremental engine updates only the
  non-final frontier), readouts that reuse the head outputs of final nodes
  (:class:`egostream.stream.readouts.Readouts`).
* ``recompute``: what the authors' code does for a window: the window's rows pushed at once into the offline backbone
  over the horizon (``engine_mode: recompute``), then every head over its span and the full MQ post-processing.

Each line has ``preset``, ``depth``, ``horizon_s``, ``mode``, ``threads``, ``window_ms_p50`` / ``window_ms_p95``
(wall-clock milliseconds of the push call that emits a window, its readouts included), ``part_ms_p50`` (the p50 of
each entry of ``WindowResult.latency_ms``: ``engine`` and each readout), ``x_real_time`` (stream seconds per
wall-clock second over the timed part, every push included) and ``rss_mb`` (resident memory after the measurement).
Incremental lines add ``engine_floor_ms``: the p50 time to apply every weight matrix an incremental push must read
(each level's TDGC ``lin_rel`` and ``lin_root``: a new row changes the non-final frontier of every level) to a single
row, one layer after the other, the way the engine applies them
(:class:`~egostream.kernels.stacked_linear.StackedLinear`): the memory traffic below which no push of this model can
go on this machine, whatever the engine does around it.

Models: the EgoVLP (256-d rows) and Omnivore (1536-d rows) depth-8 presets (``configs/model/*_depth8.yaml``: hidden
768, all five heads, 110 MQ classes), random weights (cost does not depend on them); default readout spans
(``configs/stream/default.yaml``: MQ over the whole horizon). Each measurement first fills the horizon (incremental:
pushes of ``--fast-forward`` rows; recompute: one push), then runs ``--warmup`` untimed and ``--windows`` timed
windows (``--recompute-windows`` in recompute mode), the two modes' windows interleaved so that both see the same
machine load.

Usage: ``python benchmarks/window_cost.py [--presets egovlp omnivore] [--horizons-min 2 8 32]
[--modes incremental recompute] [--windows 12] [--recompute-windows 3] [--warmup 5] [--threads 2] [--device cpu]``.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from egostream.config import CONFIG_DIR, load_config
from egostream.device import resolve_device
from egostream.kernels.stacked_linear import StackedLinear
from egostream.model import ModelBundle, ModelConfig
from egostream.stream.config import StreamConfig, load_stream_config
from egostream.stream.windows import WindowEmitter
from stream_step import rss_mb  # benchmarks/ is the script's folder, first on sys.path

PRESETS = {"egovlp": "egovlp_depth8.yaml", "omnivore": "omnivore_depth8.yaml"}


class WindowRun:
    """One mode's stream of windows: an emitter whose horizon is full, timed window by window."""

    def __init__(self, preset: str, bundle: ModelBundle, horizon_s: float, mode: str, fast_forward: int) -> None:
        base = load_stream_config()
        self.preset, self.mode, self.horizon_s, self.depth = preset, mode, horizon_s, bundle.backbones[0].depth
        self.config = StreamConfig(horizon_s=horizon_s, stride_frames=base.stride_frames, fps=base.fps,
                                   engine_mode=mode, emit_every_s=base.emit_every_s, readouts=base.readouts)
        self.emitter = WindowEmitter(bundle, self.config, stream_id=f"{preset}-{mode}")
        self.generator = torch.Generator().manual_seed(0)
        self.width = bundle.feature_dim
        self.window_ms: list[float] = []
        self.parts: dict[str, list[float]] = {}
        self.timed_rows, self.timed_wall = 0, 0.0
        filled = self.config.horizon_rows + self.config.emit_every_rows
        chunk = fast_forward if mode == "incremental" else filled  # recompute retains only the horizon's rows
        while self.emitter.num_rows < filled:
            self.emitter.push(self.rows(min(chunk, filled - self.emitter.num_rows)))

    def rows(self, count: int) -> torch.Tensor:
        return torch.randn(count, self.width, generator=self.generator)

    def window(self, timed: bool) -> None:
        """Push the rows up to the next emission row. Incremental: one by one as a live source delivers them, the
        last push emits the window. Recompute: the authors' per-window run, the window's rows at once."""
        every = self.config.emit_every_rows
        pending = every - self.emitter.num_rows % every
        began = time.perf_counter()
        for size in [1] * pending if self.mode == "incremental" else [pending]:
            push_began = time.perf_counter()
            emitted = self.emitter.push(self.rows(size))
            push_ms = (time.perf_counter() - push_began) * 1e3
        wall = time.perf_counter() - began
        (result,) = emitted
        if not timed:
            return
        self.timed_rows += pending
        self.timed_wall += wall
        self.window_ms.append(push_ms)
        for name, value in result.latency_ms.items():
            if name != "total":
                self.parts.setdefault(name, []).append(value)

    def summary(self) -> dict[str, object]:
        return {"preset": self.preset, "depth": self.depth, "horizon_s": self.horizon_s, "mode": self.mode,
                "threads": torch.get_num_threads(), "device": str(self.emitter.engines[0].device),
                "window_ms_p50": round(float(np.percentile(self.window_ms, 50)), 2),
                "window_ms_p95": round(float(np.percentile(self.window_ms, 95)), 2),
                "part_ms_p50": {name: round(float(np.percentile(values, 50)), 2)
                                for name, values in self.parts.items()},
                "x_real_time": round(self.timed_rows * self.config.row_period_s / self.timed_wall, 2),
                "rss_mb": round(rss_mb(), 1)}


def engine_floor_ms(bundle: ModelBundle, repeats: int = 21) -> float:
    """p50 milliseconds of one pass of a ``[1, F]`` row through every TDGC weight matrix of the bundle's backbones,
    applied as the engine applies them (each layer's ``lin_rel`` and ``lin_root`` as one :class:`StackedLinear`)."""
    layers = [StackedLinear([conv.lin_rel, conv.lin_root]) for backbone in bundle.backbones
              for block in backbone.layers for conv in block.convs]
    weight = bundle.backbones[0].layers[0].convs[0].lin_rel.weight
    row = torch.randn(1, weight.shape[1], device=weight.device)
    for layer in layers:  # packs the weights once, as the engine's first push does
        layer(row)
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        for layer in layers:
            layer(row)
        if row.is_cuda:
            torch.cuda.synchronize(row.device)
        times.append((time.perf_counter() - began) * 1e3)
    return round(float(np.percentile(times, 50)), 2)


def measure(runs: list[WindowRun], windows: dict[str, int], warmup: int) -> None:
    """Interleave the modes' windows (so that both see the same machine load) and print one line per mode."""
    for index in range(warmup + max(windows.values())):
        for run in runs:
            if index < warmup + windows[run.mode]:
                run.window(timed=index >= warmup)
    floor = engine_floor_ms(runs[0].emitter.bundle)
    for run in runs:
        summary = run.summary()
        if run.mode == "incremental":
            summary["engine_floor_ms"] = floor
        print(json.dumps(summary), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", choices=sorted(PRESETS), default=["egovlp", "omnivore"])
    parser.add_argument("--horizons-min", nargs="+", type=float, default=[2.0, 8.0, 32.0],
                        help="horizons in minutes")
    parser.add_argument("--modes", nargs="+", choices=["incremental", "recompute"],
                        default=["incremental", "recompute"])
    parser.add_argument("--windows", type=int, default=12, help="timed windows per incremental measurement")
    parser.add_argument("--recompute-windows", type=int, default=3, help="timed windows per recompute measurement")
    parser.add_argument("--warmup", type=int, default=5, help="untimed windows before the timed ones")
    parser.add_argument("--fast-forward", type=int, default=256, help="rows per push while filling the horizon")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto: where the model and the stream "
                                                        "state live (rows are made on the host, as a source does)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    windows = {"incremental": args.windows, "recompute": args.recompute_windows}
    for preset in args.presets:
        bundle = load_config(ModelConfig, CONFIG_DIR / "model" / PRESETS[preset]).build(seed=0).to(device)
        for minutes in args.horizons_min:
            runs = [WindowRun(preset, bundle, minutes * 60.0, mode, args.fast_forward) for mode in args.modes]
            measure(runs, windows, args.warmup)

if __name__ == "__main__":
    main()
