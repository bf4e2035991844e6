"""Cross-task modules: how one task's head draws on the other tasks (EgoPack's backpack; later EgoT2 translation).

``CROSS_TASK`` maps a module kind ("egopack") to its class; each kind is one module of this package, and a
checkpoint selects the kind its novel task was trained with (:meth:`CrossTaskModule.from_checkpoint`).
"""
from egostream.crosstask.base import CROSS_TASK, CrossTaskModule, cross_task_module
from egostream.crosstask.egopack import EgoPackHead

__all__ = ["CROSS_TASK", "CrossTaskModule", "EgoPackHead", "cross_task_module"]
