"""Point-of-no-return (PNR) keyframe localisation: error in seconds between the predicted and the true PNR frame.

Only clips with a state change are scored; the others are skipped. A model scores 16 candidate frames of each clip,
spread evenly from the clip's ``parent_start_frame`` S to its ``parent_end_frame`` E; P is ``parent_pnr_frame``.

Protocols (see :mod:`.protocol`):

* ``official``: EGO4D/hands-and-objects@0aea0a4:state-change-localization-classification/i3d-resnet50/evaluation/
  metrics.py::keyframe_distance. The keyframe is the argmax k of the 16 scores, placed at ``(E - S) / 16 * k``
  frames after S (evaluated in float32, as torch divides the collated int64 frame tensors), and the error is
  converted with the clip's own frame rate ``(E - S + 1) / (parent_end_sec - parent_start_sec)``, computed by
  ``StateChangeDetectionAndKeyframeLocalisation.__getitem__`` in the same repository.
* ``hier-egopack``: sapeirone/hier-egopack@4fff4e5:utils/meters/ego4d/pnr.py::EvalMeter.update. If all 16 scores are
  below 0.7 the keyframe is their argmax; otherwise it is the candidate scoring above 0.7 that is closest to index 7,
  the lower index on a tie. Candidate frames are ``np.linspace(S, E, 16, endpoint=False, dtype=int)``
  (sapeirone/hier-egopack@4fff4e5:data/ego4d/PNR.py::PNRDataset.get), and errors in frames are divided by 30.
  The meter's float32 running mean is reproduced exactly (``mean_error_s_float32``).

Predictions may also be given directly as a frame per clip, counted from S: an official PNR submission holds
``{"unique_id", "pnr_frame"}`` with ``pnr_frame = (E - S) / 16 * k``, relative to S
(EGO4D/hands-and-objects@0aea0a4:state-change-localization-classification/cnn-lstm/evaluate.py::
generate_submission_file). The frame is then used as given; the protocols differ only in the frames-to-seconds
conversion (the clip's frame rate, or 30).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from egostream.ego4d.metrics.float32_meters import float32_running_mean
from egostream.ego4d.metrics.protocol import check_protocol
from egostream.ego4d.metrics.validation import as_array
from egostream.errors import InputError

__all__ = ["NUM_CANDIDATE_FRAMES", "candidate_frames", "clip_fps", "pnr_errors_s", "pnr_metrics",
           "select_keyframe_index"]

NUM_CANDIDATE_FRAMES = 16
# Hier-EgoPack converts frame errors with a fixed 30 fps (utils/meters/ego4d/pnr.py::EvalMeter.update).
_HIER_EGOPACK_FPS = 30.0
# Compared with float32 logits, torch casts the Python threshold 0.7 to float32.
_HIER_EGOPACK_THRESHOLD = np.float32(0.7)
_HIER_EGOPACK_CENTRE = 7


@dataclass(frozen=True)
class _Clip:
    """The fields of one positive ``fho_oscc-pnr`` record that the PNR error needs (frames and seconds)."""

    start_frame: int
    end_frame: int
    pnr_frame: int
    start_sec: float
    end_sec: float


def _is_number(value: object) -> bool:
    """A finite int or float (booleans and numeric strings are not numbers here)."""
    return (not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
            and math.isfinite(value))


def _field(record: Mapping[str, object], where: str, name: str) -> float:
    value = record.get(name)
    if not _is_number(value):
        raise InputError(None, f"{where}.{name}", f"expected a number, got {value!r}")
    return float(value)


def _is_positive(record: Mapping[str, object], where: str) -> bool:
    if not isinstance(record, Mapping) or "state_change" not in record:
        raise InputError(None, f"{where}.state_change", "missing (needed to tell positives from negatives)")
    return bool(record["state_change"])


def _parse_positive(record: Mapping[str, object], where: str) -> _Clip:
    """The PNR fields of a positive record; ``where`` names it in errors (``records[3]``)."""
    start, end, pnr = (_field(record, where, name)
                       for name in ("parent_start_frame", "parent_end_frame", "parent_pnr_frame"))
    clip = _Clip(int(start), int(end), int(pnr), _field(record, where, "parent_start_sec"),
                 _field(record, where, "parent_end_sec"))
    if not clip.start_frame < clip.end_frame:
        raise InputError(None, f"{where}.parent_end_frame",
                         f"{clip.end_frame} is not after parent_start_frame {clip.start_frame}")
    if not clip.start_frame <= clip.pnr_frame <= clip.end_frame:
        raise InputError(None, f"{where}.parent_pnr_frame",
                         f"{clip.pnr_frame} is outside [{clip.start_frame}, {clip.end_frame}]")
    if not clip.start_sec < clip.end_sec:
        raise InputError(None, f"{where}.parent_end_sec",
                         f"{clip.end_sec} is not after parent_start_sec {clip.start_sec}")
    return clip


def clip_fps(record: Mapping[str, object]) -> float:
    """The official frame rate of a clip record: ``(E - S + 1) / (parent_end_sec - parent_start_sec)`` frames/s."""
    clip = _parse_positive(record, "record")
    return (clip.end_frame - clip.start_frame + 1) / (clip.end_sec - clip.start_sec)


def candidate_frames(start_frame: int, end_frame: int) -> np.ndarray:
    """The 16 absolute frame numbers Hier-EgoPack scores: evenly spaced from ``start_frame``, end excluded,
    truncated to integers (int64 ``[16]``)."""
    frames = np.linspace(start_frame, end_frame, num=NUM_CANDIDATE_FRAMES, endpoint=False, dtype=np.int64)
    return np.clip(frames, start_frame, end_frame)


def select_keyframe_index(logits: np.ndarray, *, protocol: str) -> int:
    """Index (0-15) of the candidate frame a protocol picks from one clip's 16 scores.

    ``official``: the argmax (the first one on a tie). ``hier-egopack``: the argmax if every score, as float32, is
    below 0.7; otherwise the index with a score above 0.7 nearest to 7, the lower one on a tie. A score exactly at
    float32(0.7) with none above makes the reference meter fail (it takes the argmin of an empty tensor); this raises
    :class:`InputError` instead of guessing.
    """
    check_protocol(protocol)
    scores = as_array(logits, "logits", ndim=1)
    if scores.shape != (NUM_CANDIDATE_FRAMES,):
        raise InputError(None, "logits", f"expected {NUM_CANDIDATE_FRAMES} scores, got shape {scores.shape}")
    if protocol == "official":
        return int(np.argmax(scores))
    scores32 = scores.astype(np.float32)
    if np.all(scores32 < _HIER_EGOPACK_THRESHOLD):
        return int(np.argmax(scores32))
    above = np.flatnonzero(scores32 > _HIER_EGOPACK_THRESHOLD)
    if len(above) == 0:
        raise InputError(None, "logits", "a score equals the 0.7 threshold and none exceeds it; the Hier-EgoPack "
                                         "meter has no keyframe for this input")
    return int(above[np.argmin(np.abs(above - _HIER_EGOPACK_CENTRE))])


def _offset_from_logits(clip: _Clip, scores: np.ndarray, protocol: str) -> float:
    """Predicted keyframe, in frames after S, from 16 candidate scores."""
    k = select_keyframe_index(scores, protocol=protocol)
    if protocol == "official":
        # keyframe_distance divides the collated int64 frame tensors by 16, which torch does in float32
        # (EGO4D/hands-and-objects@0aea0a4:state-change-localization-classification/i3d-resnet50/evaluation/
        # metrics.py::keyframe_distance).
        step = np.float32(clip.end_frame - clip.start_frame) / np.float32(NUM_CANDIDATE_FRAMES)
        return float(step * np.float32(k))
    return float(candidate_frames(clip.start_frame, clip.end_frame)[k] - clip.start_frame)


def _error_s(clip: _Clip, predicted_offset: float, protocol: str) -> float:
    error_frames = abs(predicted_offset - (clip.pnr_frame - clip.start_frame))
    if protocol == "official":
        fps = (clip.end_frame - clip.start_frame + 1) / (clip.end_sec - clip.start_sec)
        return error_frames / fps
    return error_frames / _HIER_EGOPACK_FPS


def _predicted_offsets(records: Sequence[Mapping[str, object]], logits: np.ndarray | None,
                       predicted_frames: Sequence[float | None] | np.ndarray | None
                       ) -> list[np.ndarray | float | None]:
    """One prediction per record: a row of 16 scores, or a frame offset from S."""
    if (logits is None) == (predicted_frames is None):
        raise InputError(None, "logits", "give exactly one of logits or predicted_frames")
    if logits is not None:
        scores = as_array(logits, "logits", ndim=2)
        if scores.shape != (len(records), NUM_CANDIDATE_FRAMES):
            raise InputError(None, "logits", f"expected shape ({len(records)}, {NUM_CANDIDATE_FRAMES}) "
                                             f"(one row of scores per record), got {scores.shape}")
        return list(scores)
    frames = list(predicted_frames)
    if len(frames) != len(records):
        raise InputError(None, "predicted_frames", f"{len(frames)} predictions for {len(records)} records")
    return frames


def pnr_errors_s(records: Sequence[Mapping[str, object]], *, logits: np.ndarray | None = None,
                 predicted_frames: Sequence[float | None] | np.ndarray | None = None,
                 protocol: str) -> list[float | None]:
    """Keyframe error of every record, in seconds; ``None`` for records without a state change.

    Args:
        records: ``fho_oscc-pnr`` clip records (``state_change``, ``parent_start_frame``, ``parent_end_frame``,
            ``parent_pnr_frame``, ``parent_start_sec``, ``parent_end_sec``).
        logits: ``[N, 16]`` candidate scores, one row per record (rows of negative records are ignored).
        predicted_frames: instead of ``logits``, ``N`` predicted PNR frames counted from ``parent_start_frame``
            (the official submission's ``pnr_frame``); entries of negative records may be ``None``.
        protocol: ``"official"`` or ``"hier-egopack"``.
    """
    check_protocol(protocol)
    if len(records) == 0:
        raise InputError(None, "records", "no records")
    predictions = _predicted_offsets(records, logits, predicted_frames)
    errors: list[float | None] = []
    for index, (record, prediction) in enumerate(zip(records, predictions)):
        if not _is_positive(record, f"records[{index}]"):
            errors.append(None)
            continue
        clip = _parse_positive(record, f"records[{index}]")
        if isinstance(prediction, np.ndarray):
            offset = _offset_from_logits(clip, prediction, protocol)
        else:
            if not _is_number(prediction):
                raise InputError(None, f"predicted_frames[{index}]", f"expected a frame number, got {prediction!r}")
            offset = float(prediction)
        errors.append(_error_s(clip, offset, protocol))
    return errors


def pnr_metrics(records: Sequence[Mapping[str, object]], *, logits: np.ndarray | None = None,
                predicted_frames: Sequence[float | None] | np.ndarray | None = None,
                protocol: str) -> dict[str, float | int]:
    """Mean PNR keyframe error over the clips with a state change.

    Arguments as in :func:`pnr_errors_s`.

    Returns:
        ``n_clips`` (all records), ``n_positive`` (records with a state change) and ``mean_error_s`` (mean error in
        seconds over the positives, float64); under ``hier-egopack`` also ``mean_error_s_float32``, the float32
        running mean the meter logs (one ``MeanMetric`` update per clip).

    Raises:
        ValueError: unknown protocol.
        InputError: a malformed record, predictions that do not match the records, or no positive clip.
    """
    errors = [error for error in pnr_errors_s(records, logits=logits, predicted_frames=predicted_frames,
                                              protocol=protocol) if error is not None]
    if not errors:
        raise InputError(None, "records", "no record has state_change true; the PNR error is undefined")
    metrics: dict[str, float | int] = {"n_clips": len(records), "n_positive": len(errors),
                                       "mean_error_s": float(np.mean(errors))}
    if protocol == "hier-egopack":
        metrics["mean_error_s_float32"] = float32_running_mean(errors)
    return metrics
