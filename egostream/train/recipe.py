"""The training recipe: typed, frozen settings of one training run, loaded from ``configs/train/*.yaml``.

Defaults are the authors' (sapeirone/hier-egopack@4fff4e5:configs/experiments/defaults.yaml and the ``_base_.yaml`` of
single_tasks/, multi_tasks/, egopack/): seed 1234567891, 15 epochs, batch size 4, Adam lr 1e-4 with weight decay 1e-5,
5 warmup epochs from 0.001x, cosine to ``lr_min`` 1e-8, gradient clipping at norm 1.0, dropout 0.1, EgoPack with
one interaction stage of two SAGE layers, hidden 256, k = 8. The per-task files of configs/train/ carry the
experiments' overrides (batch sizes, learning rates, weight decay, depths). Every field can be overridden on the
command line as ``key=value`` (``optimizer.lr=5e-5``, ``model.depth=1``).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from os import PathLike
from pathlib import Path
from typing import Literal

from egostream.config import CONFIG_DIR, load_config
from egostream.errors import InputError
from egostream.model import ModelConfig
from egostream.tasks.base import task_names
from egostream.train.optim import OptimizerConfig
from egostream.translation.config import TranslationConfig

__all__ = ["EgoPackConfig", "TrainConfig", "Stage", "load_recipe", "default_recipe_path", "TRAIN_CONFIG_DIR"]

Stage = Literal["single", "multi", "egopack", "translation"]

#: The folder of the recipe files of a source checkout.
TRAIN_CONFIG_DIR = CONFIG_DIR / "train"


@dataclass(frozen=True)
class EgoPackConfig:
    """The EgoPack stage (configs/experiments/egopack/_base_.yaml ``egopack``, train_egopack.py).

    Attributes:
        support_checkpoint: the multi-task checkpoint whose backbone and task necks are the support model
            (required by the EgoPack stage; the authors' ``resume_from``).
        backpack: a prebuilt backpack file (``egostream backpack build``); ``None`` builds the prototypes from the
            AR train split first, as the authors do.
        depth: interaction stages per support task.
        hidden_size: SAGE width of the interaction stages.
        k: prototypes matched per query.
        conv_depth: SAGE layers per stage.
        dropout: dropout on each stage's input.
        prototype_batch_size: AR samples per batch while building prototypes (the authors' 8).
    """

    support_checkpoint: Path | None = None
    backpack: Path | None = None
    depth: int = 1
    hidden_size: int = 256
    k: int = 8
    conv_depth: int = 2
    dropout: float = 0.0
    prototype_batch_size: int = 8


@dataclass(frozen=True)
class TrainConfig:
    """One training run.

    Attributes:
        stage: ``single`` (train_single_task.py), ``multi`` (train_multi_task.py), ``egopack`` (train_egopack.py)
            or ``translation`` (EgoT2-s, :mod:`egostream.translation`).
        tasks: short task names; one for ``single``, ``egopack`` (the novel task) and ``translation`` (the primary
            task), several for ``multi``.
        seed: seeds the weights, the batch order, dropout and the LTA validation draws.
        num_epochs: epochs; an epoch is ``len(loader)`` optimizer steps (multi-task: of the longest loader).
        batch_size: training samples per batch (multi-task: of the smallest dataset, see :func:`multi_task_batch_sizes`).
        val_batch_size: validation samples per batch (``None``: ``batch_size``; MQ always 1, as the authors).
        lr_warmup: linear warmup before the cosine.
        lr_warmup_epochs: warmup length in epochs.
        lr_warmup_start_factor: learning-rate factor at the first warmup step.
        lr_min: the cosine's final learning rate (the multi-task recipe uses 0, as the authors' script).
        authors_lr_timing: run the schedule two steps late as the authors' loop does (see
            :mod:`egostream.train.schedule`).
        optimizer: Adam settings.
        gradient_clip: max gradient norm over all trained parameters (<= 0 disables clipping).
        train_backbone: train the backbone (the authors' ``train_temporal_model``). ``False`` in the EgoPack stage
            keeps the support model's backbone unchanged (and in eval mode), so EgoPack heads of every task can share
            one backbone in the streaming engine.
        train_support_necks: train the support tasks' necks in the EgoPack stage (``train_projections``).
        egopack: the EgoPack stage's settings.
        translation: the ``translation`` stage's settings (sources, translator sizes; EgoT2-s).
        model: the model preset (feature set, sizes, depth); its ``tasks`` are replaced by the stage's tasks.
        protocol: sample and metric protocol (``hier-egopack``: the authors'; ``official``).
        eval_every_epochs: validate every that many epochs (0: only after the last epoch, as the authors'
            ``eval_interval: -1``); the last epoch is always validated.
        progress: show tqdm progress bars.
    """

    stage: Stage = "single"
    tasks: tuple[str, ...] = ("ar",)
    seed: int = 1234567891
    num_epochs: int = 15
    batch_size: int = 4
    val_batch_size: int | None = None
    lr_warmup: bool = True
    lr_warmup_epochs: int = 5
    lr_warmup_start_factor: float = 0.001
    lr_min: float = 1e-8
    authors_lr_timing: bool = False
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    gradient_clip: float = 1.0
    train_backbone: bool = True
    train_support_necks: bool = True
    egopack: EgoPackConfig = field(default_factory=EgoPackConfig)
    translation: TranslationConfig = field(default_factory=TranslationConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    protocol: Literal["hier-egopack", "official"] = "hier-egopack"
    eval_every_epochs: int = 1
    progress: bool = True

    def __post_init__(self) -> None:
        unknown = [task for task in self.tasks if task not in task_names()]
        if unknown or not self.tasks:
            raise InputError(None, "tasks", f"unknown or no tasks {unknown or list(self.tasks)}; "
                                            f"known: {', '.join(task_names())}")
        if len(set(self.tasks)) != len(self.tasks):
            raise InputError(None, "tasks", f"a task is listed twice: {list(self.tasks)}")
        if self.stage in ("single", "egopack", "translation") and len(self.tasks) != 1:
            raise InputError(None, "tasks", f"the {self.stage} stage trains one task, got {list(self.tasks)}")
        if self.num_epochs < 1:
            raise InputError(None, "num_epochs", f"must be >= 1, got {self.num_epochs}")
        if self.lr_warmup and not 0 <= self.lr_warmup_epochs < self.num_epochs:
            raise InputError(None, "lr_warmup_epochs", f"{self.lr_warmup_epochs} warmup epochs must be fewer than "
                                                       f"num_epochs={self.num_epochs}")
        if self.eval_every_epochs < 0:
            raise InputError(None, "eval_every_epochs", f"must be >= 0, got {self.eval_every_epochs}")

    @property
    def model_for_tasks(self) -> ModelConfig:
        """:attr:`model` with its ``tasks`` set to the stage's tasks."""
        return replace(self.model, tasks=self.tasks)


def default_recipe_path(stage: Stage, tasks: Sequence[str]) -> Path:
    """The recipe file of a stage: ``single_<task>.yaml``, ``multi_task.yaml``, ``egopack_<task>.yaml`` or
    ``translation_<task>.yaml``."""
    if stage == "multi":
        return TRAIN_CONFIG_DIR / "multi_task.yaml"
    return TRAIN_CONFIG_DIR / f"{stage}_{tasks[0]}.yaml"


def load_recipe(stage: Stage, tasks: Sequence[str], path: str | PathLike[str] | None = None,
                overrides: Sequence[str] = ()) -> TrainConfig:
    """The recipe of ``stage`` for ``tasks``: ``path`` (default :func:`default_recipe_path`), then ``overrides``.

    ``stage`` and ``tasks`` come from the command line and win over the file's.
    """
    if not tasks:
        raise InputError(None, "tasks", "give at least one --task")
    source = Path(path) if path is not None else default_recipe_path(stage, tasks)
    return load_config(TrainConfig, source, [*overrides, f"stage={stage}", f"tasks=[{','.join(tasks)}]"])
