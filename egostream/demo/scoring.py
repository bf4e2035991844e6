"""Step 5 of ``egostream demo``: replay of the val split next to chance, and the streamed windows against the truth."""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from rich.console import Console

from egostream.demo.config import HEADLINE_METRICS, DemoConfig, DemoPaths
from egostream.demo.streaming import truth_actions, window_truth
from egostream.ego4d.annotations import read_lta_annotations
from egostream.ego4d.layout import Ego4dLayout
from egostream.io.atomic import write_json_atomic

__all__ = ["evaluate"]


def _chance_metrics(cfg: DemoConfig, paths: DemoPaths) -> dict[str, Any]:
    """Every task's metrics of the class-prior predictor (train-split frequencies) on the val split."""
    from egostream.ego4d.baselines import write_prior_submission
    from egostream.ego4d.evaluation import EVALUATORS, evaluate_files
    from egostream.replay import annotation_path

    layout = Ego4dLayout(paths.data)
    metrics = {}
    for task in cfg.train.tasks:
        annotations = annotation_path(layout, task, "val")
        submission = write_prior_submission(task, annotations, paths.chance / f"{task}.json",
                                            prior=annotation_path(layout, task, "train"), seed=cfg.synth.seed,
                                            protocol=cfg.protocol)
        labels_file = EVALUATORS.get(task).labels_file
        metrics[task] = evaluate_files(task, cfg.protocol, annotations, submission,
                                       labels=labels_file(layout) if labels_file is not None else None)
    write_json_atomic(paths.chance / "metrics.json", metrics, indent=2)
    return metrics


def _streaming_check(cfg: DemoConfig, paths: DemoPaths, stream: Mapping[str, Any]) -> dict[str, Any]:
    """Per-window AR accuracy of the streamed windows against the ground-truth action overlapping each window's AR
    span the most (windows with no action there are left out), next to the majority class of the train split."""
    from egostream.io.sinks import read_results

    read = read_results(stream["results_file"])
    truth = truth_actions(paths, stream["video_uid"])
    train_actions = read_lta_annotations(Ego4dLayout(paths.data).lta_annotations("train")).actions
    majority_verb = Counter(int(a.verb_label or 0) for a in train_actions).most_common(1)[0][0]
    majority_noun = Counter(int(a.noun_label or 0) for a in train_actions).most_common(1)[0][0]
    hits = Counter[str]()
    windows = 0
    for result in read.results:
        if result.ar is None:
            continue
        actual = window_truth(truth, result.ar.span.start_s, result.ar.span.end_s)
        if actual is None:
            continue
        windows += 1
        hits["verb"] += result.ar.verbs[0].id == actual.verb
        hits["noun"] += result.ar.nouns[0].id == actual.noun
        hits["majority_verb"] += majority_verb == actual.verb
        hits["majority_noun"] += majority_noun == actual.noun
    share = {key: 100.0 * hits[key] / windows if windows else 0.0
             for key in ("verb", "noun", "majority_verb", "majority_noun")}
    return {"windows": len(read.results), "windows_with_action": windows, "truncated": not read.report.ok,
            "verb_top1_pct": share["verb"], "noun_top1_pct": share["noun"],
            "chance_verb_top1_pct": share["majority_verb"], "chance_noun_top1_pct": share["majority_noun"]}


def evaluate(cfg: DemoConfig, paths: DemoPaths, console: Console, stream: Mapping[str, Any],
             device: str = "cpu") -> dict[str, Any]:
    """Step 5: replay the val split with the trained model (on ``device``), the chance level of every task, and the
    streaming check; writes ``OUT/metrics.json``."""
    from egostream.replay import replay

    with console.status("replaying the val split with the trained model (AR, LTA, OSCC, PNR, MQ)"):
        trained = replay("all", cfg.protocol, paths.data, "val", paths.checkpoint, paths.replay,
                         features=cfg.feature_name, progress=False, device=device)
    chance = _chance_metrics(cfg, paths)
    summary = {"protocol": cfg.protocol, "tasks": _headlines(trained, chance),
               "streaming": _streaming_check(cfg, paths, stream)}
    write_json_atomic(paths.metrics, summary, indent=2)
    return summary


def _headlines(trained: Mapping[str, Any], chance: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per headline metric: the trained model's value, the chance level's, and whether it is better."""
    rows = []
    for task, label, key, higher in HEADLINE_METRICS:
        value, baseline = float(trained[task][key]), float(chance[task][key])
        rows.append({"task": task, "metric": label, "trained": value, "chance": baseline,
                     "higher_is_better": higher, "beats_chance": value > baseline if higher else value < baseline})
    return rows
