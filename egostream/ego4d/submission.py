"""Prediction files in the official Ego4D submission formats: writers (atomic) and validating readers.

Formats (one JSON document per file):

``ar``  ``{"<clip_uid>_<action_idx>": {"verb": [V scores], "noun": [N scores]}}``, one entry per annotated action,
    scores being logits or probabilities. Ego4D has no AR challenge file; this is egostream's format, laid out like
    the LTA one below.
``lta`` ``{"<clip_uid>_<last observed action_idx>": {"verb": [[Z ids] x K], "noun": [[Z ids] x K]}}``: K candidate
    sequences of Z future class ids (EGO4D/forecasting@38d1931:ego4d_forecasting/tasks/long_term_anticipation.py,
    ``test_epoch_end``; the key is built by ``Ego4dLongTermAnticipation``'s ``last_clip_ids``).
``oscc`` ``[{"unique_id": str, "state_change": bool}]``
    (EGO4D/hands-and-objects@0aea0a4:state-change-localization-classification/cnn-lstm/evaluate.py,
    ``generate_submission_file_cls``).
``pnr`` ``[{"unique_id": str, "pnr_frame": number}]``, ``pnr_frame`` counted in frames from the sample's
    ``parent_start_frame`` (same file, ``generate_submission_file``: ``(E - S) / 16 * k``, a float).
``mq``  ``{"version": "1.0", "challenge": "ego4d_moment_queries", "detect_results": {clip_uid: [moment]},
    "retrieve_results": {clip_uid: [moment]}}`` with ``moment = {"label", "score", "segment": [start_s, end_s]}``
    in seconds from the clip start (EGO4D/episodic-memory@5275b95:MQ/Merge_detection_retrieval.py). The reader also
    accepts one evaluator input file ``{"version", "results": {...}, "external_data": {}}``
    (MQ/Evaluation/ego4d/generate_detection.py); its ``results`` then serve as both detections and retrievals.

Readers raise :class:`egostream.errors.InputError` naming the file and the field, ``<key>.<field>`` (for list
formats the key is the entry's ``unique_id``, or ``[i]`` when that is unusable).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from egostream.ego4d.json_records import load_json
from egostream.errors import InputError
from egostream.io.atomic import write_json_atomic

__all__ = [
    "SUBMISSION_TASKS", "ActionScores", "ActionForecast", "Moment", "MQSubmission", "sample_key",
    "write_ar_submission", "read_ar_submission",
    "write_lta_submission", "read_lta_submission",
    "write_oscc_submission", "read_oscc_submission",
    "write_pnr_submission", "read_pnr_submission",
    "write_mq_submission", "read_mq_submission",
]

SUBMISSION_TASKS = ("ar", "lta", "oscc", "pnr", "mq")
MQ_CHALLENGE = "ego4d_moment_queries"
MQ_VERSION = "1.0"

T = TypeVar("T")


@dataclass(frozen=True)
class ActionScores:
    """AR scores of one action: float32 ``verb`` [V] and ``noun`` [N]."""

    verb: np.ndarray
    noun: np.ndarray


@dataclass(frozen=True)
class ActionForecast:
    """LTA forecast of one window: int64 ``verb`` and ``noun`` [K candidates, Z future steps]."""

    verb: np.ndarray
    noun: np.ndarray


@dataclass(frozen=True)
class Moment:
    """One MQ prediction: ``label`` (the class name as the annotations write it), ``score``, and the segment in
    seconds from the clip start."""

    label: str
    score: float
    start_s: float
    end_s: float


@dataclass(frozen=True)
class MQSubmission:
    """MQ predictions per clip uid, in file order: ``detections`` (detect_results) and ``retrievals``."""

    detections: dict[str, tuple[Moment, ...]]
    retrievals: dict[str, tuple[Moment, ...]]


def sample_key(clip_uid: str, action_idx: int) -> str:
    """``<clip_uid>_<action_idx>``: an AR action, or an LTA window by its last observed action."""
    return f"{clip_uid}_{action_idx}"


# ------------------------------------------------------------------------------------------------ writers

def write_ar_submission(path: str | PathLike[str], predictions: Mapping[str, ActionScores]) -> Path:
    """Write AR scores keyed by :func:`sample_key` (floats written exactly as their float32 values)."""
    return write_json_atomic(path, {key: {"verb": np.asarray(p.verb, np.float32).tolist(),
                                          "noun": np.asarray(p.noun, np.float32).tolist()}
                                    for key, p in predictions.items()})


def write_lta_submission(path: str | PathLike[str], predictions: Mapping[str, ActionForecast]) -> Path:
    """Write LTA forecasts keyed by :func:`sample_key` of the last observed action."""
    return write_json_atomic(path, {key: {"verb": np.asarray(p.verb, np.int64).tolist(),
                                          "noun": np.asarray(p.noun, np.int64).tolist()}
                                    for key, p in predictions.items()})


def write_oscc_submission(path: str | PathLike[str], predictions: Mapping[str, bool]) -> Path:
    """Write ``{unique_id: state_change}`` as the official list."""
    return write_json_atomic(path, [{"unique_id": uid, "state_change": bool(change)}
                                    for uid, change in predictions.items()])


def write_pnr_submission(path: str | PathLike[str], predictions: Mapping[str, float]) -> Path:
    """Write ``{unique_id: pnr_frame}`` (frames from ``parent_start_frame``) as the official list."""
    return write_json_atomic(path, [{"unique_id": uid, "pnr_frame": _finite(frame, uid)}
                                    for uid, frame in predictions.items()])


def write_mq_submission(path: str | PathLike[str], detections: Mapping[str, Sequence[Moment]],
                        retrievals: Mapping[str, Sequence[Moment]] | None = None) -> Path:
    """Write the MQ challenge file; ``retrievals`` defaults to ``detections``."""

    def results(per_clip: Mapping[str, Sequence[Moment]]) -> dict[str, list[dict[str, Any]]]:
        return {clip_uid: [{"label": m.label, "score": _finite(m.score, clip_uid),
                            "segment": [_finite(m.start_s, clip_uid), _finite(m.end_s, clip_uid)]}
                           for m in moments]
                for clip_uid, moments in per_clip.items()}

    return write_json_atomic(path, {"version": MQ_VERSION, "challenge": MQ_CHALLENGE,
                                    "detect_results": results(detections),
                                    "retrieve_results": results(detections if retrievals is None else retrievals)})


def _finite(value: float, key: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise InputError(None, key, f"cannot write a non-finite number ({value!r})")
    return number


# ------------------------------------------------------------------------------------------------ readers

def _load(path: str | PathLike[str]) -> tuple[Path, Any]:
    return Path(path), load_json(path)


def _expect(path: Path, field: str | None, value: Any, kind: type | tuple[type, ...], expected: str) -> Any:
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)) \
            or not isinstance(value, kind):
        raise InputError(path, field, f"expected {expected}, got {type(value).__name__} {value!r:.60}")
    return value


def _keyed_entries(path: Path, document: Any, fields: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """The ``{key: {field: ...}}`` object of AR/LTA files, each entry checked to hold ``fields``."""
    _expect(path, None, document, dict, "a JSON object keyed by sample")
    for key, entry in document.items():
        _expect(path, key, entry, dict, "an object")
        for name in fields:
            if name not in entry:
                raise InputError(path, f"{key}.{name}", "missing field")
    return document


#: Largest magnitude of a score (a finite float32) and of a class id (an int64); NaN fails both comparisons.
_LIMIT = {False: float(np.finfo(np.float32).max), True: int(np.iinfo(np.int64).max)}


def _numeric_array(path: Path, field: str, value: Any, ndim: int, integer: bool) -> np.ndarray:
    """A rectangular list (of lists) of numbers as float32, or int64 when ``integer``."""
    expected = "a list of lists" if ndim == 2 else "a list"
    _expect(path, field, value, list, expected)
    rows = value if ndim == 2 else [value]
    for index, row in enumerate(rows):
        row_field = f"{field}[{index}]" if ndim == 2 else field
        _expect(path, row_field, row, list, "a list")
        for position, item in enumerate(row):
            valid = (isinstance(item, int) if integer else isinstance(item, (int, float))) \
                and not isinstance(item, bool)
            if not valid or not -_LIMIT[integer] <= item <= _LIMIT[integer]:
                raise InputError(path, f"{row_field}[{position}]",
                                 f"expected {'a class id' if integer else 'a finite float32 number'}, "
                                 f"got {item!r:.40}")
        if len(row) != len(rows[0]):
            raise InputError(path, row_field, f"{len(row)} values, but {field}[0] has {len(rows[0])}")
    if not rows or not rows[0]:
        raise InputError(path, field, "empty")
    array = np.asarray(value, dtype=np.int64 if integer else np.float32)
    if integer and (array < 0).any():
        raise InputError(path, field, "class ids must not be negative")
    return array


def _same_shapes(path: Path, entries: Mapping[str, Any], head: str, shape_of: Callable[[Any], tuple[int, ...]]) -> None:
    shapes = {key: shape_of(entry) for key, entry in entries.items()}
    if shapes:
        first_key, first = next(iter(shapes.items()))
        for key, shape in shapes.items():
            if shape != first:
                raise InputError(path, f"{key}.{head}", f"shape {shape} differs from {first_key}.{head} {first}")


def read_ar_submission(path: str | PathLike[str], vocabulary: tuple[int, int] | None = None
                       ) -> dict[str, ActionScores]:
    """Read an AR file; every entry must have the same number of verb (and of noun) scores.

    ``vocabulary`` = (verbs, nouns) of the taxonomy in use (115 / 478 for Ego4D v1): every score vector must have
    exactly that many scores, one per class.
    """
    path, document = _load(path)
    entries = _keyed_entries(path, document, ("verb", "noun"))
    predictions = {key: ActionScores(_numeric_array(path, f"{key}.verb", entry["verb"], 1, False),
                                     _numeric_array(path, f"{key}.noun", entry["noun"], 1, False))
                   for key, entry in entries.items()}
    for index, head in enumerate(("verb", "noun")):
        _same_shapes(path, predictions, head, lambda p, h=head: getattr(p, h).shape)
        if vocabulary is not None and predictions:
            key, first = next(iter(predictions.items()))
            found = len(getattr(first, head))
            if found != vocabulary[index]:
                raise InputError(path, f"{key}.{head}", f"{found} scores, but the taxonomy has {vocabulary[index]} "
                                                        f"{head}s (one score per class)")
    return predictions


def read_lta_submission(path: str | PathLike[str], vocabulary: tuple[int, int] | None = None
                        ) -> dict[str, ActionForecast]:
    """Read an LTA file; every entry must hold K x Z class ids with the same K and Z for verbs and nouns.

    ``vocabulary`` = (verbs, nouns) of the taxonomy in use: every id must be below that size.
    """
    path, document = _load(path)
    entries = _keyed_entries(path, document, ("verb", "noun"))
    predictions = {}
    for key, entry in entries.items():
        verb = _numeric_array(path, f"{key}.verb", entry["verb"], 2, True)
        noun = _numeric_array(path, f"{key}.noun", entry["noun"], 2, True)
        for head, ids, size in (("verb", verb, None if vocabulary is None else vocabulary[0]),
                                ("noun", noun, None if vocabulary is None else vocabulary[1])):
            if size is not None and (ids >= size).any():
                raise InputError(path, f"{key}.{head}", f"class id {int(ids.max())} out of range: the taxonomy has "
                                                        f"{size} {head}s")
        if noun.shape != verb.shape:
            raise InputError(path, f"{key}.noun", f"shape {noun.shape} differs from {key}.verb {verb.shape}")
        predictions[key] = ActionForecast(verb, noun)
    _same_shapes(path, predictions, "verb", lambda p: p.verb.shape)
    return predictions


def _read_id_list(path: str | PathLike[str], field: str, parse: Callable[[Path, str, Any], T]) -> dict[str, T]:
    """``[{"unique_id", <field>}]`` -> ``{unique_id: parse(value)}``; a repeated unique_id is an error."""
    path, document = _load(path)
    _expect(path, None, document, list, "a JSON list of {unique_id, " + field + "}")
    predictions: dict[str, T] = {}
    for index, entry in enumerate(document):
        _expect(path, f"[{index}]", entry, dict, "an object")
        uid = entry.get("unique_id")
        key = uid if isinstance(uid, str) and uid else f"[{index}]"
        _expect(path, f"{key}.unique_id", uid, str, "a string")
        if uid in predictions:
            raise InputError(path, f"{key}.unique_id", f"listed twice (entries {list(predictions).index(uid)} "
                                                       f"and {index})")
        if field not in entry:
            raise InputError(path, f"{key}.{field}", "missing field")
        predictions[uid] = parse(path, f"{key}.{field}", entry[field])
    return predictions


def read_oscc_submission(path: str | PathLike[str]) -> dict[str, bool]:
    """Read an OSCC file into ``{unique_id: state_change}``."""
    return _read_id_list(path, "state_change", lambda p, f, v: bool(_expect(p, f, v, bool, "true or false")))


def read_pnr_submission(path: str | PathLike[str]) -> dict[str, float]:
    """Read a PNR file into ``{unique_id: pnr_frame}`` (frames from ``parent_start_frame``)."""

    def frame(file: Path, field: str, value: Any) -> float:
        number = float(_expect(file, field, value, (int, float), "a frame number"))
        if not math.isfinite(number):
            raise InputError(file, field, f"expected a finite frame number, got {value!r}")
        return number

    return _read_id_list(path, "pnr_frame", frame)


def _read_moments(path: Path, section: str, value: Any) -> dict[str, tuple[Moment, ...]]:
    _expect(path, section, value, dict, "an object keyed by clip uid")
    per_clip: dict[str, tuple[Moment, ...]] = {}
    for clip_uid, moments in value.items():
        _expect(path, f"{section}.{clip_uid}", moments, list, "a list of moments")
        parsed = []
        for index, moment in enumerate(moments):
            field = f"{section}.{clip_uid}[{index}]"
            _expect(path, field, moment, dict, "an object")
            for name in ("label", "score", "segment"):
                if name not in moment:
                    raise InputError(path, f"{field}.{name}", "missing field")
            label = _expect(path, f"{field}.label", moment["label"], str, "a label string")
            score = float(_expect(path, f"{field}.score", moment["score"], (int, float), "a number"))
            segment = _numeric_array(path, f"{field}.segment", moment["segment"], 1, False)
            if len(segment) != 2 or not math.isfinite(score):
                raise InputError(path, f"{field}.segment" if len(segment) != 2 else f"{field}.score",
                                 "expected [start_s, end_s]" if len(segment) != 2 else "expected a finite score")
            parsed.append(Moment(label, score, float(segment[0]), float(segment[1])))
        per_clip[clip_uid] = tuple(parsed)
    return per_clip


def read_mq_submission(path: str | PathLike[str]) -> MQSubmission:
    """Read the MQ challenge file (or one evaluator ``results`` file, used for both detections and retrievals)."""
    path, document = _load(path)
    _expect(path, None, document, dict, "a JSON object")
    if "detect_results" in document or "retrieve_results" in document:
        for name in ("detect_results", "retrieve_results"):
            if name not in document:
                raise InputError(path, name, "missing field")
        return MQSubmission(_read_moments(path, "detect_results", document["detect_results"]),
                            _read_moments(path, "retrieve_results", document["retrieve_results"]))
    if "results" not in document:
        raise InputError(path, "detect_results", "missing field (neither a challenge file with detect_results and "
                                                 "retrieve_results nor an evaluator file with results)")
    results = _read_moments(path, "results", document["results"])
    return MQSubmission(results, results)
