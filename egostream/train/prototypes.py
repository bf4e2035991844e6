"""Building the backpack from a support model: the first step of the EgoPack stage and ``egostream backpack build``.

sapeirone/hier-egopack@4fff4e5:train_egopack.py ``build_prototypes``: in eval mode and without gradients, every AR
train batch runs through the support backbone up to level 0 (``max_depth=0``); each support task's neck projects the
level-0 features, the AR alignment averages them over each labelled segment, and
:class:`~egostream.backpack.PrototypeBuilder` accumulates them per (verb, noun) pair.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from os import PathLike

import torch
from tqdm.auto import tqdm

from egostream.backbone.hierarchy import HierarchicalBackbone
from egostream.backpack import Backpack, PrototypeBuilder, Segments, file_sha256, fusion_rule, support_queries
from egostream.checkpoint import LoadedCheckpoint, load_backbone, load_checkpoint, load_module_state
from egostream.device import move_tensors, resolve_device
from egostream.ego4d.batching import ModelBatch
from egostream.errors import InputError
from egostream.tasks.neck import ProjectionNeck

__all__ = ["build_backpack", "support_necks", "support_backbone", "backpack_from_checkpoint"]


def support_necks(checkpoint: LoadedCheckpoint) -> dict[str, ProjectionNeck]:
    """The projection neck of every task of a (multi-task) support checkpoint, by the authors' task name."""
    if not checkpoint.tasks:
        raise InputError(checkpoint.path, "tasks", "the support checkpoint holds no task")
    necks = {}
    for name, task_state in checkpoint.tasks.items():
        state = {key[len("projector."):]: value for key, value in task_state.items() if key.startswith("projector.")}
        if "net.1.weight" not in state:
            raise InputError(checkpoint.path, f"tasks[{name}]", "no projection neck ('projector.net.1.weight')")
        features_size, input_size = state["net.1.weight"].shape
        neck = ProjectionNeck(int(input_size), int(features_size))
        necks[name] = load_module_state(neck, state, source=checkpoint.path, field_name=f"tasks[{name}].projector")
    return necks


def support_backbone(checkpoint: LoadedCheckpoint, depth: int | None = None,
                     dropout: float | None = None) -> HierarchicalBackbone:
    """The support checkpoint's backbone, cut to ``depth`` levels (its deeper levels dropped, as the authors'
    ``load_state_dict(strict=False)`` of a deeper support model) and with ``dropout`` if given."""
    cfg = checkpoint.backbone_config
    if cfg is None:
        raise InputError(checkpoint.path, "backbone_config", "the support checkpoint holds no backbone")
    cfg = replace(cfg, depth=cfg.depth if depth is None else depth, dropout=cfg.dropout if dropout is None else dropout)
    return load_backbone(checkpoint, cfg, allow_deeper_checkpoint=True)


@torch.no_grad()
def build_backpack(backbone: HierarchicalBackbone, necks: Mapping[str, ProjectionNeck], batches: Iterable[ModelBatch],
                   num_verbs: int, num_nouns: int, *, source_checkpoint_sha256: str | None = None,
                   progress: bool = False) -> Backpack:
    """Prototypes of every support task from AR batches (see the module docstring); modules are put in eval mode.

    Args:
        backbone: the support backbone (only its level 0 runs).
        necks: support task name -> its projection neck.
        batches: collated AR batches (``segments``, ``segment_video``, ``verb_labels``, ``noun_labels``).
        num_verbs, num_nouns: the AR vocabulary the labels index.
    """
    modules = [backbone, *necks.values()]
    modes = [module.training for module in modules]
    for module in modules:
        module.eval()
    try:
        builder = PrototypeBuilder(necks, num_verbs, num_nouns, next(iter(necks.values())).features_size)
        rule = fusion_rule("ego4d/ar")
        for batch in tqdm(batches, desc="Prototypes", leave=False, disable=not progress):
            if batch.task != "ar":
                raise InputError(None, "batches", f"prototypes are built from AR batches, got {batch.task}")
            _, graphs = backbone(batch.videos, max_depth=0)
            inputs = batch.inputs
            segments = Segments(inputs.require("segments", "ar"), inputs.require("segment_video", "ar"))
            builder.add(support_queries(graphs, necks, rule, segments), inputs.require("verb_labels", "ar"),
                        inputs.require("noun_labels", "ar"))
        return builder.finish(source_checkpoint_sha256)
    finally:
        for module, mode in zip(modules, modes):
            module.train(mode)


def backpack_from_checkpoint(checkpoint: str | PathLike[str] | LoadedCheckpoint, batches: Iterable[ModelBatch],
                             num_verbs: int, num_nouns: int, *, progress: bool = False,
                             device: str | torch.device = "cpu") -> Backpack:
    """:func:`build_backpack` with the backbone (level 0) and necks of a support checkpoint file (or that file
    already read by :func:`load_checkpoint`), run on ``device`` (every batch tensor moved there); the prototypes
    are stored from the CPU."""
    target = resolve_device(device)
    loaded = checkpoint if isinstance(checkpoint, LoadedCheckpoint) else load_checkpoint(checkpoint)
    if loaded.path is None:
        raise ValueError("the backpack records the sha256 of its support checkpoint: give one read from a file")
    path = loaded.path
    necks = {task: neck.to(target) for task, neck in support_necks(loaded).items()}
    on_device = (move_tensors(batch, target) for batch in batches)
    return build_backpack(support_backbone(loaded, depth=1).to(target), necks, on_device, num_verbs, num_nouns,
                          source_checkpoint_sha256=file_sha256(path), progress=progress)
