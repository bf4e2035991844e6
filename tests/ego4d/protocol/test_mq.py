"""MQ samples: primary moments, the duplicate rule of each protocol, and the time origin."""
from pathlib import Path

import pytest
import torch

from egostream.ego4d.annotations import read_moments_annotations
from egostream.ego4d.features import EGOVLP
from egostream.ego4d.protocol import build_mq_samples
from egostream.ego4d.taxonomy import load_mq_labels
from egostream.testing import ego4d_fixtures_dir

from tests.ego4d.annotation_factory import moment, moments_clip, write_json

SPEC = EGOVLP


@pytest.fixture(scope="module")
def labels():
    return load_mq_labels(ego4d_fixtures_dir() / "mq_labels.tsv")


def _annotations(tmp_path: Path, labels):
    plain = next(raw for raw in labels.raw_names if not raw.startswith('"'))
    quoted = next(raw for raw in labels.raw_names if raw.startswith('"'))
    first = [moment(plain, 330, 390, 300), moment(quoted, 600, 900, 300)]
    second = [moment(plain, 330, 390, 300), moment(quoted, 600, 900, 300),
              moment(plain, 400, 500, 300, primary=False)]
    clips = [moments_clip("k1", 300, 9300, [first, second]),
             moments_clip("k2", 0, 900, [[moment(plain, 0, 30, 0, primary=False)]])]
    path = write_json(tmp_path / "moments_val.json", {"videos": [{"video_uid": "v", "clips": clips}]})
    return read_moments_annotations(path, labels), {"plain": labels.class_id(plain), "quoted": labels.class_id(quoted)}


@pytest.mark.parametrize(("protocol", "expected_labels"), [
    ("hier-egopack", "plain quoted quoted"),   # the quoted duplicate survives (raw vs unquoted comparison)
    ("official", "plain quoted plain quoted"),  # no deduplication
])
def test_mq_dedup_per_protocol(tmp_path: Path, labels, protocol, expected_labels):
    annotations, ids = _annotations(tmp_path, labels)
    (sample,) = build_mq_samples(annotations, labels, SPEC, "val", protocol=protocol)  # k2: no primary moment
    assert sample.labels.tolist() == [ids[name] for name in expected_labels.split()]
    # grid offset 300 % 16 = 12 frames; rows from 300 // 16 = 18
    assert (sample.window.start_row, sample.window.grid_offset_frames) == (18, 12)
    assert torch.allclose(sample.segments_s[0], torch.tensor([42 / 30, 102 / 30]))
    assert sample.clip_segments_s[0].tolist() == [1.0, 3.0]
    assert sample.clip_offset_s == pytest.approx(12 / 30) and sample.clip_duration_s == pytest.approx(300.0)


def test_mq_test_split_keeps_every_clip_without_moments(tmp_path: Path, labels):
    annotations, _ = _annotations(tmp_path, labels)
    samples = build_mq_samples(annotations, labels, SPEC, "test_unannotated")
    assert [s.clip_uid for s in samples] == ["k1", "k2"] and all(s.labels.numel() == 0 for s in samples)
