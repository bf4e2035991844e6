"""Synthetic training benchmark: trained (single / multi / EgoPack / translation) vs untrained vs chance on held-out
videos.

Generates the benchmark's synthetic dataset (:data:`egostream.train.synthetic_benchmark.SYNTHETIC_DATA`), trains
the tiny single-task, multi-task, EgoPack and translation (EgoT2-s, on the frozen multi-task model; AR, LTA, OSCC,
PNR) models with the same seed (:mod:`egostream.train.synthetic_benchmark`), replays each on the
val videos and prints JSON: per task, the headline metrics of every model, of an untrained model of the same
architecture and of the class-prior (chance) submission, plus the seconds each stage took.

    python benchmarks/synthetic_training.py [--out DIR] [--seed N] [--threads N]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from egostream.ego4d.synthetic import generate_dataset  # noqa: E402
from egostream.model import TASK_NAMES  # noqa: E402
from egostream.train.synthetic_benchmark import (SYNTHETIC_DATA, TRANSLATION_TASKS,  # noqa: E402
                                                 build_shared_backpack, chance_metrics, headline, replay_metrics,
                                                 stage_recipe, train_stage, translation_recipe, untrained_bundle)


def run(out: Path, seed: int) -> dict[str, Any]:
    data = out / "data"
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    generate_dataset(data, SYNTHETIC_DATA)
    seconds["data"] = time.perf_counter() - started
    seed_override = [f"seed={seed}"]
    table: dict[str, dict[str, Any]] = {task: {} for task in TASK_NAMES}

    def record(model: str, metrics: dict[str, dict[str, Any]]) -> None:
        for task, values in metrics.items():
            table[task][model] = headline(task, values)

    record("chance", chance_metrics(data, out / "chance"))
    multi_recipe = stage_recipe("multi", TASK_NAMES, seed_override)
    record("untrained", replay_metrics(untrained_bundle(multi_recipe, seed), data, out / "untrained"))
    for task in TASK_NAMES:
        started = time.perf_counter()
        bundle = train_stage(stage_recipe("single", [task], seed_override), data, out / f"single_{task}")
        seconds[f"single_{task}"] = time.perf_counter() - started
        record("single", replay_metrics(bundle, data, out / f"single_{task}" / "replay"))
    started = time.perf_counter()
    multi = train_stage(multi_recipe, data, out / "multi")
    seconds["multi"] = time.perf_counter() - started
    record("multi", replay_metrics(multi, data, out / "multi" / "replay"))
    support = out / "multi" / "checkpoint.pt"
    started = time.perf_counter()
    backpack = build_shared_backpack(support, data, out / "backpack.pt")
    seconds["backpack"] = time.perf_counter() - started
    for task in TASK_NAMES:
        started = time.perf_counter()
        recipe = stage_recipe("egopack", [task], [*seed_override, f"egopack.support_checkpoint={support}",
                                                 f"egopack.backpack={backpack}"])
        bundle = train_stage(recipe, data, out / f"egopack_{task}")
        seconds[f"egopack_{task}"] = time.perf_counter() - started
        record("egopack", replay_metrics(bundle, data, out / f"egopack_{task}" / "replay"))
    for task in TRANSLATION_TASKS:
        started = time.perf_counter()
        bundle = train_stage(translation_recipe(task, support, seed_override), data, out / f"translation_{task}")
        seconds[f"translation_{task}"] = time.perf_counter() - started
        record("translation", replay_metrics(bundle, data, out / f"translation_{task}" / "replay"))
    return {"seed": seed, "threads": torch.get_num_threads(), "dataset": SYNTHETIC_DATA.__dict__, "tasks": table,
            "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--seed", type=int, default=1234567891, help="training seed of every recipe")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.out is not None:
        print(json.dumps(run(args.out, args.seed), indent=2))
        return
    with tempfile.TemporaryDirectory() as folder:
        print(json.dumps(run(Path(folder), args.seed), indent=2))


if __name__ == "__main__":
    main()
