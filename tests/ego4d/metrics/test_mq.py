"""Moment Queries metrics: golden cases of the three protocols, hand-computed toy cases, a brute-force matching
reference, and bad input."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from egostream.ego4d.metrics.mq import MQ_PROTOCOLS, load_mq_labels, mq_metrics
from egostream.ego4d.metrics.mq_detection import average_precision_per_class, segment_tiou
from egostream.errors import InputError, PredictionCountError
from egostream.testing import ego4d_fixtures_dir, golden_dir

TOLERANCE = 1e-6


def _golden_cases() -> list[Path]:
    """Every MQ metric golden file (the NMS post-processing case, also named ``mq_*``, reads no ground truth)."""
    return [path for protocol in MQ_PROTOCOLS for path in sorted(golden_dir().glob(f"mq_*__{protocol}.json"))
            if "ANETdetection" in json.loads(path.read_text())["oracle"]]


def _assert_matches(actual: Any, expected: Any, where: str) -> None:
    """Floats within TOLERANCE; everything else (keys, lengths, ints, strings, order of lists) exactly."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and set(actual) == set(expected), where
        for key, value in expected.items():
            _assert_matches(actual[key], value, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), where
        for index, (got, want) in enumerate(zip(actual, expected)):
            _assert_matches(got, want, f"{where}[{index}]")
    elif isinstance(expected, float):
        assert abs(actual - expected) <= TOLERANCE, f"{where}: {actual} != {expected}"
    else:
        assert actual == expected and type(actual) is type(expected), f"{where}: {actual!r} != {expected!r}"


