"""Per-push cost and memory of the streaming engine: one JSON line per measurement on stdout.

Each measurement line has ``mode`` (``incremental`` | ``recompute``), ``depth``, ``stream_rows`` (rows in the stream
when the timed pushes end), ``horizon_rows``, ``push_ms_p50``/``push_ms_p95`` (wall-clock milliseconds per
single-row push), ``node_updates_per_push`` (mean level nodes evaluated by the level blocks per push) and ``rss_mb``
(resident memory after the measurement), plus the model sizes and thread count.

The model is the authors' depth-8 ``GraphHier`` (sapeirone/hier-egopack@4fff4e5:configs/components/model/
graph_hier.yaml: hidden 768, 2 TDGC layers per level, radius 2 s, gate hidden 256) on 256-d EgoVLP-sized rows,
randomly initialised (cost does not depend on the weights). A stream reaches ``stream_rows - timed - 5`` rows by
pushes of ``--fast-forward`` rows (the engine's state does not depend on the push sizes, as the exactness tests
show; recompute mode fast-forwards in one push), then 5 untimed and ``timed`` timed single-row pushes follow.

* default: incremental at 1k, 4k and 16k rows with the 8-minute horizon (900 rows); incremental and recompute
  with 8-minute and 32-minute (3600-row) horizons.
* ``--soak``: a 2-hour stream (13500 rows) in single-row pushes, printing ``rss_mb`` every horizon and a summary
  line with the RSS growth after the first horizon.
* ``--quick``: a tiny model and short streams (smoke run).

``--device`` (default ``auto``: the first CUDA GPU, else the CPU) is where the model and the engine state live; every
line names it.

Usage: ``python benchmarks/stream_step.py [--quick | --soak] [--threads N] [--device cpu|cuda|auto]``.
"""
from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator

import numpy as np
import torch

from egostream.backbone.hierarchy import BackboneConfig, HierarchicalBackbone
from egostream.device import resolve_device
from egostream.stream import StreamConfig, StreamEngine

ROW_PERIOD_S = 16 / 30
EIGHT_MINUTES_S = 8 * 60.0
THIRTY_TWO_MINUTES_S = 32 * 60.0
SOAK_ROWS = 2 * 3600 * 30 // 16
# Single-row pushes run before the timed ones (first-call allocations and caches).
_UNTIMED_PUSHES = 5


