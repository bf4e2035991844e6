"""Moment Queries (MQ) metrics: detection mAP, recall and per-class AP under three protocols.

``protocol`` picks the evaluator being reproduced (golden files: ``shared/fixtures/ego4d/golden/mq_*``):

``"official"``
    EGO4D/episodic-memory@5275b95:MQ/Evaluation/ego4d/eval_detection.py::ANETdetection.evaluate for detection
    (tIoU 0.1, 0.2, 0.3, 0.4, 0.5 as typed in MQ/Utils/opts.py; match needs tIoU >= t; classes in first-appearance
    order of the evaluated ground truth; every annotation row kept) and
    MQ/Evaluation/ego4d/get_retrieval_performance.py::Moment_Retrieval.evaluate for retrieval recall (see
    :mod:`.mq_retrieval`).
``"hier-egopack"``
    sapeirone/hier-egopack@4fff4e5:utils/meters/ego4d/mq.py::ANETdetection.evaluate, the authors' copy of
    ActionFormer's evaluator, given the evaluated ground-truth rows as they are: thresholds ``np.linspace(0.1, 0.5,
    5)`` (the third is 0.30000000000000004, so a tIoU of exactly 0.3 fails it), classes ordered by label id, top-1x
    and top-5x recall per class and their mean ``mRecall``. The meter hands the evaluator float32 tensors, so
    prediction segments and scores are rounded to float32 first.
``"actionformer"``
    happyharrycn/actionformer_release@61ea7eb:libs/utils/metrics.py::ANETdetection with the ground truth read by
    ``load_gt_seg_from_json``: the same evaluator, after ``remove_duplicate_annotations`` drops instances shorter than
    1e-3 s and same-label instances whose start and end are both within 1e-3 s of an earlier kept one.

Label ids (``hier-egopack``, ``actionformer``) come from ``mq_labels.tsv`` (:func:`load_mq_labels`). Seven labels carry
literal double quotes in the Ego4D files: ActionFormer keeps them (``strip_quotes=False``), Hier-EgoPack strips them
from the label map and from the annotations (``strip_quotes=True``). Lookups here try the label as given, then
without its surrounding quotes, so either map works with either spelling; results are keyed by the ground-truth label
as given.

Not reproduced on purpose:

* ActionFormer/Hier-EgoPack ``ANETdetection.evaluate`` relabels the caller's prediction DataFrame in place
  (``preds['label'] = preds['label'].replace(...)``), so evaluating the same DataFrame twice remaps labels twice and
  gives wrong AP. Inputs here are never modified.
* Those evaluators keep the raw id of a predicted label without ground truth, which can collide with a remapped
  class column. Such predictions are dropped here (as the official evaluator does); they never match anything.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from typing import Any

import numpy as np

from egostream.ego4d.metrics.mq_detection import average_precision_per_class, group_rows, topkx_recall_per_class
from egostream.ego4d.metrics.mq_retrieval import (OFFICIAL_RETRIEVAL_RANKS, OFFICIAL_RETRIEVAL_TIOUS,
                                                  retrieval_recall)
from egostream.ego4d.taxonomy import load_mq_labels as load_mq_label_map
from egostream.ego4d.taxonomy import unquote_mq_label
from egostream.errors import InputError, PredictionCountError

__all__ = ["MQ_PROTOCOLS", "OFFICIAL_MQ_TIOU_THRESHOLDS", "ACTIONFORMER_MQ_TIOU_THRESHOLDS", "ACTIONFORMER_TOP_K",
           "load_mq_labels", "mq_metrics"]

MQ_PROTOCOLS: tuple[str, ...] = ("official", "hier-egopack", "actionformer")

#: EGO4D/episodic-memory@5275b95:MQ/Utils/opts.py (``--tIoU_thr`` default, typed as decimal literals).
OFFICIAL_MQ_TIOU_THRESHOLDS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5)
#: happyharrycn/actionformer_release@61ea7eb:libs/utils/metrics.py::ANETdetection default, ``np.linspace(0.1, 0.5, 5)``.
ACTIONFORMER_MQ_TIOU_THRESHOLDS: tuple[float, ...] = tuple(float(t) for t in np.linspace(0.1, 0.5, 5))
#: ActionFormer's top-kx recall multipliers (``Recall@1x``, ``Recall@5x``).
ACTIONFORMER_TOP_K: tuple[int, ...] = (1, 5)

#: happyharrycn/actionformer_release@61ea7eb:libs/utils/metrics.py::remove_duplicate_annotations ``tol`` (seconds).
_DUPLICATE_TOLERANCE_S = 1e-3


def load_mq_labels(path: str | PathLike[str], *, strip_quotes: bool = False) -> dict[str, int]:
    """Read ``mq_labels.tsv`` (one ``NNN<TAB>label`` per line, ids 0..n-1) into ``{label: id}``.

    Args:
        path: the label file (parsed by :func:`egostream.ego4d.taxonomy.load_mq_labels`).
        strip_quotes: remove the literal double quotes around a label. ``False`` (protocol ``actionformer``)
            reproduces ActionFormer (happyharrycn/actionformer_release@61ea7eb:tools/convert_ego4d_trainval.py,
            ``line.strip().split('\\t')``), matching the raw Ego4D annotation labels; ``True`` (protocol
            ``hier-egopack``) reproduces Hier-EgoPack (sapeirone/hier-egopack@4fff4e5:data/ego4d/MQ.py, pandas
            ``read_csv(sep="\\t", header=None)``, which unquotes). :func:`mq_metrics` accepts either map.

    Raises:
        InputError: ``(path, "line N", ...)`` for a line that is not ``integer<TAB>label``, or a repeated id.
    """
    label_map = load_mq_label_map(path, expected_num_classes=None)
    names = label_map.names if strip_quotes else label_map.raw_names
    return {name: class_id for class_id, name in enumerate(names)}


def mq_metrics(ground_truth: Mapping[str, Mapping[str, Any]], predictions: Mapping[str, Sequence[Mapping[str, Any]]],
               *, protocol: str, label_ids: Mapping[str, int] | None = None,
               subsets: Sequence[str] = ("val", "validation")) -> dict[str, Any]:
    """Moment Queries metrics of ``predictions`` against ``ground_truth``.

    Args:
        ground_truth: the official format ``{clip_uid: {"subset", "duration", "annotations": [{"label",
            "start_time", "end_time"}]}}``, times in seconds from the clip start. Only clips whose ``subset`` is in
            ``subsets`` are evaluated (the official code tests ``subset in "validation"``, a substring test that the
            default ``subsets`` covers for real Ego4D files).
        predictions: ``{clip_uid: [{"label", "score", "segment": [start_s, end_s]}]}`` in file order (the official
            retrieval recall depends on it). Every evaluated clip must be present (an empty list if it has no
            prediction: the official retrieval code fails otherwise); predictions on other clips are false positives.
        protocol: one of :data:`MQ_PROTOCOLS` (see the module docstring).
        label_ids: ``{label: id}`` from :func:`load_mq_labels`, for ``hier-egopack`` and ``actionformer`` (class order
            and ``label_id``). ``None`` numbers the ground-truth labels in sorted order instead; the official protocol
            ignores it.
        subsets: evaluated ``subset`` values.

    Returns:
        All AP and recall values are fractions in [0, 1] (never percentages); lists follow the threshold order.

        * ``protocol``; ``tiou_thresholds``: list[float];
        * ``classes``: ground-truth labels in the evaluator's column order (official: first appearance; others:
          ascending label id);
        * ``ap_per_class``: ``{label: [AP per threshold]}`` (0 for a class without predictions);
        * ``mAP``: mean over classes per threshold; ``average_mAP``: mean of ``mAP``;
        * ``n_gt`` (evaluated instances, after duplicate removal for ``actionformer``), ``n_gt_per_class``;
        * ``n_predictions_used``: predictions whose label has ground truth; ``predicted_labels_not_in_gt``: sorted;
        * ``official`` only: ``retrieval``: ``{"tious": [0.3, 0.5, 0.7], "ranks": [1..5], "recall": [[tiou][rank]]}``;
        * ``hier-egopack`` / ``actionformer``: ``top_k`` ([1, 5]), ``recall_per_class``
          (``{label: [[threshold][k]]}``), ``mRecall`` (``[[threshold][k]]``, mean over classes), ``label_id``.

    Raises:
        ValueError: unknown ``protocol``.
        InputError: malformed ground truth or predictions, e.g. ``predictions[<clip>][i].segment``.
        PredictionCountError: an evaluated clip is missing from ``predictions``.
    """
    if protocol not in MQ_PROTOCOLS:
        raise ValueError(f"unknown MQ protocol {protocol!r}; known protocols: {', '.join(MQ_PROTOCOLS)}")
    gt = _read_ground_truth(ground_truth, subsets)
    preds = _read_predictions(predictions)
    missing = [clip_uid for clip_uid in gt.clip_uids if clip_uid not in predictions]
    if missing:
        raise PredictionCountError(None, "predictions", missing, [])
    if protocol == "official":
        return _official(gt, preds)
    return _actionformer_family(gt, preds, protocol, label_ids)


@dataclass(frozen=True)
class _Instances:
    """Flat segments of several clips: ``clip`` int64 [N] indexes ``clip_uids``; ``segments`` float64 [N, 2] in
    seconds; ``labels`` [N]; ``scores`` float64 [N] (predictions only, else empty)."""

    clip_uids: list[str]
    clip: np.ndarray
    segments: np.ndarray
    labels: list[str]
    scores: np.ndarray


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _read_ground_truth(ground_truth: Mapping[str, Mapping[str, Any]], subsets: Sequence[str]) -> _Instances:
    """The evaluated annotation rows, in clip order then annotation order."""
    if not isinstance(ground_truth, Mapping):
        raise InputError(None, "ground_truth", "expected a mapping {clip_uid: clip}")
    clip_uids: list[str] = []
    clip: list[int] = []
    segments: list[tuple[float, float]] = []
    labels: list[str] = []
    for clip_uid, entry in ground_truth.items():
        where = f"ground_truth[{clip_uid}]"
        if not isinstance(entry, Mapping) or "subset" not in entry:
            raise InputError(None, f"{where}.subset", "missing (every clip needs a subset)")
        if entry["subset"] not in subsets:
            continue
        # The official retrieval evaluator keys clips by the `clip_id` field, the detection evaluator by the key;
        # EGO4D/episodic-memory@5275b95:MQ/Convert_annotation.py writes both from the clip uid.
        if entry.get("clip_id", clip_uid) != clip_uid:
            raise InputError(None, f"{where}.clip_id", f"{entry['clip_id']!r} differs from the key")
        annotations = entry.get("annotations")
        if not isinstance(annotations, Sequence) or isinstance(annotations, (str, bytes)):
            raise InputError(None, f"{where}.annotations", "expected a list of annotations")
        code = len(clip_uids)
        clip_uids.append(clip_uid)
        for i, annotation in enumerate(annotations):
            label = annotation.get("label") if isinstance(annotation, Mapping) else None
            if not isinstance(label, str):
                raise InputError(None, f"{where}.annotations[{i}].label", "missing or not a string")
            start, end = annotation.get("start_time"), annotation.get("end_time")
            for name, value in (("start_time", start), ("end_time", end)):
                if not _is_number(value) or not math.isfinite(value):
                    raise InputError(None, f"{where}.annotations[{i}].{name}", f"expected seconds, got {value!r}")
            if end < start:
                raise InputError(None, f"{where}.annotations[{i}].end_time", f"ends before it starts ({start}, {end})")
            clip.append(code)
            segments.append((float(start), float(end)))
            labels.append(label)
    if not segments:
        raise InputError(None, "ground_truth", f"no annotation in a clip of subset {tuple(subsets)}")
    return _Instances(clip_uids, np.asarray(clip, dtype=np.int64), np.asarray(segments, dtype=np.float64), labels,
                      np.zeros(0))


def _prediction_fault(row: object) -> tuple[str, str] | None:
    """(field suffix, message) of the first malformed field of one prediction, or None if it is well formed."""
    if not isinstance(row, Mapping):
        return "", f"expected a mapping with label, score and segment, got {type(row).__name__}"
    if not isinstance(row.get("label"), str):
        return ".label", "missing or not a string"
    score = row.get("score")
    if not _is_number(score) or not math.isfinite(score):
        return ".score", f"expected a finite number, got {score!r}"
    segment = row.get("segment")
    if (not isinstance(segment, (Sequence, np.ndarray)) or isinstance(segment, (str, bytes)) or len(segment) != 2
            or not all(_is_number(value) and math.isfinite(value) for value in segment)):
        return ".segment", f"expected [start_s, end_s], got {segment!r}"
    if segment[1] < segment[0]:
        return ".segment", f"ends before it starts {list(segment)!r}"
    return None


def _read_predictions(predictions: Mapping[str, Sequence[Mapping[str, Any]]]) -> _Instances:
    """All predictions, in clip order then file order. Rows are read in one pass and checked as arrays; only when a
    check fails are the rows re-read one by one, to name the first bad field."""
    if not isinstance(predictions, Mapping):
        raise InputError(None, "predictions", "expected a mapping {clip_uid: [prediction, ...]}")
    clip_uids = list(predictions)
    counts: list[int] = []
    rows: list[Mapping[str, Any]] = []
    for clip_uid, clip_rows in predictions.items():
        if not isinstance(clip_rows, Sequence) or isinstance(clip_rows, (str, bytes)):
            raise InputError(None, f"predictions[{clip_uid}]", "expected a list of predictions")
        counts.append(len(clip_rows))
        rows.extend(clip_rows)
    try:
        labels = [row["label"] for row in rows]
        scores = np.array([row["score"] for row in rows])
        segments = np.array([row["segment"] for row in rows]) if rows else np.zeros((0, 2))
        well_formed = (scores.dtype.kind in "iuf" and segments.dtype.kind in "iuf" and scores.ndim == 1
                       and segments.ndim == 2 and segments.shape[1] == 2
                       and bool(np.isfinite(scores).all() and np.isfinite(segments).all()
                                and (segments[:, 1] >= segments[:, 0]).all())
                       and all(isinstance(label, str) for label in labels))
    except (KeyError, TypeError, ValueError, IndexError):
        well_formed = False
    if not well_formed:
        for flat_index, row in enumerate(rows):
            fault = _prediction_fault(row)
            if fault is not None:
                code = int(np.searchsorted(np.cumsum(counts), flat_index, side="right"))
                field = f"predictions[{clip_uids[code]}][{flat_index - sum(counts[:code])}]{fault[0]}"
                raise InputError(None, field, fault[1])
        raise InputError(None, "predictions", "expected {clip_uid: [{label, score, segment}, ...]}")
    clip = np.repeat(np.arange(len(clip_uids), dtype=np.int64), counts)
    return _Instances(clip_uids, clip, segments.astype(np.float64), labels, scores.astype(np.float64))


def _clip_codes(gt: _Instances, preds: _Instances) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth and prediction clip indices in one shared code space (equal codes = same clip uid)."""
    code_of = {clip_uid: code for code, clip_uid in enumerate(gt.clip_uids)}
    for clip_uid in preds.clip_uids:
        code_of.setdefault(clip_uid, len(code_of))
    pred_codes = np.asarray([code_of[clip_uid] for clip_uid in preds.clip_uids], dtype=np.int64)
    return gt.clip, pred_codes[preds.clip]


