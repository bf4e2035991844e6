"""Readers for the official Ego4D v1 annotation files, into typed frozen records.

Each reader validates every field it keeps; any malformed JSON, missing field, wrong type or unknown label raises
:class:`egostream.errors.InputError` naming the file and the exact field path (``clips[3].verb_label``).
Fields keep the official JSON key names (which already carry their unit: ``*_frame`` = frames at 30 fps,
``*_sec`` = seconds) except where the official key has no unit; those are renamed and the JSON key is given below.

``fho_lta_{split}.json`` -> :class:`LTAAnnotations` (``{"clips": [record]}``, one record per action):
    clip_uid, video_uid, action_idx (int), clip_parent_start_frame, clip_parent_end_frame (the clip in parent-video
    frames), action_clip_start_frame, action_clip_end_frame (the action in clip frames), optional
    action_clip_start_sec, action_clip_end_sec, clip_parent_start_sec, clip_parent_end_sec; labels (absent in
    ``test_unannotated``): verb, noun (names), verb_label, noun_label (taxonomy ids).

``fho_oscc-pnr_{split}.json`` -> :class:`StateChangeAnnotations` (``{"clips": [record]}``, one record per ~8 s
sample):
    unique_id, video_uid, clip_id (string or integer, kept as a string), optional clip_uid,
    parent_start_frame, parent_end_frame, parent_start_sec, parent_end_sec (the sample in parent-video frames and
    seconds), optional parent_pnr_frame (null without a state change), optional clip_start_frame, clip_end_frame,
    clip_pnr_frame, clip_start_sec, clip_end_sec; state_change (bool; absent in ``test_unannotated``).

``moments_{split}.json`` -> :class:`MomentsAnnotations`:
    ``{"videos": [{video_uid, split?, clips: [{clip_uid, video_start_sec, video_end_sec, video_start_frame,
    video_end_frame, annotations?: [{annotator_uid?, labels: [{start_time, end_time, video_start_time,
    video_end_time, video_start_frame, video_end_frame, label, primary}]}]}]}]}``.
    Renamed: ``start_time``/``end_time`` (seconds from the clip start) -> ``clip_start_sec``/``clip_end_sec``;
    ``video_start_time``/``video_end_time`` -> ``video_start_sec``/``video_end_sec``.
    ``annotations`` may be absent (``test_unannotated``).

``ego4d.json`` -> :class:`VideoMetadataIndex`:
    ``{"videos": [{video_uid, duration_sec, video_metadata?: {fps?, num_frames?}}]}`` (other keys ignored).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import TypeVar

from egostream.ego4d.json_records import JsonRecord, load_json_record
from egostream.ego4d.taxonomy import LTATaxonomy, MQLabelMap

__all__ = [
    "LTAAction", "LTAAnnotations", "read_lta_annotations",
    "StateChangeSample", "StateChangeAnnotations", "read_state_change_annotations",
    "MomentLabel", "MomentAnnotator", "MomentsClip", "MomentsVideo", "MomentsAnnotations",
    "read_moments_annotations",
    "VideoMetadata", "VideoMetadataIndex", "read_video_metadata",
]

RecordT = TypeVar("RecordT")


# ---------------------------------------------------------------- fho_lta_{split}.json

@dataclass(frozen=True)
class LTAAction:
    """One action of ``fho_lta_{split}.json`` ``clips[i]``. Frames are at 30 fps."""

    clip_uid: str
    video_uid: str
    action_idx: int
    clip_parent_start_frame: int
    clip_parent_end_frame: int
    action_clip_start_frame: int
    action_clip_end_frame: int
    action_clip_start_sec: float | None = None
    action_clip_end_sec: float | None = None
    clip_parent_start_sec: float | None = None
    clip_parent_end_sec: float | None = None
    verb: str | None = None
    noun: str | None = None
    verb_label: int | None = None
    noun_label: int | None = None

    @property
    def video_start_frame(self) -> int:
        """Action start in parent-video frames (``clip_parent_start_frame + action_clip_start_frame``)."""
        return self.clip_parent_start_frame + self.action_clip_start_frame

    @property
    def video_end_frame(self) -> int:
        """Action end in parent-video frames (``clip_parent_start_frame + action_clip_end_frame``)."""
        return self.clip_parent_start_frame + self.action_clip_end_frame

    @property
    def is_labelled(self) -> bool:
        return self.verb_label is not None and self.noun_label is not None


@dataclass(frozen=True)
class LTAAnnotations:
    """The actions of one ``fho_lta_{split}.json`` file, in file order."""

    path: Path
    actions: tuple[LTAAction, ...]
    split: str | None = None


def read_lta_annotations(path: str | PathLike[str], taxonomy: LTATaxonomy | None = None) -> LTAAnnotations:
    """Read ``fho_lta_{split}.json``; with ``taxonomy``, verb/noun ids must be classes of it (names are not checked)."""
    document = load_json_record(path)

    def parse(record: JsonRecord) -> LTAAction:
        verb_label, noun_label = record.optional_integer("verb_label"), record.optional_integer("noun_label")
        if taxonomy is not None:
            _check_class_id(record, "verb_label", verb_label, taxonomy.num_verbs, "verb")
            _check_class_id(record, "noun_label", noun_label, taxonomy.num_nouns, "noun")
        return LTAAction(
            clip_uid=record.string("clip_uid"),
            video_uid=record.string("video_uid"),
            action_idx=record.integer("action_idx"),
            clip_parent_start_frame=record.integer("clip_parent_start_frame"),
            clip_parent_end_frame=record.integer("clip_parent_end_frame"),
            action_clip_start_frame=record.integer("action_clip_start_frame"),
            action_clip_end_frame=record.integer("action_clip_end_frame"),
            action_clip_start_sec=record.optional_number("action_clip_start_sec"),
            action_clip_end_sec=record.optional_number("action_clip_end_sec"),
            clip_parent_start_sec=record.optional_number("clip_parent_start_sec"),
            clip_parent_end_sec=record.optional_number("clip_parent_end_sec"),
            verb=record.optional_string("verb"),
            noun=record.optional_string("noun"),
            verb_label=verb_label,
            noun_label=noun_label,
        )

    return LTAAnnotations(Path(path), _parse_list(document, "clips", parse), document.optional_string("split"))


# ---------------------------------------------------------------- fho_oscc-pnr_{split}.json

@dataclass(frozen=True)
class StateChangeSample:
    """One OSCC/PNR sample of ``fho_oscc-pnr_{split}.json`` ``clips[i]`` (about 8 s). Frames are at 30 fps."""

    unique_id: str
    video_uid: str
    clip_id: str
    parent_start_frame: int
    parent_end_frame: int
    parent_start_sec: float
    parent_end_sec: float
    parent_pnr_frame: int | None = None
    clip_uid: str | None = None
    clip_start_frame: int | None = None
    clip_end_frame: int | None = None
    clip_pnr_frame: int | None = None
    clip_start_sec: float | None = None
    clip_end_sec: float | None = None
    state_change: bool | None = None


@dataclass(frozen=True)
class StateChangeAnnotations:
    """The samples of one ``fho_oscc-pnr_{split}.json`` file, in file order."""

    path: Path
    samples: tuple[StateChangeSample, ...]
    split: str | None = None


def read_state_change_annotations(path: str | PathLike[str]) -> StateChangeAnnotations:
    """Read ``fho_oscc-pnr_{split}.json``. A sample with ``state_change: true`` must have ``parent_pnr_frame``."""
    document = load_json_record(path)

    def parse(record: JsonRecord) -> StateChangeSample:
        state_change = record.optional_boolean("state_change")
        pnr_frame = record.optional_integer("parent_pnr_frame")
        if state_change and pnr_frame is None:
            raise record.error("parent_pnr_frame", "missing field (required when state_change is true)")
        return StateChangeSample(
            unique_id=record.string("unique_id"),
            video_uid=record.string("video_uid"),
            clip_id=record.string_or_integer("clip_id"),
            parent_start_frame=record.integer("parent_start_frame"),
            parent_end_frame=record.integer("parent_end_frame"),
            parent_start_sec=record.number("parent_start_sec"),
            parent_end_sec=record.number("parent_end_sec"),
            parent_pnr_frame=pnr_frame,
            clip_uid=record.optional_string("clip_uid"),
            clip_start_frame=record.optional_integer("clip_start_frame"),
            clip_end_frame=record.optional_integer("clip_end_frame"),
            clip_pnr_frame=record.optional_integer("clip_pnr_frame"),
            clip_start_sec=record.optional_number("clip_start_sec"),
            clip_end_sec=record.optional_number("clip_end_sec"),
            state_change=state_change,
        )

    return StateChangeAnnotations(Path(path), _parse_list(document, "clips", parse), document.optional_string("split"))


# ---------------------------------------------------------------- moments_{split}.json

@dataclass(frozen=True)
class MomentLabel:
    """One moment (``videos[v].clips[c].annotations[a].labels[l]``). ``label`` is as written (quotes kept)."""

    label: str
    primary: bool
    clip_start_sec: float
    clip_end_sec: float
    video_start_sec: float
    video_end_sec: float
    video_start_frame: int
    video_end_frame: int


@dataclass(frozen=True)
class MomentAnnotator:
    """One annotator's moments of a clip."""

    labels: tuple[MomentLabel, ...]
    annotator_uid: str | None = None


