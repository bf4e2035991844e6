from pathlib import Path

import pytest

from egostream.ego4d.annotations import (read_lta_annotations, read_moments_annotations,
                                         read_state_change_annotations, read_video_metadata)
from egostream.ego4d.taxonomy import load_lta_taxonomy, load_mq_labels
from egostream.errors import InputError
from egostream.testing import ego4d_fixtures_dir

from tests.ego4d.annotation_factory import (lta_action, moment, moments_clip, state_change_record,
                                            write_json)


@pytest.fixture(scope="module")
def taxonomy():
    return load_lta_taxonomy(ego4d_fixtures_dir() / "fho_lta_taxonomy.json", (115, 478))


@pytest.fixture(scope="module")
def mq_labels():
    return load_mq_labels(ego4d_fixtures_dir() / "mq_labels.tsv")


def test_lta_record_fields_and_parent_frames(tmp_path: Path, taxonomy):
    path = write_json(tmp_path / "fho_lta_val.json", {"clips": [
        lta_action("c1", 3, 40, 70, clip_parent_start_frame=100, verb_label=114, noun_label=477)]})
    (action,) = read_lta_annotations(path, taxonomy).actions
    assert (action.clip_uid, action.action_idx, action.verb_label, action.noun_label) == ("c1", 3, 114, 477)
    assert (action.video_start_frame, action.video_end_frame) == (140, 170)


def test_lta_test_split_records_have_no_labels(tmp_path: Path, taxonomy):
    path = write_json(tmp_path / "t.json", {"clips": [lta_action("c1", 0, 0, 10, verb_label=None, noun_label=None)]})
    (action,) = read_lta_annotations(path, taxonomy).actions
    assert action.verb_label is None and not action.is_labelled


def test_malformed_json_names_the_file(tmp_path: Path):
    path = tmp_path / "fho_lta_val.json"
    path.write_text('{"clips": [')
    with pytest.raises(InputError, match=r"fho_lta_val\.json: malformed JSON at line 1"):
        read_lta_annotations(path)


def test_missing_field_names_the_field_path(tmp_path: Path):
    records = [lta_action("c1", 0, 0, 10), lta_action("c1", 1, 10, 20)]
    del records[1]["action_idx"]
    path = write_json(tmp_path / "fho_lta_val.json", {"clips": records})
    with pytest.raises(InputError) as error:
        read_lta_annotations(path)
    assert (error.value.path, error.value.field) == (str(path), "clips[1].action_idx")


def test_unknown_verb_id_names_the_field_path(tmp_path: Path, taxonomy):
    records = [lta_action("c1", 0, 0, 10) for _ in range(4)]
    records[3]["verb_label"] = 900
    path = write_json(tmp_path / "fho_lta_val.json", {"clips": records})
    with pytest.raises(InputError, match=r"clips\[3\]\.verb_label: unknown verb id 900 \(taxonomy has 115 verbs\)"):
        read_lta_annotations(path, taxonomy)


def test_bad_type_names_the_field_path(tmp_path: Path):
    record = lta_action("c1", 0, 0, 10)
    record["clip_parent_start_frame"] = "12"
    path = write_json(tmp_path / "fho_lta_val.json", {"clips": [record]})
    with pytest.raises(InputError, match=r"clips\[0\]\.clip_parent_start_frame: expected an integer"):
        read_lta_annotations(path)


def test_state_change_records(tmp_path: Path):
    records = [state_change_record("u1", "7", 0, 240, pnr_frame=100),
               state_change_record("u2", "7", 240, 480, state_change=False),
               state_change_record("u3", "8", 0, 240, state_change=None)]
    records[0]["clip_id"] = 7  # integer clip ids are kept as strings
    samples = read_state_change_annotations(write_json(tmp_path / "s.json", {"clips": records})).samples
    assert [s.clip_id for s in samples] == ["7", "7", "8"]
    assert [s.state_change for s in samples] == [True, False, None]
    assert samples[0].parent_pnr_frame == 100 and samples[1].parent_pnr_frame is None


def test_state_change_without_pnr_frame_is_rejected(tmp_path: Path):
    record = state_change_record("u1", "7", 0, 240)
    record["parent_pnr_frame"] = None
    path = write_json(tmp_path / "s.json", {"clips": [record]})
    with pytest.raises(InputError, match=r"clips\[0\]\.parent_pnr_frame"):
        read_state_change_annotations(path)


def test_moments_fields_renamed_with_units(tmp_path: Path, mq_labels):
    label = mq_labels.raw_names[0]
    clip = moments_clip("k1", 300, 9300, [[moment(label, 330, 390, 300)]])
    path = write_json(tmp_path / "m.json", {"videos": [{"video_uid": "v", "split": "val", "clips": [clip]}]})
    (video,) = read_moments_annotations(path, mq_labels).videos
    (m,) = video.clips[0].annotations[0].labels
    assert (m.clip_start_sec, m.clip_end_sec, m.video_start_frame) == (1.0, 3.0, 330)
    assert video.split == "val"


def test_unknown_moment_label_names_the_field_path(tmp_path: Path, mq_labels):
    clip = moments_clip("k1", 0, 900, [[moment(mq_labels.names[0], 0, 30, 0), moment("juggling", 0, 30, 0)]])
    path = write_json(tmp_path / "m.json", {"videos": [{"video_uid": "v", "clips": [clip]}]})
    with pytest.raises(InputError, match=r"videos\[0\]\.clips\[0\]\.annotations\[0\]\.labels\[1\]\.label: "
                                         r"unknown moment label 'juggling'"):
        read_moments_annotations(path, mq_labels)


def test_video_metadata(tmp_path: Path):
    path = write_json(tmp_path / "ego4d.json", {"videos": [
        {"video_uid": "a", "duration_sec": 12.5, "video_metadata": {"fps": 30.0, "num_frames": 375}},
        {"video_uid": "b", "duration_sec": 3}]})
    index = read_video_metadata(path)
    assert index["a"].num_frames == 375 and index["b"].duration_sec == 3.0 and index["b"].fps is None
    write_json(path, {"videos": [{"video_uid": "a", "duration_sec": 1}, {"video_uid": "a", "duration_sec": 1}]})
    with pytest.raises(InputError, match=r"videos\[1\]\.video_uid: video 'a' is listed twice"):
        read_video_metadata(path)


def test_missing_annotation_file(tmp_path: Path):
    with pytest.raises(InputError, match="file not found"):
        read_moments_annotations(tmp_path / "moments_val.json")
