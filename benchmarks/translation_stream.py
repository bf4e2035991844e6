"""Per-window cost of streaming task translation (EgoT2-s) against the stream length: one JSON line per stream length.

A multi-task source model (AR, LTA, OSCC, PNR heads on one backbone, random weights: cost does not depend on them)
and a translator of the AR preset (``configs/train/translation_ar.yaml``: d=128, 3 layers, 8 heads) run through
:class:`egostream.translation.streaming.StreamingTranslation`. The stream is fast-forwarded to ``stream_rows - timed``
rows in pushes of 64 rows (without translating), then ``timed`` single-row pushes each followed by one translated
window (AR over the trailing 4 s, with the attention report) are timed. Each line has ``stream_rows``,
``window_nodes``, ``window_ms_p50`` / ``window_ms_p95`` (the translation call only, not the push),
``tokens_built_per_window`` (mean tokens built instead of taken from the cache) and ``tokens_encoded`` (the encoder's
sequence length), plus the sizes and the thread count. Flat lines in ``stream_rows`` show that the per-window work
does not grow with the stream.

Usage: ``python benchmarks/translation_stream.py [--rows 1000 4000 16000] [--timed 50] [--threads N]``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from egostream.config import CONFIG_DIR, load_config  # noqa: E402
from egostream.model import ModelConfig  # noqa: E402
from egostream.stream import StreamConfig  # noqa: E402
from egostream.tasks import TaskInputs  # noqa: E402
from egostream.translation import FrozenSources, build_translation  # noqa: E402
from egostream.translation.streaming import StreamingTranslation  # noqa: E402
from egostream.train.recipe import load_recipe  # noqa: E402

SOURCE_TASKS = ("ar", "lta", "oscc", "pnr")


def measure(stream_rows: int, timed: int, depth: int, hidden: int) -> dict[str, object]:
    recipe = load_recipe("translation", ["ar"], CONFIG_DIR / "train" / "translation_ar.yaml")
    model = replace(load_config(ModelConfig, CONFIG_DIR / "model" / "egovlp_depth8.yaml"), depth=depth,
                    hidden_size=hidden, features_size=hidden, tasks=SOURCE_TASKS)
    sources = FrozenSources(model.build(seed=0), SOURCE_TASKS)
    torch.manual_seed(1)
    bundle = build_translation("ar", recipe.translation, model, sources=sources)
    config = StreamConfig()
    stream = StreamingTranslation(bundle, config)
    rows = torch.randn(stream_rows, model.feature_dim, generator=torch.Generator().manual_seed(2))
    while stream.num_rows < stream_rows - timed:
        stream.push(rows[stream.num_rows:min(stream.num_rows + 64, stream_rows - timed)])
    times, built, encoded = [], [], 0
    for row in range(stream_rows - timed, stream_rows):
        stream.push(rows[row])
        now = float(config.row_positions_s(row, 1)[0])
        inputs = TaskInputs(segments=torch.tensor([[now - 4.0, now]]), segment_video=torch.zeros(1, dtype=torch.long))
        began = time.perf_counter()
        window = stream.current(inputs)
        times.append((time.perf_counter() - began) * 1e3)
        built.append(stream.last_built)
        encoded = len(window.views.indices) * len(SOURCE_TASKS)
    return {"stream_rows": stream_rows, "window_nodes": stream.window_nodes, "depth": depth, "hidden": hidden,
            "d_model": recipe.translation.d_model, "layers": recipe.translation.num_layers,
            "window_ms_p50": round(float(np.percentile(times, 50)), 2),
            "window_ms_p95": round(float(np.percentile(times, 95)), 2),
            "tokens_built_per_window": float(np.mean(built)), "tokens_encoded": encoded,
            "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1000, 4000, 16000], help="stream lengths")
    parser.add_argument("--timed", type=int, default=50, help="timed windows per stream length")
    parser.add_argument("--depth", type=int, default=3, help="source backbone depth")
    parser.add_argument("--hidden", type=int, default=256, help="source backbone and neck width")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for stream_rows in args.rows:
        print(json.dumps(measure(stream_rows, args.timed, args.depth, args.hidden)), flush=True)


if __name__ == "__main__":
    main()
