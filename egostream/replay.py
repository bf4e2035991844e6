"""Benchmark-protocol evaluation of a model on an Ego4D split (the ``egostream replay`` command).

For each task: build the protocol's samples (:data:`egostream.ego4d.protocol.SAMPLE_BUILDERS`, samples without a
feature file dropped as the authors do), batch them (:mod:`egostream.ego4d.batching`), run the
:class:`~egostream.model.ModelBundle` (or the :class:`~egostream.translation.TranslationBundle` of a translation
checkpoint; :func:`egostream.bundles.load_bundle`), decode, and write the official submission file
``<out>/<task>.json`` (:mod:`egostream.ego4d.submission`, atomic). Then ``<out>/metrics.json`` (atomic) holds, per
task, exactly what ``egostream eval`` reports on that file (:func:`egostream.ego4d.evaluation.evaluate_files`).

Decoding per task:

* AR: the verb and noun logits of every action (the metric ranks them).
* LTA: ``K = 5`` sequences of ``Z = 20`` actions sampled from the per-step softmax
  (:func:`egostream.tasks.lta.sample_future_actions`). By default each window is independent: its own future graph
  and its own ``torch.Generator`` seeded with ``seed + sample index``, so the result does not depend on the batch
  size. ``authors_batched_lta=True`` reproduces the authors' evaluation instead: batches of ``lta_batch_size``
  windows in sample order (their val loader: sapeirone/hier-egopack@4fff4e5:train_single_task.py L209,
  ``batch_size: 64`` in configs/experiments/single_tasks/lta.yaml, no shuffling), the cross-video future graph of
  their batched head (fixture README §9.6), and ONE random stream for the whole split seeded with ``seed`` (their
  meter draws from the global RNG; a CPU generator seeded with ``s`` gives the stream of ``torch.manual_seed(s)``).
  For their multi-task model the val batch size is ``batch_size * (len(LTA val) // smallest val set)``
  (train_multi_task.py L238); pass it as ``lta_batch_size``.
* OSCC: argmax of the two logits.
* PNR: the keyframe by the protocol's rule (:func:`egostream.ego4d.metrics.pnr.select_keyframe_index`), written as
  frames after the record's start (``hier-egopack``: the integer candidate frame; ``official``:
  ``(E - S) / 16 * k``).
* MQ: the authors' decoding and post-processing (:meth:`egostream.tasks.mq.MQTask.decode`: soft-NMS sigma 2.0,
  clipping to the authors' padded duration under ``hier-egopack``), moved from the nodes' time axis to seconds
  from the clip start (minus ``clip_offset_s``), labels written as in ``mq_labels.tsv``.

Device and precision: the model and every tensor of every batch it reads live on ``device`` (resolved once by
:func:`egostream.device.resolve_device`); each batch's outputs come back to the CPU once, as float32, before decoding
and submission writing (so LTA sampling and MQ post-processing run where the CPU reference runs them). ``precision``
``bfloat16``/``float16`` runs the heads (not the backbone) under ``torch.autocast``; ``float32`` (default) is the
exact path, without autocast.

Resumable per task: a task whose submission file exists is not run again (its metrics are recomputed from the file)
unless ``force``.

Every task goes through the same loop: its samples (``SAMPLE_BUILDERS``), its model outputs, its
:class:`PredictionWriter` (``PREDICTION_WRITERS``: decoding and submission file), its evaluator hook
(:data:`egostream.ego4d.evaluation.EVALUATORS`) on its annotation file (the task class's ``annotation_file``). A
plug-in task registers one entry in each.
"""
from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from egostream.bundles import load_bundle
from egostream.ego4d.batching import AUTHORS_PAD_ROWS, ModelBatch, TaskDataset, batch_loader
from egostream.ego4d.evaluation import EVALUATORS, evaluate_files
from egostream.ego4d.features import EGOVLP, OMNIVORE_VIDEO_SWINL, FeatureSpec, FeatureStore
from egostream.ego4d.layout import Ego4dLayout
from egostream.ego4d.metrics.pnr import candidate_frames, select_keyframe_index
from egostream.ego4d.protocol import SAMPLE_BUILDERS, PNRSample
from egostream.ego4d.protocol.builders import check_protocol
from egostream.ego4d.submission import (ActionForecast, ActionScores, Moment, sample_key, write_ar_submission,
                                        write_lta_submission, write_mq_submission, write_oscc_submission,
                                        write_pnr_submission)
