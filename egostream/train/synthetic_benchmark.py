"""The CI-sized synthetic training benchmark: do the training stages learn what the synthetic data plants?

On one synthetic dataset (:data:`SYNTHETIC_DATA`, :func:`egostream.ego4d.synthetic.generate_dataset`) it trains, with
the tiny recipes of ``configs/train/tiny_*.yaml``:

* ``single``: one single-task model per task (``tiny_single.yaml`` plus :data:`TASK_OVERRIDES`);
* ``multi``: one multi-task model of the five tasks (``tiny_multi.yaml``);
* ``egopack``: one EgoPack model per task on the multi-task model (``tiny_egopack.yaml``: the support backbone
  frozen at the support's depth, so the five EgoPack heads share one backbone; one backpack built once; plus
  :data:`TASK_OVERRIDES`);
* ``translation``: one task translator (EgoT2-s) per task of :data:`TRANSLATION_TASKS` on the frozen multi-task
  model's task views (``tiny_translation.yaml`` plus :data:`TASK_OVERRIDES`).

Every model is scored by :func:`egostream.replay.replay` on the held-out ``val`` videos and compared with two
references on the same files: ``chance``, the class-prior submission of
:func:`egostream.ego4d.baselines.write_prior_submission` with the priors of the val annotations themselves (the
majority class of the held-out videos, the best constant guess: a stricter chance level than the train priors), and
``untrained``,
the same architecture with fresh random weights. :data:`HEADLINE_METRICS` names the metrics compared per task and
whether higher is better. ``benchmarks/synthetic_training.py`` prints the whole table as JSON.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import torch

from egostream.ego4d.baselines import write_prior_submission
from egostream.ego4d.evaluation import EVALUATORS, evaluate_files
from egostream.ego4d.layout import Ego4dLayout
from egostream.ego4d.synthetic import SynthConfig
from egostream.model import TASK_NAMES, ModelBundle
from egostream.replay import annotation_path, replay
from egostream.translation import PRIMARY_TASKS, TranslationBundle, build_translation
from egostream.train.data import TrainingData
from egostream.train.loop import train
from egostream.train.prototypes import backpack_from_checkpoint
from egostream.train.recipe import TRAIN_CONFIG_DIR, Stage, TrainConfig, load_recipe

__all__ = ["SYNTHETIC_DATA", "HEADLINE_METRICS", "PROTOCOL", "TASK_OVERRIDES", "Headline", "stage_recipe",
           "annotation_files", "chance_metrics", "replay_metrics", "untrained_bundle", "train_stage",
           "build_shared_backpack", "headline", "TRANSLATION_TASKS", "translation_recipe", "untrained_translation"]

#: The benchmark's dataset: 16 videos (12 train, 4 val); a grammar of 6 two-step recipes that rarely switch, so
#: the next 20 actions follow from the observed ones (LTA), 8 state-change samples per video (OSCC/PNR).
SYNTHETIC_DATA = SynthConfig(videos=16, seed=0, train_fraction=0.75, min_video_sec=120.0, max_video_sec=180.0,
                             num_recipes=6, recipe_length=2, recipe_switch_probability=0.03,
                             state_change_samples_per_video=8, moments_per_video=6)

#: Sample and metric protocol of every run and score.
PROTOCOL = "hier-egopack"

#: The tasks a translator is trained for (MQ is not a translation primary task).
TRANSLATION_TASKS: tuple[str, ...] = PRIMARY_TASKS

#: Per-task overrides of the single-task, EgoPack and translation recipes: LTA has a window per action (many
#: samples), so it takes bigger batches.
TASK_OVERRIDES: dict[str, tuple[str, ...]] = {"lta": ("batch_size=8",)}


@dataclass(frozen=True)
class Headline:
    """One compared metric: its key in the task's metrics and whether a higher value is better."""

    metric: str
    higher_is_better: bool


#: Per task, the metrics a trained model must improve over chance (chance: the class prior).
HEADLINE_METRICS: dict[str, tuple[Headline, ...]] = {
    "ar": (Headline("verb_top1_pct", True), Headline("noun_top1_pct", True)),
    "lta": (Headline("verb_ed", False), Headline("noun_ed", False)),
    "oscc": (Headline("accuracy_pct", True),),
    "pnr": (Headline("mean_error_s", False),),
    "mq": (Headline("average_mAP", True),),
}


