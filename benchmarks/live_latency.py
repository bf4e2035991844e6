"""Glass-to-answer latency of ``egostream run`` on a live stream: one JSON line per case on stdout.

A paced loopback sender in its own process (``python -m tests.io.live_sender udp``: real H.264 in MPEG-TS, sent over
UDP to 127.0.0.1 at 30 fps in real time, a fraction ``--loss`` of the 188-byte TS packets dropped) feeds the stream
pipeline of ``egostream run`` (decode -> extract -> engine -> sink, in this process with ``--backend local`` or as Ray
actors), with the tiny pixel-projection extractor on the CPU, a tiny random model and the default stream settings
(a result every ``--emit-every-s`` = 2 s of stream, horizon 8 min).

Each line reports, for one frame size: glass-to-answer latency p50/p95/p99 (ms; the decoder's arrival of the frame
shown last in a window -> its result written at the sink, which includes the clock's one-frame wait for the next
frame), the pipeline's end-to-end latency (window ready -> result written), windows per second, windows dropped
(the live source's drop-oldest policy) and filled, the source's damage and timestamp counters (``corrupt_frames``,
``skipped_frames``, ``skipped_packets``, ``discontinuities``, ...), the frames sent and TS packets the sender dropped,
and the wall time. The sender loops a ``--clip-s`` clip with continuous timestamps for ``--seconds`` seconds.

Usage: ``python benchmarks/live_latency.py [--seconds 20] [--sizes 640x360,1920x1080] [--loss 0.01]
[--backend local|ray]``; the 10-minute stream with 1 % loss of the README is ``--seconds 600 --loss 0.01
--sizes 640x360``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private, throw-away local instance

from egostream.actors.perception import (EmitterEngineFactory, ExtractorSpec, VideoWindows,  # noqa: E402
                                         annotate_latency)
from egostream.actors.pipeline import PipelineConfig, StreamPipeline  # noqa: E402
from egostream.config import CONFIG_DIR, load_config  # noqa: E402
from egostream.io.sinks import ResultFileFactory  # noqa: E402
from egostream.model import ModelConfig  # noqa: E402
from egostream.stream.config import StreamConfig  # noqa: E402
from tests.io.video_factory import free_udp_port  # noqa: E402

START_S = 5.0  # the sender starts once the stages are up and the source listens


def _case(size: tuple[int, int], args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    height, width = size
    checkpoint = load_config(ModelConfig, CONFIG_DIR / "model" / "tiny.yaml", ["feature_dim=32"]).build(
        seed=0).save(directory / "tiny.pt")
    port = free_udp_port()
    options = (("max_retries", "0"), ("open_timeout_s", "300"))  # the sender encodes its clip first
    name = f"{width}x{height}"
    pipeline = StreamPipeline.from_factories(
        VideoWindows(f"udp://127.0.0.1:{port}", source_options=options),
        ExtractorSpec("pixel_projection", {"dim": 32, "device": "cpu"}),
        EmitterEngineFactory(str(checkpoint), name, StreamConfig(emit_every_s=args.emit_every_s)),
        ResultFileFactory(str(directory / f"{name}.msgpack")), live=True, annotate=annotate_latency,
        backend=args.backend, config=PipelineConfig(), name=name)
    sender = subprocess.Popen(
        [sys.executable, "-m", "tests.io.live_sender", "udp", str(port), "--frames", str(round(args.seconds * 30)),
         "--size", f"{width}x{height}", "--loss", str(args.loss), "--delay-s", str(START_S), "--clip-s",
         str(args.clip_s), "--crf", str(args.crf)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    began = time.monotonic()
    report = pipeline.run().as_dict()
    sent = json.loads(sender.communicate(timeout=120)[0].strip().splitlines()[-1])
    latency = report["latency_ms"]
    return {"case": name, "stream_s": args.seconds, "loss": args.loss, "backend": args.backend,
            "extractor": "pixel_projection", "glass_to_answer_ms": latency["glass_to_answer"],
            "end_to_end_ms": latency["end_to_end"],
            "stage_p50_ms": {stage: latency[stage]["p50_ms"] for stage in ("decode", "extract", "engine", "sink")},
            "windows": report["rows"], "results": report["results"],
            "windows_per_s": report["fps"], "dropped": report["dropped"], "filled": report["filled"],
            "source": report["source"], "sender_dropped_ts_packets": sent["dropped_ts_packets"],
            "frames_sent": sent["frames_sent"], "wall_s": round(time.monotonic() - began, 1),
            "machine": f"{platform.machine()} {os.cpu_count()} CPUs"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="stream length per case (default 20 s)")
    parser.add_argument("--sizes", default="640x360,1920x1080", help="WIDTHxHEIGHT list (default 640x360,1920x1080)")
    parser.add_argument("--loss", type=float, default=0.0, help="fraction of TS packets dropped (e.g. 0.01)")
    parser.add_argument("--clip-s", type=float, default=4.0, help="length of the clip the sender loops (s)")
    parser.add_argument("--crf", type=int, default=23, help="x264 constant quality of the clip")
    parser.add_argument("--emit-every-s", type=float, default=2.0, help="a result every this many stream s")
    parser.add_argument("--backend", choices=("local", "ray"), default="local")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="egostream-live-bench-") as scratch:
        for text in args.sizes.split(","):
            width, height = (int(part) for part in text.lower().split("x"))
            print(json.dumps(_case((height, width), args, Path(scratch))), flush=True)


if __name__ == "__main__":
    main()