def _class_columns(labels: Iterable[str], column_of: Mapping[str, int]) -> np.ndarray:
    return np.asarray([column_of.get(label, -1) for label in labels], dtype=np.int64)


def _detection_summary(classes: list[str], ap: np.ndarray, gt_column: np.ndarray, pred_column: np.ndarray,
                       pred_labels: Sequence[str], tiou_thresholds: Sequence[float]) -> dict[str, Any]:
    """The keys every protocol returns; ``ap`` is [T, C] in ``classes`` order."""
    mean_ap = ap.mean(axis=1)
    counts = np.bincount(gt_column, minlength=len(classes))
    used = pred_column >= 0
    return {
        "tiou_thresholds": list(tiou_thresholds),
        "classes": classes,
        "ap_per_class": {label: ap[:, column].tolist() for column, label in enumerate(classes)},
        "mAP": mean_ap.tolist(),
        "average_mAP": float(mean_ap.mean()),
        "n_gt": int(len(gt_column)),
        "n_gt_per_class": {label: int(counts[column]) for column, label in enumerate(classes)},
        "n_predictions_used": int(used.sum()),
        "predicted_labels_not_in_gt": sorted({label for label, ok in zip(pred_labels, used) if not ok}),
    }


def _official(gt: _Instances, preds: _Instances) -> dict[str, Any]:
    # Columns in first-appearance order of the evaluated ground truth, labels matched as exact strings; predicted labels
    # without ground truth are dropped (eval_detection.py::ANETdetection._import_ground_truth / _import_prediction).
    column_of: dict[str, int] = {}
    for label in gt.labels:
        column_of.setdefault(label, len(column_of))
    classes = list(column_of)
    gt_column = _class_columns(gt.labels, column_of)
    pred_column = _class_columns(preds.labels, column_of)
    gt_clip, pred_clip = _clip_codes(gt, preds)
    ap = average_precision_per_class(gt_clip, gt.segments, gt_column, pred_clip, preds.segments, preds.scores,
                                     pred_column, len(classes), OFFICIAL_MQ_TIOU_THRESHOLDS)
    result = {"protocol": "official",
              **_detection_summary(classes, ap, gt_column, pred_column, preds.labels, OFFICIAL_MQ_TIOU_THRESHOLDS)}
    result["retrieval"] = {"tious": list(OFFICIAL_RETRIEVAL_TIOUS), "ranks": list(OFFICIAL_RETRIEVAL_RANKS),
                           "recall": retrieval_recall(_retrieval_groups(gt, preds)).tolist()}
    return result


