"""Submission files: each writer's output reads back to the same predictions; malformed files name the field."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from egostream.ego4d.submission import (
    ActionForecast,
    ActionScores,
    Moment,
    read_ar_submission,
    read_lta_submission,
    read_mq_submission,
    read_oscc_submission,
    read_pnr_submission,
    sample_key,
    write_ar_submission,
    write_lta_submission,
    write_mq_submission,
    write_oscc_submission,
    write_pnr_submission,
)
from egostream.errors import InputError


def test_ar_round_trip_keeps_float32_values_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    predictions = {sample_key(f"clip{i}", i): ActionScores(rng.standard_normal(115).astype(np.float32),
                                                           rng.standard_normal(478).astype(np.float32))
                   for i in range(3)}
    path = write_ar_submission(tmp_path / "ar.json", predictions)
    assert list(json.loads(path.read_text())) == ["clip0_0", "clip1_1", "clip2_2"]
    read = read_ar_submission(path)
    assert list(read) == list(predictions)
    for key, prediction in predictions.items():
        assert read[key].verb.dtype == np.float32
        np.testing.assert_array_equal(read[key].verb, prediction.verb)
        np.testing.assert_array_equal(read[key].noun, prediction.noun)


def test_lta_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    predictions = {f"clip_{i}": ActionForecast(rng.integers(0, 115, (5, 20)), rng.integers(0, 478, (5, 20)))
                   for i in range(4)}
    path = write_lta_submission(tmp_path / "lta.json", predictions)
    document = json.loads(path.read_text())
    assert len(document["clip_0"]["verb"]) == 5 and len(document["clip_0"]["verb"][0]) == 20  # K lists of Z ids
    read = read_lta_submission(path)
    for key, prediction in predictions.items():
        np.testing.assert_array_equal(read[key].verb, prediction.verb)
        np.testing.assert_array_equal(read[key].noun, prediction.noun)


def test_oscc_and_pnr_round_trip_in_the_official_list_layout(tmp_path: Path) -> None:
    oscc = {"a": True, "b": False}
    pnr = {"a": 97.5, "b": 0}
    oscc_path = write_oscc_submission(tmp_path / "oscc.json", oscc)
    pnr_path = write_pnr_submission(tmp_path / "pnr.json", pnr)
    assert json.loads(oscc_path.read_text()) == [{"unique_id": "a", "state_change": True},
                                                 {"unique_id": "b", "state_change": False}]
    assert json.loads(pnr_path.read_text())[0] == {"unique_id": "a", "pnr_frame": 97.5}
    assert read_oscc_submission(oscc_path) == oscc
    assert read_pnr_submission(pnr_path) == {"a": 97.5, "b": 0.0}


def test_mq_round_trip_with_separate_retrievals(tmp_path: Path) -> None:
    detections = {"c1": (Moment('"cut_/_chop"', 0.9, 1.0, 2.5), Moment("wash", 0.25, 0.0, 10.0)), "c2": ()}
    retrievals = {"c1": (Moment("wash", 0.5, 3.0, 4.0),), "c2": ()}
    path = write_mq_submission(tmp_path / "mq.json", detections, retrievals)
    document = json.loads(path.read_text())
    assert document["version"] == "1.0" and document["challenge"] == "ego4d_moment_queries"
    assert document["detect_results"]["c1"][0] == {"label": '"cut_/_chop"', "score": 0.9, "segment": [1.0, 2.5]}
    read = read_mq_submission(path)
    assert read.detections == detections and read.retrievals == retrievals
    assert read_mq_submission(write_mq_submission(tmp_path / "same.json", detections)).retrievals == detections


def test_mq_reader_accepts_an_evaluator_results_file(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"version": "EGO4D", "external_data": {},
                                "results": {"c": [{"label": "x", "score": 1, "segment": [0, 1]}]}}))
    submission = read_mq_submission(path)
    assert submission.detections == submission.retrievals == {"c": (Moment("x", 1.0, 0.0, 1.0),)}


def test_writers_replace_files_atomically(tmp_path: Path) -> None:
    path = tmp_path / "oscc.json"
    write_oscc_submission(path, {"a": True})
    write_oscc_submission(path, {"b": False})
    assert read_oscc_submission(path) == {"b": False}
    assert [p.name for p in tmp_path.iterdir()] == ["oscc.json"]


@pytest.mark.parametrize(("reader", "document", "field"), [
    (read_ar_submission, {"k_0": {"verb": [1.0, 2.0]}}, "k_0.noun"),
    (read_ar_submission, {"k_0": {"verb": [1.0, "x"], "noun": [1.0]}}, "k_0.verb[1]"),
    (read_ar_submission, {"k_0": {"verb": [1.0, 2.0], "noun": [1.0]},
                          "k_1": {"verb": [1.0], "noun": [1.0]}}, "k_1.verb"),
    (read_ar_submission, [1, 2], None),
    (read_lta_submission, {"k_1": {"verb": [[1, 2], [3]], "noun": [[1, 2], [3, 4]]}}, "k_1.verb[1]"),
    (read_lta_submission, {"k_1": {"verb": [[1, 2]], "noun": [[1, 2, 3]]}}, "k_1.noun"),
    (read_lta_submission, {"k_1": {"verb": [[1, -2]], "noun": [[1, 2]]}}, "k_1.verb"),
    (read_lta_submission, {"k_1": {"verb": [[1.5]], "noun": [[1]]}}, "k_1.verb[0][0]"),
    (read_oscc_submission, [{"unique_id": "u", "state_change": 1}], "u.state_change"),
    (read_oscc_submission, [{"unique_id": "u", "state_change": True}, {"unique_id": "u", "state_change": False}],
     "u.unique_id"),
    (read_oscc_submission, [{"state_change": True}], "[0].unique_id"),
    (read_pnr_submission, [{"unique_id": "u"}], "u.pnr_frame"),
    (read_pnr_submission, [{"unique_id": "u", "pnr_frame": "12"}], "u.pnr_frame"),
    (read_mq_submission, {"detect_results": {}}, "retrieve_results"),
    (read_mq_submission, {"detect_results": {"c": [{"label": "x", "score": 1, "segment": [0]}]},
                          "retrieve_results": {}}, "detect_results.c[0].segment"),
    (read_mq_submission, {"detect_results": {"c": [{"label": 3, "score": 1, "segment": [0, 1]}]},
                          "retrieve_results": {}}, "detect_results.c[0].label"),
])
def test_malformed_content_names_the_field(tmp_path: Path, reader, document, field) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    with pytest.raises(InputError) as caught:
        reader(path)
    assert caught.value.path == str(path)
    assert caught.value.field == field


def test_unreadable_files_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        read_pnr_submission(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(InputError, match="malformed JSON"):
        read_ar_submission(tmp_path / "broken.json")
