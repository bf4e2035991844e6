"""Speed of the Omnivore and EgoVLP extractors at their real sizes (random weights): one JSON line per measurement.

Each line has ``extractor``, ``arch`` (EgoVLP ``vit_b16_224``: 4 frames at 224; Omnivore ``swin_b`` / ``swin_l``:
32 frames at 224), ``device``, ``dtype`` (``float32``, or ``bfloat16`` / ``float16`` autocast: reported on their own
lines, never mixed with float32), ``batch`` (windows per call), ``windows_per_s``, ``x_real_time`` (video seconds
per wall second: one window advances 16 frames = 16/30 s), ``ms_p50`` / ``ms_p95`` (wall-clock milliseconds per
call of ``encode``: the official preprocessing of uint8 frames [B, T, 270, 480, 3] already on the device, plus the
model; CUDA synchronised), ``peak_mem_mb`` (CUDA: peak allocated by torch; CPU: the process's peak resident set,
which includes every earlier measurement), ``repeats``, ``warmup`` and ``threads`` (torch's intra-op threads).

The last line (``"extractor": "targets"``) checks the GPU target: Omnivore Swin-L at least 10x real time on one
GPU (``null`` where no CUDA line ran). Usage: ``python benchmarks/extractors.py [--device cpu|cuda|auto]
[--arch NAME ...] [--batch B ...] [--dtype D ...] [--repeats R] [--warmup W]``; defaults: every arch, batch 1 and 2
on the CPU (1 and 8 on CUDA), float32 on the CPU (float32, bfloat16 and float16 on CUDA), 3 timed calls after one
warm-up. On a GPU: ``python benchmarks/extractors.py --device cuda``.
"""
from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Callable

import numpy as np
import torch

from egostream.backbone.extractors import EgoVLPExtractor, OmnivoreExtractor
from egostream.backbone.extractors.base import FeatureExtractor

ROW_SECONDS = 16 / 30
FRAME_SIZE = (270, 480)  # a 480p-wide frame, resized to short side 256 by both pipelines
BUILDERS: dict[str, tuple[str, int, Callable[..., FeatureExtractor]]] = {
    "vit_b16_224": ("egovlp", 4, lambda **kw: EgoVLPExtractor(arch="vit_b16_224", allow_random_weights=True, **kw)),
    "swin_b": ("omnivore", 32, lambda **kw: OmnivoreExtractor(arch="swin_b", allow_random_weights=True, **kw)),
    "swin_l": ("omnivore", 32, lambda **kw: OmnivoreExtractor(arch="swin_l", allow_random_weights=True, **kw)),
}
TARGET_X_REAL_TIME = 10.0


def _peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def measure(arch: str, device: torch.device, dtype: str, batch: int, repeats: int, warmup: int = 1
            ) -> dict[str, object]:
    """One JSON line: ``repeats`` timed ``encode`` calls of ``batch`` windows after ``warmup`` untimed ones."""
    extractor_name, frames, build = BUILDERS[arch]
    torch.manual_seed(0)
    extractor = build(device=str(device), precision=dtype, batch_size=batch)
    generator = np.random.default_rng(0)
    clips = torch.from_numpy(generator.integers(0, 256, (batch, frames, *FRAME_SIZE, 3), dtype=np.uint8)).to(device)

    def call() -> None:
        with torch.no_grad():
            extractor.encode(clips)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    p50, p95 = float(np.percentile(samples, 50)), float(np.percentile(samples, 95))
    windows_per_s = batch / (p50 / 1000)
    return {"extractor": extractor_name, "arch": arch, "device": device.type, "dtype": dtype, "batch": batch,
            "windows_per_s": round(windows_per_s, 4), "x_real_time": round(windows_per_s * ROW_SECONDS, 4),
            "ms_p50": round(p50, 2), "ms_p95": round(p95, 2), "peak_mem_mb": round(_peak_mb(device), 1),
            "repeats": repeats, "warmup": warmup, "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (CUDA when available)")
    parser.add_argument("--arch", action="append", choices=sorted(BUILDERS), help="default: every arch")
    parser.add_argument("--batch", action="append", type=int, help="windows per call (default: 1 and 2 / 8)")
    parser.add_argument("--dtype", action="append", choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls before the timed ones")
    args = parser.parse_args()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    cuda = device.type == "cuda"
    batches = args.batch or ([1, 8] if cuda else [1, 2])
    dtypes = args.dtype or (["float32", "bfloat16", "float16"] if cuda else ["float32"])
    swin_l_gpu: float | None = None
    for arch in args.arch or list(BUILDERS):
        for dtype in dtypes:
            for batch in batches:
                line = measure(arch, device, dtype, batch, args.repeats, args.warmup)
                print(json.dumps(line), flush=True)
                if cuda and arch == "swin_l" and dtype == "float32":
                    swin_l_gpu = max(swin_l_gpu or 0.0, float(line["x_real_time"]))  # type: ignore[arg-type]
    print(json.dumps({"extractor": "targets", "omnivore_swin_l_cuda_float32_x_real_time": swin_l_gpu,
                      "target": TARGET_X_REAL_TIME,
                      "met": None if swin_l_gpu is None else swin_l_gpu >= TARGET_X_REAL_TIME}), flush=True)


if __name__ == "__main__":
    main()
