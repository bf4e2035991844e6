"""``evaluate_files`` end to end: class-prior submissions score exactly the chance level computed by hand."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from egostream.ego4d.baselines import LTA_CANDIDATES, LTA_FUTURE_STEPS, write_prior_submission
from egostream.ego4d.evaluation import evaluate_files
from egostream.ego4d.layout import Ego4dLayout
from egostream.ego4d.submission import read_mq_submission, write_oscc_submission
from egostream.ego4d.synthetic import SynthConfig, generate_dataset
from egostream.errors import InputError, PredictionCountError

PROTOCOLS = ("official", "hier-egopack")
CONFIG = SynthConfig(videos=4, train_fraction=0.5, min_video_sec=120.0, max_video_sec=150.0, feature_dim=4,
                     moments_per_video=4)


@pytest.fixture(scope="module")
def annotations(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    generate_dataset(root, CONFIG)
    return Ego4dLayout(root).annotations_dir


def _records(path: Path) -> list[dict]:
    return json.loads(path.read_text())["clips"]


def _submission(tmp_path: Path, task: str, annotation_file: Path, protocol: str) -> Path:
    return write_prior_submission(task, annotation_file, tmp_path / f"{task}.json", protocol=protocol)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_ar_prior_top_k_is_the_frequency_of_the_k_commonest_classes(tmp_path: Path, annotations: Path,
                                                                    protocol: str) -> None:
    file = annotations / "fho_lta_val.json"
    metrics = evaluate_files("ar", protocol, file, _submission(tmp_path, "ar", file, protocol))
    records = _records(file)
    for head in ("verb", "noun"):
        counts = sorted(Counter(r[f"{head}_label"] for r in records).values(), reverse=True)
        assert metrics[f"{head}_top1_pct"] == pytest.approx(100 * counts[0] / len(records))
        assert metrics[f"{head}_top5_pct"] == pytest.approx(100 * sum(counts[:5]) / len(records))
    assert metrics["n_samples"] == len(records)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_lta_prior_edit_distance_counts_matches_of_the_commonest_classes(tmp_path: Path, annotations: Path,
                                                                         protocol: str) -> None:
    file = annotations / "fho_lta_val.json"
    metrics = evaluate_files("lta", protocol, file, _submission(tmp_path, "lta", file, protocol))
    records = _records(file)
    clips: dict[str, list[dict]] = {}
    for record in records:
        clips.setdefault(record["clip_uid"], []).append(record)
    # Windows: official N - 2 - 20 + 1 per clip, hier-egopack one fewer. A constant candidate c against Z labels has
    # Levenshtein distance Z - (number of labels equal to c).
    for head in ("verb", "noun"):
        ranked = [c for c, _ in Counter(r[f"{head}_label"] for r in records).most_common()][:LTA_CANDIDATES]
        distances = []
        for actions in clips.values():
            labels = [a[f"{head}_label"] for a in sorted(actions, key=lambda a: a["action_idx"])]
            windows = len(labels) - 2 - LTA_FUTURE_STEPS + (1 if protocol == "official" else 0)
            for i in range(windows):
                future = labels[i + 2:i + 2 + LTA_FUTURE_STEPS]
                distances.append(min(LTA_FUTURE_STEPS - future.count(c) for c in ranked) / LTA_FUTURE_STEPS)
        assert metrics["n_samples"] == len(distances)
        assert metrics[f"{head}_ed"] == pytest.approx(np.mean(distances))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_oscc_prior_accuracy_is_the_majority_fraction(tmp_path: Path, annotations: Path, protocol: str) -> None:
    file = annotations / "fho_oscc-pnr_val.json"
    metrics = evaluate_files("oscc", protocol, file, _submission(tmp_path, "oscc", file, protocol))
    labels = [r["state_change"] for r in _records(file)]
    assert metrics["accuracy_pct"] == pytest.approx(100 * max(labels.count(True), labels.count(False)) / len(labels))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_pnr_prior_error_by_hand(tmp_path: Path, annotations: Path, protocol: str) -> None:
    file = annotations / "fho_oscc-pnr_val.json"
    metrics = evaluate_files("pnr", protocol, file, _submission(tmp_path, "pnr", file, protocol))
    positives = [r for r in _records(file) if r["state_change"]]
    length = [r["parent_end_frame"] - r["parent_start_frame"] for r in positives]
    fraction = np.mean([(r["parent_pnr_frame"] - r["parent_start_frame"]) / n for r, n in zip(positives, length)])
    errors = []
    for record, frames in zip(positives, length):
        error_frames = abs(fraction * frames - (record["parent_pnr_frame"] - record["parent_start_frame"]))
        # official: the sample's own frame rate (E - S + 1) / seconds; hier-egopack: 30 fps
        fps = (frames + 1) / (record["parent_end_sec"] - record["parent_start_sec"]) if protocol == "official" else 30
        errors.append(error_frames / fps)
    assert metrics["n_positive"] == len(positives)
    assert metrics["mean_error_s"] == pytest.approx(np.mean(errors))


def _interpolated_ap(hits: list[bool], num_gt: int) -> float:
    """Area under the precision envelope, summed where recall changes."""
    if num_gt == 0:
        return 0.0
    tp = np.cumsum(hits)
    precision = np.concatenate([[0.0], tp / np.arange(1, len(hits) + 1), [0.0]])
    recall = np.concatenate([[0.0], tp / num_gt, [1.0]])
    for i in range(len(precision) - 2, -1, -1):
        precision[i] = max(precision[i], precision[i + 1])
    changes = np.nonzero(recall[1:] != recall[:-1])[0] + 1
    return float(((recall[changes] - recall[changes - 1]) * precision[changes]).sum())


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_mq_whole_clip_prior_map_by_hand(tmp_path: Path, annotations: Path, protocol: str) -> None:
    """Each prediction spans its whole clip, so its tIoU with a moment of L seconds in a clip of D is L / D; it is a
    hit at threshold t when its clip has a moment of its class with L / D >= t."""
    file = annotations / "moments_val.json"
    predictions = _submission(tmp_path, "mq", file, protocol)
    metrics = evaluate_files("mq", protocol, file, predictions)
    ratios: dict[tuple[str, str], list[float]] = {}
    for video in json.loads(file.read_text())["videos"]:
        for clip in video["clips"]:
            duration = clip["video_end_sec"] - clip["video_start_sec"]
            for label in clip["annotations"][0]["labels"]:
                ratios.setdefault((clip["clip_uid"], label["label"]), []).append(
                    (label["end_time"] - label["start_time"]) / duration)
    moments = read_mq_submission(predictions).detections
    classes = sorted({label for _, label in ratios})
    expected_map = []
    for threshold in metrics["tiou_thresholds"]:
        aps = []
        for label in classes:
            ranked = sorted(((m.score, clip) for clip, found in moments.items() for m in found if m.label == label),
                            reverse=True)
            hits = [any(r >= threshold for r in ratios.get((clip, label), [])) for _, clip in ranked]
            aps.append(_interpolated_ap(hits, sum(len(v) for (_, name), v in ratios.items() if name == label)))
        expected_map.append(np.mean(aps))
    np.testing.assert_allclose(metrics["mAP"], expected_map, atol=1e-12)
    assert metrics["n_clips_without_predictions"] == 0 and metrics["n_extra_clips"] == 0


def test_prediction_count_errors_list_missing_and_extra_samples(tmp_path: Path, annotations: Path) -> None:
    file = annotations / "fho_oscc-pnr_val.json"
    uids = [r["unique_id"] for r in _records(file)]
    predictions = write_oscc_submission(tmp_path / "oscc.json", {**{uid: True for uid in uids[1:]}, "stranger": True})
    with pytest.raises(PredictionCountError) as caught:
        evaluate_files("oscc", "official", file, predictions)
    assert caught.value.missing == [uids[0]] and caught.value.extra == ["stranger"]
    assert caught.value.path == str(predictions)


def test_mq_missing_clips_count_as_empty_and_extra_clips_as_false_positives(tmp_path: Path, annotations: Path) -> None:
    file = annotations / "moments_val.json"
    full = json.loads(_submission(tmp_path, "mq", file, "official").read_text())
    dropped = sorted(full["detect_results"])[0]
    for section in ("detect_results", "retrieve_results"):
        full[section]["stranger"] = full[section].pop(dropped)
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(full))
    metrics = evaluate_files("mq", "official", file, edited)
    assert metrics["n_clips_without_predictions"] == 1 and metrics["n_extra_clips"] == 1


def test_unknown_task_is_an_input_error(annotations: Path) -> None:
    with pytest.raises(InputError, match="task"):
        evaluate_files("nlq", "official", annotations / "fho_lta_val.json", annotations / "fho_lta_val.json")


@pytest.mark.parametrize(("head", "extra"), [("verb", 50), ("noun", -1)])
def test_ar_score_vectors_must_have_exactly_the_vocabulary_size(tmp_path: Path, annotations: Path, head: str,
                                                                extra: int) -> None:
    file = annotations / "fho_lta_val.json"
    path = _submission(tmp_path, "ar", file, "official")
    document = json.loads(path.read_text())
    expected = len(next(iter(document.values()))[head])  # the writer's vector: one score per taxonomy class
    for entry in document.values():
        entry[head] = entry[head] + [0.0] * extra if extra > 0 else entry[head][:extra]
    path.write_text(json.dumps(document))
    with pytest.raises(InputError) as caught:
        evaluate_files("ar", "official", file, path)
    assert caught.value.path == str(path) and caught.value.field == f"{next(iter(document))}.{head}"
    assert f"{expected + extra} scores, but the taxonomy has {expected} {head}s" in str(caught.value)


@pytest.mark.parametrize("which", ["annotations", "predictions", "labels"])
def test_non_utf8_inputs_name_the_file(tmp_path: Path, annotations: Path, which: str) -> None:
    file = annotations / "moments_val.json"
    files = {"annotations": file, "predictions": _submission(tmp_path, "mq", file, "official"),
             "labels": annotations.parent / "mq_labels.tsv"}
    broken = tmp_path / f"broken_{which}"
    broken.write_bytes(b"\xff" + files[which].read_bytes())
    files[which] = broken
    with pytest.raises(InputError) as caught:
        evaluate_files("mq", "official", **files)
    assert caught.value.path == str(broken) and caught.value.field == "encoding"


def test_labels_pointing_at_a_folder(tmp_path: Path, annotations: Path) -> None:
    file = annotations / "moments_val.json"
    with pytest.raises(InputError, match="is a folder"):
        evaluate_files("mq", "official", file, _submission(tmp_path, "mq", file, "official"), labels=tmp_path)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_label_file_missing_a_ground_truth_class_is_named(tmp_path: Path, annotations: Path, protocol: str) -> None:
    file = annotations / "moments_val.json"
    used = {label["label"] for video in json.loads(file.read_text())["videos"] for clip in video["clips"]
            for annotation in clip["annotations"] for label in annotation["labels"] if label["primary"]}
    lines = (annotations.parent / "mq_labels.tsv").read_text().splitlines()
    kept = [line for line in lines if line.split("\t")[1].strip('"') not in {u.strip('"') for u in used}]
    labels = tmp_path / "mq_labels.tsv"
    labels.write_text("".join(f"{index:03d}\t{line.split(chr(9))[1]}\n" for index, line in enumerate(kept)))
    with pytest.raises(InputError) as caught:
        evaluate_files("mq", protocol, file, _submission(tmp_path, "mq", file, protocol), labels=labels)
    assert caught.value.path == str(labels) and "no class" in str(caught.value)


@pytest.mark.parametrize("head", ["verb", "noun"])
def test_lta_class_ids_beyond_the_vocabulary_name_the_predictions(tmp_path: Path, annotations: Path,
                                                                 head: str) -> None:
    file = annotations / "fho_lta_val.json"
    path = _submission(tmp_path, "lta", file, "official")
    document = json.loads(path.read_text())
    size = len(json.loads((annotations / "fho_lta_taxonomy.json").read_text())[f"{head}s"])
    key = next(iter(document))
    document[key][head][0][3] = size  # one past the last class
    path.write_text(json.dumps(document))
    with pytest.raises(InputError) as caught:
        evaluate_files("lta", "official", file, path)
    assert caught.value.path == str(path) and caught.value.field == f"{key}.{head}"
    assert f"class id {size} out of range" in str(caught.value)
