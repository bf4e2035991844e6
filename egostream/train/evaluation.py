"""Validation metrics during training, computed from the heads' outputs with :mod:`egostream.ego4d.metrics`.

One :class:`ValidationMeter` per task accumulates the outputs of the validation batches (in loader order) and
computes the benchmark metrics of the chosen protocol (default ``hier-egopack``, the authors' meters):

* AR: :func:`~egostream.ego4d.metrics.ar_metrics` on the verb/noun logits of every segment;
* LTA: :func:`~egostream.ego4d.metrics.lta_metrics` on ``K`` futures sampled with a generator seeded by ``seed``
  (the same draws on every evaluation of the same model);
* OSCC: :func:`~egostream.ego4d.metrics.oscc_metrics` on the two-way logits;
* PNR: :func:`~egostream.ego4d.metrics.pnr_metrics` on the 16 keyframe logits of every clip;
* MQ: :func:`~egostream.ego4d.metrics.mq_metrics` on the decoded detections (soft-NMS), in clip seconds, against
  the samples' own moments.

Only scalar metrics are returned (lists of per-threshold values are kept, per-class tables are dropped), ready for
the metrics log.

``VALIDATION_METERS`` maps each task to the factory of its meter; a plug-in task registers its own.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from egostream.ego4d.batching import ModelBatch
from egostream.ego4d.metrics import ar_metrics, lta_metrics, mq_metrics, oscc_metrics, pnr_metrics
from egostream.ego4d.taxonomy import MQLabelMap
from egostream.errors import InputError
from egostream.registry import Registry
from egostream.tasks.base import Task

if TYPE_CHECKING:
    from egostream.train.data import TrainingData

__all__ = ["ValidationMeter", "ARMeter", "LTAMeter", "OSCCMeter", "PNRMeter", "MQMeter", "MeterFactory",
           "VALIDATION_METERS", "validation_meter"]


def _scalars(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers and lists of numbers of a metrics dict (drops per-class tables and label lists)."""
    kept: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            kept[key] = value
        elif isinstance(value, list) and all(isinstance(v, (int, float)) for v in value):
            kept[key] = value
    return kept


def _numpy(tensor: Tensor) -> np.ndarray:
    return tensor.detach().float().cpu().numpy() if tensor.is_floating_point() else tensor.detach().cpu().numpy()


class ValidationMeter(ABC):
    """Accumulates one task's validation outputs; :meth:`compute` returns its metrics."""

    def __init__(self, protocol: str = "hier-egopack") -> None:
        self.protocol = protocol

    @abstractmethod
    def update(self, task: Task, outputs: Any, batch: ModelBatch) -> None:
        """Add the head outputs of one batch (``task`` decodes them where the metric needs predictions)."""

    @abstractmethod
    def compute(self) -> dict[str, Any]:
        """The metrics of everything added (raises :class:`InputError` if nothing was)."""


class _ArrayMeter(ValidationMeter):
    """A meter that concatenates named arrays over batches."""

    def __init__(self, protocol: str = "hier-egopack") -> None:
        super().__init__(protocol)
        self._parts: dict[str, list[np.ndarray]] = {}

    def _add(self, **arrays: np.ndarray) -> None:
        for name, array in arrays.items():
            self._parts.setdefault(name, []).append(array)

    def _arrays(self) -> dict[str, np.ndarray]:
        if not self._parts:
            raise InputError(None, "validation", f"{type(self).__name__}: no validation batch was evaluated")
        return {name: np.concatenate(parts) for name, parts in self._parts.items()}


class ARMeter(_ArrayMeter):
    def update(self, task: Task, outputs: Any, batch: ModelBatch) -> None:
        self._add(verb_logits=_numpy(outputs.verb_logits), noun_logits=_numpy(outputs.noun_logits),
                  verb_labels=_numpy(batch.inputs.require("verb_labels", "ar")),
                  noun_labels=_numpy(batch.inputs.require("noun_labels", "ar")))

    def compute(self) -> dict[str, Any]:
        a = self._arrays()
        return _scalars(ar_metrics(a["verb_logits"], a["verb_labels"], a["noun_logits"], a["noun_labels"],
                                   protocol=self.protocol))


class OSCCMeter(_ArrayMeter):
    def update(self, task: Task, outputs: Any, batch: ModelBatch) -> None:
        self._add(logits=_numpy(outputs.logits), labels=_numpy(batch.inputs.require("labels", "oscc")))

    def compute(self) -> dict[str, Any]:
        a = self._arrays()
        return _scalars(oscc_metrics(a["logits"], a["labels"], protocol=self.protocol))