def _expected_view(result: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """The result, renamed to the golden file's keys."""
    classes = result["classes"]
    if "detection" in expected:
        detection = {key: result[key] for key in ("tiou_thresholds", "ap_per_class", "mAP", "average_mAP", "n_gt",
                                                  "n_predictions_used", "predicted_labels_not_in_gt",
                                                  "n_gt_per_class")}
        detection["activity_index"] = {label: column for column, label in enumerate(classes)}
        return {"detection": detection, "retrieval": result["retrieval"]}
    view = {key: result[key] for key in ("tiou_thresholds", "top_k", "ap_per_class", "mAP", "average_mAP",
                                         "recall_per_class", "mRecall", "label_id")}
    view["tiou_thresholds_repr"] = [repr(threshold) for threshold in result["tiou_thresholds"]]
    view["n_gt"] = view["n_gt_after_dedup"] = result["n_gt"]
    return view


@pytest.mark.parametrize("strip_quotes", [False, True], ids=["quoted-labels", "unquoted-labels"])
@pytest.mark.parametrize("case", _golden_cases(), ids=lambda path: path.stem)
def test_mq_metrics_golden(case: Path, strip_quotes: bool) -> None:
    golden = json.loads(case.read_text())
    inputs = json.loads((case.parent / golden["inputs"]["file"]).read_text())
    label_ids = load_mq_labels(ego4d_fixtures_dir() / "mq_labels.tsv", strip_quotes=strip_quotes)
    result = mq_metrics(inputs["gt"], inputs["predictions"], protocol=golden["protocol"], label_ids=label_ids)
    view = _expected_view(result, golden["expected"])
    _assert_matches({key: view[key] for key in golden["expected"]}, golden["expected"], case.stem)
    assert result["n_gt"] == golden["inputs"]["n_gt_instances_evaluated"] or golden["protocol"] == "actionformer"


def test_golden_cases_found() -> None:
    assert {json.loads(path.read_text())["protocol"] for path in _golden_cases()} == set(MQ_PROTOCOLS)


# ---- hand-computed toy cases -------------------------------------------------------------------------------------

def _clip(*annotations: tuple[str, float, float], subset: str = "val") -> dict[str, Any]:
    return {"subset": subset, "duration": 200.0,
            "annotations": [{"label": label, "start_time": start, "end_time": end}
                            for label, start, end in annotations]}


def _pred(label: str, score: float, start: float, end: float) -> dict[str, Any]:
    return {"label": label, "score": score, "segment": [start, end]}


@pytest.mark.parametrize("protocol", MQ_PROTOCOLS)
def test_false_positive_ranked_first_halves_ap(protocol: str) -> None:
    # ranks: FP (0.9), TP (0.8) -> precision [0, 1/2], recall [0, 1] -> interpolated AP = 1 * 1/2.
    ground_truth = {"a": _clip(("x", 0.0, 10.0))}
    predictions = {"a": [_pred("x", 0.9, 20.0, 30.0), _pred("x", 0.8, 0.0, 10.0)]}
    result = mq_metrics(ground_truth, predictions, protocol=protocol)
    assert result["ap_per_class"]["x"] == pytest.approx([0.5] * 5, abs=1e-12)
    assert result["average_mAP"] == pytest.approx(0.5, abs=1e-12)


@pytest.mark.parametrize("protocol", MQ_PROTOCOLS)
def test_duplicate_detection_is_a_false_positive(protocol: str) -> None:
    # two GT; ranks: TP, duplicate of the same GT (FP), TP -> precision [1, 1/2, 2/3], recall [1/2, 1/2, 1]
    # -> envelope [1, 2/3, 2/3] -> AP = 1/2 * 1 + 1/2 * 2/3 = 5/6.
    ground_truth = {"a": _clip(("x", 0.0, 10.0), ("x", 100.0, 110.0))}
    predictions = {"a": [_pred("x", 0.9, 0.0, 10.0), _pred("x", 0.8, 0.0, 10.0), _pred("x", 0.7, 100.0, 110.0)]}
    result = mq_metrics(ground_truth, predictions, protocol=protocol)
    assert result["ap_per_class"]["x"] == pytest.approx([5 / 6] * 5, abs=1e-12)


def test_tiou_exactly_0_3_passes_official_threshold_only() -> None:
    # tIoU([0, 3], [0, 10]) = 3/10 == 0.3: official 0.3 accepts (>=), np.linspace's 0.30000000000000004 does not, and
    # the official retrieval needs IoU > 0.3.
    ground_truth = {"a": _clip(("x", 0.0, 10.0))}
    predictions = {"a": [_pred("x", 0.5, 0.0, 3.0)]}
    official = mq_metrics(ground_truth, predictions, protocol="official")
    assert official["ap_per_class"]["x"] == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert official["retrieval"]["recall"][0] == [0.0] * 5
    for protocol in ("hier-egopack", "actionformer"):
        result = mq_metrics(ground_truth, predictions, protocol=protocol)
        assert result["tiou_thresholds"][2] == 0.30000000000000004
        assert result["ap_per_class"]["x"] == [1.0, 1.0, 0.0, 0.0, 0.0]
        assert result["recall_per_class"]["x"] == [[1.0, 1.0], [1.0, 1.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]


def test_retrieval_uses_file_order_and_topkx_recall_uses_scores() -> None:
    # The hit comes first in the file but has the lower score.
    ground_truth = {"a": _clip(("x", 0.0, 10.0))}
    predictions = {"a": [_pred("x", 0.1, 0.0, 10.0), _pred("x", 0.9, 50.0, 60.0)]}
    official = mq_metrics(ground_truth, predictions, protocol="official")
    assert official["retrieval"]["recall"] == [[1.0] * 5] * 3
    hier = mq_metrics(ground_truth, predictions, protocol="hier-egopack")
    assert hier["mRecall"] == [[0.0, 1.0]] * 5


def test_actionformer_drops_near_duplicate_ground_truth() -> None:
    # Same label, both ends within 1e-3 s: actionformer keeps one instance (AP 1), hier-egopack keeps both (AP 1/2).
    ground_truth = {"a": _clip(("x", 0.0, 10.0), ("x", 0.0005, 10.0005), ("y", 0.0, 10.0))}
    predictions = {"a": [_pred("x", 0.9, 0.0, 10.0), _pred("y", 0.8, 0.0, 10.0)]}
    actionformer = mq_metrics(ground_truth, predictions, protocol="actionformer")
    hier = mq_metrics(ground_truth, predictions, protocol="hier-egopack")
    assert (actionformer["n_gt"], hier["n_gt"]) == (2, 3)
    assert actionformer["ap_per_class"]["x"] == [1.0] * 5
    assert hier["ap_per_class"]["x"] == [0.5] * 5


def test_class_order_and_label_ids() -> None:
    ground_truth = {"a": _clip(("b", 0.0, 1.0), ("a", 2.0, 3.0))}
    predictions: dict[str, list[dict[str, Any]]] = {"a": []}
    assert mq_metrics(ground_truth, predictions, protocol="official")["classes"] == ["b", "a"]
    result = mq_metrics(ground_truth, predictions, protocol="hier-egopack", label_ids={"a": 7, "b": 3})
    assert result["classes"] == ["b", "a"]
    assert result["label_id"] == {"b": 3, "a": 7}
    assert result["ap_per_class"] == {"b": [0.0] * 5, "a": [0.0] * 5}


def test_other_subsets_and_unknown_clips_are_false_positives_only() -> None:
    ground_truth = {"a": _clip(("x", 0.0, 10.0)), "t": _clip(("x", 0.0, 10.0), subset="train")}
    predictions = {"a": [_pred("x", 0.5, 0.0, 10.0)], "t": [_pred("x", 0.9, 0.0, 10.0)],
                   "zz": [_pred("x", 0.8, 0.0, 10.0), _pred("not-in-gt", 0.99, 0.0, 10.0)]}
    for protocol in MQ_PROTOCOLS:
        result = mq_metrics(ground_truth, predictions, protocol=protocol)
        assert result["n_gt"] == 1
        assert result["ap_per_class"]["x"] == pytest.approx([1 / 3] * 5, abs=1e-12)
        assert result["n_predictions_used"] == 3
        assert result["predicted_labels_not_in_gt"] == ["not-in-gt"]


def test_inputs_are_not_modified_and_evaluation_repeats() -> None:
    # ActionFormer's evaluate relabels the caller's DataFrame in place; here a second call gives the same numbers.
    ground_truth = {"a": _clip(("x", 0.0, 10.0), ("y", 5.0, 8.0))}
    predictions = {"a": [_pred("y", 0.7, 5.0, 8.5), _pred("x", 0.9, 1.0, 10.0)]}
    before = copy.deepcopy((ground_truth, predictions))
    first = mq_metrics(ground_truth, predictions, protocol="hier-egopack", label_ids={"x": 1, "y": 0})
    assert (ground_truth, predictions) == before
    assert mq_metrics(ground_truth, predictions, protocol="hier-egopack", label_ids={"x": 1, "y": 0}) == first


# ---- brute-force reference of the greedy matching -----------------------------------------------------------------

def _brute_force_ap(gt_clip, gt_segments, pred_clip, pred_segments, scores, thresholds) -> list[float]:
    """One class, written as the loop the reference evaluators describe (rank by score, highest free tIoU first)."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    aps = []
    for threshold in thresholds:
        taken: set[int] = set()
        hits = []
        for i in order:
            candidates = [(float(segment_tiou(pred_segments[i:i + 1], gt_segments[j:j + 1])[0, 0]), j)
                          for j in range(len(gt_clip)) if gt_clip[j] == pred_clip[i] and j not in taken]
            best = max(candidates, default=(-1.0, -1))
            hits.append(best[0] >= threshold)
            if best[0] >= threshold:
                taken.add(best[1])
        tp = np.cumsum(hits)
        precision = tp / np.arange(1, len(hits) + 1)
        recall = tp / len(gt_clip)
        ap, previous_recall = 0.0, 0.0
        for k in range(len(hits)):
            if recall[k] > previous_recall:
                ap += (recall[k] - previous_recall) * precision[k:].max()
                previous_recall = recall[k]
        aps.append(ap)
    return aps


@pytest.mark.parametrize("seed", range(5))
def test_average_precision_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_gt, n_pred = 12, 40
    gt_clip = rng.integers(0, 3, n_gt)
    gt_start = rng.uniform(0, 50, n_gt)
    gt_segments = np.stack([gt_start, gt_start + rng.uniform(1, 10, n_gt)], axis=1)
    source = rng.integers(0, n_gt, n_pred)
    pred_clip = np.where(rng.random(n_pred) < 0.8, gt_clip[source], rng.integers(0, 4, n_pred))
    pred_segments = gt_segments[source] + rng.normal(0, 1.5, (n_pred, 2))
    pred_segments.sort(axis=1)
    scores = rng.permutation(n_pred) / n_pred
    thresholds = [0.1, 0.3, 0.5, 0.7]
    ap = average_precision_per_class(gt_clip, gt_segments, np.zeros(n_gt, np.int64), pred_clip, pred_segments,
                                     scores, np.zeros(n_pred, np.int64), 1, thresholds)
    expected = _brute_force_ap(gt_clip, gt_segments, pred_clip, pred_segments, scores, thresholds)
    np.testing.assert_allclose(ap[:, 0], expected, atol=1e-12)


# ---- label file and bad input -------------------------------------------------------------------------------------

def test_load_mq_labels_quotes() -> None:
    path = ego4d_fixtures_dir() / "mq_labels.tsv"
    quoted, unquoted = load_mq_labels(path), load_mq_labels(path, strip_quotes=True)
    assert len(quoted) == len(unquoted) == 110
    assert quoted['"cut_/_chop_/_slice_a_vegetable,_fruit,_or_meat"'] == 1
    assert unquoted["cut_/_chop_/_slice_a_vegetable,_fruit,_or_meat"] == 1
    assert sum(label.startswith('"') for label in quoted) == 7
    assert not any('"' in label for label in unquoted)


def test_load_mq_labels_malformed_line(tmp_path: Path) -> None:
    path = tmp_path / "labels.tsv"
    path.write_text("000\tfirst\n001 second\n")
    with pytest.raises(InputError) as error:
        load_mq_labels(path)
    assert (error.value.path, error.value.field) == (str(path), "line 2")


def test_unknown_protocol_lists_known_ones() -> None:
    with pytest.raises(ValueError, match="official, hier-egopack, actionformer"):
        mq_metrics({"a": _clip(("x", 0.0, 1.0))}, {"a": []}, protocol="activitynet")


@pytest.mark.parametrize(("row", "field"), [
    ({"label": "x", "segment": [0.0, 1.0]}, "predictions[a][1].score"),
    ({"label": "x", "score": "high", "segment": [0.0, 1.0]}, "predictions[a][1].score"),
    ({"label": "x", "score": 0.5}, "predictions[a][1].segment"),
    ({"label": "x", "score": 0.5, "segment": [0.0]}, "predictions[a][1].segment"),
    ({"label": "x", "score": 0.5, "segment": [2.0, 1.0]}, "predictions[a][1].segment"),
    ({"label": "x", "score": float("nan"), "segment": [0.0, 1.0]}, "predictions[a][1].score"),
    ({"label": "x", "score": 0.5, "segment": [[0.0, 1.0]]}, "predictions[a][1].segment"),
    ({"score": 0.5, "segment": [0.0, 1.0]}, "predictions[a][1].label"),
    ("x 0.5 0 1", "predictions[a][1]"),
])
def test_malformed_prediction_names_the_field(row: dict[str, Any], field: str) -> None:
    predictions = {"a": [_pred("x", 0.9, 0.0, 1.0), row]}
    with pytest.raises(InputError) as error:
        mq_metrics({"a": _clip(("x", 0.0, 1.0))}, predictions, protocol="official")
    assert error.value.path is None and error.value.field == field


def test_missing_clip_in_predictions() -> None:
    ground_truth = {"a": _clip(("x", 0.0, 1.0)), "b": _clip(("x", 0.0, 1.0))}
    with pytest.raises(PredictionCountError) as error:
        mq_metrics(ground_truth, {"a": []}, protocol="official")
    assert error.value.missing == ["b"]


def test_malformed_ground_truth_and_unknown_label() -> None:
    with pytest.raises(InputError, match=r"ground_truth\[a\]\.annotations\[0\]\.end_time"):
        mq_metrics({"a": _clip(("x", 5.0, 1.0))}, {"a": []}, protocol="official")
    with pytest.raises(InputError) as error:
        mq_metrics({"a": _clip(("y", 0.0, 1.0), ("x", 0.0, 1.0))}, {"a": []}, protocol="actionformer",
                   label_ids={"y": 0})
    assert error.value.field == "ground_truth[a].annotations[1].label"
    with pytest.raises(InputError, match="no annotation"):
        mq_metrics({"a": _clip(("x", 0.0, 1.0), subset="train")}, {"a": []}, protocol="official")