from egostream.ego4d.taxonomy import load_mq_labels
from egostream.device import autocast, check_precision, move_tensors, resolve_device
from egostream.errors import InputError
from egostream.io.atomic import write_json_atomic
from egostream.model import CheckpointSpec, ModelBundle, checkpoint_tasks
from egostream.registry import Registry
from egostream.tasks.base import task_class, task_names
from egostream.tasks.lta import LTATask, sample_future_actions
from egostream.translation import TranslationBundle

__all__ = ["replay", "feature_spec", "checkpoint_spec", "annotation_path", "AUTHORS_LTA_BATCH_SIZE", "METRICS_FILE",
           "ReplayContext", "PredictionWriter", "PREDICTION_WRITERS"]

AUTHORS_LTA_BATCH_SIZE = 64
"""The authors' single-task LTA batch size (configs/experiments/single_tasks/lta.yaml), also their val batch."""

METRICS_FILE = "metrics.json"

_KNOWN_FEATURES = {spec.name: spec for spec in (EGOVLP, OMNIVORE_VIDEO_SWINL)}


def feature_spec(features: str | FeatureSpec, dim: int) -> FeatureSpec:
    """``features`` as a :class:`FeatureSpec`: a known name (``egovlp``, ``omnivore_video_swinl``), any other
    folder name (16-frame stride and window at 30 fps, width ``dim``), or a spec; its width must be ``dim``."""
    if isinstance(features, FeatureSpec):
        spec = features
    else:
        spec = _KNOWN_FEATURES.get(features, FeatureSpec(features, dim=dim))
    if spec.dim != dim:
        raise InputError(None, "features", f"features {spec.name!r} have width D={spec.dim}, the model reads "
                                           f"D={dim}")
    return spec


def annotation_path(layout: Ego4dLayout, task: str, split: str) -> Path:
    """The annotation file of ``task`` in ``split`` (its task class's ``annotation_file`` stem)."""
    return layout.annotation_file(task_class(task).annotation_file, split)


def _split_rows(values: torch.Tensor, counts: Iterable[int]) -> list[torch.Tensor]:
    return list(torch.split(values, list(counts)))


@dataclass(frozen=True)
class ReplayContext:
    """What a task's :class:`PredictionWriter` may read: the model, the protocol, the data folder's files, the LTA
    sampling seed and mode (see :func:`replay`)."""

    task: str
    bundle: ModelBundle
    protocol: str
    layout: Ego4dLayout
    seed: int
    authors_batched_lta: bool


class PredictionWriter(ABC):
    """Accumulates one task's decoded predictions over the replay's batches and writes its submission file."""

    def __init__(self, context: ReplayContext) -> None:
        self.context = context
        self.entries: dict[str, Any] = {}
        self.count = 0

    def add(self, batch: ModelBatch, outputs: Any) -> None:
        """Decode the model outputs of one batch into ``entries`` (key -> prediction)."""
        self._add(batch, outputs)
        self.count += batch.num_videos

    @abstractmethod
    def _add(self, batch: ModelBatch, outputs: Any) -> None: ...

    @abstractmethod
    def write(self, path: Path) -> Path:
        """Write the submission file of everything added (atomically)."""


PREDICTION_WRITERS: Registry[type[PredictionWriter]] = Registry("prediction writer")


