"""AR and LTA samples against hand-computed rows, positions, segments, windows and keys."""
from pathlib import Path

import pytest
import torch

from egostream.ego4d.annotations import read_lta_annotations
from egostream.ego4d.features import EGOVLP, FeatureStore
from egostream.ego4d.layout import Ego4dLayout
from egostream.ego4d.protocol import SAMPLE_BUILDERS, build_ar_samples, build_lta_samples
from egostream.testing import ego4d_fixtures_dir

from tests.ego4d.annotation_factory import lta_action, write_features, write_json

SPEC = EGOVLP


def _annotations(tmp_path: Path, records):
    return read_lta_annotations(write_json(tmp_path / "fho_lta_val.json", {"clips": records}))


def test_ar_clip_rows_segments_and_action_order(tmp_path: Path):
    records = [lta_action("c1", 0, 50, 80, clip_parent_start_frame=100, clip_parent_end_frame=500, verb_label=7),
               lta_action("c1", 1, 10, 40, clip_parent_start_frame=100, clip_parent_end_frame=500, verb_label=3)]
    (sample,) = build_ar_samples(_annotations(tmp_path, records), SPEC, "val")
    # rows [100 // 16, 500 // 16) = [6, 31); grid offset 100 % 16 = 4 frames
    assert (sample.window.start_row, sample.window.end_row, sample.window.grid_offset_frames) == (6, 31, 4)
    assert sample.action_idx == (1, 0)  # sorted by start frame
    expected = torch.tensor([[110 - 100 + 4, 140 - 100 + 4], [150 - 100 + 4, 180 - 100 + 4]]) / 30
    assert torch.allclose(sample.segments_s, expected, atol=1e-6)
    assert sample.verb_labels.tolist() == [3, 7]
    write_features(tmp_path / "f", "video_a", 20, SPEC.dim)
    rows = sample.window.read(FeatureStore(tmp_path / "f", SPEC.name, SPEC.dim))
    assert rows[:, 0].tolist() == list(range(6, 20))  # the feature file ends at row 20
    assert sample.window.num_nodes(20) == 14
    assert torch.allclose(sample.node_positions_s(3), torch.tensor([0.5, 1.5, 2.5]) * 16 / 30)


def _five_actions():
    return [lta_action("c1", idx, 30 * idx, 30 * idx + 20, verb_label=idx, noun_label=10 + idx)
            for idx in (4, 2, 0, 3, 1)]


@pytest.mark.parametrize(("split", "protocol", "keys"), [
    ("val", "hier-egopack", ["c1_1"]),                     # 5 - 2 - 2 windows
    ("val", "official", ["c1_1", "c1_2"]),                 # 5 - 2 - 2 + 1 windows
    ("test_unannotated", "hier-egopack", ["c1_1", "c1_2", "c1_3"]),  # 5 - 2 windows
])
def test_lta_windows_and_keys(tmp_path: Path, split, protocol, keys):
    records = _five_actions()
    if "test" in split:
        for record in records:
            for field in ("verb", "noun", "verb_label", "noun_label"):
                record.pop(field)
    samples = build_lta_samples(_annotations(tmp_path, records), SPEC, split, protocol=protocol,
                                num_input_actions=2, num_future_actions=2)
    assert [sample.key for sample in samples] == keys
    first = samples[0]
    assert first.observed_action_idx == (0, 1) and first.future_action_idx == (2, 3)
    assert (first.observed_start_frame, first.observed_end_frame) == (0, 50)
    assert (first.window.start_row, first.window.end_row) == (0, 3)
    if "test" in split:
        assert first.future_verb_labels.numel() == 0
    else:
        assert first.future_verb_labels.tolist() == [2, 3] and first.future_noun_labels.tolist() == [12, 13]
    assert first.node_positions_s(2).tolist() == pytest.approx([0.267, 0.8])


def test_lta_registry_reads_the_layout_and_drops_videos_without_features(tmp_path: Path):
    layout = Ego4dLayout.from_root(tmp_path)
    layout.annotations_dir.mkdir(parents=True)
    layout.lta_taxonomy().write_bytes((ego4d_fixtures_dir() / "fho_lta_taxonomy.json").read_bytes())
    other = [lta_action("c2", idx, 0, 10, video_uid="video_b") for idx in range(25)]
    write_json(layout.lta_annotations("val"), {"clips": [lta_action("c1", idx, 0, 10) for idx in range(23)] + other})
    write_features(layout.features_dir(SPEC.name), "video_a", 4, SPEC.dim)
    store = FeatureStore(tmp_path, SPEC.name, SPEC.dim)
    samples = SAMPLE_BUILDERS.get("lta")(layout, "val", SPEC, protocol="hier-egopack", has_features=store.has)
    assert [sample.key for sample in samples] == ["c1_1"]  # 23 - 2 - 20 windows; video_b has no features
    assert len(SAMPLE_BUILDERS.get("ar")(layout, "val", SPEC, has_features=store.has)) == 1