@dataclass(frozen=True)
class MomentsClip:
    """One MQ clip of a video; ``video_*`` fields place the clip in its parent video."""

    clip_uid: str
    video_start_sec: float
    video_end_sec: float
    video_start_frame: int
    video_end_frame: int
    annotations: tuple[MomentAnnotator, ...] = ()


@dataclass(frozen=True)
class MomentsVideo:
    video_uid: str
    clips: tuple[MomentsClip, ...]
    split: str | None = None


@dataclass(frozen=True)
class MomentsAnnotations:
    """The videos of one ``moments_{split}.json`` file, in file order."""

    path: Path
    videos: tuple[MomentsVideo, ...]


def read_moments_annotations(path: str | PathLike[str], labels: MQLabelMap | None = None) -> MomentsAnnotations:
    """Read ``moments_{split}.json``; with ``labels``, every moment label (quoted or not) must be an MQ class."""
    document = load_json_record(path)

    def parse_label(record: JsonRecord) -> MomentLabel:
        label = record.string("label")
        if labels is not None and label not in labels:
            raise record.error("label", f"unknown moment label {label!r} (not one of the {labels.num_classes} "
                                        "MQ classes)")
        return MomentLabel(
            label=label,
            primary=record.boolean("primary"),
            clip_start_sec=record.number("start_time"),
            clip_end_sec=record.number("end_time"),
            video_start_sec=record.number("video_start_time"),
            video_end_sec=record.number("video_end_time"),
            video_start_frame=record.integer("video_start_frame"),
            video_end_frame=record.integer("video_end_frame"),
        )

    def parse_annotator(record: JsonRecord) -> MomentAnnotator:
        return MomentAnnotator(_parse_list(record, "labels", parse_label), record.optional_string("annotator_uid"))

    def parse_clip(record: JsonRecord) -> MomentsClip:
        annotators = _parse_list(record, "annotations", parse_annotator) if record.has("annotations") else ()
        return MomentsClip(
            clip_uid=record.string("clip_uid"),
            video_start_sec=record.number("video_start_sec"),
            video_end_sec=record.number("video_end_sec"),
            video_start_frame=record.integer("video_start_frame"),
            video_end_frame=record.integer("video_end_frame"),
            annotations=annotators,
        )

    def parse_video(record: JsonRecord) -> MomentsVideo:
        return MomentsVideo(record.string("video_uid"), _parse_list(record, "clips", parse_clip),
                            record.optional_string("split"))

    return MomentsAnnotations(Path(path), _parse_list(document, "videos", parse_video))


