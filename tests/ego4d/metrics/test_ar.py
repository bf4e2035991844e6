"""AR top-k accuracy: golden cases of both protocols, hand-computed values, ties and bad input."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from egostream.ego4d.metrics import ar_metrics
from egostream.ego4d.metrics.ar import label_rank
from egostream.errors import InputError
from egostream.testing import golden_dir

GOLDEN_CASES = sorted(golden_dir().glob("ar_*__*.json"))


def _reported_ks(want: dict, suffix: str) -> list[int]:
    """The k of every ``top{k}_{suffix}`` value the case reports (the protocol's k, capped by its class count)."""
    ks = sorted(int(match.group(1)) for key in want if (match := re.fullmatch(rf"top(\d+)_{suffix}", key)))
    assert 1 in ks, f"the case reports no top1_{suffix}"
    return ks


@pytest.mark.parametrize("case_path", GOLDEN_CASES, ids=lambda path: path.stem)
def test_ar_golden(case_path: Path) -> None:
    case = json.loads(case_path.read_text())
    inputs = np.load(case_path.parent / case["inputs"]["file"])
    arrays = {name: inputs[name] for name in ("verb_logits", "verb_labels", "noun_logits", "noun_labels")}
    expected = case["expected"]
    metrics = ar_metrics(**arrays, protocol=case["protocol"])
    for head in ("verb", "noun"):
        want = expected[head]
        assert metrics[f"{head}_top1_correct"] == want["top1_correct"]
        if case["protocol"] == "official":
            for k in _reported_ks(want, "err_pct"):
                if f"top{k}_correct" in want:
                    assert metrics[f"{head}_top{k}_correct"] == want[f"top{k}_correct"]
                oracle = want[f"top{k}_err_pct"]
                assert metrics[f"{head}_top{k}_err_pct_float32"] == pytest.approx(oracle, abs=1e-6)
                assert metrics[f"{head}_top{k}_err_pct"] == pytest.approx(oracle, abs=1e-4)
            assert metrics[f"{head}_top1_err_pct"] == pytest.approx(want["top1_err_pct_exact"], abs=1e-6)
            # The per-sample argmax as predicted ids: the id path counts the same top-1 hits.
            from_ids = ar_metrics(np.array(expected["verb"]["argmax"]), arrays["verb_labels"],
                                  np.array(expected["noun"]["argmax"]), arrays["noun_labels"], protocol="official")
            assert from_ids[f"{head}_top1_correct"] == want["top1_correct"]
            assert f"{head}_top5_correct" not in from_ids
        else:
            for k in _reported_ks(want, "pct"):
                oracle = want[f"top{k}_pct"]
                assert metrics[f"{head}_top{k}_pct_float32"] == pytest.approx(oracle, abs=1e-6)
                assert metrics[f"{head}_top{k}_pct"] == pytest.approx(oracle, abs=1e-4)
            assert metrics[f"{head}_top1_pct"] == pytest.approx(want["top1_pct_exact"], abs=1e-6)
    if "action_top1_pct" in expected:
        assert metrics["action_top1_pct_float32"] == pytest.approx(expected["action_top1_pct"], abs=1e-6)
        assert metrics["action_top1_pct"] == pytest.approx(expected["action_top1_pct"], abs=1e-4)


def test_ar_hand_computed() -> None:
    verb_logits = np.array([[0.1, 0.9, 0.0, 0.2, 0.3, 0.4],   # label 1: rank 0
                            [0.5, 0.1, 0.2, 0.3, 0.4, 0.6],   # label 0: rank 1
                            [0.6, 0.5, 0.4, 0.3, 0.2, 0.1]])  # label 5: rank 5
    verb_labels = np.array([1, 0, 5])
    noun_logits = np.array([[2.0, 1.0], [0.0, 1.0], [1.0, 3.0]])
    noun_labels = np.array([0, 0, 1])
    official = ar_metrics(verb_logits, verb_labels, noun_logits, noun_labels, protocol="official")
    assert official["verb_top1_correct"] == 1 and official["verb_top5_correct"] == 2
    assert official["verb_top1_pct"] == pytest.approx(100 / 3)
    assert official["verb_top5_err_pct"] == pytest.approx(100 / 3)
    assert official["noun_top1_correct"] == 2
    assert "noun_top5_correct" not in official  # only 2 noun classes
    assert official["action_top1_correct"] == 1  # sample 0 only; sample 2 has the noun but not the verb
    hier = ar_metrics(verb_logits, verb_labels, noun_logits, noun_labels, protocol="hier-egopack")
    assert (hier["verb_top2_correct"], hier["verb_top3_correct"]) == (2, 2)
    assert hier["noun_top2_correct"] == 3
    assert hier["action_top1_pct"] == pytest.approx(100 / 3)
    assert hier["verb_top1_pct_float32"] == pytest.approx(100 / 3, abs=1e-5)


def test_ties_rank_the_lower_class_first() -> None:
    scores = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0]])
    np.testing.assert_array_equal(label_rank(scores, np.array([2, 3])), [1, 3])
    np.testing.assert_array_equal(label_rank(scores, np.array([1, 0])), [0, 0])


def test_label_rank_matches_a_stable_sort() -> None:
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 4, size=(50, 7)).astype(np.float32)  # many ties
    labels = rng.integers(0, 7, size=50)
    order = np.argsort(-scores, axis=1, kind="stable")
    truth = [int(np.flatnonzero(order[row] == labels[row])[0]) for row in range(50)]
    np.testing.assert_array_equal(label_rank(scores, labels), truth)


@pytest.mark.parametrize("mutate, field", [
    (lambda a: {**a, "verb_labels": np.array([0, 6])}, "verb_labels"),
    (lambda a: {**a, "verb_labels": np.array([0, -1])}, "verb_labels"),
    (lambda a: {**a, "noun_labels": np.array([0])}, "noun_labels"),
    (lambda a: {**a, "noun_logits": a["noun_logits"][:1], "noun_labels": a["noun_labels"][:1]}, "noun_logits"),
    (lambda a: {**a, "verb_logits": np.zeros((2, 6, 1))}, "verb_logits"),
    (lambda a: {**a, "verb_logits": np.array([0.5, 1.5])}, "verb_logits"),
    (lambda a: {**a, "verb_logits": np.zeros((0, 6)), "verb_labels": np.zeros(0, int)}, "verb_logits"),
])
def test_ar_rejects_bad_input(mutate, field: str) -> None:
    arrays = {"verb_logits": np.zeros((2, 6)), "verb_labels": np.array([0, 1]),
              "noun_logits": np.zeros((2, 3)), "noun_labels": np.array([2, 1])}
    with pytest.raises(InputError) as error:
        ar_metrics(**mutate(arrays), protocol="hier-egopack")
    assert error.value.field == field


def test_ar_unknown_protocol_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="official, hier-egopack"):
        ar_metrics(np.zeros((1, 2)), np.array([0]), np.zeros((1, 2)), np.array([0]), protocol="torchmetrics")