def stage_recipe(stage: Stage, tasks: Sequence[str], overrides: Sequence[str] = ()) -> TrainConfig:
    """The tiny recipe of ``stage`` (``configs/train/tiny_<stage>.yaml``) for ``tasks``, plus ``overrides``."""
    extra = TASK_OVERRIDES.get(tasks[0], ()) if stage != "multi" else ()
    return load_recipe(stage, tasks, TRAIN_CONFIG_DIR / f"tiny_{stage}.yaml", [*extra, *overrides])


def translation_recipe(task: str, support_checkpoint: str | PathLike[str],
                       overrides: Sequence[str] = ()) -> TrainConfig:
    """The tiny translation recipe of ``task`` on the frozen sources of ``support_checkpoint``."""
    return stage_recipe("translation", [task], [f"translation.sources=[{support_checkpoint}]", *overrides])


def untrained_translation(recipe: TrainConfig, seed: int = 0) -> TranslationBundle:
    """The translator of ``recipe`` with fresh random weights (seeded) on its trained, frozen sources."""
    torch.manual_seed(seed)
    return build_translation(recipe.tasks[0], recipe.translation, recipe.model)


def annotation_files(data_root: str | PathLike[str], task: str, split: str) -> Path:
    """The annotation file of ``task`` in ``split`` (what replay and the prior are scored against)."""
    return annotation_path(Ego4dLayout.from_root(data_root), task, split)


def chance_metrics(data_root: str | PathLike[str], out_dir: str | PathLike[str],
                   tasks: Sequence[str] = TASK_NAMES) -> dict[str, dict[str, Any]]:
    """Val metrics of the class-prior submission of each task, priors from the val annotations themselves."""
    out = Path(out_dir)
    results = {}
    for task in tasks:
        annotations = annotation_files(data_root, task, "val")
        submission = write_prior_submission(task, annotations, out / f"prior_{task}.json", protocol=PROTOCOL)
        labels_file = EVALUATORS.get(task).labels_file
        labels = labels_file(Ego4dLayout.from_root(data_root)) if labels_file is not None else None
        results[task] = evaluate_files(task, PROTOCOL, annotations, submission, labels=labels)
    return results


def replay_metrics(bundle: ModelBundle | TranslationBundle, data_root: str | PathLike[str],
                   out_dir: str | PathLike[str], feature_name: str = SYNTHETIC_DATA.feature_name) -> dict[str, dict[str, Any]]:
    """Val metrics of every task of ``bundle`` through :func:`egostream.replay.replay` (submissions in ``out_dir``)."""
    return replay("all", PROTOCOL, data_root, "val", {}, out_dir, features=feature_name,
                  force=True, progress=False, bundle=bundle)  # type: ignore[arg-type]


def untrained_bundle(recipe: TrainConfig, seed: int = 0) -> ModelBundle:
    """The architecture of ``recipe``'s model with fresh random weights (seeded)."""
    return recipe.model_for_tasks.build(seed=seed)


def train_stage(recipe: TrainConfig, data_root: str | PathLike[str],
                out_dir: str | PathLike[str]) -> ModelBundle | TranslationBundle:
    """Train ``recipe`` on ``data_root`` (checkpoint in ``out_dir``) and return the trained bundle (eval mode)."""
    return train(recipe, data_root, out_dir).bundle


def build_shared_backpack(support_checkpoint: str | PathLike[str], data_root: str | PathLike[str],
                          out_path: str | PathLike[str]) -> Path:
    """Build the backpack of ``support_checkpoint`` once from the AR train split and save it to ``out_path``."""
    recipe = stage_recipe("egopack", ["ar"], [f"egopack.support_checkpoint={support_checkpoint}"])
    data = TrainingData(data_root, recipe, tasks=["ar"])
    backpack = backpack_from_checkpoint(support_checkpoint, data.prototype_loader(recipe.egopack.prototype_batch_size),
                                        recipe.model.num_verbs, recipe.model.num_nouns)
    path = Path(out_path)
    backpack.save(path)
    return path


def headline(task: str, metrics: Mapping[str, Any]) -> dict[str, float]:
    """The headline metrics of ``task`` picked out of its full metrics."""
    return {item.metric: float(metrics[item.metric]) for item in HEADLINE_METRICS[task]}