class LTAMeter(_ArrayMeter):
    """LTA edit distances of ``K`` sampled futures; the draws come from a generator seeded with ``seed``."""

    def __init__(self, protocol: str = "hier-egopack", seed: int = 0) -> None:
        super().__init__(protocol)
        self.generator = torch.Generator().manual_seed(seed)

    def update(self, task: Task, outputs: Any, batch: ModelBatch) -> None:
        prediction = task.decode(outputs, batch.inputs, generator=self.generator)  # type: ignore[call-arg]
        num_videos, _, num_future = prediction.verbs.shape
        verbs = batch.inputs.require("verb_labels", "lta").reshape(num_videos, num_future)
        nouns = batch.inputs.require("noun_labels", "lta").reshape(num_videos, num_future)
        self._add(verb_preds=_numpy(prediction.verbs.transpose(1, 2)), noun_preds=_numpy(prediction.nouns.transpose(1, 2)),
                  verb_labels=_numpy(verbs), noun_labels=_numpy(nouns))

    def compute(self) -> dict[str, Any]:
        a = self._arrays()
        return _scalars(lta_metrics(a["verb_preds"], a["verb_labels"], a["noun_preds"], a["noun_labels"],
                                    protocol=self.protocol))


class PNRMeter(_ArrayMeter):
    """PNR keyframe error; each sample's record window is the one the metric measures from."""

    def __init__(self, protocol: str = "hier-egopack") -> None:
        super().__init__(protocol)
        self._records: list[dict[str, Any]] = []

    def update(self, task: Task, outputs: Any, batch: ModelBatch) -> None:
        self._add(logits=_numpy(outputs.logits.reshape(batch.num_videos, -1)))
        self._records.extend({"state_change": True, "parent_start_frame": s.record_start_frame,
                              "parent_end_frame": s.record_end_frame, "parent_pnr_frame": s.pnr_frame,
                              "parent_start_sec": s.record_start_sec, "parent_end_sec": s.record_end_sec}
                             for s in batch.samples)

    def compute(self) -> dict[str, Any]:
        return _scalars(pnr_metrics(self._records, logits=self._arrays()["logits"], protocol=self.protocol))


class MQMeter(ValidationMeter):
    """MQ detection mAP of the decoded moments of every validation clip, against the clips' own moments."""

    def __init__(self, labels: MQLabelMap, protocol: str = "hier-egopack") -> None:
        super().__init__(protocol)
        self.labels = labels
        self._truth: dict[str, dict[str, Any]] = {}
        self._predictions: dict[str, list[dict[str, Any]]] = {}

    def update(self, task: Task, outputs: Any, batch: ModelBatch) -> None:
        for sample, found in zip(batch.samples, task.decode(outputs, batch.inputs)):
            offset = sample.clip_offset_s
            self._truth[sample.clip_uid] = {
                "subset": "val", "duration": sample.clip_duration_s,
                "annotations": [{"label": name, "start_time": float(start), "end_time": float(end)}
                                for name, (start, end) in zip(sample.label_names, sample.clip_segments_s.tolist())]}
            self._predictions[sample.clip_uid] = [
                {"label": self.labels.names[int(label)], "score": float(score),
                 "segment": [float(start) - offset, float(end) - offset]}
                for (start, end), score, label in zip(found.segs.tolist(), found.scores, found.cls_idxs)]

    def compute(self) -> dict[str, Any]:
        if not self._truth:
            raise InputError(None, "validation", "MQMeter: no validation batch was evaluated")
        label_ids = {name: index for index, name in enumerate(self.labels.names)}
        metrics = mq_metrics(self._truth, self._predictions, protocol=self.protocol, label_ids=label_ids)
        return _scalars(metrics)


MeterFactory = Callable[[str, int, "TrainingData"], ValidationMeter]
"""``factory(protocol, seed, data) -> meter``: a fresh meter of one task (``data`` gives dataset files, such as the
MQ label map)."""

VALIDATION_METERS: Registry[MeterFactory] = Registry("validation meter")
VALIDATION_METERS.register("ar")(lambda protocol, seed, data: ARMeter(protocol))
VALIDATION_METERS.register("lta")(lambda protocol, seed, data: LTAMeter(protocol, seed))
VALIDATION_METERS.register("oscc")(lambda protocol, seed, data: OSCCMeter(protocol))
VALIDATION_METERS.register("pnr")(lambda protocol, seed, data: PNRMeter(protocol))
VALIDATION_METERS.register("mq")(lambda protocol, seed, data: MQMeter(data.mq_labels(), protocol))


def validation_meter(task: str, data: TrainingData, *, protocol: str = "hier-egopack",
                     seed: int = 0) -> ValidationMeter:
    """A fresh meter for ``task`` (short name) from its factory in ``VALIDATION_METERS``."""
    if task not in VALIDATION_METERS:
        raise InputError(None, "task", f"task {task!r} has no validation meter; known: "
                                       f"{', '.join(VALIDATION_METERS.names())}")
    return VALIDATION_METERS.get(task)(protocol, seed, data)