@PREDICTION_WRITERS.register("ar")
class ARPredictions(PredictionWriter):
    def _add(self, batch: ModelBatch, outputs: Any) -> None:
        counts = [len(sample.action_idx) for sample in batch.samples]
        for sample, verbs, nouns in zip(batch.samples, _split_rows(outputs.verb_logits, counts),
                                        _split_rows(outputs.noun_logits, counts)):
            for row, action_idx in enumerate(sample.action_idx):
                self.entries[sample_key(sample.clip_uid, action_idx)] = ActionScores(verbs[row].numpy(),
                                                                                    nouns[row].numpy())

    def write(self, path: Path) -> Path:
        return write_ar_submission(path, self.entries)


@PREDICTION_WRITERS.register("lta")
class LTAPredictions(PredictionWriter):
    def __init__(self, context: ReplayContext) -> None:
        super().__init__(context)
        self.shared_generator = torch.Generator().manual_seed(context.seed) if context.authors_batched_lta else None

    def _add(self, batch: ModelBatch, outputs: Any) -> None:
        head = self.context.bundle.head("lta")
        assert isinstance(head, LTATask)
        z, k = head.config.num_future, head.config.num_sequences
        if self.shared_generator is not None:
            predicted = sample_future_actions(outputs.verb_logits, outputs.noun_logits, z, k, self.shared_generator)
            verbs, nouns = predicted.verbs, predicted.nouns
        else:
            draws = [sample_future_actions(outputs.verb_logits[b * z:(b + 1) * z],
                                           outputs.noun_logits[b * z:(b + 1) * z], z, k,
                                           torch.Generator().manual_seed(self.context.seed + self.count + b))
                     for b in range(batch.num_videos)]
            verbs = torch.cat([draw.verbs for draw in draws])
            nouns = torch.cat([draw.nouns for draw in draws])
        for sample, verb, noun in zip(batch.samples, verbs, nouns):
            self.entries[sample.key] = ActionForecast(verb.numpy(), noun.numpy())

    def write(self, path: Path) -> Path:
        return write_lta_submission(path, self.entries)


@PREDICTION_WRITERS.register("oscc")
class OSCCPredictions(PredictionWriter):
    def _add(self, batch: ModelBatch, outputs: Any) -> None:
        changed = self.context.bundle.decode("oscc", outputs).state_change
        counts = [len(sample.unique_ids) for sample in batch.samples]
        for sample, decisions in zip(batch.samples, _split_rows(changed, counts)):
            self.entries.update(zip(sample.unique_ids, (bool(value) for value in decisions)))

    def write(self, path: Path) -> Path:
        return write_oscc_submission(path, self.entries)


@PREDICTION_WRITERS.register("pnr")
class PNRPredictions(PredictionWriter):
    def _add(self, batch: ModelBatch, outputs: Any) -> None:
        protocol = self.context.protocol
        scores = outputs.logits.reshape(batch.num_videos, -1).numpy()
        for sample, clip_scores in zip(batch.samples, scores):
            assert isinstance(sample, PNRSample)
            index = select_keyframe_index(clip_scores, protocol=protocol)
            start, end = sample.record_start_frame, sample.record_end_frame
            if protocol == "official":
                # EGO4D/hands-and-objects@0aea0a4:state-change-localization-classification/cnn-lstm/evaluate.py
                # generate_submission_file: (E - S) / 16 * k, in float32 as torch divides the int64 frames.
                frame = float(np.float32(end - start) / np.float32(len(clip_scores)) * np.float32(index))
            else:
                frame = float(candidate_frames(start, end)[index] - start)
            self.entries[sample.unique_id] = frame

    def write(self, path: Path) -> Path:
        return write_pnr_submission(path, self.entries)


@PREDICTION_WRITERS.register("mq")
class MQPredictions(PredictionWriter):
    def __init__(self, context: ReplayContext) -> None:
        super().__init__(context)
        self.label_names = load_mq_labels(context.layout.mq_labels()).raw_names

    def _add(self, batch: ModelBatch, outputs: Any) -> None:
        for sample, found in zip(batch.samples, self.context.bundle.decode("mq", outputs, batch.inputs)):
            offset = sample.clip_offset_s
            self.entries[sample.clip_uid] = [
                Moment(self.label_names[int(label)], float(score), float(start) - offset, float(end) - offset)
                for (start, end), score, label in zip(found.segs.tolist(), found.scores.tolist(),
                                                      found.cls_idxs.tolist())]

    def write(self, path: Path) -> Path:
        return write_mq_submission(path, self.entries)


