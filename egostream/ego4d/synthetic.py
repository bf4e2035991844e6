"""A small synthetic Ego4D v1 dataset with planted, learnable structure for every benchmark task.

:func:`generate_dataset` writes a complete data folder in the authors' layout (see :mod:`egostream.ego4d.layout`)::

    ROOT/annotations/v1/fho_lta_{train,val}.json       LTA / AR actions (one record per action)
    ROOT/annotations/v1/fho_lta_taxonomy.json          the real v1 taxonomy (115 verbs, 478 nouns)
    ROOT/annotations/v1/fho_oscc-pnr_{train,val}.json  OSCC / PNR samples (8 s each)
    ROOT/annotations/v1/moments_{train,val}.json       MQ moments
    ROOT/annotations/v1/narration.json                 one narration per action (the authors' datasets open it)
    ROOT/annotations/mq_labels.tsv                     the real 110 MQ classes (the authors' place, not under v1/)
    ROOT/ego4d.json                                    video metadata
    ROOT/features/<feature_name>/<video_uid>.pt        float32 tensor [T, feature_dim], T = num_frames // 16

Field names and nesting follow the official v1 files as the authors' readers consume them
(sapeirone/hier-egopack@4fff4e5:data/ego4d/{AR,LTA,OSCC,PNR,MQ}.py), the official baselines' readers
(EGO4D/forecasting@38d1931:ego4d_forecasting/datasets/ptv_dataset_helper.py, ``clip_forecasting_dataset``;
EGO4D/hands-and-objects@0aea0a4:state-change-localization-classification/i3d-resnet50/datasets/
StateChangeDetectionAndKeyframeLocalisation.py, ``_construct_loader``) and :mod:`egostream.ego4d.annotations`.

Planted structure (all of it drawn from one ``numpy.random.Generator`` seeded with ``cfg.seed``, so a seed gives
byte-identical files):

* **Actions (AR, LTA).** Each video's FHO clip is a sequence of back-to-back actions (verb, noun). The sequence
  follows a Markov chain over ``num_recipes`` cyclic "recipes" of ``recipe_length`` steps: the next action is the
  recipe's next step, except with probability ``recipe_switch_probability`` when the chain jumps to a random step of
  a random recipe. Future actions are therefore predictable from past ones.
* **Features.** Feature row ``t`` covers frames ``[16 t, 16 t + 16)`` at 30 fps. It is the sum of a slowly varying
  context (linear interpolation between random anchors every ``context_period_sec``), temporally correlated
  noise (AR(1) with coefficient ``noise_correlation``), and, for the row's centre frame ``16 t + 8``: the verb and
  noun prototypes of the action it falls in, the class prototype of the MQ moment it falls in, and the state term of
  the OSCC/PNR sample it falls in. Prototypes have unit expected norm; ``noise_std`` and ``context_std`` are
  expected norms too.
* **State changes (OSCC, PNR).** Inside a positive sample the state term flips from ``-state_scale * s`` to
  ``+state_scale * s`` (one fixed unit direction ``s``) at the PNR frame; a negative sample carries a constant
  ``±state_scale * s`` with no transition.
* **Moments (MQ).** Non-overlapping spans inside each video's MQ clip, each carrying its class prototype.
"""
from __future__ import annotations

import io
import json
import uuid
from dataclasses import dataclass
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from egostream.ego4d.layout import Ego4dLayout
from egostream.ego4d.taxonomy import LTA_V1_NUM_NOUNS, LTA_V1_NUM_VERBS, MQ_NUM_CLASSES
from egostream.errors import InputError
from egostream.io.atomic import write_bytes_atomic, write_json_atomic

__all__ = ["SynthConfig", "generate_dataset", "vocabulary_path", "FPS", "FEATURE_STRIDE", "SPLITS"]

#: Frame rate of every synthetic video (frames per second), as the canonical Ego4D videos.
FPS = 30
#: Frames per feature row (the authors' EgoVLP / Omnivore features: window 16, stride 16).
FEATURE_STRIDE = 16
#: Length of an OSCC/PNR sample, in frames (8 s at 30 fps).
STATE_CHANGE_SAMPLE_FRAMES = 8 * FPS
#: The splits written.
SPLITS = ("train", "val")


def vocabulary_path(name: str) -> Path:
    """Path of a packaged vocabulary file: ``fho_lta_taxonomy.json`` or ``mq_labels.tsv``."""
    return Path(str(resources.files("egostream.ego4d").joinpath("vocabularies", name)))


