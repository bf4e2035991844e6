"""EgoPack (Peirone et al., CVPR 2024): the novel task consults a frozen backpack of the support tasks' prototypes.

:class:`EgoPackHead` is what an EgoPack novel task adds to its head: the interaction module with the support tasks'
prototypes (:class:`~egostream.backpack.interaction.EgoPackInteraction`), the support tasks' necks and the fusion
rule (:func:`~egostream.backpack.fusion.fusion_rule`). Its forward (``fusion_level: features``, the authors'
experiment setting) reproduces the ``EgoPack<Task>Task`` classes of
sapeirone/hier-egopack@4fff4e5:models/tasks/ego4d/{ar,lta,oscc,pnr,mq}.py ``forward``: the novel task's features
are computed as in its plain head, fused with the interaction outputs, and go through the same classifiers
(:meth:`egostream.tasks.base.Task.fused_forward`).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor, nn

from egostream.backbone.graphs import LevelGraphs
from egostream.backpack.fusion import FusionRule, Segments, consult_backpack, fusion_rule
from egostream.backpack.interaction import EgoPackInteraction, authors_interaction_keys
from egostream.checkpoint import LoadedCheckpoint, load_module_state
from egostream.crosstask.base import CROSS_TASK, CrossTaskModule
from egostream.errors import InputError
from egostream.tasks.base import Task, TaskInputs, task_class
from egostream.tasks.neck import ProjectionNeck

__all__ = ["EgoPackHead"]


@CROSS_TASK.register("egopack")
class EgoPackHead(CrossTaskModule):
    """What an EgoPack novel task adds to its head: the interaction, the support necks and the fusion rule.

    Args:
        interaction: the EgoPack module (prototypes of each support task, interaction stages).
        support_necks: support task (authors' name) -> its projection neck.
        rule: the novel task's fusion rule (:func:`egostream.backpack.fusion.fusion_rule`).
        config: the EgoPack settings to save with the bundle (``k``, ``dropout``, ...).
    """

    kind = "egopack"

    def __init__(self, interaction: EgoPackInteraction, support_necks: Mapping[str, ProjectionNeck],
                 rule: FusionRule, config: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        missing = set(interaction.support_tasks) - set(support_necks)
        if missing:
            raise InputError(None, "support_necks", f"no neck for support tasks {sorted(missing)}")
        self.interaction = interaction
        self.support_necks = nn.ModuleDict(dict(support_necks))
        self.rule = rule
        self.config = dict(config or {})

    @property
    def support_tasks(self) -> list[str]:
        return list(self.interaction.support_tasks)

    def forward(self, head: Task, graphs: LevelGraphs, inputs: TaskInputs) -> Any:
        """The novel task's outputs (same type as the plain head's) on fused features."""
        segments = None
        if inputs.segments is not None and inputs.segment_video is not None:
            segments = Segments(inputs.segments, inputs.segment_video)
        necks = {task: self.support_necks[task] for task in self.interaction.support_tasks}
        interacted = consult_backpack(graphs, necks, self.interaction, self.rule, segments).features

        def fuse(novel: Tensor, neck: Callable[[Tensor], Tensor] | None = None) -> Tensor:
            return self.rule.fuse(novel, interacted, neck=neck, training=self.training)

        return head.fused_forward(graphs, inputs, fuse)

    @classmethod
    def from_checkpoint(cls, task: str, checkpoint: LoadedCheckpoint,
                        novel_node: Mapping[str, Any]) -> EgoPackHead | None:
        """The EgoPack module of an authors' EgoPack checkpoint or ours, when ``task`` is its novel task."""
        if task_class(task).authors_name != checkpoint.novel_task or checkpoint.egopack is None:
            return None
        interaction = EgoPackInteraction.from_checkpoint(checkpoint)
        necks = {}
        for support in interaction.support_tasks:
            state = {key[len("projector."):]: value for key, value in checkpoint.support_state(support).items()
                     if key.startswith("projector.")}
            if "net.1.weight" not in state:
                raise InputError(checkpoint.path, f"tasks[{support}]", "no projection neck ('projector.net.1.weight')")
            features_size, input_size = state["net.1.weight"].shape
            necks[support] = load_module_state(ProjectionNeck(int(input_size), int(features_size)), state,
                                               source=checkpoint.path, field_name=f"tasks[{support}].projector")
        egopack_config = checkpoint.config.get("egopack") or checkpoint.config.get("egopack_config") or {}
        return cls(interaction, necks, cls.task_fusion_rule(task, novel_node),
                   {key: egopack_config[key] for key in ("k", "dropout", "conv", "distance_func")
                    if key in egopack_config}).eval()

    @staticmethod
    def task_fusion_rule(task: str, novel_node: Mapping[str, Any]) -> FusionRule:
        """The fusion rule of novel task ``task``; MQ reads ``project_before_fusion`` (default True) and
        ``fusion_dropout`` (default 0) from its config node (configs/components/egopack_task/ego4d/mq.yaml)."""
        options: dict[str, Any] = {}
        if task_class(task).name == "mq":
            options = {"project_before_fusion": bool(novel_node.get("project_before_fusion", True)),
                       "dropout": float(novel_node.get("fusion_dropout", 0.0))}
        return fusion_rule(task_class(task).authors_name, **options)

    def checkpoint_fields(self, novel_task: str) -> dict[str, Any]:
        """The support necks go under their own key, so a novel task that is also a support task keeps both its
        head and its support neck; the interaction in the authors' key layout (what every checkpoint holds)."""
        conv_depth = len(self.interaction.stages[self.interaction.support_tasks[0]][0].convs)  # type: ignore[index]
        return {"novel_task": novel_task,
                "support_necks": {support: {f"projector.{key}": value for key, value in neck.state_dict().items()}
                                  for support, neck in self.support_necks.items()},
                "egopack": authors_interaction_keys(self.interaction.state_dict(), conv_depth, to_authors=True),
                "egopack_config": {**self.config, "k": self.interaction.k}}