def checkpoint_spec(items: Sequence[str], task: str) -> CheckpointSpec:
    """The checkpoints of the command line: ``CKPT`` (every task) and/or ``TASK=CKPT`` (that task), later wins.

    With only a default, the path itself; otherwise ``{task: path}`` for ``task`` (``all``: every task of the default
    checkpoint plus the named ones).
    """
    default: Path | None = None
    per_task: dict[str, Path] = {}
    for item in items:
        name, separator, rest = item.partition("=")
        if separator and name in task_names():
            per_task[name] = Path(rest)
        else:
            default = Path(item)
    if not per_task:
        if default is None:
            raise InputError(None, "checkpoint", "no checkpoint given")
        return default
    available = set(per_task) | set(checkpoint_tasks(default) if default is not None else ())
    wanted = [task] if task != "all" else [name for name in task_names() if name in available]
    spec: dict[str, Path] = {}
    for name in wanted:
        path = per_task.get(name, default)
        if path is None:
            raise InputError(None, "checkpoint", f"no checkpoint given for task {name!r}")
        spec[name] = path
    return spec


def _bundle(task: str, checkpoints: CheckpointSpec, feature_dim: int | None,
            device: torch.device) -> ModelBundle | TranslationBundle:
    """The model replay runs: :func:`~egostream.bundles.load_bundle` of the checkpoint(s) ``task`` needs (a
    translation checkpoint with its frozen sources), each file read once."""
    if isinstance(checkpoints, Mapping):
        wanted = list(checkpoints) if task == "all" else [task]
        missing = [name for name in wanted if name not in checkpoints]
        if missing:
            raise InputError(None, "checkpoint", f"no checkpoint given for task(s) {missing}")
        return load_bundle({name: checkpoints[name] for name in wanted}, feature_dim=feature_dim, device=device)
    tasks = None if task == "all" else [task]
    return load_bundle(checkpoints, tasks=tasks, feature_dim=feature_dim, device=device)