@dataclass(frozen=True)
class SynthConfig:
    """Settings of the synthetic dataset. Times are in seconds; feature sizes in feature-row entries."""

    videos: int = 12
    """Number of videos (each one has one FHO clip and one MQ clip)."""
    seed: int = 0
    """Seed of the single ``numpy.random.Generator`` that draws everything."""
    train_fraction: float = 0.67
    """Fraction of the videos in the train split (rounded; at least one video in each split)."""
    min_video_sec: float = 120.0
    max_video_sec: float = 240.0
    """Video lengths are uniform in [min_video_sec, max_video_sec]."""
    feature_dim: int = 32
    """Width D of a feature row (e.g. 256 for EgoVLP-size features)."""
    feature_name: str = "synthetic"
    """Features folder name: ``features/<feature_name>/``."""
    num_verbs: int = 8
    num_nouns: int = 12
    """Verb / noun classes used: a seeded subset of the 115 / 478 classes of the v1 taxonomy."""
    num_recipes: int = 3
    recipe_length: int = 6
    """The action grammar: ``num_recipes`` cyclic sequences of ``recipe_length`` (verb, noun) steps."""
    recipe_switch_probability: float = 0.1
    """Probability that the next action jumps to a random recipe step instead of following the recipe."""
    min_action_sec: float = 2.0
    max_action_sec: float = 5.0
    max_action_gap_sec: float = 1.0
    """Action lengths are uniform in [min_action_sec, max_action_sec], gaps between actions in [0, max gap]."""
    state_change_samples_per_video: int = 8
    """OSCC/PNR samples (8 s each, non-overlapping) per video."""
    state_change_positive_fraction: float = 0.5
    """Probability that a sample contains a state change."""
    state_scale: float = 1.0
    """Norm of the state term (see the module docstring)."""
    num_mq_classes: int = 6
    """MQ classes used: a seeded subset of the 110 classes of mq_labels.tsv."""
    moments_per_video: int = 6
    min_moment_sec: float = 4.0
    max_moment_sec: float = 15.0
    """MQ moment lengths are uniform in [min_moment_sec, max_moment_sec]."""
    noise_std: float = 1.0
    """Expected norm of the per-row noise."""
    noise_correlation: float = 0.7
    """AR(1) coefficient of the noise between consecutive rows (0: white noise)."""
    context_std: float = 0.5
    """Expected norm of the slowly varying context."""
    context_period_sec: float = 30.0
    """Spacing of the context anchors."""

    def __post_init__(self) -> None:
        checks = (
            ("videos", self.videos >= 2, "must be at least 2 (one train and one val video)"),
            ("train_fraction", 0.0 < self.train_fraction < 1.0, "must be in (0, 1)"),
            ("min_video_sec", 60.0 <= self.min_video_sec <= self.max_video_sec,
             "must be at least 60 and at most max_video_sec"),
            ("feature_dim", self.feature_dim >= 1, "must be positive"),
            ("feature_name", bool(self.feature_name) and "/" not in self.feature_name, "must be a folder name"),
            ("num_verbs", 1 <= self.num_verbs <= LTA_V1_NUM_VERBS, f"must be in 1..{LTA_V1_NUM_VERBS}"),
            ("num_nouns", 1 <= self.num_nouns <= LTA_V1_NUM_NOUNS, f"must be in 1..{LTA_V1_NUM_NOUNS}"),
            ("num_mq_classes", 1 <= self.num_mq_classes <= MQ_NUM_CLASSES, f"must be in 1..{MQ_NUM_CLASSES}"),
            ("num_recipes", self.num_recipes >= 1, "must be positive"),
            ("recipe_length", self.recipe_length >= 1, "must be positive"),
            ("recipe_switch_probability", 0.0 <= self.recipe_switch_probability <= 1.0, "must be in [0, 1]"),
            ("min_action_sec", 0.0 < self.min_action_sec <= self.max_action_sec,
             "must be positive and at most max_action_sec"),
            ("max_action_gap_sec", self.max_action_gap_sec >= 0.0, "must not be negative"),
            ("state_change_samples_per_video", self.state_change_samples_per_video >= 0, "must not be negative"),
            ("state_change_positive_fraction", 0.0 <= self.state_change_positive_fraction <= 1.0,
             "must be in [0, 1]"),
            ("moments_per_video", self.moments_per_video >= 0, "must not be negative"),
            ("min_moment_sec", 0.0 < self.min_moment_sec <= self.max_moment_sec,
             "must be positive and at most max_moment_sec"),
            ("noise_std", self.noise_std >= 0.0, "must not be negative"),
            ("noise_correlation", 0.0 <= self.noise_correlation < 1.0, "must be in [0, 1)"),
            ("context_std", self.context_std >= 0.0, "must not be negative"),
            ("context_period_sec", self.context_period_sec > 0.0, "must be positive"),
        )
        for field_name, valid, message in checks:
            if not valid:
                raise InputError("SynthConfig", field_name, f"{getattr(self, field_name)!r} {message}")
        # Each FHO clip holds the state-change samples in equal slots, each MQ clip the moments.
        usable_sec = self.min_video_sec - 2 * _MAX_CLIP_MARGIN_SEC
        if self.state_change_samples_per_video * STATE_CHANGE_SAMPLE_FRAMES / FPS > usable_sec:
            raise InputError("SynthConfig", "state_change_samples_per_video",
                             f"{self.state_change_samples_per_video} samples of 8 s do not fit a "
                             f"{self.min_video_sec} s video")
        if self.moments_per_video * self.max_moment_sec > usable_sec:
            raise InputError("SynthConfig", "moments_per_video",
                             f"{self.moments_per_video} moments of up to {self.max_moment_sec} s do not fit a "
                             f"{self.min_video_sec} s video")


