"""EgoPack task prototypes: how they are built from the AR train split, and the :class:`Backpack` that stores them.

A prototype is the mean, over every AR train segment labelled with one (verb, noun) pair, of a support task's view of
that segment: the task's neck applied to the level-0 backbone features, then averaged over the segment's nodes
(sapeirone/hier-egopack@4fff4e5:train_egopack.py, ``build_prototypes``). Pairs are keyed by
``label = verb * num_nouns + noun``; only labels seen at least once get a row, in increasing label order.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from egostream.errors import InputError
from egostream.io.atomic import atomic_output

__all__ = ["Backpack", "PrototypeBuilder", "file_sha256", "BACKPACK_FORMAT", "BACKPACK_VERSION"]

BACKPACK_FORMAT = "egostream.backpack"
BACKPACK_VERSION = 1


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes (the provenance recorded in a :class:`Backpack`)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True, eq=False)
class Backpack:
    """The frozen prototypes of the support tasks, with the (verb, noun) pair behind each row.

    Attributes:
        prototypes: support task name -> ``[P, F]`` float32 prototypes; row ``i`` of every task is pair ``i``.
        verb_labels: ``[P]`` int64 verb id of each row.
        noun_labels: ``[P]`` int64 noun id of each row.
        support: ``[P]`` int64 number of AR segments averaged into each row.
        num_verbs: size of the verb vocabulary the labels index.
        num_nouns: size of the noun vocabulary the labels index.
        source_checkpoint_sha256: sha256 of the checkpoint whose backbone and necks built the prototypes, if known.
        path: the file it was loaded from (named in error messages), ``None`` if built in memory.
    """

    prototypes: dict[str, Tensor]
    verb_labels: Tensor
    noun_labels: Tensor
    support: Tensor
    num_verbs: int
    num_nouns: int
    source_checkpoint_sha256: str | None = None
    path: Path | None = None

    def __post_init__(self) -> None:
        self._validate()

    @property
    def support_tasks(self) -> list[str]:
        return list(self.prototypes)

    @property
    def num_prototypes(self) -> int:
        return int(self.verb_labels.shape[0])

    @property
    def feature_size(self) -> int:
        return int(next(iter(self.prototypes.values())).shape[1])

    @property
    def label_ids(self) -> Tensor:
        """``[P]`` int64 ``verb * num_nouns + noun`` of each row (strictly increasing)."""
        return self.verb_labels * self.num_nouns + self.noun_labels

    def task_prototypes(self, task: str) -> Tensor:
        """``[P, F]`` prototypes of support task ``task``."""
        if task not in self.prototypes:
            raise InputError(self.path, "support_tasks",
                             f"unknown support task {task!r}; the backpack holds {', '.join(self.support_tasks)}")
        return self.prototypes[task]

    def require(self, support_tasks: Iterable[str], feature_size: int) -> None:
        """Raise :class:`InputError` unless this backpack serves exactly ``support_tasks`` at width ``feature_size``."""
        wanted = list(support_tasks)
        if sorted(wanted) != sorted(self.support_tasks):
            raise InputError(self.path, "support_tasks",
                             f"the model expects support tasks {wanted}, the backpack holds {self.support_tasks}")
        if feature_size != self.feature_size:
            raise InputError(self.path, "feature_size",
                             f"the model expects {feature_size}-wide prototypes, the backpack holds "
                             f"{self.feature_size}-wide ones")

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the backpack atomically (temporary file in the same folder, then rename)."""
        record = {
            "format": BACKPACK_FORMAT,
            "version": BACKPACK_VERSION,
            "support_tasks": self.support_tasks,
            "feature_size": self.feature_size,
            "num_verbs": self.num_verbs,
            "num_nouns": self.num_nouns,
            "source_checkpoint_sha256": self.source_checkpoint_sha256,
            "verb_labels": self.verb_labels.cpu(),
            "noun_labels": self.noun_labels.cpu(),
            "support": self.support.cpu(),
            "prototypes": {task: value.detach().cpu() for task, value in self.prototypes.items()},
        }
        with atomic_output(path) as stream:
            torch.save(record, stream)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Backpack:
        """Read a backpack written by :meth:`save`; any malformed field raises :class:`InputError`."""
        path = Path(path)
        try:
            record = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise InputError(path, None, "no such backpack file") from None
        except Exception as error:  # noqa: BLE001 - torch raises many kinds of unpickling errors
            raise InputError(path, None, f"not a readable backpack file ({error})") from None
        if not isinstance(record, dict) or record.get("format") != BACKPACK_FORMAT:
            raise InputError(path, "format", f"expected {BACKPACK_FORMAT!r}")
        if record.get("version") != BACKPACK_VERSION:
            raise InputError(path, "version", f"unsupported version {record.get('version')!r} "
                                              f"(this egostream reads version {BACKPACK_VERSION})")
        prototypes = record.get("prototypes")
        if not isinstance(prototypes, dict) or list(prototypes) != record.get("support_tasks"):
            raise InputError(path, "prototypes", "must map each of support_tasks, in order, to a tensor")
        backpack = cls(prototypes, record["verb_labels"], record["noun_labels"], record["support"],
                       int(record["num_verbs"]), int(record["num_nouns"]), record.get("source_checkpoint_sha256"),
                       path=path)
        if backpack.feature_size != record.get("feature_size"):
            raise InputError(path, "feature_size",
                             f"{record.get('feature_size')} recorded, prototypes are {backpack.feature_size} wide")
        return backpack

    def _validate(self) -> None:
        if not self.prototypes:
            raise InputError(self.path, "prototypes", "at least one support task is needed")
        num_rows = self.verb_labels.shape[0] if self.verb_labels.dim() == 1 else -1
        for name, tensor in (("verb_labels", self.verb_labels), ("noun_labels", self.noun_labels),
                             ("support", self.support)):
            if tensor.dim() != 1 or tensor.shape[0] != num_rows or tensor.dtype != torch.int64:
                raise InputError(self.path, name, f"expected a [P] int64 tensor with P = {num_rows}, "
                                                  f"got {list(tensor.shape)} {tensor.dtype}")
        widths = set()
        for task, value in self.prototypes.items():
            if value.dim() != 2 or value.shape[0] != num_rows or not value.is_floating_point():
                raise InputError(self.path, f"prototypes[{task}]",
                                 f"expected [{num_rows}, F] floats, got {list(value.shape)} {value.dtype}")
            widths.add(value.shape[1])
        if len(widths) > 1:
            raise InputError(self.path, "prototypes", f"support tasks disagree on the prototype width: "
                                                      f"{ {task: v.shape[1] for task, v in self.prototypes.items()} }")
        if num_rows and not (bool((self.verb_labels >= 0).all()) and bool((self.verb_labels < self.num_verbs).all())
                             and bool((self.noun_labels >= 0).all())
                             and bool((self.noun_labels < self.num_nouns).all())):
            raise InputError(self.path, "verb_labels/noun_labels",
                             f"ids outside the {self.num_verbs} verbs x {self.num_nouns} nouns vocabulary")
        if num_rows > 1 and not bool((self.label_ids[1:] > self.label_ids[:-1]).all()):
            raise InputError(self.path, "verb_labels/noun_labels", "pairs must be distinct, in increasing label order")
        if num_rows and not bool((self.support > 0).all()):
            raise InputError(self.path, "support", "every prototype needs a support of at least one segment")