def replay(task: str, protocol: str, data_root: str | os.PathLike[str], split: str, checkpoints: CheckpointSpec,
           out_dir: str | os.PathLike[str], *, features: str | FeatureSpec = "egovlp", batch_size: int = 4,
           authors_batched_lta: bool = False, lta_batch_size: int = AUTHORS_LTA_BATCH_SIZE, seed: int = 0,
           force: bool = False, progress: bool = True, bundle: ModelBundle | None = None,
           device: str | torch.device = "auto", precision: str = "float32") -> dict[str, Any]:
    """Evaluate a model on ``split`` under ``protocol`` and write submissions and ``metrics.json`` (module docstring).

    Args:
        task: a registered task (``ar``, ``lta``, ``oscc``, ``pnr``, ``mq``, plug-ins) or ``all`` (every task the
            checkpoint(s) provide).
        protocol: ``hier-egopack`` (the authors' samples and meters, the paper's numbers) or ``official``.
        data_root: Ego4D data root (:class:`~egostream.ego4d.layout.Ego4dLayout`).
        split: annotation split, e.g. ``val``.
        checkpoints: one checkpoint path for every task, or ``{task: path}``.
        out_dir: folder for ``<task>.json`` and ``metrics.json`` (created).
        features: feature folder name or :class:`FeatureSpec` (its width must be the model's ``D``).
        batch_size: videos per batch (outputs do not depend on it, except LTA with ``authors_batched_lta``).
        authors_batched_lta: reproduce the authors' batched LTA evaluation (module docstring).
        lta_batch_size: the LTA batch size in that mode.
        seed: LTA sampling seed.
        force: re-run tasks whose submission exists.
        progress: show a tqdm bar per task.
        bundle: an already built model (then ``checkpoints`` is only recorded); it is moved to ``device``.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (module docstring); InputError (field ``device``) for one
            this machine cannot use.
        precision: ``float32`` (exact), ``bfloat16`` or ``float16`` autocast of the heads.

    Returns:
        ``{task: metrics}`` for the tasks of this call, also merged into ``<out_dir>/metrics.json``.
    """
    check_protocol(protocol)
    check_precision(precision)
    target = resolve_device(device)
    if task != "all" and task not in task_names():
        raise InputError(None, "task", f"unknown task {task!r}; one of {', '.join(task_names())}, all")
    known = features if isinstance(features, FeatureSpec) else _KNOWN_FEATURES.get(features)
    feature_dim = known.dim if known is not None else None
    model = bundle.to(target) if bundle is not None else _bundle(task, checkpoints, feature_dim, target)
    model.eval()
    spec = feature_spec(features, model.feature_dim)
    layout = Ego4dLayout.from_root(data_root)
    store = FeatureStore(data_root, spec.name, expected_dim=spec.dim)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tasks = [name for name in task_names() if name in model.tasks] if task == "all" else [task]
    results: dict[str, Any] = {}
    for name in tasks:
        submission = out / f"{name}.json"
        if force or not submission.exists():
            _run_task(name, model, protocol, layout, split, spec, store, submission,
                      batch_size=lta_batch_size if name == "lta" and authors_batched_lta else batch_size,
                      authors_batched_lta=authors_batched_lta, seed=seed, progress=progress, device=target,
                      precision=precision)
        labels_file = EVALUATORS.get(name).labels_file
        results[name] = evaluate_files(name, protocol, annotation_path(layout, name, split), submission,
                                       labels=labels_file(layout) if labels_file is not None else None)
    metrics_path = out / METRICS_FILE
    merged = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    merged.update(results)
    write_json_atomic(metrics_path, merged, indent=2)
    return results


def _run_task(task: str, model: ModelBundle, protocol: str, layout: Ego4dLayout, split: str, spec: FeatureSpec,
              store: FeatureStore, submission: Path, *, batch_size: int, authors_batched_lta: bool, seed: int,
              progress: bool, device: torch.device, precision: str) -> None:
    samples: Sequence[Any] = SAMPLE_BUILDERS.get(task)(layout, split, spec, protocol=protocol,  # type: ignore[arg-type]
                                                       has_features=store.has)
    dataset = TaskDataset(samples, store, mq_pad_rows=AUTHORS_PAD_ROWS if protocol == "hier-egopack" else None)
    predictions = PREDICTION_WRITERS.get(task)(ReplayContext(task, model, protocol, layout, seed, authors_batched_lta))
    head = model.head(task)
    if isinstance(head, LTATask):
        original = head.config
        head.config = replace(original, authors_batched_graph=authors_batched_lta)
    try:
        with torch.no_grad(), tqdm(total=len(dataset), desc=f"replay {task}", unit="sample",
                                   disable=not progress) as bar:
            for batch in batch_loader(dataset, batch_size):
                predictions.add(batch, _outputs(model, task, batch, device, precision))
                bar.update(batch.num_videos)
    finally:
        if isinstance(head, LTATask):
            head.config = original
    predictions.write(submission)


def _outputs(model: ModelBundle, task: str, batch: ModelBatch, device: torch.device, precision: str) -> Any:
    """The model outputs of one batch, computed on ``device`` (batch tensors moved there) and brought back to the
    CPU as float32; the heads under autocast unless ``precision`` is ``float32``."""
    videos = move_tensors(batch.videos, device)
    inputs = move_tensors(batch.inputs, device)
    if precision == "float32":
        outputs = model.run(task, videos, inputs)
    else:
        graphs = next(iter(model.graphs(videos, [task]).values()))
        with autocast(device, precision):
            outputs = model.forward_graphs(task, graphs, inputs)
    return move_tensors(outputs, torch.device("cpu"), float32=True)
