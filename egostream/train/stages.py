"""The model each training stage trains, and which of its parts the optimizer updates.

* ``single`` (sapeirone/hier-egopack@4fff4e5:train_single_task.py): one task head on a fresh backbone; the backbone
  trains unless ``train_backbone`` is false (the authors' ``train_temporal_model``).
* ``multi`` (train_multi_task.py): every task's head on one shared fresh backbone, all trained.
* ``egopack`` (train_egopack.py): the support checkpoint's backbone (cut to the recipe's depth, as the authors'
  non-strict load of a deeper support model) and every support task's neck; the prototypes built from the AR train
  split with them (or loaded from ``egopack.backpack``) and frozen; a FRESH novel-task head with its
  :class:`~egostream.crosstask.EgoPackHead`. Trained: the head, the interaction stages, the support necks (unless
  ``train_support_necks`` is false) and the backbone (unless ``train_backbone`` is false: then the backbone keeps
  the support model's weights and runs in eval mode, so the five EgoPack heads can share that one backbone).
* ``translation`` (EgoT2-s, :mod:`egostream.translation`): the frozen source models of ``translation.sources``; a
  FRESH translator and primary-task head, both trained on the primary task's loss only.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from egostream.backpack import Backpack, EgoPackInteraction, file_sha256
from egostream.checkpoint import load_checkpoint
from egostream.errors import InputError
from egostream.crosstask import EgoPackHead
from egostream.model import ModelBundle, TaskModel
from egostream.tasks import task_class
from egostream.train.data import TrainingData
from egostream.train.prototypes import build_backpack, support_backbone, support_necks
from egostream.train.recipe import TrainConfig
from egostream.translation.bundle import TranslationBundle, build_translation

__all__ = ["StageModel", "build_stage_model"]


@dataclass
class StageModel:
    """The bundle a stage trains; ``trained`` go to the optimizer, ``frozen`` stay in eval mode while training."""

    bundle: ModelBundle | TranslationBundle
    trained: list[nn.Module]
    frozen: list[nn.Module] = field(default_factory=list)
    backpack: Backpack | None = None

    def train_mode(self) -> None:
        """Training mode for the bundle, eval mode for the frozen modules."""
        self.bundle.train()
        for module in self.frozen:
            module.eval()


def _freeze(module: nn.Module) -> nn.Module:
    module.requires_grad_(False)
    return module.eval()


def _fresh_model(recipe: TrainConfig) -> StageModel:
    bundle = recipe.model_for_tasks.build()
    backbone = bundle.backbones[0]
    trained: list[nn.Module] = [bundle.head(task) for task in bundle.tasks]
    if recipe.train_backbone:
        return StageModel(bundle, [backbone, *trained])
    return StageModel(bundle, trained, [_freeze(backbone)])


def _egopack_model(recipe: TrainConfig, data: TrainingData) -> StageModel:
    settings = recipe.egopack
    if settings.support_checkpoint is None:
        raise InputError(None, "egopack.support_checkpoint", "the EgoPack stage needs the multi-task support "
                                                             "checkpoint (egopack.support_checkpoint=PATH)")
    loaded = load_checkpoint(settings.support_checkpoint)
    backbone = support_backbone(loaded, depth=recipe.model.depth, dropout=recipe.model.dropout)
    necks = support_necks(loaded)
    if settings.backpack is not None:
        backpack = Backpack.load(settings.backpack)
    else:
        backpack = build_backpack(backbone, necks, data.prototype_loader(settings.prototype_batch_size),
                                  recipe.model.num_verbs, recipe.model.num_nouns,
                                  source_checkpoint_sha256=file_sha256(settings.support_checkpoint),
                                  progress=recipe.progress)
    backpack.require(necks, next(iter(necks.values())).features_size)
    task = recipe.tasks[0]
    node = recipe.model.task_node(task)
    head = task_class(task).from_authors_config(node)
    interaction = EgoPackInteraction(backpack.prototypes, backpack.feature_size, hidden_size=settings.hidden_size,
                                     k=settings.k, depth=settings.depth, conv_depth=settings.conv_depth,
                                     dropout=settings.dropout)
    egopack = EgoPackHead(interaction, necks, EgoPackHead.task_fusion_rule(task, {}),
                          {"k": settings.k, "dropout": settings.dropout, "conv": "sage", "distance_func": "cosine"})
    bundle = ModelBundle({task: TaskModel(backbone, head, node, egopack)})
    trained: list[nn.Module] = [head, interaction]
    frozen: list[nn.Module] = []
    for module, trainable in ((egopack.support_necks, recipe.train_support_necks), (backbone, recipe.train_backbone)):
        if trainable:
            trained.append(module)
        else:
            frozen.append(_freeze(module))
    return StageModel(bundle, trained, frozen, backpack)


def _translation_model(recipe: TrainConfig) -> StageModel:
    # EgoT2-s (facebookresearch/EgoT2@686c305:HOI/models/pnr/video_model_transfer_3task.py TaskFusion3Task with the
    # recipes' PRETRAIN.*_FT: True): the task-specific sources in eval mode with frozen parameters; only the
    # translator and the primary head train, on the primary task's loss.
    bundle = build_translation(recipe.tasks[0], recipe.translation, recipe.model)
    return StageModel(bundle, [bundle.translator, bundle.primary_head], [bundle.sources])


def build_stage_model(recipe: TrainConfig, data: TrainingData) -> StageModel:
    """The model of ``recipe.stage`` (see the module docstring); weights are drawn from torch's global RNG."""
    if recipe.stage == "egopack":
        return _egopack_model(recipe, data)
    if recipe.stage == "translation":
        return _translation_model(recipe)
    return _fresh_model(recipe)
