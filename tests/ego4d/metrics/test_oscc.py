"""OSCC accuracy: golden cases of both protocols, hand-computed values, ties and bad input."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from egostream.ego4d.metrics import oscc_metrics
from egostream.ego4d.metrics.oscc import state_change_predictions
from egostream.errors import InputError
from egostream.testing import golden_dir

GOLDEN_CASES = sorted(golden_dir().glob("oscc_*__*.json"))


@pytest.mark.parametrize("case_path", GOLDEN_CASES, ids=lambda path: path.stem)
def test_oscc_golden(case_path: Path) -> None:
    case = json.loads(case_path.read_text())
    inputs = np.load(case_path.parent / case["inputs"]["file"])
    logits, labels = inputs["logits"], inputs["labels"]
    expected = case["expected"]
    metrics = oscc_metrics(logits, labels, protocol=case["protocol"])
    assert (metrics["n_samples"], metrics["correct"]) == (expected["n"], expected["correct"])
    if case["protocol"] == "official":
        assert metrics["accuracy_pct"] == pytest.approx(100 * expected["micro_accuracy"], abs=1e-6)
        np.testing.assert_array_equal(state_change_predictions(logits), expected["pred"])
        # An official submission's decisions score the same as the logits they came from.
        assert oscc_metrics(np.array(expected["pred"], dtype=bool), labels, protocol="official") == metrics
    else:
        assert metrics["accuracy_pct_float32"] == pytest.approx(expected["accuracy_pct"], abs=1e-6)
        assert metrics["accuracy_pct"] == pytest.approx(100 * expected["accuracy_exact"], abs=1e-6)
        assert metrics["accuracy_pct"] / 100 == pytest.approx(expected["accuracy"], abs=1e-6)


def test_oscc_hand_computed() -> None:
    logits = np.array([[0.2, 0.8], [0.9, 0.1], [0.5, 0.5], [0.3, 0.7], [0.6, 0.4]])
    labels = np.array([1, 0, 1, 0, 0])  # right, right, tie -> 0 (wrong), wrong, right
    np.testing.assert_array_equal(state_change_predictions(logits), [1, 0, 0, 1, 0])
    official = oscc_metrics(logits, labels, protocol="official")
    assert official == {"n_samples": 5, "correct": 3, "accuracy_pct": 60.0}
    hier = oscc_metrics(logits, labels, protocol="hier-egopack")
    assert hier["accuracy_pct"] == 60.0
    assert hier["accuracy_pct_float32"] == pytest.approx(60.0, abs=1e-5)


@pytest.mark.parametrize("logits, labels, field", [
    (np.zeros((3, 3)), np.array([0, 1, 0]), "logits_or_preds"),
    (np.array([0, 2, 1]), np.array([0, 1, 0]), "logits_or_preds"),
    (np.zeros((3, 2)), np.array([0, 2, 0]), "labels"),
    (np.zeros((3, 2)), np.array([0, 1]), "labels"),
    (np.zeros((3, 2)), np.array([0.0, 1.0, 0.0]), "labels"),
])
def test_oscc_rejects_bad_input(logits: np.ndarray, labels: np.ndarray, field: str) -> None:
    with pytest.raises(InputError) as error:
        oscc_metrics(logits, labels, protocol="official")
    assert error.value.field == field


def test_oscc_unknown_protocol_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="official, hier-egopack"):
        oscc_metrics(np.array([1]), np.array([1]), protocol="egot2")