def _retrieval_groups(gt: _Instances, preds: _Instances) -> list[tuple[np.ndarray, np.ndarray]]:
    """(ground-truth segments, that clip's predictions of the label in file order) per evaluated (clip, label)."""
    gt_clip, pred_clip = _clip_codes(gt, preds)
    label_code: dict[str, int] = {}
    for label in (*gt.labels, *preds.labels):
        label_code.setdefault(label, len(label_code))
    n_labels = len(label_code)
    gt_key = gt_clip * n_labels + _class_columns(gt.labels, label_code)
    pred_key = pred_clip * n_labels + _class_columns(preds.labels, label_code)
    pred_order = np.argsort(pred_key, kind="stable")
    sorted_pred_key = pred_key[pred_order]
    groups = []
    for key, gt_rows in group_rows(gt_key):
        first, last = np.searchsorted(sorted_pred_key, [key, key + 1])
        groups.append((gt.segments[gt_rows], preds.segments[pred_order[first:last]]))
    return groups


def _label_id_lookup(label_ids: Mapping[str, int] | None, gt_labels: Sequence[str]) -> dict[str, int]:
    """Label -> id for the ActionFormer evaluators, accepting quoted and unquoted spellings."""
    if label_ids is None:
        return {label: label_id for label_id, label in enumerate(sorted(set(gt_labels)))}
    lookup = {unquote_mq_label(label): int(label_id) for label, label_id in label_ids.items()}
    lookup.update({label: int(label_id) for label, label_id in label_ids.items()})
    return lookup


