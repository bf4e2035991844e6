"""PNR keyframe error: golden cases of both protocols, the keyframe selection rules, submissions and bad input."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from egostream.ego4d.metrics import pnr_errors_s, pnr_metrics
from egostream.ego4d.metrics.pnr import candidate_frames, clip_fps, select_keyframe_index
from egostream.errors import InputError
from egostream.testing import golden_dir

GOLDEN_CASES = sorted(golden_dir().glob("pnr_*__*.json"))
GOLDEN_ATOL = 1e-6  # the golden README's default float tolerance ("Tolerances": within 1e-6 absolute)


def _submission_frame(record: dict, k: int, protocol: str) -> float:
    """What the keyframe index k means in frames after parent_start_frame under each protocol (README case 4)."""
    start, end = record["parent_start_frame"], record["parent_end_frame"]
    if protocol == "official":
        return (end - start) / 16 * k
    return float(candidate_frames(start, end)[k] - start)


@pytest.mark.parametrize("case_path", GOLDEN_CASES, ids=lambda path: path.stem)
def test_pnr_golden(case_path: Path) -> None:
    case = json.loads(case_path.read_text())
    protocol = case["protocol"]
    inputs = json.loads((case_path.parent / case["inputs"]["file"]).read_text())
    records, logits = inputs["records"], np.array(inputs["logits"], dtype=np.float32)
    expected = case["expected"]
    errors = pnr_errors_s(records, logits=logits, protocol=protocol)
    assert [error is None for error in errors] == [error is None for error in expected["per_sample_error_sec"]]
    positives = [i for i, error in enumerate(errors) if error is not None]
    np.testing.assert_allclose([errors[i] for i in positives],
                               [expected["per_sample_error_sec"][i] for i in positives], rtol=0, atol=GOLDEN_ATOL)
    selected = [select_keyframe_index(logits[i], protocol=protocol) for i in positives]
    assert selected == [expected["selected_index"][i] for i in positives]
    if "fps" in expected:
        np.testing.assert_allclose([clip_fps(records[i]) for i in positives],
                                   [expected["fps"][i] for i in positives], rtol=0, atol=GOLDEN_ATOL)
    if "candidate_frames" in expected:
        for i in positives:
            start, end = records[i]["parent_start_frame"], records[i]["parent_end_frame"]
            np.testing.assert_array_equal(candidate_frames(start, end), expected["candidate_frames"][i])

    metrics = pnr_metrics(records, logits=logits, protocol=protocol)
    assert (metrics["n_clips"], metrics["n_positive"]) == (len(records), expected["n_positive"])
    assert metrics["mean_error_s"] == pytest.approx(expected["mean_error_sec"], abs=GOLDEN_ATOL)
    if "torchmetrics_meanmetric_float32" in expected:
        # Each value against its own oracle: the float32 running mean drifts from the exact mean as positives grow
        # (2e-6 at about a thousand), so the exact mean is not compared with the float32 one.
        oracle = expected["torchmetrics_meanmetric_float32"]
        assert metrics["mean_error_s_float32"] == pytest.approx(oracle, abs=GOLDEN_ATOL)

    # The same keyframes given as submission frames (counted from parent_start_frame) score the same.
    frames = [_submission_frame(record, k, protocol) if k is not None else None
              for record, k in zip(records, expected["selected_index"])]
    from_frames = pnr_metrics(records, predicted_frames=frames, protocol=protocol)
    assert from_frames["mean_error_s"] == pytest.approx(expected["mean_error_sec"], abs=GOLDEN_ATOL)


def _scores(**above: float) -> np.ndarray:
    """16 scores below the 0.7 threshold, index 0 the largest, with the given ``i<index>=value`` overrides."""
    scores = np.linspace(0.5, 0.0, 16, dtype=np.float32)
    for name, value in above.items():
        scores[int(name[1:])] = value
    return scores


@pytest.mark.parametrize("scores, hier_egopack, official", [
    (_scores(), 0, 0),                                # all below 0.7: argmax
    (_scores(i12=0.69), 12, 12),                      # still all below
    (_scores(i3=0.9), 3, 3),                          # one above
    (_scores(i6=0.8, i8=0.9, i7=0.1), 6, 8),          # 6 and 8 above, 7 below: the lower one
    (_scores(i15=5.0, i9=0.75), 9, 15),               # far maximum loses to the above-threshold index nearest 7
    (_scores(i0=0.8, i14=0.8), 0, 0),                 # 0 and 14 equally far from 7: the lower index
    (np.full(16, 0.9, dtype=np.float32), 7, 0),       # all above: 7 itself; official argmax tie: first
    (_scores(i10=0.7000001, i2=0.6999), 10, 10),      # just above float32(0.7)
])
def test_keyframe_selection_rules(scores: np.ndarray, hier_egopack: int, official: int) -> None:
    assert select_keyframe_index(scores, protocol="hier-egopack") == hier_egopack
    assert select_keyframe_index(scores, protocol="official") == official


def test_a_score_at_the_threshold_with_none_above_is_refused() -> None:
    # 0.70000001 rounds to float32(0.7): not below it, not above it; the reference meter fails here.
    with pytest.raises(InputError, match="threshold"):
        select_keyframe_index(_scores(i4=0.70000001), protocol="hier-egopack")


def _record(state_change: bool = True, **fields: object) -> dict:
    record = {"unique_id": "u", "state_change": state_change, "parent_start_frame": 100, "parent_end_frame": 260,
              "parent_pnr_frame": 150, "parent_start_sec": 10.0, "parent_end_sec": 15.0}
    record.update(fields)
    return record


def test_pnr_hand_computed() -> None:
    # S = 100, E = 260, P = 150, 5 s. Keyframe k = 3 in both protocols (all scores below 0.7).
    # official: 160 / 16 * 3 = 30 frames after S, truth 50; fps = 161 / 5; error = 20 / 32.2 s.
    # hier-egopack: candidates 100, 110, ..., 250; frame 130, truth 150; error = 20 / 30 s.
    negative = _record(False, parent_pnr_frame=None)
    records = [_record(), negative]
    logits = np.stack([_scores(i3=0.6), _scores()])
    np.testing.assert_array_equal(candidate_frames(100, 260), np.arange(100, 260, 10))
    assert clip_fps(records[0]) == pytest.approx(32.2)
    assert pnr_errors_s(records, logits=logits, protocol="official") == [pytest.approx(20 / 32.2), None]
    assert pnr_errors_s(records, logits=logits, protocol="hier-egopack") == [pytest.approx(20 / 30), None]
    metrics = pnr_metrics(records, logits=logits, protocol="hier-egopack")
    assert (metrics["n_clips"], metrics["n_positive"]) == (2, 1)
    assert metrics["mean_error_s"] == pytest.approx(20 / 30)
    assert metrics["mean_error_s_float32"] == pytest.approx(20 / 30, abs=1e-6)
    # Submission frames are used as given; negatives may hold None.
    assert pnr_errors_s(records, predicted_frames=[56.5, None], protocol="official") == [
        pytest.approx(6.5 / 32.2), None]
    assert pnr_metrics(records, predicted_frames=[44, None], protocol="hier-egopack")["mean_error_s"] == \
        pytest.approx(6 / 30)


def test_truncated_candidate_frames() -> None:
    # 181 frames / 16 = 11.3125 per step: frames are truncated, not rounded.
    frames = candidate_frames(1000, 1181)
    np.testing.assert_array_equal(frames, [int(1000 + i * 181 / 16) for i in range(16)])
    assert frames[5] == 1056  # 1056.5625 truncated


@pytest.mark.parametrize("records, kwargs, field", [
    ([_record()], {"logits": np.zeros((1, 15))}, "logits"),
    ([_record()], {"logits": np.zeros((2, 16))}, "logits"),
    ([_record()], {}, "logits"),
    ([_record()], {"logits": np.zeros((1, 16)), "predicted_frames": [3.0]}, "logits"),
    ([_record()], {"predicted_frames": [None]}, "predicted_frames[0]"),
    ([_record()], {"predicted_frames": ["12"]}, "predicted_frames[0]"),
    ([_record()], {"predicted_frames": [float("nan")]}, "predicted_frames[0]"),
    ([_record()], {"predicted_frames": [1.0, 2.0]}, "predicted_frames"),
    ([{"parent_start_frame": 1}], {"predicted_frames": [1.0]}, "records[0].state_change"),
    ([_record(parent_pnr_frame=300)], {"predicted_frames": [1.0]}, "records[0].parent_pnr_frame"),
    ([_record(parent_end_frame=100)], {"predicted_frames": [1.0]}, "records[0].parent_end_frame"),
    ([_record(parent_end_sec=10.0)], {"predicted_frames": [1.0]}, "records[0].parent_end_sec"),
    ([_record(parent_start_sec="10")], {"predicted_frames": [1.0]}, "records[0].parent_start_sec"),
    ([_record(False)], {"predicted_frames": [1.0]}, "records"),
    ([], {"predicted_frames": []}, "records"),
])
def test_pnr_rejects_bad_input(records: list, kwargs: dict, field: str) -> None:
    with pytest.raises(InputError) as error:
        pnr_metrics(records, protocol="official", **kwargs)
    assert error.value.field == field


def test_pnr_unknown_protocol_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="official, hier-egopack"):
        pnr_metrics([_record()], predicted_frames=[1.0], protocol="egot2")
