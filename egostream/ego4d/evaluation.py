"""Score a submission file against an Ego4D annotation file (the ``egostream eval`` command).

:func:`evaluate_files` reads the ground truth with :mod:`egostream.ego4d.annotations` and the benchmark-protocol
builders of :mod:`egostream.ego4d.protocol` (no feature file is opened), reads the predictions with
:mod:`egostream.ego4d.submission`, aligns them to the ground-truth samples by key and calls the metric of the task
from :mod:`egostream.ego4d.metrics`.

Which samples a file must cover (a missing or extra key raises :class:`~egostream.errors.PredictionCountError`,
with the counts, under both protocols):

``ar``   every action of ``fho_lta_{split}.json``, key ``<clip_uid>_<action_idx>``.
``lta``  every forecasting window of the protocol, key ``<clip_uid>_<last observed action_idx>``. The window count
         differs: ``hier-egopack`` drops each clip's last window (see :mod:`egostream.ego4d.protocol.lta`), so a file
         made for one protocol has one extra or missing key per clip under the other.
``oscc`` every sample (``unique_id``) of ``fho_oscc-pnr_{split}.json``.
``pnr``  every sample with ``state_change: true`` must be present; entries for the file's other samples are accepted
         and ignored (the challenge file lists every ``unique_id``), any other ``unique_id`` is extra.
A task not listed here registers its own evaluator in ``EVALUATORS`` (see :class:`TaskEvaluator`); the annotation
file of every task is the one its task class names (``annotation_file``).

``mq``   the official evaluator's rule under both protocols (EGO4D/episodic-memory@5275b95:MQ/Evaluation/ego4d/
         eval_detection.py::compute_average_precision_detection): an evaluated clip missing from the file counts as
         a clip without predictions, predictions on clips outside the ground truth are false positives. The counts
         are reported as ``n_clips_without_predictions`` and ``n_extra_clips``; nothing is raised. Detection metrics
         use ``detect_results``; under ``official`` the retrieval recall uses ``retrieve_results``.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from egostream.ego4d.annotations import (
    StateChangeSample,
    read_lta_annotations,
    read_moments_annotations,
    read_state_change_annotations,
)
from egostream.ego4d.features import FeatureSpec
from egostream.ego4d.layout import Ego4dLayout
from egostream.ego4d.metrics import ar_metrics, load_mq_labels, lta_metrics, mq_metrics, oscc_metrics, pnr_metrics
from egostream.ego4d.protocol import build_ar_samples, build_lta_samples, primary_moments
from egostream.ego4d.submission import (
    Moment,
    read_ar_submission,
    read_lta_submission,
    read_mq_submission,
    read_oscc_submission,
    read_pnr_submission,
    sample_key,
)
from egostream.ego4d.synthetic import vocabulary_path
from egostream.ego4d.taxonomy import LTA_V1_NUM_NOUNS, LTA_V1_NUM_VERBS, load_lta_taxonomy, unquote_mq_label
from egostream.errors import InputError, PredictionCountError
from egostream.registry import Registry
from egostream.tasks.base import task_class, task_names

__all__ = ["PROTOCOLS", "EVALUATORS", "TaskEvaluator", "evaluate_files", "split_of", "find_mq_labels"]

PROTOCOLS = ("hier-egopack", "official")

# Samples are built from annotations only; the feature grid (16 frames at 30 fps) matters only for feature windows.
_ANNOTATION_ONLY_SPEC = FeatureSpec("annotations-only")


def split_of(annotations: Path) -> str:
    """The split in an annotation file name ``<stem>_<split>.json`` of a registered task's stem
    (``fho_lta_val.json`` -> ``val``); ``val`` if there is none."""
    stem = annotations.name.removesuffix(".json")
    for prefix in sorted({task_class(name).annotation_file + "_" for name in task_names()}, key=len, reverse=True):
        if stem.startswith(prefix):
            return stem[len(prefix):]
    return "val"


def find_mq_labels(annotations: Path) -> Path:
    """``mq_labels.tsv`` next to the annotations, else one folder up (the authors' place), else the packaged one."""
    for candidate in (annotations.parent / "mq_labels.tsv", annotations.parent.parent / "mq_labels.tsv"):
        if candidate.is_file():
            return candidate
    return vocabulary_path("mq_labels.tsv")


def _aligned(predictions: Mapping[str, Any], expected: Sequence[str], path: Path,
             tolerated: frozenset[str] = frozenset()) -> list[Any]:
    """Predictions in the order of ``expected`` keys; missing or extra keys raise PredictionCountError."""
    missing = [key for key in expected if key not in predictions]
    expected_set = set(expected)
    extra = [key for key in predictions if key not in expected_set and key not in tolerated]
    if missing or extra:
        raise PredictionCountError(path, None, missing, extra)
    return [predictions[key] for key in expected]


def _evaluate_ar(protocol: str, annotations: Path, predictions: Path) -> dict[str, Any]:
    taxonomy = load_lta_taxonomy(vocabulary_path("fho_lta_taxonomy.json"), (LTA_V1_NUM_VERBS, LTA_V1_NUM_NOUNS))
    samples = build_ar_samples(read_lta_annotations(annotations, taxonomy), _ANNOTATION_ONLY_SPEC,
                               split_of(annotations))
    keys = [sample_key(sample.clip_uid, idx) for sample in samples for idx in sample.action_idx]
    scores = _aligned(read_ar_submission(predictions, (len(taxonomy.verbs), len(taxonomy.nouns))), keys,
                      predictions)
    verb_labels = np.concatenate([sample.verb_labels.numpy() for sample in samples])
    noun_labels = np.concatenate([sample.noun_labels.numpy() for sample in samples])
    return ar_metrics(np.stack([s.verb for s in scores]), verb_labels, np.stack([s.noun for s in scores]),
                      noun_labels, protocol=protocol)


def _evaluate_lta(protocol: str, annotations: Path, predictions: Path) -> dict[str, Any]:
    taxonomy = load_lta_taxonomy(vocabulary_path("fho_lta_taxonomy.json"), (LTA_V1_NUM_VERBS, LTA_V1_NUM_NOUNS))
    samples = build_lta_samples(read_lta_annotations(annotations), _ANNOTATION_ONLY_SPEC, split_of(annotations),
                                protocol=protocol)  # type: ignore[arg-type]
    if not samples:
        raise InputError(annotations, "clips", "no clip has enough actions for one forecasting window")
    forecasts = _aligned(read_lta_submission(predictions, (len(taxonomy.verbs), len(taxonomy.nouns))),
                         [sample.key for sample in samples], predictions)
    # The submission holds [K, Z] per window; the metric takes [N, Z, K].
    verb_preds = np.stack([forecast.verb.T for forecast in forecasts])
    noun_preds = np.stack([forecast.noun.T for forecast in forecasts])
    return lta_metrics(verb_preds, np.stack([s.future_verb_labels.numpy() for s in samples]),
                       noun_preds, np.stack([s.future_noun_labels.numpy() for s in samples]), protocol=protocol)


def _labelled_state_samples(annotations: Path) -> list[StateChangeSample]:
    samples = list(read_state_change_annotations(annotations).samples)
    for index, sample in enumerate(samples):
        if sample.state_change is None:
            raise InputError(annotations, f"clips[{index}].state_change", "missing field (an unlabelled split "
                                                                          "cannot be evaluated)")
    return samples


def _evaluate_oscc(protocol: str, annotations: Path, predictions: Path) -> dict[str, Any]:
    samples = _labelled_state_samples(annotations)
    decisions = _aligned(read_oscc_submission(predictions), [s.unique_id for s in samples], predictions)
    return oscc_metrics(np.array(decisions, dtype=np.int64),
                        np.array([int(bool(s.state_change)) for s in samples], dtype=np.int64), protocol=protocol)


def _evaluate_pnr(protocol: str, annotations: Path, predictions: Path) -> dict[str, Any]:
    samples = _labelled_state_samples(annotations)
    positives = [sample for sample in samples if sample.state_change]
    frames = _aligned(read_pnr_submission(predictions), [s.unique_id for s in positives], predictions,
                      tolerated=frozenset(s.unique_id for s in samples))
    return pnr_metrics([asdict(sample) for sample in positives], predicted_frames=frames, protocol=protocol)


def _moment_rows(moments: Sequence[Moment]) -> list[dict[str, Any]]:
    return [{"label": m.label, "score": m.score, "segment": [m.start_s, m.end_s]} for m in moments]


def _evaluate_mq(protocol: str, annotations: Path, predictions: Path, labels: Path | None) -> dict[str, Any]:
    labels_path = labels if labels is not None else find_mq_labels(annotations)
    label_ids = load_mq_labels(labels_path, strip_quotes=protocol == "hier-egopack")
    moments = read_moments_annotations(annotations)
    # The official ground-truth layout (EGO4D/episodic-memory@5275b95:MQ/Convert_annotation.py): clips without
    # primary moments are left out, times in seconds from the clip start; every clip of the file is evaluated.
    ground_truth = {}
    for video in moments.videos:
        for clip in video.clips:
            kept = primary_moments(clip, protocol)  # type: ignore[arg-type]
            if kept:
                ground_truth[clip.clip_uid] = {
                    "subset": "val",
                    "duration": clip.video_end_sec - clip.video_start_sec,
                    "annotations": [{"label": m.label, "start_time": m.clip_start_sec, "end_time": m.clip_end_sec}
                                    for m in kept],
                }
    if not ground_truth:
        raise InputError(annotations, "videos", "no clip has a primary moment")
    known = {unquote_mq_label(label) for label in label_ids}
    for clip_uid, clip_truth in ground_truth.items():
        for label in (annotation["label"] for annotation in clip_truth["annotations"]):
            if unquote_mq_label(label) not in known:
                raise InputError(labels_path, None, f"no class {label!r} (a label of clip {clip_uid} in "
                                                    f"{annotations.name}); {len(label_ids)} classes in the file")
    submission = read_mq_submission(predictions)

    def completed(per_clip: Mapping[str, Sequence[Moment]]) -> dict[str, list[dict[str, Any]]]:
        rows = {clip_uid: _moment_rows(found) for clip_uid, found in per_clip.items()}
        return {**{clip_uid: [] for clip_uid in ground_truth if clip_uid not in rows}, **rows}

    metrics = mq_metrics(ground_truth, completed(submission.detections), protocol=protocol, label_ids=label_ids,
                         subsets=("val",))
    if protocol == "official" and submission.retrievals != submission.detections:
        metrics["retrieval"] = mq_metrics(ground_truth, completed(submission.retrievals), protocol=protocol,
                                          subsets=("val",))["retrieval"]
    metrics["n_clips"] = len(ground_truth)
    metrics["n_clips_without_predictions"] = sum(clip_uid not in submission.detections for clip_uid in ground_truth)
    metrics["n_extra_clips"] = sum(clip_uid not in ground_truth for clip_uid in submission.detections)
    metrics["labels_file"] = str(labels_path)
    return metrics


@dataclass(frozen=True)
class TaskEvaluator:
    """A task's evaluator hook: ``evaluate(protocol, annotations, predictions, labels) -> metrics``; ``labels_file``
    gives the class-name file of a data folder for the tasks that have one (``labels`` is then that file or None for
    the default, else always None)."""

    evaluate: Callable[[str, Path, Path, Path | None], dict[str, Any]]
    labels_file: Callable[[Ego4dLayout], Path] | None = None


EVALUATORS: Registry[TaskEvaluator] = Registry("evaluator")


def _without_labels(evaluate: Callable[[str, Path, Path], dict[str, Any]]) -> TaskEvaluator:
    """The hook of a task that has no class-name file."""
    return TaskEvaluator(lambda protocol, annotations, predictions, _labels: evaluate(protocol, annotations,
                                                                                      predictions))


EVALUATORS.register("ar")(_without_labels(_evaluate_ar))
EVALUATORS.register("lta")(_without_labels(_evaluate_lta))
EVALUATORS.register("oscc")(_without_labels(_evaluate_oscc))
EVALUATORS.register("pnr")(_without_labels(_evaluate_pnr))
EVALUATORS.register("mq")(TaskEvaluator(_evaluate_mq, Ego4dLayout.mq_labels))


def evaluate_files(task: str, protocol: str, annotations: str | PathLike[str], predictions: str | PathLike[str],
                   labels: str | PathLike[str] | None = None) -> dict[str, Any]:
    """Metrics of the ``predictions`` file against the ``annotations`` file (see the module docstring).

    Args:
        task: ``ar``, ``lta``, ``oscc``, ``pnr``, ``mq`` or a plug-in task with an evaluator in ``EVALUATORS``.
        protocol: ``official`` (the Ego4D evaluators) or ``hier-egopack`` (the authors' meters).
        annotations: ``fho_lta_{split}.json`` (ar, lta), ``fho_oscc-pnr_{split}.json`` (oscc, pnr) or
            ``moments_{split}.json`` (mq).
        predictions: the submission file (formats in :mod:`egostream.ego4d.submission`).
        labels: MQ only, ``mq_labels.tsv`` (class-id order); default :func:`find_mq_labels`.

    Returns:
        ``{"task", "protocol", "annotations", "predictions", **metrics}``, JSON-able; the metric keys are those of the
        task's function in :mod:`egostream.ego4d.metrics`.
    """
    if task not in EVALUATORS:
        known = [name for name in task_names() if name in EVALUATORS]
        raise InputError(None, "task", f"unknown task {task!r}; one of {', '.join(known)}")
    if protocol not in PROTOCOLS:
        raise InputError(None, "protocol", f"unknown protocol {protocol!r}; one of {', '.join(PROTOCOLS)}")
    annotations, predictions = Path(annotations), Path(predictions)
    labels_path = None if labels is None else Path(labels)
    metrics = EVALUATORS.get(task).evaluate(protocol, annotations, predictions, labels_path)
    return {"task": task, "protocol": protocol, "annotations": str(annotations), "predictions": str(predictions),
            **metrics}