#: Clips start up to this many seconds after the video start and end as much before its end.
_MAX_CLIP_MARGIN_SEC = 10.0


# ------------------------------------------------------------------------------------------------ planted model

@dataclass(frozen=True)
class _Vocabulary:
    """The classes used and their feature prototypes (each row has unit expected norm)."""

    verb_ids: np.ndarray  # [num_verbs] taxonomy ids
    noun_ids: np.ndarray  # [num_nouns]
    mq_ids: np.ndarray  # [num_mq_classes] ids into mq_labels.tsv
    verb_prototypes: np.ndarray  # [num_verbs, D]
    noun_prototypes: np.ndarray  # [num_nouns, D]
    mq_prototypes: np.ndarray  # [num_mq_classes, D]
    state_direction: np.ndarray  # [D], unit norm
    recipes: np.ndarray  # [num_recipes, recipe_length, 2] local (verb, noun) indices


@dataclass(frozen=True)
class _Action:
    start_frame: int  # parent-video frames, end exclusive
    end_frame: int
    verb: int  # local index into _Vocabulary.verb_ids
    noun: int


@dataclass(frozen=True)
class _StateChangeSample:
    unique_id: str
    start_frame: int  # parent-video frames; the sample spans [start_frame, end_frame]
    end_frame: int
    pnr_frame: int | None  # None: no state change
    negative_sign: float  # the constant state term's sign in a negative sample


@dataclass(frozen=True)
class _Moment:
    start_frame: int  # parent-video frames, end exclusive
    end_frame: int
    mq_class: int  # local index into _Vocabulary.mq_ids


@dataclass(frozen=True)
class _Video:
    video_uid: str
    split: str
    num_frames: int
    fho_clip_uid: str
    fho_clip_id: int
    fho_start_frame: int
    fho_end_frame: int
    actions: tuple[_Action, ...]
    state_changes: tuple[_StateChangeSample, ...]
    mq_clip_uid: str
    mq_start_frame: int
    mq_end_frame: int
    moments: tuple[_Moment, ...]

    @property
    def num_rows(self) -> int:
        """Feature rows: one per full 16-frame window."""
        return self.num_frames // FEATURE_STRIDE


def _uid(rng: np.random.Generator) -> str:
    """A random (version 4) UUID string, as Ego4D uids look, drawn from ``rng``."""
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def _unit_rows(rng: np.random.Generator, rows: int, dim: int) -> np.ndarray:
    """Gaussian rows with unit expected norm: entries N(0, 1/dim)."""
    return rng.standard_normal((rows, dim)) / np.sqrt(dim)


