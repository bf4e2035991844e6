"""Object State Change Classification samples: one sample per ``clip_id``, one segment per ~8 s OSCC sample.

As sapeirone/hier-egopack@4fff4e5:data/ego4d/OSCC.py: records of ``fho_oscc-pnr_{split}.json`` grouped by
``clip_id`` (first-appearance order, L60-69); the clip spans [min parent_start_frame, max parent_end_frame)
(L80-81); its samples are sorted by start frame (L87, stable); each is a segment on the nodes' axis (L110-119)
labelled ``int(state_change)``, 0 when absent (L73). The authors pad to 1024 rows (L130-132); egostream does not.
Both protocols give the same samples; ``unique_ids`` keeps each segment's id for the official submission.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from egostream.ego4d.annotations import StateChangeAnnotations, read_state_change_annotations
from egostream.ego4d.features import FeatureSpec
from egostream.ego4d.layout import Ego4dLayout
from egostream.ego4d.protocol.builders import SAMPLE_BUILDERS, ProtocolName, check_protocol
from egostream.ego4d.protocol.grouping import group_in_order
from egostream.ego4d.protocol.windows import FeatureWindow, centred_node_positions_s, feature_window, \
    frames_to_sample_seconds

__all__ = ["OSCCSample", "build_oscc_samples", "load_oscc_samples"]


@dataclass(frozen=True, eq=False)
class OSCCSample:
    """One clip: its feature rows and its state-change samples.

    ``uid`` is the ``unique_id`` of the clip's first record in file order (the authors' ``uid``);
    ``unique_ids`` the M segments' ids in start-frame order; ``segments_s`` float32 [M, 2]; ``labels`` int64 [M]
    in {0, 1}.
    """

    uid: str
    video_uid: str
    clip_id: str
    clip_start_frame: int
    clip_end_frame: int
    window: FeatureWindow
    unique_ids: tuple[str, ...]
    segments_s: torch.Tensor
    labels: torch.Tensor
    spec: FeatureSpec

    def node_positions_s(self, num_nodes: int) -> torch.Tensor:
        """float32 [n]: (0.5 + i) * 16 / 30 (OSCC.py L144)."""
        return centred_node_positions_s(num_nodes, self.spec)


def build_oscc_samples(annotations: StateChangeAnnotations, spec: FeatureSpec,
                       has_features: Callable[[str], bool] | None = None) -> list[OSCCSample]:
    samples = []
    for clip_id, records in group_in_order(annotations.samples, lambda record: record.clip_id).items():
        first = records[0]
        if has_features is not None and not has_features(first.video_uid):
            continue
        start_frame = min(record.parent_start_frame for record in records)
        end_frame = max(record.parent_end_frame for record in records)
        ordered = sorted(records, key=lambda record: record.parent_start_frame)
        window = feature_window(first.video_uid, start_frame, end_frame, spec)
        samples.append(OSCCSample(
            uid=first.unique_id,
            video_uid=first.video_uid,
            clip_id=clip_id,
            clip_start_frame=start_frame,
            clip_end_frame=end_frame,
            window=window,
            unique_ids=tuple(record.unique_id for record in ordered),
            segments_s=frames_to_sample_seconds([r.parent_start_frame for r in ordered],
                                                [r.parent_end_frame for r in ordered],
                                                start_frame, window.grid_offset_frames, spec),
            labels=torch.tensor([int(bool(record.state_change)) for record in ordered], dtype=torch.long),
            spec=spec,
        ))
    return samples


@SAMPLE_BUILDERS.register("oscc")
def load_oscc_samples(layout: Ego4dLayout, split: str, spec: FeatureSpec, *, protocol: ProtocolName = "hier-egopack",
                      has_features: Callable[[str], bool] | None = None) -> list[OSCCSample]:
    """Read ``fho_oscc-pnr_{split}.json`` and build the OSCC samples (identical under both protocols)."""
    check_protocol(protocol)
    return build_oscc_samples(read_state_change_annotations(layout.state_change_annotations(split)), spec,
                              has_features)
