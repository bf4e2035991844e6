"""Action Recognition samples: one sample per LTA clip, one segment per annotated action.

As sapeirone/hier-egopack@4fff4e5:data/ego4d/AR.py: the records of ``fho_lta_{split}.json`` are grouped by
``clip_uid`` (first-appearance order); the clip spans the parent-video frames [clip_parent_start_frame,
clip_parent_end_frame) of its first record (L78-82); its actions are sorted by start frame (L99, stable); the nodes are
the feature rows of the clip (L118-122) and each action is a segment in seconds on the nodes' axis (L126-135).
The authors pad the rows to 1024 with ``mask=False`` rows (L148-150), which the model drops first; egostream
does not pad, so a clip of any length works.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from egostream.ego4d.annotations import LTAAction, LTAAnnotations, read_lta_annotations
from egostream.ego4d.features import FeatureSpec
from egostream.ego4d.layout import Ego4dLayout
from egostream.ego4d.protocol.builders import SAMPLE_BUILDERS, ProtocolName, check_protocol, is_test_split
from egostream.ego4d.protocol.grouping import group_in_order
from egostream.ego4d.protocol.windows import FeatureWindow, centred_node_positions_s, feature_window, \
    frames_to_sample_seconds
from egostream.ego4d.taxonomy import LTA_V1_NUM_NOUNS, LTA_V1_NUM_VERBS, load_lta_taxonomy
from egostream.errors import InputError

__all__ = ["ARSample", "build_ar_samples", "load_ar_samples", "UNLABELLED"]

UNLABELLED = -1
"""Label of an action without ``verb_label`` / ``noun_label`` (``test_unannotated``), as the official loader does."""


@dataclass(frozen=True, eq=False)
class ARSample:
    """One clip: its feature rows and its actions.

    ``segments_s`` float32 [M, 2] (start, end) seconds on the nodes' axis; ``verb_labels`` / ``noun_labels`` int64
    [M]; ``action_idx`` the M actions' ``action_idx`` in the same (start-frame) order.
    """

    video_uid: str
    clip_uid: str
    clip_start_frame: int
    clip_end_frame: int
    window: FeatureWindow
    action_idx: tuple[int, ...]
    segments_s: torch.Tensor
    verb_labels: torch.Tensor
    noun_labels: torch.Tensor
    spec: FeatureSpec

    def node_positions_s(self, num_nodes: int) -> torch.Tensor:
        """float32 [n]: (0.5 + i) * 16 / 30 (AR.py L161)."""
        return centred_node_positions_s(num_nodes, self.spec)


def build_ar_samples(annotations: LTAAnnotations, spec: FeatureSpec, split: str,
                     has_features: Callable[[str], bool] | None = None) -> list[ARSample]:
    """The AR samples of one split; actions without labels must only occur in a test split."""
    samples = []
    for clip_uid, actions in group_in_order(annotations.actions, lambda action: action.clip_uid).items():
        first = actions[0]
        if has_features is not None and not has_features(first.video_uid):
            continue
        ordered = sorted(actions, key=lambda action: action.video_start_frame)
        window = feature_window(first.video_uid, first.clip_parent_start_frame, first.clip_parent_end_frame, spec)
        samples.append(ARSample(
            video_uid=first.video_uid,
            clip_uid=clip_uid,
            clip_start_frame=first.clip_parent_start_frame,
            clip_end_frame=first.clip_parent_end_frame,
            window=window,
            action_idx=tuple(action.action_idx for action in ordered),
            segments_s=frames_to_sample_seconds([a.video_start_frame for a in ordered],
                                                [a.video_end_frame for a in ordered],
                                                first.clip_parent_start_frame, window.grid_offset_frames, spec),
            verb_labels=torch.tensor([_label(annotations, a, "verb_label", split) for a in ordered],
                                     dtype=torch.long),
            noun_labels=torch.tensor([_label(annotations, a, "noun_label", split) for a in ordered],
                                     dtype=torch.long),
            spec=spec,
        ))
    return samples


@SAMPLE_BUILDERS.register("ar")
def load_ar_samples(layout: Ego4dLayout, split: str, spec: FeatureSpec, *, protocol: ProtocolName = "hier-egopack",
                    has_features: Callable[[str], bool] | None = None) -> list[ARSample]:
    """Read ``fho_lta_{split}.json`` (ids checked against the v1 taxonomy) and build the AR samples.

    Both protocols give the same samples: every annotated action is one segment.
    """
    check_protocol(protocol)
    taxonomy = load_lta_taxonomy(layout.lta_taxonomy(), (LTA_V1_NUM_VERBS, LTA_V1_NUM_NOUNS))
    return build_ar_samples(read_lta_annotations(layout.lta_annotations(split), taxonomy), spec, split, has_features)


def _label(annotations: LTAAnnotations, action: LTAAction, key: str, split: str) -> int:
    value = getattr(action, key)
    if value is not None:
        return value
    if is_test_split(split):
        return UNLABELLED
    raise InputError(annotations.path, key,
                     f"action {action.clip_uid}#{action.action_idx} has no {key} (required in split {split!r})")
