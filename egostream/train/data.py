"""The samples a training run reads: protocol samples of the train and val splits, batch sizes and batch order.

Per task: the benchmark-protocol samples (:data:`egostream.ego4d.protocol.SAMPLE_BUILDERS`) of the ``train`` and
``val`` splits, the videos without feature files left out. Training batches come from :class:`ShuffledBatches`
(full batches, reshuffled every pass, a pure function of the step); PNR training samples get the authors' random
5-8 s crop (:func:`egostream.ego4d.protocol.random_training_crop`), drawn from a generator seeded by
``(seed, task, step, position)`` so that it too is a function of the step. Validation batches are in file order.

Multi-task batch sizes (sapeirone/hier-egopack@4fff4e5:train_multi_task.py ``main``): the batch size of task ``t`` is
``batch_size * (len(train_t) // min_u len(train_u))``, so every task runs about the same number of batches per pass;
an epoch is as many steps as the longest loader has batches, the shorter loaders restarting when exhausted.
The validation loaders are scaled the same way from the val sizes, MQ's being 1 clip per batch.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from os import PathLike

import numpy as np
from torch.utils.data import DataLoader

from egostream.ego4d.batching import AUTHORS_PAD_ROWS, ModelBatch, TaskDataset, batch_loader, collate, sample_item
from egostream.ego4d.features import FeatureSpec, FeatureStore
from egostream.ego4d.layout import Ego4dLayout
from egostream.ego4d.protocol import SAMPLE_BUILDERS, PNRSample, random_training_crop
from egostream.ego4d.taxonomy import MQLabelMap, load_mq_labels
from egostream.errors import InputError
from egostream.train.recipe import TrainConfig
from egostream.train.sampling import ShuffledBatches

__all__ = ["TrainingData", "multi_task_batch_sizes", "load_split"]


def multi_task_batch_sizes(dataset_sizes: Mapping[str, int], batch_size: int) -> dict[str, int]:
    """Each task's batch: ``batch_size`` times its dataset's size over the smallest one's, rounded down."""
    if not dataset_sizes or min(dataset_sizes.values()) < 1:
        raise InputError(None, "datasets", f"every task needs training samples, got {dict(dataset_sizes)}")
    smallest = min(dataset_sizes.values())
    return {task: batch_size * (size // smallest) for task, size in dataset_sizes.items()}


def load_split(layout: Ego4dLayout, store: FeatureStore, spec: FeatureSpec, task: str, split: str,
               protocol: str) -> list:
    """The protocol samples of ``task`` in ``split`` whose video has a feature file."""
    return SAMPLE_BUILDERS.get(task)(layout, split, spec, protocol=protocol, has_features=store.has)


@dataclass
class _TaskSplits:
    train: TaskDataset
    val: TaskDataset
    batches: ShuffledBatches
    val_batch_size: int


class TrainingData:
    """Train and val samples of the recipe's tasks under an Ego4D data root (see the module docstring)."""

    def __init__(self, root: str | PathLike[str], recipe: TrainConfig, tasks: Sequence[str] | None = None) -> None:
        self.recipe = recipe
        self.layout = Ego4dLayout.from_root(root)
        model = recipe.model
        self.spec = FeatureSpec(model.feature_name, dim=model.feature_dim)
        self.store = FeatureStore(root, model.feature_name, expected_dim=model.feature_dim, cache_size=256)
        self.tasks = list(tasks if tasks is not None else recipe.tasks)
        pad = AUTHORS_PAD_ROWS if recipe.protocol == "hier-egopack" else None
        train = {t: TaskDataset(load_split(self.layout, self.store, self.spec, t, "train", recipe.protocol),
                                self.store, mq_pad_rows=pad) for t in self.tasks}
        val = {t: TaskDataset(load_split(self.layout, self.store, self.spec, t, "val", recipe.protocol),
                              self.store, mq_pad_rows=pad) for t in self.tasks}
        for split, datasets in (("train", train), ("val", val)):
            empty = [t for t, d in datasets.items() if len(d) == 0]
            if empty:
                raise InputError(self.layout.data_dir, f"{split} samples",
                                 f"no {split} sample with features for task(s) {empty} (feature folder "
                                 f"features/{model.feature_name})")
        if recipe.stage == "multi":
            train_sizes = multi_task_batch_sizes({t: len(d) for t, d in train.items()}, recipe.batch_size)
            val_sizes = multi_task_batch_sizes({t: len(d) for t, d in val.items()},
                                               recipe.val_batch_size or recipe.batch_size)
        else:
            train_sizes = {t: recipe.batch_size for t in self.tasks}
            val_sizes = {t: recipe.val_batch_size or recipe.batch_size for t in self.tasks}
        self._splits = {
            t: _TaskSplits(train[t], val[t], ShuffledBatches(len(train[t]), train_sizes[t], recipe.seed, stream=i,
                                                             name=t),
                           1 if t == "mq" else val_sizes[t])
            for i, t in enumerate(self.tasks)}
        self._mq_labels: MQLabelMap | None = None

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps per epoch: the number of full batches of the longest training loader."""
        return max(len(splits.batches) for splits in self._splits.values())

    def batch_size(self, task: str) -> int:
        return self._splits[task].batches.batch_size

    def train_size(self, task: str) -> int:
        return len(self._splits[task].train)

    def train_batch(self, task: str, step: int) -> ModelBatch:
        """The training batch of ``task`` at optimizer step ``step`` (0-based over the whole run)."""
        splits = self._splits[task]
        items = []
        for position, index in enumerate(splits.batches.batch(step)):
            sample = splits.train.samples[index]
            if isinstance(sample, PNRSample):
                # A legacy RandomState: the authors' ``np.random.uniform(low, high)`` accepts low > high, which
                # the crop relies on and ``Generator.uniform`` refuses.
                entropy = [self.recipe.seed % 2**32, self.tasks.index(task), step, position]
                crop_rng = np.random.RandomState(np.random.SeedSequence(entropy).generate_state(1)[0])
                sample = random_training_crop(sample, crop_rng)  # type: ignore[arg-type]
            items.append(sample_item(sample, self.store, mq_pad_rows=splits.train.mq_pad_rows))
        return collate(items)

    def val_loader(self, task: str) -> DataLoader:
        """The validation batches of ``task``, in file order."""
        splits = self._splits[task]
        return batch_loader(splits.val, splits.val_batch_size)

    def val_samples(self, task: str) -> list:
        return list(self._splits[task].val.samples)

    def mq_labels(self) -> MQLabelMap:
        """The dataset's MQ classes (``annotations/mq_labels.tsv``)."""
        if self._mq_labels is None:
            self._mq_labels = load_mq_labels(self.layout.mq_labels())
        return self._mq_labels

    def prototype_loader(self, batch_size: int) -> DataLoader:
        """The AR train split in file order, for building prototypes (the authors shuffle it; the order only
        changes the float rounding of the sums)."""
        pad = AUTHORS_PAD_ROWS if self.recipe.protocol == "hier-egopack" else None
        samples = load_split(self.layout, self.store, self.spec, "ar", "train", self.recipe.protocol)
        if not samples:
            raise InputError(self.layout.data_dir, "ar train samples", "no AR train sample to build prototypes from")
        return batch_loader(TaskDataset(samples, self.store, mq_pad_rows=pad), batch_size)
