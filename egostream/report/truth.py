"""The Ego4D ground truth of one video, as the report draws it under the predicted tracks.

Read from an Ego4D data root (:class:`~egostream.ego4d.layout.Ego4dLayout`): the actions of ``fho_lta_{split}.json``
(AR and LTA), the state-change samples of ``fho_oscc-pnr_{split}.json`` (OSCC and PNR) and the moments of
``moments_{split}.json`` (MQ), every split whose file exists. All times are seconds of the video (= stream seconds
when the whole video is streamed from its first frame; frames at 30 fps).
"""
from __future__ import annotations

from dataclasses import dataclass
from os import PathLike

from egostream.ego4d.annotations import (read_lta_annotations, read_moments_annotations,
                                         read_state_change_annotations)
from egostream.ego4d.layout import Ego4dLayout
from egostream.errors import InputError

__all__ = ["TruthAction", "TruthStateChange", "TruthMoment", "GroundTruth", "load_ground_truth", "SPLITS"]

#: The splits whose annotation files are read (``test_unannotated`` has no labels).
SPLITS = ("train", "val")
_FPS = 30.0


@dataclass(frozen=True)
class TruthAction:
    """An annotated action (verb, noun) over ``[start_s, end_s]`` video seconds."""

    start_s: float
    end_s: float
    verb_id: int
    verb: str
    noun_id: int
    noun: str


@dataclass(frozen=True)
class TruthStateChange:
    """An OSCC/PNR sample over ``[start_s, end_s]``: whether an object changes state, and the PNR time (seconds) if
    it does."""

    start_s: float
    end_s: float
    state_change: bool
    pnr_s: float | None


@dataclass(frozen=True)
class TruthMoment:
    """An annotated moment (MQ) ``label`` over ``[start_s, end_s]`` video seconds."""

    start_s: float
    end_s: float
    label: str


@dataclass(frozen=True)
class GroundTruth:
    """Everything annotated for one video, each kind sorted by start time."""

    video_uid: str
    actions: tuple[TruthAction, ...] = ()
    state_changes: tuple[TruthStateChange, ...] = ()
    moments: tuple[TruthMoment, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.actions or self.state_changes or self.moments)


def load_ground_truth(root: str | PathLike[str], video_uid: str) -> GroundTruth:
    """The annotations of ``video_uid`` under the data root ``root`` (the folder holding ``annotations/v1``).

    Raises:
        InputError: ``root`` holds none of the annotation files.
    """
    layout = Ego4dLayout.from_root(root)
    files = [path for split in SPLITS for path in (layout.lta_annotations(split),
                                                   layout.state_change_annotations(split),
                                                   layout.moments_annotations(split))]
    if not any(path.is_file() for path in files):
        raise InputError(layout.annotations_dir, "annotations",
                         "no fho_lta_*, fho_oscc-pnr_* or moments_* file of the train or val split here")
    actions: list[TruthAction] = []
    changes: list[TruthStateChange] = []
    moments: list[TruthMoment] = []
    for split in SPLITS:
        if layout.lta_annotations(split).is_file():
            for a in read_lta_annotations(layout.lta_annotations(split)).actions:
                if a.video_uid == video_uid:
                    start = a.clip_parent_start_frame + a.action_clip_start_frame
                    end = a.clip_parent_start_frame + a.action_clip_end_frame
                    actions.append(TruthAction(start / _FPS, end / _FPS, int(a.verb_label or 0), a.verb or "",
                                               int(a.noun_label or 0), a.noun or ""))
        if layout.state_change_annotations(split).is_file():
            for s in read_state_change_annotations(layout.state_change_annotations(split)).samples:
                if s.video_uid == video_uid:
                    pnr = s.parent_pnr_frame / _FPS if s.state_change and s.parent_pnr_frame is not None else None
                    changes.append(TruthStateChange(s.parent_start_sec, s.parent_end_sec, bool(s.state_change), pnr))
        if layout.moments_annotations(split).is_file():
            for video in read_moments_annotations(layout.moments_annotations(split)).videos:
                if video.video_uid == video_uid:
                    moments.extend(TruthMoment(label.video_start_sec, label.video_end_sec, label.label)
                                   for clip in video.clips for annotator in clip.annotations
                                   for label in annotator.labels)
    return GroundTruth(video_uid, tuple(sorted(actions, key=lambda a: a.start_s)),
                       tuple(sorted(changes, key=lambda c: c.start_s)),
                       tuple(sorted(set(moments), key=lambda m: (m.start_s, m.end_s, m.label))))