def _draw_vocabulary(rng: np.random.Generator, cfg: SynthConfig) -> _Vocabulary:
    verb_ids = np.sort(rng.choice(LTA_V1_NUM_VERBS, cfg.num_verbs, replace=False))
    noun_ids = np.sort(rng.choice(LTA_V1_NUM_NOUNS, cfg.num_nouns, replace=False))
    mq_ids = np.sort(rng.choice(MQ_NUM_CLASSES, cfg.num_mq_classes, replace=False))
    direction = rng.standard_normal(cfg.feature_dim)
    recipes = np.stack([
        rng.integers(0, cfg.num_verbs, (cfg.num_recipes, cfg.recipe_length)),
        rng.integers(0, cfg.num_nouns, (cfg.num_recipes, cfg.recipe_length)),
    ], axis=-1)
    return _Vocabulary(
        verb_ids=verb_ids, noun_ids=noun_ids, mq_ids=mq_ids,
        verb_prototypes=_unit_rows(rng, cfg.num_verbs, cfg.feature_dim),
        noun_prototypes=_unit_rows(rng, cfg.num_nouns, cfg.feature_dim),
        mq_prototypes=_unit_rows(rng, cfg.num_mq_classes, cfg.feature_dim),
        state_direction=direction / np.linalg.norm(direction),
        recipes=recipes,
    )


def _frames(seconds: float) -> int:
    return int(round(seconds * FPS))


def _draw_actions(rng: np.random.Generator, cfg: SynthConfig, vocab: _Vocabulary, start_frame: int,
                  end_frame: int) -> tuple[_Action, ...]:
    """Back-to-back actions filling [start_frame, end_frame), labelled by the recipe Markov chain."""
    recipe, step = int(rng.integers(cfg.num_recipes)), int(rng.integers(cfg.recipe_length))
    actions = []
    cursor = start_frame + _frames(rng.uniform(0.0, cfg.max_action_gap_sec))
    while True:
        length = max(1, _frames(rng.uniform(cfg.min_action_sec, cfg.max_action_sec)))
        if cursor + length > end_frame:
            break
        verb, noun = vocab.recipes[recipe, step]
        actions.append(_Action(cursor, cursor + length, int(verb), int(noun)))
        cursor += length + _frames(rng.uniform(0.0, cfg.max_action_gap_sec))
        if rng.random() < cfg.recipe_switch_probability:
            recipe, step = int(rng.integers(cfg.num_recipes)), int(rng.integers(cfg.recipe_length))
        else:
            step = (step + 1) % cfg.recipe_length
    return tuple(actions)


def _slot_starts(rng: np.random.Generator, start_frame: int, end_frame: int, lengths: list[int]) -> list[int]:
    """Start frames of non-overlapping spans of ``lengths``: one span at a random place in each of equal slots."""
    slot = (end_frame - start_frame) // max(1, len(lengths))
    return [start_frame + index * slot + int(rng.integers(0, slot - length + 1))
            for index, length in enumerate(lengths)]


def _draw_state_changes(rng: np.random.Generator, cfg: SynthConfig, start_frame: int,
                        end_frame: int) -> tuple[_StateChangeSample, ...]:
    """Non-overlapping 8 s samples; positives have their PNR in the middle 60 % of the sample."""
    count = cfg.state_change_samples_per_video
    samples = []
    for sample_start in _slot_starts(rng, start_frame, end_frame, [STATE_CHANGE_SAMPLE_FRAMES] * count):
        sample_end = sample_start + STATE_CHANGE_SAMPLE_FRAMES
        positive = rng.random() < cfg.state_change_positive_fraction
        margin = STATE_CHANGE_SAMPLE_FRAMES // 5
        pnr = int(rng.integers(sample_start + margin, sample_end - margin + 1)) if positive else None
        sign = float(rng.choice([-1.0, 1.0]))
        samples.append(_StateChangeSample(_uid(rng), sample_start, sample_end, pnr, sign))
    return tuple(samples)


def _draw_moments(rng: np.random.Generator, cfg: SynthConfig, start_frame: int,
                  end_frame: int) -> tuple[_Moment, ...]:
    lengths = [max(1, _frames(rng.uniform(cfg.min_moment_sec, cfg.max_moment_sec)))
               for _ in range(cfg.moments_per_video)]
    classes = rng.integers(0, cfg.num_mq_classes, len(lengths))
    starts = _slot_starts(rng, start_frame, end_frame, lengths)
    return tuple(_Moment(start, start + length, int(label)) for start, length, label in zip(starts, lengths, classes))


