"""Replay cost on CPU with random weights: one JSON line per measurement.

* MQ, full size (``configs/model/<preset>.yaml``: hidden 768, depth 8; D=256 EgoVLP or 1536 Omnivore): seconds per
  clip of ``--mq-nodes`` feature rows (900 = 8 min at 16/30 s per row) for the model forward and for decoding
  (candidates + soft-NMS), and the peak resident memory (RSS) of the process.
* AR, LTA, OSCC, PNR (depth-1 preset, the authors' single-task models): samples per second of the model forward on
  batches shaped like the benchmark's samples.

Usage: ``python benchmarks/replay.py [--quick] [--preset omnivore] [--threads N]``.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from egostream.backbone.graphs import VideoBatch  # noqa: E402
from egostream.config import load_config  # noqa: E402
from egostream.model import ModelBundle, ModelConfig  # noqa: E402
from egostream.tasks import TaskInputs  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "model"
ROW_S = 16 / 30


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def video_batch(num_videos: int, num_rows: int, dim: int, generator: torch.Generator) -> VideoBatch:
    features = [torch.randn(num_rows, dim, generator=generator) for _ in range(num_videos)]
    return VideoBatch.from_videos(features, [(0.5 + torch.arange(num_rows)) * ROW_S for _ in range(num_videos)])


def task_inputs(task: str, num_videos: int, num_rows: int) -> TaskInputs:
    """Per-video segments like the benchmark's: AR ~4 actions per clip, OSCC ~3 samples of 8 s."""
    per_video = {"ar": 4, "oscc": 3}.get(task, 0)
    span = num_rows * ROW_S
    starts = torch.linspace(0, span * 0.75, per_video) if per_video else torch.zeros(0)
    segments = torch.stack([starts, starts + span / max(per_video, 1) * 0.8], 1).repeat(num_videos, 1)
    return TaskInputs(segments=segments,
                      segment_video=torch.arange(num_videos).repeat_interleave(per_video),
                      duration=torch.full((num_videos,), 1024 * ROW_S))


def timed(function, repeats: int) -> float:
    function()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - start) / repeats


def bench_mq(preset: str, nodes: int, repeats: int) -> dict:
    config = replace(load_config(ModelConfig, CONFIGS / f"{preset}_depth8.yaml"), tasks=("mq",))
    bundle = config.build(seed=0)
    batch = video_batch(1, nodes, config.feature_dim, torch.Generator().manual_seed(0))
    inputs = task_inputs("mq", 1, nodes)
    rss_before = peak_rss_mib()
    with torch.no_grad():
        outputs = bundle.run("mq", batch, inputs)
        forward_s = timed(lambda: bundle.run("mq", batch, inputs), repeats)
        decode_s = timed(lambda: bundle.decode("mq", outputs, inputs), repeats)
    return {"benchmark": "replay_mq_clip", "preset": f"{preset}_depth8", "feature_dim": config.feature_dim,
            "hidden_size": config.hidden_size, "depth": config.depth, "nodes": nodes,
            "forward_s_per_clip": forward_s, "decode_s_per_clip": decode_s, "total_s_per_clip": forward_s + decode_s,
            "peak_rss_mib": peak_rss_mib(), "peak_rss_mib_before_model_run": rss_before}


def bench_task(bundle: ModelBundle, task: str, dim: int, batch_size: int, rows: int, repeats: int) -> dict:
    batch = video_batch(batch_size, rows, dim, torch.Generator().manual_seed(1))
    if task == "pnr":
        batch.pos = batch.indices * ROW_S
    inputs = task_inputs(task, batch_size, rows)
    with torch.no_grad():
        seconds = timed(lambda: bundle.run(task, batch, inputs), repeats)
    return {"benchmark": "replay_task_throughput", "task": task, "batch_size": batch_size, "rows_per_sample": rows,
            "samples_per_s": batch_size / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and a 300-node MQ clip")
    parser.add_argument("--preset", default="omnivore", choices=("omnivore", "egovlp"))
    parser.add_argument("--mq-nodes", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = 1 if args.quick else 3
    nodes = args.mq_nodes or (300 if args.quick else 900)
    machine = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
               "torch": torch.__version__}
    print(json.dumps({**bench_mq(args.preset, nodes, repeats), **machine}), flush=True)
    config = load_config(ModelConfig, CONFIGS / f"{args.preset}_depth1.yaml")
    bundle = config.build(seed=0)
    # rows per sample: AR clips ~5 min (~560 rows), LTA spans of 2 actions (~16 rows), OSCC ~40 s clips (~75 rows),
    # PNR 16 sampled rows; batch sizes: the authors' (4, LTA 64).
    for task, batch_size, rows in (("ar", 4, 560), ("lta", 64, 16), ("oscc", 4, 75), ("pnr", 4, 16)):
        print(json.dumps({**bench_task(bundle, task, config.feature_dim, batch_size, rows, repeats),
                          "preset": f"{args.preset}_depth1", **machine}), flush=True)


if __name__ == "__main__":
    main()
