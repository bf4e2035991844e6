"""Point-of-No-Return samples: one sample per state-change record, 16 candidate frames and 16 feature rows.

As sapeirone/hier-egopack@4fff4e5:data/ego4d/PNR.py: only records with a true ``state_change`` (L73-75), each its
own clip named ``{clip_id}_{i}`` with i its index in the file's ``clips`` list (L78). In evaluation the window is
the record's [parent_start_frame, parent_end_frame) (L121); training crops it at random (L123-134, see
:func:`random_training_crop`). Then (L136-156):

- candidate frames: ``np.linspace(start, end, 16, endpoint=False, dtype=int)`` clipped to [start, end];
- feature rows: ``torch.linspace(start // 16, max(start // 16, end // 16) - 1, 16, dtype=int)`` (rows may repeat;
  a window inside one row gives row index -1, i.e. the last row, as in the authors' code);
- target: the first candidate nearest to ``parent_pnr_frame``; positions i * 16 / 30 (no 0.5 offset);
- ``pnr_s`` = (pnr_frame - start) / 30 and the segment (with the grid offset) as L160-172.

Both protocols give the same samples; the keyframe decoding and error differ in the metrics.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from egostream.ego4d.annotations import StateChangeAnnotations, read_state_change_annotations
from egostream.ego4d.features import FeatureSpec, FeatureStore
from egostream.ego4d.layout import Ego4dLayout
from egostream.ego4d.protocol.builders import SAMPLE_BUILDERS, ProtocolName, check_protocol
from egostream.ego4d.protocol.windows import frames_to_sample_seconds

__all__ = ["PNRSample", "build_pnr_samples", "load_pnr_samples", "pnr_sampling", "pnr_window",
           "random_training_crop", "NUM_CANDIDATES"]

NUM_CANDIDATES = 16


@dataclass(frozen=True, eq=False)
class PNRSample:
    """One state-change record over the parent-video frames [start_frame, end_frame).

    ``candidate_frames`` int64 [16] parent-video frames; ``row_indices`` int64 [16] feature rows;
    ``target`` float32 [16] one-hot at ``pnr_index``; ``segment_s`` float32 [1, 2]; ``record_start_frame`` /
    ``record_end_frame`` the record's own window (the meter measures the error from ``record_start_frame``).
    """

    unique_id: str
    video_uid: str
    clip_uid: str
    record_start_frame: int
    record_end_frame: int
    record_start_sec: float
    record_end_sec: float
    pnr_frame: int
    start_frame: int
    end_frame: int
    candidate_frames: torch.Tensor
    row_indices: torch.Tensor
    pnr_index: int
    target: torch.Tensor
    segment_s: torch.Tensor
    pnr_s: float
    spec: FeatureSpec

    def read(self, store: FeatureStore) -> torch.Tensor:
        """The [16, D] sampled feature rows; a file without them is an InputError naming the file."""
        first, last = int(self.row_indices.min()), int(self.row_indices.max())
        return store.covering(self.video_uid, first, last + 1, all_rows=True)[self.row_indices]

    def node_positions_s(self, num_nodes: int = NUM_CANDIDATES) -> torch.Tensor:
        """float32 [16]: i * 16 / 30 (PNR.py L156)."""
        return (torch.arange(num_nodes) * self.spec.stride_frames) / self.spec.fps


def pnr_sampling(start_frame: int, end_frame: int, stride_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The 16 candidate frames and 16 feature rows of the frames [start_frame, end_frame) (PNR.py L136-156).

    Returns ``(candidate_frames, rows)``, both int64 ``[16]``: candidate frames
    ``np.linspace(start, end, 16, endpoint=False, dtype=int)`` clipped to ``[start, end]``; rows
    ``torch.linspace(start // stride, max(start // stride, end // stride) - 1, 16, dtype=long)`` (rows may repeat).
    """
    candidates = np.clip(np.linspace(start_frame, end_frame, num=NUM_CANDIDATES, dtype=int, endpoint=False),
                         start_frame, end_frame)
    first_row = max(0, start_frame // stride_frames)
    last_row = max(first_row, end_frame // stride_frames)
    rows = torch.linspace(first_row, last_row - 1, steps=NUM_CANDIDATES, dtype=torch.long)
    return torch.from_numpy(candidates).long(), rows


def pnr_window(sample: PNRSample, start_frame: int, end_frame: int) -> PNRSample:
    """``sample`` re-sampled over parent-video frames [start_frame, end_frame) (PNR.py L136-172)."""
    spec = sample.spec
    candidates, rows = pnr_sampling(start_frame, end_frame, spec.stride_frames)
    pnr_index = int((candidates - sample.pnr_frame).abs().argmin())
    target = torch.zeros(NUM_CANDIDATES)
    target[pnr_index] = 1.0
    return replace(
        sample, start_frame=start_frame, end_frame=end_frame,
        candidate_frames=candidates, row_indices=rows, pnr_index=pnr_index, target=target,
        segment_s=frames_to_sample_seconds([sample.record_start_frame], [sample.record_end_frame], start_frame,
                                           start_frame % spec.stride_frames, spec),
        pnr_s=float((torch.Tensor([sample.pnr_frame]) - start_frame)[0] / spec.fps),
    )


def random_training_crop(sample: PNRSample, rng: np.random.Generator) -> PNRSample:
    """The authors' training-time crop of 5-8 s (hier-egopack@4fff4e5:data/ego4d/PNR.py L123-134).

    Kept as written: the start offset is ``uniform(8 - length, 1.0)`` (numpy's one-argument ``uniform(low)``, so
    between 1 s and 8 - length s), frames are ``floor(seconds * 30)``, and the crop falls back to the record's
    start / end when it would miss the PNR frame.
    """
    length_s = rng.uniform(5, 8)
    start_s = sample.record_start_sec + rng.uniform(8 - length_s, 1.0)
    start_frame = int(np.floor(start_s * 30))
    end_frame = int(np.floor(min(start_s + length_s, sample.record_end_sec) * 30))
    if sample.pnr_frame > end_frame:
        end_frame = sample.record_end_frame
    if sample.pnr_frame < start_frame:
        start_frame = sample.record_start_frame
    return pnr_window(sample, start_frame, end_frame)


def build_pnr_samples(annotations: StateChangeAnnotations, spec: FeatureSpec,
                      has_features: Callable[[str], bool] | None = None) -> list[PNRSample]:
    """The evaluation samples (window = the record's own frames), in file order."""
    samples = []
    for index, record in enumerate(annotations.samples):
        if not record.state_change or (has_features is not None and not has_features(record.video_uid)):
            continue
        assert record.parent_pnr_frame is not None  # the reader requires it when state_change is true
        empty = torch.zeros(0)
        unsampled = PNRSample(
            unique_id=record.unique_id, video_uid=record.video_uid, clip_uid=f"{record.clip_id}_{index}",
            record_start_frame=record.parent_start_frame, record_end_frame=record.parent_end_frame,
            record_start_sec=record.parent_start_sec, record_end_sec=record.parent_end_sec,
            pnr_frame=record.parent_pnr_frame, start_frame=record.parent_start_frame,
            end_frame=record.parent_end_frame, candidate_frames=empty, row_indices=empty, pnr_index=-1,
            target=empty, segment_s=empty, pnr_s=0.0, spec=spec)
        samples.append(pnr_window(unsampled, record.parent_start_frame, record.parent_end_frame))
    return samples


@SAMPLE_BUILDERS.register("pnr")
def load_pnr_samples(layout: Ego4dLayout, split: str, spec: FeatureSpec, *, protocol: ProtocolName = "hier-egopack",
                     has_features: Callable[[str], bool] | None = None) -> list[PNRSample]:
    """Read ``fho_oscc-pnr_{split}.json`` and build the PNR evaluation samples (identical under both protocols)."""
    check_protocol(protocol)
    return build_pnr_samples(read_state_change_annotations(layout.state_change_annotations(split)), spec,
                             has_features)
