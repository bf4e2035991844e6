"""The ground truth under the tracks: every annotation of the video, in video seconds, read from the raw JSON."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from egostream.errors import InputError
from egostream.report.truth import load_ground_truth
from tests.report.synthetic_stream import SyntheticStream


def _raw(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def test_ground_truth_holds_every_annotation_of_the_video(synthetic_stream: SyntheticStream) -> None:
    annotations = synthetic_stream.data / "annotations" / "v1"
    uid = synthetic_stream.video_uid
    truth = load_ground_truth(synthetic_stream.data, uid)
    clips = [c for split in ("train", "val") for c in _raw(annotations / f"fho_lta_{split}.json").get("clips", [])
             if c["video_uid"] == uid]
    starts = sorted((c["clip_parent_start_frame"] + c["action_clip_start_frame"]) / 30 for c in clips)
    assert [a.start_s for a in truth.actions] == pytest.approx(starts) and len(starts) > 0
    samples = [c for split in ("train", "val") for c in _raw(annotations / f"fho_oscc-pnr_{split}.json").get(
        "clips", []) if c["video_uid"] == uid]
    assert len(truth.state_changes) == len(samples) > 0
    assert sorted(s.pnr_s for s in truth.state_changes if s.pnr_s is not None) == pytest.approx(
        sorted(c["parent_pnr_frame"] / 30 for c in samples if c.get("state_change")))
    assert truth.moments and all(m.end_s > m.start_s for m in truth.moments)


def test_a_root_without_annotations_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="annotations"):
        load_ground_truth(tmp_path, "x")