def _find_label_id(lookup: Mapping[str, int], label: str) -> int | None:
    label_id = lookup.get(label)
    return lookup.get(unquote_mq_label(label)) if label_id is None else label_id


def _kept_after_duplicate_removal(gt: _Instances, gt_label_id: np.ndarray) -> np.ndarray:
    """bool [G]: happyharrycn/actionformer_release@61ea7eb:libs/utils/metrics.py::remove_duplicate_annotations, per
    clip in annotation order: drop an instance shorter than 1e-3 s, or one with the same label id whose start and end
    are both within 1e-3 s of an instance kept before it."""
    keep = np.zeros(len(gt.labels), dtype=bool)
    kept_rows: dict[int, list[int]] = {}
    for row, (clip, (start, end), label_id) in enumerate(zip(gt.clip.tolist(), gt.segments.tolist(),
                                                            gt_label_id.tolist())):
        if end - start < _DUPLICATE_TOLERANCE_S:
            continue
        earlier = kept_rows.setdefault(clip, [])
        if any(gt_label_id[other] == label_id and abs(start - gt.segments[other, 0]) <= _DUPLICATE_TOLERANCE_S
               and abs(end - gt.segments[other, 1]) <= _DUPLICATE_TOLERANCE_S for other in earlier):
            continue
        earlier.append(row)
        keep[row] = True
    return keep