def _draw_videos(rng: np.random.Generator, cfg: SynthConfig, vocab: _Vocabulary) -> list[_Video]:
    num_train = min(cfg.videos - 1, max(1, int(round(cfg.videos * cfg.train_fraction))))
    margin = _frames(_MAX_CLIP_MARGIN_SEC)
    videos = []
    for index in range(cfg.videos):
        num_frames = _frames(rng.uniform(cfg.min_video_sec, cfg.max_video_sec))
        video_uid, fho_clip_uid, mq_clip_uid = _uid(rng), _uid(rng), _uid(rng)
        # Clips start off the 16-frame grid, as real clips do.
        fho_start, fho_end = int(rng.integers(0, margin)), num_frames - int(rng.integers(0, margin))
        mq_start, mq_end = int(rng.integers(0, margin)), num_frames - int(rng.integers(0, margin))
        videos.append(_Video(
            video_uid=video_uid,
            split=SPLITS[0] if index < num_train else SPLITS[1],
            num_frames=num_frames,
            fho_clip_uid=fho_clip_uid,
            fho_clip_id=index,
            fho_start_frame=fho_start,
            fho_end_frame=fho_end,
            actions=_draw_actions(rng, cfg, vocab, fho_start, fho_end),
            state_changes=_draw_state_changes(rng, cfg, fho_start, fho_end),
            mq_clip_uid=mq_clip_uid,
            mq_start_frame=mq_start,
            mq_end_frame=mq_end,
            moments=_draw_moments(rng, cfg, mq_start, mq_end),
        ))
    return videos


def _smooth_context(rng: np.random.Generator, cfg: SynthConfig, num_rows: int) -> np.ndarray:
    """[num_rows, D] linear interpolation between random anchors every ``context_period_sec``."""
    rows_per_anchor = cfg.context_period_sec * FPS / FEATURE_STRIDE
    num_anchors = int(np.ceil(num_rows / rows_per_anchor)) + 1
    anchors = _unit_rows(rng, num_anchors, cfg.feature_dim) * cfg.context_std
    position = np.arange(num_rows) / rows_per_anchor
    low = np.floor(position).astype(int)
    weight = (position - low)[:, None]
    return anchors[low] * (1.0 - weight) + anchors[low + 1] * weight


def _correlated_noise(rng: np.random.Generator, cfg: SynthConfig, num_rows: int) -> np.ndarray:
    """[num_rows, D] stationary AR(1) noise with expected row norm ``noise_std``."""
    innovations = _unit_rows(rng, num_rows, cfg.feature_dim) * cfg.noise_std
    rho = cfg.noise_correlation
    noise = np.empty_like(innovations)
    previous = innovations[0] if num_rows else None
    scale = np.sqrt(1.0 - rho * rho)
    for row in range(num_rows):
        previous = innovations[row] if row == 0 else rho * previous + scale * innovations[row]
        noise[row] = previous
    return noise


def _rows_in(centres: np.ndarray, start_frame: int, end_frame: int) -> np.ndarray:
    """Boolean mask of rows whose centre frame lies in [start_frame, end_frame)."""
    return (centres >= start_frame) & (centres < end_frame)


def _video_features(rng: np.random.Generator, cfg: SynthConfig, vocab: _Vocabulary, video: _Video) -> np.ndarray:
    """The [T, D] float32 features of one video (see the module docstring)."""
    num_rows = video.num_rows
    centres = np.arange(num_rows) * FEATURE_STRIDE + FEATURE_STRIDE // 2
    features = _smooth_context(rng, cfg, num_rows) + _correlated_noise(rng, cfg, num_rows)
    for action in video.actions:
        rows = _rows_in(centres, action.start_frame, action.end_frame)
        features[rows] += vocab.verb_prototypes[action.verb] + vocab.noun_prototypes[action.noun]
    for moment in video.moments:
        features[_rows_in(centres, moment.start_frame, moment.end_frame)] += vocab.mq_prototypes[moment.mq_class]
    state = vocab.state_direction * cfg.state_scale
    for sample in video.state_changes:
        if sample.pnr_frame is None:
            features[_rows_in(centres, sample.start_frame, sample.end_frame + 1)] += sample.negative_sign * state
        else:
            features[_rows_in(centres, sample.start_frame, sample.pnr_frame)] -= state
            features[_rows_in(centres, sample.pnr_frame, sample.end_frame + 1)] += state
    return features.astype(np.float32)


# ------------------------------------------------------------------------------------------------ JSON records

def _seconds(frames: int) -> float:
    return frames / FPS


def _header(split: str | None, description: str) -> dict[str, Any]:
    header: dict[str, Any] = {"version": "v1", "date": "synthetic", "description": description}
    if split is not None:
        header["split"] = split
    return header