class PrototypeBuilder:
    """Accumulates segment features per (verb, noun) pair over the batches of the AR train split.

    Feed it, batch after batch, every support task's AR-aligned features (``[M, F]``, one row per AR segment: the task
    neck on the level-0 features, then the segment mean) with the segments' labels; :meth:`finish` returns the
    :class:`Backpack`. The sums are accumulated per batch then added, in batch order, and divided by the support count
    at the end, as the authors do (sapeirone/hier-egopack@4fff4e5:train_egopack.py, ``build_prototypes``): the batch
    order therefore only affects float rounding.
    """

    def __init__(self, support_tasks: Iterable[str], num_verbs: int, num_nouns: int, feature_size: int) -> None:
        self.support_tasks = list(support_tasks)
        if not self.support_tasks:
            raise InputError(None, "support_tasks", "at least one support task is needed")
        self.num_verbs, self.num_nouns, self.feature_size = num_verbs, num_nouns, feature_size
        self._sums: dict[str, Tensor] = {}
        self._support = torch.zeros(num_verbs * num_nouns, dtype=torch.int64)

    def add(self, segment_features: Mapping[str, Tensor], verb_labels: Tensor, noun_labels: Tensor) -> None:
        """Add one batch: ``segment_features[task]`` is ``[M, F]``; ``verb_labels`` and ``noun_labels`` are ``[M]``."""
        if set(segment_features) != set(self.support_tasks):
            raise InputError(None, "segment_features",
                             f"expected features of {self.support_tasks}, got {list(segment_features)}")
        num_segments = verb_labels.shape[0]
        if noun_labels.shape != verb_labels.shape or verb_labels.dim() != 1:
            raise InputError(None, "verb_labels/noun_labels", "expected two [M] tensors of the same length")
        if num_segments and not (bool(((verb_labels >= 0) & (verb_labels < self.num_verbs)).all())
                                 and bool(((noun_labels >= 0) & (noun_labels < self.num_nouns)).all())):
            raise InputError(None, "verb_labels/noun_labels",
                             f"ids outside the {self.num_verbs} verbs x {self.num_nouns} nouns vocabulary")
        labels = (verb_labels * self.num_nouns + noun_labels).cpu()
        for task in self.support_tasks:
            features = segment_features[task].detach()
            if features.shape != (num_segments, self.feature_size):
                raise InputError(None, f"segment_features[{task}]",
                                 f"expected [{num_segments}, {self.feature_size}], got {list(features.shape)}")
            features = features.float().cpu()
            batch_sum = features.new_zeros((self.num_verbs * self.num_nouns, self.feature_size))
            batch_sum.scatter_add_(0, labels[:, None].expand_as(features), features)
            self._sums[task] = self._sums[task] + batch_sum if task in self._sums else batch_sum
        self._support += torch.bincount(labels, minlength=self.num_verbs * self.num_nouns)

    def finish(self, source_checkpoint_sha256: str | None = None) -> Backpack:
        """Divide each seen pair's sum by its support; keep only seen pairs, in increasing label order."""
        seen = self._support > 0
        if not bool(seen.any()):
            raise InputError(None, "segments", "no labelled segment was added: no prototype can be built")
        count = self._support[seen].float()[:, None]
        prototypes = {task: self._sums[task][seen] / count for task in self.support_tasks}
        label_ids = torch.arange(self.num_verbs * self.num_nouns)[seen]
        return Backpack(prototypes, label_ids // self.num_nouns, label_ids % self.num_nouns, self._support[seen].clone(),
                        self.num_verbs, self.num_nouns, source_checkpoint_sha256)
