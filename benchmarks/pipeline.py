"""Throughput and latency of the full stream pipeline (decode → extract → engine → sink): one JSON object on stdout.

A synthetic H.264 video (PyAV, ``--seconds`` long at 30 fps, ``--size`` pixels) is streamed through the stage
actors into a msgpack result file, with a tiny random model (``configs/model/tiny.yaml``, its width set to the
extractor's). Each case reports ``x_real_time`` (video seconds per wall-clock second; the clock starts when the
stages are up and the stream starts, so actor start-up and model loading are excluded), windows per second, and p50/p95/p99 milliseconds per
stage (``decode``, ``extract``, ``engine``, ``sink``) and end to end (a window's receive to its result written).

Cases:

* ``tiny-cpu``: the pixel-projection extractor (D = 32) on the CPU.
* ``open_clip-ViT-B-16-cuda``: open_clip ViT-B/16 with random weights (D = 512, 4 frames per window) and the engine
  on the GPU (each actor requests half of it under Ray); reported as skipped (with the reason) when no CUDA device is present.

Usage: ``python benchmarks/pipeline.py [--seconds 60] [--backend ray|local] [--quick]``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private, throw-away local instance

from egostream.actors.perception import (EmitterEngineFactory, ExtractorSpec, VideoWindows,  # noqa: E402
                                         annotate_latency)
from egostream.actors.pipeline import PipelineConfig, StreamPipeline  # noqa: E402
from egostream.config import CONFIG_DIR, load_config  # noqa: E402
from egostream.io.sinks import ResultFileFactory  # noqa: E402
from egostream.io.synthetic_video import render_video  # noqa: E402
from egostream.model import ModelConfig  # noqa: E402
from egostream.stream.config import StreamConfig  # noqa: E402


def _tiny_model(directory: Path, feature_dim: int) -> Path:
    config = load_config(ModelConfig, CONFIG_DIR / "model" / "tiny.yaml", [f"feature_dim={feature_dim}"])
    return config.build(seed=0).save(directory / f"tiny_d{feature_dim}.pt")


def _case(name: str, video: Path, seconds: float, extractor: ExtractorSpec, dim: int, directory: Path,
          backend: str, actor_options: dict[str, dict[str, Any]] | None, device: str = "cpu") -> dict[str, Any]:
    checkpoint = _tiny_model(directory, dim)
    pipeline = StreamPipeline.from_factories(
        VideoWindows(str(video)), extractor, EmitterEngineFactory(str(checkpoint), name, StreamConfig(),
                                                                  device=device),
        ResultFileFactory(str(directory / f"{name}.msgpack")), annotate=annotate_latency, backend=backend,
        config=PipelineConfig(queue_size=16, batch_size=8), name=name, actor_options=actor_options)
    report = pipeline.run().as_dict()
    return {"case": name, "video_s": seconds, "extractor": extractor.name, "feature_dim": dim, "device": device,
            "x_real_time": report["x_real_time"], "windows_per_s": report["fps"], "windows": report["rows"],
            "results": report["results"], "dropped": report["dropped"], "wall_s": report["wall_s"],
            "latency_ms": report["latency_ms"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the synthetic video")
    parser.add_argument("--size", type=int, nargs=2, default=(224, 224), metavar=("H", "W"))
    parser.add_argument("--backend", choices=("ray", "local"), default="ray")
    parser.add_argument("--quick", action="store_true", help="a 10 s video")
    args = parser.parse_args()
    seconds = 10.0 if args.quick else args.seconds
    cuda = torch.cuda.is_available()
    output: dict[str, Any] = {
        "benchmark": "pipeline", "backend": args.backend, "python": platform.python_version(),
        "torch": torch.__version__, "cpu_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if cuda else None, "cases": []}
    if args.backend == "ray":
        from egostream.actors.ray_stages import connect

        connect(None, object_store_memory=200 * 1024 * 1024)
    with tempfile.TemporaryDirectory(prefix="egostream-bench-") as scratch:
        directory = Path(scratch)
        video = directory / "bench.mp4"
        frames = int(round(seconds * 30))
        began = time.monotonic()
        render_video(video, [(frame // 60) % 6 for frame in range(frames)], 30.0, num_classes=6,
                     size=tuple(args.size))
        output["video_render_s"] = round(time.monotonic() - began, 3)
        output["cases"].append(_case("tiny-cpu", video, seconds,
                                     ExtractorSpec("pixel_projection", {"dim": 32, "device": "cpu"}), 32,
                                     directory, args.backend, None))
        if cuda:
            clip = ExtractorSpec("open_clip", {"model_name": "ViT-B-16", "allow_random_weights": True,
                                               "device": "cuda", "frames_per_window": 4, "batch_size": 32})
            shares = {"extract": {"num_gpus": 0.5}, "engine": {"num_gpus": 0.5}}
            output["cases"].append(_case("open_clip-ViT-B-16-cuda", video, seconds, clip, 512, directory,
                                         args.backend, shares if args.backend == "ray" else None, device="cuda"))
        else:
            output["cases"].append({"case": "open_clip-ViT-B-16-cuda", "skipped": "no CUDA device on this machine"})
    json.dump(output, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