def rss_mb() -> float:
    """Current resident set size of this process in MiB (``VmRSS``)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def rows_of(generator: torch.Generator, count: int, width: int, chunk: int) -> Iterator[torch.Tensor]:
    """``count`` random feature rows in pushes of at most ``chunk`` rows."""
    done = 0
    while done < count:
        size = min(chunk, count - done)
        yield torch.randn(size, width, generator=generator)
        done += size


def measure(backbone: HierarchicalBackbone, mode: str, horizon_s: float, stream_rows: int, timed: int,
            fast_forward: int) -> dict[str, object]:
    """Fast-forward a stream to ``stream_rows - timed`` rows, then time ``timed`` single-row pushes."""
    engine = StreamEngine(backbone, StreamConfig(horizon_s=horizon_s, engine_mode=mode))
    generator = torch.Generator().manual_seed(stream_rows)
    width = backbone.cfg.input_size
    # Recompute reruns the whole horizon at every push whatever its size, so it fast-forwards in one push.
    chunk = fast_forward if mode == "incremental" else stream_rows
    for rows in rows_of(generator, stream_rows - timed - _UNTIMED_PUSHES, width, chunk):
        engine.push(rows)
    for row in rows_of(generator, _UNTIMED_PUSHES, width, 1):
        engine.push(row)
    times, updates = [], []
    for row in rows_of(generator, timed, width, 1):
        stats = engine.push(row)
        times.append(stats.elapsed_ms)
        updates.append(stats.node_updates)
    return {"mode": mode, "depth": backbone.depth, "stream_rows": engine.num_rows,
            "horizon_rows": engine.config.horizon_rows, "push_ms_p50": round(float(np.percentile(times, 50)), 3),
            "push_ms_p95": round(float(np.percentile(times, 95)), 3),
            "node_updates_per_push": round(float(np.mean(updates)), 2), "rss_mb": round(rss_mb(), 1),
            "timed_pushes": timed, "hidden_size": backbone.hidden_size, "input_size": width,
            "threads": torch.get_num_threads(), "device": str(engine.device)}


def soak(backbone: HierarchicalBackbone, horizon_s: float, total_rows: int, push_rows: int) -> None:
    """A long stream; prints RSS every horizon and the growth after the first horizon."""
    engine = StreamEngine(backbone, StreamConfig(horizon_s=horizon_s))
    horizon = engine.config.horizon_rows
    checkpoints: list[tuple[int, float]] = []
    started = time.perf_counter()
    for rows in rows_of(torch.Generator().manual_seed(0), total_rows, backbone.cfg.input_size, push_rows):
        engine.push(rows)
        if engine.num_rows % horizon == 0 or engine.num_rows == total_rows:
            checkpoints.append((engine.num_rows, rss_mb()))
            print(json.dumps({"mode": "soak", "stream_rows": engine.num_rows, "horizon_rows": horizon,
                              "rss_mb": round(checkpoints[-1][1], 1),
                              "elapsed_s": round(time.perf_counter() - started, 1)}), flush=True)
    baseline = next(rss for rows, rss in checkpoints if rows >= horizon)
    peak = max(rss for rows, rss in checkpoints if rows >= horizon)
    print(json.dumps({"mode": "soak-summary", "depth": backbone.depth, "stream_rows": engine.num_rows,
                      "horizon_rows": horizon, "push_rows": push_rows, "rss_mb_first_horizon": round(baseline, 1),
                      "rss_mb_peak_after": round(peak, 1),
                      "rss_growth_pct": round(100 * (peak - baseline) / baseline, 2),
                      "pushes": engine.num_pushes,
                      "node_updates_per_push": round(engine.node_updates_total / engine.num_pushes, 2)}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny model, short streams (smoke run)")
    parser.add_argument("--soak", action="store_true", help="2-hour stream, RSS at every horizon")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--timed", type=int, default=200, help="single-row pushes timed per measurement")
    parser.add_argument("--fast-forward", type=int, default=256, help="rows per push before the timed pushes")
    parser.add_argument("--push-rows", type=int, default=1, help="rows per push in --soak")
    parser.add_argument("--device", default="auto", help="auto (CUDA when usable), cpu, cuda or cuda:N")
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.quick:
        cfg = BackboneConfig(input_size=32, hidden_size=64, depth=8, pos_hidden_channels=32)
    else:
        cfg = BackboneConfig(input_size=256, hidden_size=768, depth=8, n_layers=2, radius_s=2.0,
                             pos_hidden_channels=256)
    backbone = HierarchicalBackbone(cfg).eval().to(device)
    if args.soak:
        soak(backbone, EIGHT_MINUTES_S, SOAK_ROWS // (8 if args.quick else 1), args.push_rows)
        return
    timed = 20 if args.quick else args.timed
    lengths = (1000, 2000) if args.quick else (1000, 4000, 16000)
    plan = [("incremental", EIGHT_MINUTES_S, rows, timed) for rows in lengths]
    recompute_timed = 3 if args.quick else 10
    plan += [("recompute", EIGHT_MINUTES_S, 4000, recompute_timed),
             ("incremental", THIRTY_TWO_MINUTES_S, 8000, timed),
             ("recompute", THIRTY_TWO_MINUTES_S, 8000, max(3, recompute_timed // 2))]
    for mode, horizon_s, rows, count in plan:
        print(json.dumps(measure(backbone, mode, horizon_s, rows, count, args.fast_forward)), flush=True)


if __name__ == "__main__":
    main()
