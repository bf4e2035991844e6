"""Step 1 of ``egostream demo``: the synthetic dataset and one rendered H.264 video per dataset video."""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from egostream.demo.config import DemoConfig, DemoPaths
from egostream.ego4d.annotations import (read_lta_annotations, read_moments_annotations, read_state_change_annotations,
                                         read_video_metadata)
from egostream.ego4d.layout import Ego4dLayout
from egostream.ego4d.synthetic import FPS, generate_dataset

__all__ = ["FrameLabels", "frame_labels", "render_labelled_frames", "synthesize"]


@dataclass(frozen=True)
class FrameLabels:
    """Per-frame labels of one video (int16 ``[num_frames]``; -1: none at that frame).

    ``verb`` / ``noun``: the action in progress (index into ``verb_classes`` / ``noun_classes``, taxonomy ids);
    ``moment``: the MQ moment in progress (index into ``moment_classes``, label names); ``state``: the object state
    inside an OSCC/PNR sample, 0 before and 1 from the PNR frame on (a negative sample keeps one state throughout).
    """

    video_uid: str
    verb: np.ndarray
    noun: np.ndarray
    moment: np.ndarray
    state: np.ndarray
    verb_classes: tuple[int, ...]
    noun_classes: tuple[int, ...]
    moment_classes: tuple[str, ...]

    @property
    def num_frames(self) -> int:
        return int(self.verb.shape[0])


def frame_labels(data_root: str | PathLike[str], seed: int = 0) -> list[FrameLabels]:
    """The per-frame labels of every video of the dataset at ``data_root``, from its annotation files (both
    splits), in ``ego4d.json`` order. A negative OSCC sample's constant state is drawn from ``seed``."""
    layout = Ego4dLayout.from_root(data_root)
    metadata = read_video_metadata(layout.data_dir / "ego4d.json").videos
    splits = ("train", "val")
    actions = [action for split in splits for action in read_lta_annotations(layout.lta_annotations(split)).actions]
    samples = [sample for split in splits
               for sample in read_state_change_annotations(layout.state_change_annotations(split)).samples]
    moments = [(video.video_uid, label) for split in splits
               for video in read_moments_annotations(layout.moments_annotations(split)).videos
               for clip in video.clips for annotator in clip.annotations for label in annotator.labels]
    verb_classes = tuple(sorted({int(a.verb_label) for a in actions if a.verb_label is not None}))
    noun_classes = tuple(sorted({int(a.noun_label) for a in actions if a.noun_label is not None}))
    moment_classes = tuple(sorted({label.label for _, label in moments}))
    rng = np.random.default_rng(seed)
    tracks: dict[str, dict[str, np.ndarray]] = {}
    for uid, video in metadata.items():
        frames = video.num_frames if video.num_frames is not None else int(round(video.duration_sec * FPS))
        tracks[uid] = {name: np.full(frames, -1, dtype=np.int16) for name in ("verb", "noun", "moment", "state")}
    for action in actions:
        start = action.clip_parent_start_frame + action.action_clip_start_frame
        end = action.clip_parent_start_frame + action.action_clip_end_frame
        track = tracks[action.video_uid]
        track["verb"][start:end] = verb_classes.index(int(action.verb_label))  # type: ignore[arg-type]
        track["noun"][start:end] = noun_classes.index(int(action.noun_label))  # type: ignore[arg-type]
    for uid, label in moments:
        tracks[uid]["moment"][label.video_start_frame:label.video_end_frame] = moment_classes.index(label.label)
    for sample in samples:
        state = tracks[sample.video_uid]["state"]
        end = sample.parent_end_frame + 1  # the sample spans [start, end] frames
        if sample.state_change and sample.parent_pnr_frame is not None:
            state[sample.parent_start_frame:sample.parent_pnr_frame] = 0
            state[sample.parent_pnr_frame:end] = 1
        else:
            state[sample.parent_start_frame:end] = int(rng.integers(2))
    return [FrameLabels(uid, track["verb"], track["noun"], track["moment"], track["state"], verb_classes,
                        noun_classes, moment_classes) for uid, track in tracks.items()]


#: Grey level of a quadrant with no label at that frame.
_EMPTY_GREY = 40


@lru_cache(maxsize=4096)
def _tile(label: int, num_classes: int, phase: int, size: tuple[int, int]) -> np.ndarray:
    """One quadrant: :func:`egostream.io.synthetic_video.render_frame` of ``label`` (the stripes repeat every 8
    frames, so ``phase`` = frame index mod 8 is all that changes), or flat grey for label -1."""
    from egostream.io.synthetic_video import render_frame

    if label < 0:
        return np.full((*size, 3), _EMPTY_GREY, dtype=np.uint8)
    return render_frame(label, phase, num_classes, size)


def render_labelled_frames(labels: FrameLabels, size: tuple[int, int] = (48, 64)) -> Iterator[np.ndarray]:
    """RGB uint8 frames [H, W, 3] of ``labels``: quadrants verb | noun over moment | state, each in the colour and
    stripe orientation of its label (:func:`egostream.io.synthetic_video.render_frame`), grey where there is none."""
    height, width = size
    quadrant = (height // 2, width // 2)
    tracks = ((labels.verb, len(labels.verb_classes)), (labels.noun, len(labels.noun_classes)),
              (labels.moment, len(labels.moment_classes)), (labels.state, 2))
    for frame in range(labels.num_frames):
        verb, noun, moment, state = (_tile(int(track[frame]), max(1, classes), frame % 8, quadrant)
                                     for track, classes in tracks)
        image = np.zeros((height, width, 3), dtype=np.uint8)
        image[:quadrant[0], :quadrant[1]] = verb
        image[:quadrant[0], quadrant[1]:2 * quadrant[1]] = noun
        image[quadrant[0]:2 * quadrant[0], :quadrant[1]] = moment
        image[quadrant[0]:2 * quadrant[0], quadrant[1]:2 * quadrant[1]] = state
        yield image


def _render_video(labels: FrameLabels, path: Path, size: tuple[int, int]) -> None:
    """Encode the video of ``labels`` at 30 fps to ``path`` atomically (a partial file never carries the name)."""
    from egostream.io.synthetic_video import write_video

    partial = path.with_name(f".{path.name}.partial")
    write_video(partial, render_labelled_frames(labels, size), FPS, format="mp4")
    os.replace(partial, path)


def synthesize(cfg: DemoConfig, paths: DemoPaths, console: Console) -> dict[str, Any]:
    """Step 1: the synthetic dataset under ``paths.data`` and its videos under ``paths.videos`` (existing videos are
    kept: they are a function of the annotations, which the seeded generator rewrites identically)."""
    from rich.progress import Progress

    summary = generate_dataset(paths.data, cfg.synth)
    paths.videos.mkdir(parents=True, exist_ok=True)
    videos = frame_labels(paths.data, cfg.synth.seed)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("rendering videos (PyAV, H.264)", total=len(videos))
        for labels in videos:
            path = paths.videos / f"{labels.video_uid}.mp4"
            if not path.is_file():
                _render_video(labels, path, cfg.frame_size)
            progress.advance(task)
    return {"videos": summary["videos"], "frames": sum(labels.num_frames for labels in videos),
            "seconds": round(sum(labels.num_frames for labels in videos) / FPS, 1)}