def _select_rows(instances: _Instances, rows: np.ndarray) -> _Instances:
    return _Instances(instances.clip_uids, instances.clip[rows], instances.segments[rows],
                      [instances.labels[row] for row in np.flatnonzero(rows)], instances.scores)


def _actionformer_family(gt: _Instances, preds: _Instances, protocol: str,
                         label_ids: Mapping[str, int] | None) -> dict[str, Any]:
    lookup = _label_id_lookup(label_ids, gt.labels)
    gt_ids = []
    for row, label in enumerate(gt.labels):
        label_id = _find_label_id(lookup, label)
        if label_id is None:
            clip = int(gt.clip[row])
            annotation = row - int(np.searchsorted(gt.clip, clip))
            raise InputError(None, f"ground_truth[{gt.clip_uids[clip]}].annotations[{annotation}].label",
                             f"{label!r} is not in label_ids")
        gt_ids.append(label_id)
    gt_label_id = np.asarray(gt_ids, dtype=np.int64)
    if protocol == "actionformer":
        keep = _kept_after_duplicate_removal(gt, gt_label_id)
        if not keep.any():
            raise InputError(None, "ground_truth", "every annotation is shorter than 1e-3 s")
        gt, gt_label_id = _select_rows(gt, keep), gt_label_id[keep]
    else:
        # sapeirone/hier-egopack@4fff4e5:utils/meters/ego4d/mq.py::EvalMeter.__precompute_metrics passes float32
        # tensors (segments, scores) through `.tolist()`.
        preds = _Instances(preds.clip_uids, preds.clip, preds.segments.astype(np.float32).astype(np.float64),
                           preds.labels, preds.scores.astype(np.float32).astype(np.float64))
    # Columns = sorted ground-truth label ids (ANETdetection.__init__ activity_index); a column is named by the first
    # ground-truth label spelling with that id.
    name_of_id: dict[int, str] = {}
    for label, label_id in zip(gt.labels, gt_label_id.tolist()):
        name_of_id.setdefault(label_id, label)
    sorted_ids = sorted(name_of_id)
    column_of_id = {label_id: column for column, label_id in enumerate(sorted_ids)}
    classes = [name_of_id[label_id] for label_id in sorted_ids]
    gt_column = np.asarray([column_of_id[label_id] for label_id in gt_label_id.tolist()], dtype=np.int64)
    pred_column = np.asarray([column_of_id.get(_find_label_id(lookup, label), -1) for label in preds.labels],
                             dtype=np.int64)
    gt_clip, pred_clip = _clip_codes(gt, preds)
    arrays = (gt_clip, gt.segments, gt_column, pred_clip, preds.segments, preds.scores, pred_column, len(classes),
              ACTIONFORMER_MQ_TIOU_THRESHOLDS)
    ap = average_precision_per_class(*arrays)
    recall = topkx_recall_per_class(*arrays, ACTIONFORMER_TOP_K)
    return {
        "protocol": protocol,
        **_detection_summary(classes, ap, gt_column, pred_column, preds.labels, ACTIONFORMER_MQ_TIOU_THRESHOLDS),
        "top_k": list(ACTIONFORMER_TOP_K),
        "recall_per_class": {label: recall[:, :, column].tolist() for column, label in enumerate(classes)},
        "mRecall": recall.mean(axis=2).tolist(),
        "label_id": {label: label_id for label_id, label in zip(sorted_ids, classes)},
    }
