"""OSCC and PNR samples against hand-computed clips, segments, candidate frames and rows."""
from pathlib import Path

import torch

from egostream.ego4d.annotations import read_state_change_annotations
from egostream.ego4d.features import EGOVLP
from egostream.ego4d.protocol import build_oscc_samples, build_pnr_samples

from tests.ego4d.annotation_factory import state_change_record, write_json

SPEC = EGOVLP


def _annotations(tmp_path: Path, records):
    return read_state_change_annotations(write_json(tmp_path / "fho_oscc-pnr_val.json", {"clips": records}))


def test_oscc_groups_by_clip_id(tmp_path: Path):
    records = [state_change_record("u1", "7", 240, 480, state_change=True),
               state_change_record("u0", "7", 0, 240, state_change=False),
               state_change_record("u3", "8", 32, 272, video_uid="video_b", state_change=None)]
    clip7, clip8 = build_oscc_samples(_annotations(tmp_path, records), SPEC)
    assert (clip7.uid, clip7.unique_ids, clip7.labels.tolist()) == ("u1", ("u0", "u1"), [0, 1])
    assert (clip7.window.start_row, clip7.window.end_row) == (0, 30)
    assert torch.allclose(clip7.segments_s, torch.tensor([[0.0, 8.0], [8.0, 16.0]]))
    assert clip8.labels.tolist() == [0]  # no state_change field: label 0
    assert (clip8.window.start_row, clip8.window.end_row) == (2, 17)


def test_pnr_candidates_rows_and_target(tmp_path: Path):
    records = [state_change_record("neg", "7", 0, 240, state_change=False),
               state_change_record("pos", "7", 100, 340, pnr_frame=200)]
    (sample,) = build_pnr_samples(_annotations(tmp_path, records), SPEC)
    assert sample.clip_uid == "7_1"  # clip_id + index of the record in the file
    assert sample.candidate_frames.tolist() == [100 + 15 * k for k in range(16)]
    assert sample.pnr_index == 7  # 205 is the nearest candidate to frame 200
    assert sample.target.tolist() == [1.0 if k == 7 else 0.0 for k in range(16)]
    # rows linspace(100 // 16 = 6, 340 // 16 - 1 = 20, 16), truncated to integers
    assert sample.row_indices.tolist() == [6, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]
    assert torch.allclose(sample.node_positions_s(), torch.arange(16) * 16 / 30)
    assert abs(sample.pnr_s - 100 / 30) < 1e-6
    assert torch.allclose(sample.segment_s, torch.tensor([[4 / 30, 244 / 30]]))
