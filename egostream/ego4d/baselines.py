"""Trivial class-prior predictors that write a valid submission for every task: the chance level of a benchmark.

:func:`write_prior_submission` reads the class frequencies of a ``prior`` annotation file (by default the evaluated
file itself, which makes every number computable by hand from the class counts) and writes, for every sample of the
evaluated ``annotations`` file:

``ar``   the same scores for every action: the prior count of each class plus a seeded tie-break in [0, 0.5), so the
         top-k classes are the k most frequent ones (ties broken at random);
``lta``  K = 5 candidates, candidate k being the k-th most frequent verb (noun) repeated Z = 20 times;
``oscc`` the majority decision;
``pnr``  the prior's mean PNR position, as a fraction of the sample length, times the sample's length in frames;
``mq``   for every clip of the annotations, one moment per prior class spanning the whole clip, scored by the class
         frequency plus a seeded tie-break below the smallest frequency step.
"""
from __future__ import annotations

from collections import Counter
from os import PathLike
from pathlib import Path

import numpy as np

from egostream.ego4d.annotations import (
    read_lta_annotations,
    read_moments_annotations,
    read_state_change_annotations,
)
from egostream.ego4d.features import FeatureSpec
from egostream.ego4d.protocol import build_lta_samples, primary_moments
from egostream.ego4d.submission import (
    ActionForecast,
    ActionScores,
    Moment,
    sample_key,
    write_ar_submission,
    write_lta_submission,
    write_mq_submission,
    write_oscc_submission,
    write_pnr_submission,
)
from egostream.ego4d.taxonomy import LTA_V1_NUM_NOUNS, LTA_V1_NUM_VERBS
from egostream.errors import InputError

__all__ = ["write_prior_submission", "LTA_CANDIDATES", "LTA_FUTURE_STEPS"]

LTA_CANDIDATES = 5
LTA_FUTURE_STEPS = 20


def _ranked(counts: Counter[int]) -> list[int]:
    """Classes by decreasing count, the lower id first on a tie."""
    return sorted(counts, key=lambda class_id: (-counts[class_id], class_id))


def _write_ar(annotations: Path, prior: Path, output: Path, rng: np.random.Generator, protocol: str) -> Path:
    prior_actions = read_lta_annotations(prior).actions
    actions = read_lta_annotations(annotations).actions
    scores = []
    for size, key in ((LTA_V1_NUM_VERBS, "verb_label"), (LTA_V1_NUM_NOUNS, "noun_label")):
        counts = np.bincount([getattr(a, key) for a in prior_actions], minlength=size).astype(np.float64)
        scores.append(counts + rng.uniform(0.0, 0.5, size))
    return write_ar_submission(output, {sample_key(a.clip_uid, a.action_idx): ActionScores(*scores)
                                        for a in actions})


def _write_lta(annotations: Path, prior: Path, output: Path, rng: np.random.Generator, protocol: str) -> Path:
    prior_actions = read_lta_annotations(prior).actions
    candidates = []
    for key in ("verb_label", "noun_label"):
        ranked = _ranked(Counter(getattr(a, key) for a in prior_actions))
        ranked += [ranked[-1]] * (LTA_CANDIDATES - len(ranked))
        candidates.append(np.repeat(np.array(ranked[:LTA_CANDIDATES])[:, None], LTA_FUTURE_STEPS, axis=1))
    samples = build_lta_samples(read_lta_annotations(annotations), FeatureSpec("annotations-only"),
                                "val", protocol=protocol)  # type: ignore[arg-type]
    return write_lta_submission(output, {s.key: ActionForecast(*candidates) for s in samples})


def _write_oscc(annotations: Path, prior: Path, output: Path, rng: np.random.Generator, protocol: str) -> Path:
    counts = Counter(bool(s.state_change) for s in read_state_change_annotations(prior).samples)
    majority = counts[True] > counts[False]
    return write_oscc_submission(output, {s.unique_id: majority
                                          for s in read_state_change_annotations(annotations).samples})


def _write_pnr(annotations: Path, prior: Path, output: Path, rng: np.random.Generator, protocol: str) -> Path:
    positions = [(s.parent_pnr_frame - s.parent_start_frame) / (s.parent_end_frame - s.parent_start_frame)
                 for s in read_state_change_annotations(prior).samples if s.state_change]
    if not positions:
        raise InputError(prior, "clips", "no sample with a state change to take the PNR prior from")
    fraction = float(np.mean(positions))
    return write_pnr_submission(output, {s.unique_id: fraction * (s.parent_end_frame - s.parent_start_frame)
                                         for s in read_state_change_annotations(annotations).samples})


def _write_mq(annotations: Path, prior: Path, output: Path, rng: np.random.Generator, protocol: str) -> Path:
    counts = Counter(m.label for video in read_moments_annotations(prior).videos for clip in video.clips
                     for m in primary_moments(clip, protocol))  # type: ignore[arg-type]
    total = sum(counts.values())
    detections = {}
    for video in read_moments_annotations(annotations).videos:
        for clip in video.clips:
            duration = clip.video_end_sec - clip.video_start_sec
            detections[clip.clip_uid] = tuple(
                Moment(label, count / total + float(rng.uniform(0.0, 0.5 / total)), 0.0, duration)
                for label, count in sorted(counts.items()))
    return write_mq_submission(output, detections)


_WRITERS = {"ar": _write_ar, "lta": _write_lta, "oscc": _write_oscc, "pnr": _write_pnr, "mq": _write_mq}


def write_prior_submission(task: str, annotations: str | PathLike[str], output: str | PathLike[str], *,
                           prior: str | PathLike[str] | None = None, seed: int = 0,
                           protocol: str = "official") -> Path:
    """Write the class-prior submission of ``task`` for every sample of ``annotations`` to ``output``.

    Args:
        task: ``ar``, ``lta``, ``oscc``, ``pnr`` or ``mq``.
        annotations: the annotation file whose samples get a prediction.
        output: the submission file (written atomically).
        prior: the annotation file the class frequencies come from (e.g. the train split); default ``annotations``.
        seed: seed of the tie-breaking noise.
        protocol: which samples exist where the protocols differ (LTA windows, MQ duplicate moments).
    """
    if task not in _WRITERS:
        raise InputError(None, "task", f"unknown task {task!r}; one of {', '.join(_WRITERS)}")
    annotations = Path(annotations)
    return _WRITERS[task](annotations, Path(prior) if prior is not None else annotations, Path(output),
                          np.random.default_rng(seed), protocol)