# ---------------------------------------------------------------- ego4d.json

@dataclass(frozen=True)
class VideoMetadata:
    """One video of ``ego4d.json``: its length in seconds and, when given, its frame rate and frame count."""

    video_uid: str
    duration_sec: float
    fps: float | None = None
    num_frames: int | None = None


@dataclass(frozen=True)
class VideoMetadataIndex:
    """``ego4d.json``, indexed by video uid."""

    path: Path
    videos: dict[str, VideoMetadata]

    def __getitem__(self, video_uid: str) -> VideoMetadata:
        return self.videos[video_uid]

    def __contains__(self, video_uid: object) -> bool:
        return video_uid in self.videos

    def __len__(self) -> int:
        return len(self.videos)


def read_video_metadata(path: str | PathLike[str]) -> VideoMetadataIndex:
    """Read ``ego4d.json``; a video uid listed twice is an error."""
    document = load_json_record(path)
    videos: dict[str, VideoMetadata] = {}
    for record in document.records("videos"):
        metadata = record.optional_record("video_metadata")
        video = VideoMetadata(
            video_uid=record.string("video_uid"),
            duration_sec=record.number("duration_sec"),
            fps=None if metadata is None else metadata.optional_number("fps"),
            num_frames=None if metadata is None else metadata.optional_integer("num_frames"),
        )
        if video.video_uid in videos:
            raise record.error("video_uid", f"video {video.video_uid!r} is listed twice")
        videos[video.video_uid] = video
    return VideoMetadataIndex(Path(path), videos)


# ---------------------------------------------------------------- shared

def _parse_list(record: JsonRecord, key: str, parse: Callable[[JsonRecord], RecordT]) -> tuple[RecordT, ...]:
    items: Iterator[JsonRecord] = record.records(key)
    return tuple(parse(item) for item in items)


def _check_class_id(record: JsonRecord, key: str, class_id: int | None, num_classes: int, kind: str) -> None:
    if class_id is not None and not 0 <= class_id < num_classes:
        raise record.error(key, f"unknown {kind} id {class_id} (taxonomy has {num_classes} {kind}s)")