def _lta_records(video: _Video, vocab: _Vocabulary, taxonomy: dict[str, list[str]]) -> list[dict[str, Any]]:
    """``fho_lta_{split}.json`` ``clips`` records: one per action, in action order."""
    clip_start, clip_end = video.fho_start_frame, video.fho_end_frame
    records = []
    for action_idx, action in enumerate(video.actions):
        verb_id, noun_id = int(vocab.verb_ids[action.verb]), int(vocab.noun_ids[action.noun])
        start, end = action.start_frame - clip_start, action.end_frame - clip_start
        records.append({
            "clip_id": video.fho_clip_id,
            "clip_uid": video.fho_clip_uid,
            "video_uid": video.video_uid,
            "action_idx": action_idx,
            "clip_parent_start_sec": _seconds(clip_start),
            "clip_parent_end_sec": _seconds(clip_end),
            "clip_parent_start_frame": clip_start,
            "clip_parent_end_frame": clip_end,
            "action_clip_start_sec": _seconds(start),
            "action_clip_end_sec": _seconds(end),
            "action_clip_start_frame": start,
            "action_clip_end_frame": end,
            "verb": taxonomy["verbs"][verb_id],
            "noun": taxonomy["nouns"][noun_id],
            "verb_label": verb_id,
            "noun_label": noun_id,
        })
    return records


def _state_change_records(video: _Video) -> list[dict[str, Any]]:
    """``fho_oscc-pnr_{split}.json`` ``clips`` records; negatives carry null PNR fields."""
    clip_start = video.fho_start_frame
    records = []
    for sample in video.state_changes:
        pnr = sample.pnr_frame
        records.append({
            "unique_id": sample.unique_id,
            "video_uid": video.video_uid,
            "clip_id": video.fho_clip_id,
            "clip_uid": video.fho_clip_uid,
            "parent_start_sec": _seconds(sample.start_frame),
            "parent_end_sec": _seconds(sample.end_frame),
            "parent_start_frame": sample.start_frame,
            "parent_end_frame": sample.end_frame,
            "parent_pnr_frame": pnr,
            "clip_start_sec": _seconds(sample.start_frame - clip_start),
            "clip_end_sec": _seconds(sample.end_frame - clip_start),
            "clip_start_frame": sample.start_frame - clip_start,
            "clip_end_frame": sample.end_frame - clip_start,
            "clip_pnr_frame": None if pnr is None else pnr - clip_start,
            "state_change": pnr is not None,
        })
    return records


def _moments_video(video: _Video, mq_raw_labels: list[str], annotator_uid: str) -> dict[str, Any]:
    """One ``moments_{split}.json`` ``videos`` entry (one clip, one annotator, every label primary)."""
    clip_start = video.mq_start_frame
    labels = [{
        "start_time": _seconds(moment.start_frame - clip_start),
        "end_time": _seconds(moment.end_frame - clip_start),
        "label": mq_raw_labels[moment.mq_class],
        "video_start_time": _seconds(moment.start_frame),
        "video_end_time": _seconds(moment.end_frame),
        "video_start_frame": moment.start_frame,
        "video_end_frame": moment.end_frame,
        "primary": True,
    } for moment in video.moments]
    return {
        "video_uid": video.video_uid,
        "split": video.split,
        "clips": [{
            "clip_uid": video.mq_clip_uid,
            "video_start_sec": _seconds(clip_start),
            "video_end_sec": _seconds(video.mq_end_frame),
            "video_start_frame": clip_start,
            "video_end_frame": video.mq_end_frame,
            "clip_start_sec": 0.0,
            "clip_end_sec": _seconds(video.mq_end_frame - clip_start),
            "annotations": [{"annotator_uid": annotator_uid, "labels": labels}],
        }],
    }


def _narrations(video: _Video, vocab: _Vocabulary, taxonomy: dict[str, list[str]]) -> dict[str, Any]:
    """``narration.json`` entry: one ``#C C <verb> <noun>`` narration at each action's middle frame."""
    narrations = []
    for action in video.actions:
        frame = (action.start_frame + action.end_frame) // 2
        verb = taxonomy["verbs"][int(vocab.verb_ids[action.verb])]
        noun = taxonomy["nouns"][int(vocab.noun_ids[action.noun])]
        narrations.append({"timestamp_sec": _seconds(frame), "timestamp_frame": frame,
                           "narration_text": f"#C C {verb} {noun}"})
    return {"narration_pass_1": {"narrations": narrations, "summaries": []}}


