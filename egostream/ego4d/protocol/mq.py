"""Moment Queries samples: one sample per annotated MQ clip, one segment per primary moment.

As sapeirone/hier-egopack@4fff4e5:data/ego4d/MQ.py: for each video and clip of ``moments_{split}.json``, every
annotator's ``primary`` moments (L108-112), labels unquoted and mapped to the ``mq_labels.tsv`` class ids
(L123-126); clips without moments are skipped outside test splits (L130-132, also the official
EGO4D/episodic-memory MQ/Convert_annotation.py). The nodes are the clip's feature rows (L162-166) and the moments
are segments in seconds on the nodes' axis, whose origin is ``clip_offset_s`` = (clip start frame mod 16) / 30
seconds before the clip start (L170-180). The authors pad to 1024 rows (L193-195); egostream does not.

Protocol switch (duplicate moments, several annotators often mark the same one):

- ``hier-egopack``: a moment is dropped when one already kept has the same start frame, end frame and label; the
  test compares the label *as written* with the kept *unquoted* labels (MQ.py L114-123), so duplicates of the seven
  quoted labels are all kept.
- ``official``: no deduplication: every primary moment of every annotator, as the official ground truth
  (EGO4D/episodic-memory MQ/Convert_annotation.py, MQ/Evaluation/ego4d/eval_detection.py).

``clip_segments_s`` gives the same moments in the official clip seconds (``start_time`` / ``end_time``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from egostream.ego4d.annotations import MomentLabel, MomentsAnnotations, MomentsClip, read_moments_annotations
from egostream.ego4d.features import FeatureSpec
from egostream.ego4d.layout import Ego4dLayout
from egostream.ego4d.protocol.builders import SAMPLE_BUILDERS, ProtocolName, check_protocol, is_test_split
from egostream.ego4d.protocol.windows import FeatureWindow, centred_node_positions_s, feature_window, \
    frames_to_sample_seconds
from egostream.ego4d.taxonomy import MQLabelMap, load_mq_labels, unquote_mq_label
from egostream.errors import InputError

__all__ = ["MQSample", "build_mq_samples", "load_mq_samples", "primary_moments"]


@dataclass(frozen=True, eq=False)
class MQSample:
    """One clip: its feature rows and its moments.

    ``segments_s`` float32 [M, 2] on the nodes' axis; ``clip_segments_s`` float64 [M, 2] official clip seconds;
    ``labels`` int64 [M] class ids; ``label_names`` unquoted. ``clip_duration_s`` = (end - start frame) / 30.
    Add ``clip_offset_s`` to a clip time to get a nodes'-axis time (subtract it to write a submission).
    """

    video_uid: str
    clip_uid: str
    clip_start_frame: int
    clip_end_frame: int
    window: FeatureWindow
    segments_s: torch.Tensor
    clip_segments_s: torch.Tensor
    labels: torch.Tensor
    label_names: tuple[str, ...]
    spec: FeatureSpec

    @property
    def clip_offset_s(self) -> float:
        return self.window.grid_offset_frames / self.spec.fps

    @property
    def clip_duration_s(self) -> float:
        return (self.clip_end_frame - self.clip_start_frame) / self.spec.fps

    def node_positions_s(self, num_nodes: int) -> torch.Tensor:
        """float32 [n]: (0.5 + i) * 16 / 30 (MQ.py L208)."""
        return centred_node_positions_s(num_nodes, self.spec)


def primary_moments(clip: MomentsClip, protocol: ProtocolName) -> list[MomentLabel]:
    """The clip's primary moments in annotator order, deduplicated per ``protocol`` (see the module docstring)."""
    kept: list[MomentLabel] = []
    for annotator in clip.annotations:
        for moment in annotator.labels:
            if not moment.primary:
                continue
            if protocol == "hier-egopack" and any(
                    other.video_start_frame == moment.video_start_frame
                    and other.video_end_frame == moment.video_end_frame
                    and unquote_mq_label(other.label) == moment.label  # raw vs unquoted: MQ.py L114-117
                    for other in kept):
                continue
            kept.append(moment)
    return kept


def build_mq_samples(annotations: MomentsAnnotations, labels: MQLabelMap, spec: FeatureSpec, split: str, *,
                     protocol: ProtocolName = "hier-egopack",
                     has_features: Callable[[str], bool] | None = None) -> list[MQSample]:
    """The MQ samples of one split, in file order (videos, then clips)."""
    check_protocol(protocol)
    test = is_test_split(split)
    samples = []
    for video_index, video in enumerate(annotations.videos):
        if has_features is not None and not has_features(video.video_uid):
            continue
        for clip_index, clip in enumerate(video.clips):
            where = f"videos[{video_index}].clips[{clip_index}]"
            moments = [] if test else primary_moments(clip, protocol)
            if not test and not moments:
                continue
            window = feature_window(video.video_uid, clip.video_start_frame, clip.video_end_frame, spec)
            segments = frames_to_sample_seconds([m.video_start_frame for m in moments],
                                                [m.video_end_frame for m in moments],
                                                clip.video_start_frame, window.grid_offset_frames, spec)
            if bool((segments[:, 1] <= segments[:, 0]).any()):  # the authors assert this (MQ.py L181)
                raise InputError(annotations.path, where, "a primary moment ends at or before its start frame")
            samples.append(MQSample(
                video_uid=video.video_uid,
                clip_uid=clip.clip_uid,
                clip_start_frame=clip.video_start_frame,
                clip_end_frame=clip.video_end_frame,
                window=window,
                segments_s=segments,
                clip_segments_s=torch.tensor([[m.clip_start_sec, m.clip_end_sec] for m in moments],
                                             dtype=torch.float64).reshape(-1, 2),
                labels=torch.tensor([_class_id(annotations, where, labels, m) for m in moments], dtype=torch.long),
                label_names=tuple(unquote_mq_label(m.label) for m in moments),
                spec=spec,
            ))
    return samples


@SAMPLE_BUILDERS.register("mq")
def load_mq_samples(layout: Ego4dLayout, split: str, spec: FeatureSpec, *, protocol: ProtocolName = "hier-egopack",
                    has_features: Callable[[str], bool] | None = None) -> list[MQSample]:
    """Read ``mq_labels.tsv`` and ``moments_{split}.json`` (labels checked) and build the MQ samples."""
    labels = load_mq_labels(layout.mq_labels())
    annotations = read_moments_annotations(layout.moments_annotations(split), labels)
    return build_mq_samples(annotations, labels, spec, split, protocol=protocol, has_features=has_features)


def _class_id(annotations: MomentsAnnotations, where: str, labels: MQLabelMap, moment: MomentLabel) -> int:
    try:
        return labels.class_id(moment.label)
    except KeyError:
        raise InputError(annotations.path, where, f"unknown moment label {moment.label!r}") from None