def _video_metadata(video: _Video) -> dict[str, Any]:
    return {
        "video_uid": video.video_uid,
        "duration_sec": _seconds(video.num_frames),
        "split_fho": video.split,
        "split_em": video.split,
        "video_metadata": {"fps": float(FPS), "num_frames": video.num_frames},
    }


def _tensor_bytes(features: np.ndarray) -> bytes:
    """``torch.save`` of the [T, D] tensor, into memory (so the archive name does not depend on a temp file)."""
    buffer = io.BytesIO()
    torch.save(torch.from_numpy(features), buffer)
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------------ entry point

def generate_dataset(root: str | PathLike[str], cfg: SynthConfig = SynthConfig()) -> dict[str, Any]:
    """Write the synthetic dataset under ``root`` (created) and return a JSON-able summary.

    The summary holds ``root``, ``config`` (the settings used), ``videos`` (video uids per split), and ``files``:
    for each file written, relative to ``root``, the number of records it holds (actions, samples, moments,
    narrations, videos, classes or feature rows).
    """
    layout = Ego4dLayout(Path(root))
    rng = np.random.default_rng(cfg.seed)
    taxonomy = json.loads(vocabulary_path("fho_lta_taxonomy.json").read_text(encoding="utf-8"))
    mq_labels_text = vocabulary_path("mq_labels.tsv").read_text(encoding="utf-8")
    mq_raw_names = [line.split("\t")[1] for line in mq_labels_text.splitlines() if line.strip()]

    vocab = _draw_vocabulary(rng, cfg)
    videos = _draw_videos(rng, cfg, vocab)
    mq_used_labels = [mq_raw_names[int(class_id)] for class_id in vocab.mq_ids]
    counts: dict[str, int] = {}

    def write_json(path: Path, document: dict[str, Any], count: int) -> None:
        write_json_atomic(path, document)
        counts[str(path.relative_to(layout.data_dir))] = count

    for split in SPLITS:
        in_split = [video for video in videos if video.split == split]
        lta = [record for video in in_split for record in _lta_records(video, vocab, taxonomy)]
        write_json(layout.lta_annotations(split), {**_header(split, "synthetic FHO LTA"), "clips": lta}, len(lta))
        state = [record for video in in_split for record in _state_change_records(video)]
        write_json(layout.state_change_annotations(split),
                   {**_header(split, "synthetic FHO OSCC-PNR"), "clips": state}, len(state))
        moments = [_moments_video(video, mq_used_labels, _uid(rng)) for video in in_split]
        write_json(layout.moments_annotations(split), {**_header(None, "synthetic moments"), "videos": moments},
                   sum(len(video.moments) for video in in_split))

    write_json(layout.annotations_dir / "narration.json",
               {video.video_uid: _narrations(video, vocab, taxonomy) for video in videos},
               sum(len(video.actions) for video in videos))
    write_json(layout.data_dir / "ego4d.json",
               {**_header(None, "synthetic Ego4D metadata"), "videos": [_video_metadata(v) for v in videos],
                "clips": []}, len(videos))
    taxonomy_path = layout.lta_taxonomy()
    write_bytes_atomic(taxonomy_path, vocabulary_path("fho_lta_taxonomy.json").read_bytes())
    counts[str(taxonomy_path.relative_to(layout.data_dir))] = len(taxonomy["verbs"]) + len(taxonomy["nouns"])
    labels_path = layout.data_dir / "annotations" / "mq_labels.tsv"
    write_bytes_atomic(labels_path, mq_labels_text.encode("utf-8"))
    counts[str(labels_path.relative_to(layout.data_dir))] = len(mq_raw_names)

    features_dir = layout.features_dir(cfg.feature_name)
    for video in tqdm(videos, desc="synthetic features", unit="video", leave=False):
        path = features_dir / f"{video.video_uid}.pt"
        write_bytes_atomic(path, _tensor_bytes(_video_features(rng, cfg, vocab, video)))
        counts[str(path.relative_to(layout.data_dir))] = video.num_rows

    return {
        "root": str(layout.data_dir),
        "config": {name: getattr(cfg, name) for name in cfg.__dataclass_fields__},
        "videos": {split: [v.video_uid for v in videos if v.split == split] for split in SPLITS},
        "files": counts,
    }
