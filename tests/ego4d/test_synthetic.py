"""The synthetic Ego4D-format dataset: determinism, consistency with the readers, and learnable planted structure."""
from __future__ import annotations

import filecmp
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from egostream.config import CONFIG_DIR, load_config
from egostream.ego4d.annotations import (
    read_lta_annotations,
    read_moments_annotations,
    read_state_change_annotations,
    read_video_metadata,
)
from egostream.ego4d.layout import Ego4dLayout
from egostream.ego4d.synthetic import FEATURE_STRIDE, FPS, SPLITS, SynthConfig, generate_dataset
from egostream.ego4d.taxonomy import load_lta_taxonomy, load_mq_labels
from egostream.errors import InputError
from egostream.testing import ego4d_fixtures_dir

SMALL = SynthConfig(videos=5, min_video_sec=120.0, max_video_sec=150.0, feature_dim=16, moments_per_video=4)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("synth")
    return root, generate_dataset(root, SMALL)


@pytest.fixture(scope="module")
def default_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth_default")
    generate_dataset(root, SynthConfig())
    return root


def test_same_seed_gives_byte_identical_files(tmp_path: Path, dataset: tuple[Path, dict]) -> None:
    root, summary = dataset
    again = generate_dataset(tmp_path / "again", SMALL)
    assert sorted(again["files"]) == sorted(summary["files"])
    for relative in summary["files"]:
        assert filecmp.cmp(root / relative, tmp_path / "again" / relative, shallow=False), relative
    other = generate_dataset(tmp_path / "other", SynthConfig(**{**SMALL.__dict__, "seed": 1}))
    assert other["videos"] != summary["videos"]


def test_vocabularies_are_the_real_ones(dataset: tuple[Path, dict]) -> None:
    layout = Ego4dLayout(dataset[0])
    fixtures = ego4d_fixtures_dir()
    assert layout.lta_taxonomy().read_bytes() == (fixtures / "fho_lta_taxonomy.json").read_bytes()
    assert layout.mq_labels().read_bytes() == (fixtures / "mq_labels.tsv").read_bytes()


def test_every_file_reads_back_consistently(dataset: tuple[Path, dict]) -> None:
    root, summary = dataset
    layout = Ego4dLayout.from_root(root)
    taxonomy = load_lta_taxonomy(layout.lta_taxonomy(), (115, 478))
    mq_labels = load_mq_labels(layout.mq_labels())
    metadata = read_video_metadata(layout.video_metadata())
    assert sorted(metadata.videos) == sorted(summary["videos"]["train"] + summary["videos"]["val"])
    assert set(summary["videos"]["train"]).isdisjoint(summary["videos"]["val"])

    for split in SPLITS:
        videos = set(summary["videos"][split])
        lta = read_lta_annotations(layout.lta_annotations(split), taxonomy)
        assert {action.video_uid for action in lta.actions} == videos
        assert len(lta.actions) == summary["files"][f"annotations/v1/fho_lta_{split}.json"]
        by_clip: dict[str, list] = {}
        for action in lta.actions:
            by_clip.setdefault(action.clip_uid, []).append(action)
            assert taxonomy.verb_name(action.verb_label) == action.verb
            assert taxonomy.noun_name(action.noun_label) == action.noun
            assert 0 <= action.clip_parent_start_frame <= action.video_start_frame < action.video_end_frame
            assert action.video_end_frame <= action.clip_parent_end_frame <= metadata[action.video_uid].num_frames
            assert action.action_clip_start_sec == pytest.approx(action.action_clip_start_frame / FPS)
        for actions in by_clip.values():
            assert [a.action_idx for a in actions] == list(range(len(actions)))
            assert len(actions) >= 2 + 20 + 1, "too few actions for one LTA sample (2 observed + 20 future)"
            assert all(a.video_end_frame <= b.video_start_frame for a, b in zip(actions, actions[1:]))

        state = read_state_change_annotations(layout.state_change_annotations(split))
        assert len({sample.unique_id for sample in state.samples}) == len(state.samples)
        assert {sample.state_change for sample in state.samples} == {True, False}
        for sample in state.samples:
            assert sample.parent_end_frame - sample.parent_start_frame == 8 * FPS
            assert sample.parent_end_sec - sample.parent_start_sec == pytest.approx(8.0)
            assert sample.parent_end_frame <= metadata[sample.video_uid].num_frames
            if sample.state_change:
                assert sample.parent_start_frame < sample.parent_pnr_frame < sample.parent_end_frame
            else:
                assert sample.parent_pnr_frame is None

        moments = read_moments_annotations(layout.moments_annotations(split), mq_labels)
        assert {video.video_uid for video in moments.videos} == videos
        for video in moments.videos:
            for clip in video.clips:
                assert 0 <= clip.video_start_frame < clip.video_end_frame <= metadata[video.video_uid].num_frames
                for label in (label for annotator in clip.annotations for label in annotator.labels):
                    assert clip.video_start_frame <= label.video_start_frame < label.video_end_frame
                    assert label.video_end_frame <= clip.video_end_frame
                    assert label.clip_start_sec == pytest.approx(label.video_start_sec - clip.video_start_sec)

    for video_uid, video in metadata.videos.items():
        features = torch.load(layout.features_dir(SMALL.feature_name) / f"{video_uid}.pt")
        assert features.dtype == torch.float32
        assert tuple(features.shape) == (video.num_frames // FEATURE_STRIDE, SMALL.feature_dim)
        assert video.duration_sec == pytest.approx(video.num_frames / FPS)
        assert torch.isfinite(features).all()


def test_authors_narrations_file_covers_every_video(dataset: tuple[Path, dict]) -> None:
    root, summary = dataset
    narrations = json.loads((Ego4dLayout(root).annotations_dir / "narration.json").read_text())
    assert sorted(narrations) == sorted(summary["videos"]["train"] + summary["videos"]["val"])


def test_config_file_holds_the_defaults() -> None:
    assert load_config(SynthConfig, CONFIG_DIR / "synth" / "default.yaml") == SynthConfig()


def test_bad_settings_name_the_field() -> None:
    with pytest.raises(InputError, match="num_verbs"):
        SynthConfig(num_verbs=200)
    with pytest.raises(InputError, match="moments_per_video"):
        SynthConfig(moments_per_video=50)


# ------------------------------------------------------------------------------------------------ learnability

def _segment_means(root: Path, split: str, feature_name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean-pooled features of every action (rows start//16 .. end//16, as the authors cut them) and its labels."""
    layout = Ego4dLayout(root)
    actions = read_lta_annotations(layout.lta_annotations(split)).actions
    cache: dict[str, np.ndarray] = {}
    pooled, verbs, nouns = [], [], []
    for action in actions:
        if action.video_uid not in cache:
            cache[action.video_uid] = torch.load(layout.features_dir(feature_name) / f"{action.video_uid}.pt").numpy()
        rows = cache[action.video_uid][action.video_start_frame // FEATURE_STRIDE:
                                       max(action.video_end_frame // FEATURE_STRIDE,
                                           action.video_start_frame // FEATURE_STRIDE + 1)]
        pooled.append(rows.mean(axis=0))
        verbs.append(action.verb_label)
        nouns.append(action.noun_label)
    return np.stack(pooled), np.array(verbs), np.array(nouns)


def _nearest_class_mean_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                                 test_y: np.ndarray) -> float:
    classes = np.unique(train_y)
    means = np.stack([train_x[train_y == c].mean(axis=0) for c in classes])
    distances = ((test_x[:, None, :] - means[None]) ** 2).sum(-1)
    return float((classes[distances.argmin(1)] == test_y).mean())


def test_planted_verbs_and_nouns_are_learnable(default_dataset: Path) -> None:
    name = SynthConfig().feature_name
    train_x, train_verbs, train_nouns = _segment_means(default_dataset, "train", name)
    val_x, val_verbs, val_nouns = _segment_means(default_dataset, "val", name)
    rng = np.random.default_rng(0)
    for train_y, val_y in ((train_verbs, val_verbs), (train_nouns, val_nouns)):
        majority = Counter(val_y.tolist()).most_common(1)[0][1] / len(val_y)
        accuracy = _nearest_class_mean_accuracy(train_x, train_y, val_x, val_y)
        shuffled = np.mean([_nearest_class_mean_accuracy(train_x, rng.permutation(train_y), val_x, val_y)
                            for _ in range(5)])
        assert accuracy > 0.8 > majority + 0.4, (accuracy, majority)
        assert shuffled < majority + 0.1, (shuffled, majority)


def test_next_action_is_predictable_from_the_previous_one(default_dataset: Path) -> None:
    """The recipe grammar: a bigram table fitted on train predicts val's next verb far above the majority class."""
    layout = Ego4dLayout(default_dataset)

    def pairs(split: str) -> list[tuple[tuple[int, int], int]]:
        by_clip: dict[str, list] = {}
        for action in read_lta_annotations(layout.lta_annotations(split)).actions:
            by_clip.setdefault(action.clip_uid, []).append(action)
        return [((a.verb_label, a.noun_label), b.verb_label)
                for actions in by_clip.values() for a, b in zip(actions, actions[1:])]

    table: dict[tuple[int, int], Counter] = {}
    for previous, following in pairs("train"):
        table.setdefault(previous, Counter())[following] += 1
    val = pairs("val")
    correct = sum(previous in table and table[previous].most_common(1)[0][0] == following
                  for previous, following in val)
    majority = Counter(following for _, following in val).most_common(1)[0][1]
    assert correct / len(val) > 0.6 > majority / len(val) + 0.2


def test_state_change_transition_is_learnable(default_dataset: Path) -> None:
    """A direction fitted on train positives (last quarter minus first quarter of a sample) separates val positives
    from negatives, and the best two-mean split of a positive's projected rows falls on its PNR (within a row)."""
    layout = Ego4dLayout(default_dataset)
    name = SynthConfig().feature_name

    def samples_with_rows(split: str) -> list[tuple[object, np.ndarray]]:
        samples = read_state_change_annotations(layout.state_change_annotations(split)).samples
        out = []
        for sample in samples:
            features = torch.load(layout.features_dir(name) / f"{sample.video_uid}.pt").numpy()
            first, last = sample.parent_start_frame // FEATURE_STRIDE, sample.parent_end_frame // FEATURE_STRIDE
            out.append((sample, features[first:last]))
        return out

    def quarter_change(rows: np.ndarray) -> np.ndarray:
        quarter = len(rows) // 4
        return rows[-quarter:].mean(0) - rows[:quarter].mean(0)

    train, val = samples_with_rows("train"), samples_with_rows("val")
    train_y = np.array([bool(sample.state_change) for sample, _ in train])
    val_y = np.array([bool(sample.state_change) for sample, _ in val])
    train_change = np.stack([quarter_change(rows) for _, rows in train])
    direction = train_change[train_y].mean(0)
    direction /= np.linalg.norm(direction)
    train_projection = train_change @ direction
    threshold = (train_projection[train_y].mean() + train_projection[~train_y].mean()) / 2
    val_projection = np.stack([quarter_change(rows) for _, rows in val]) @ direction
    accuracy = float(((val_projection > threshold) == val_y).mean())
    majority = max(val_y.mean(), 1 - val_y.mean())
    assert accuracy > 0.9 > majority + 0.2, (accuracy, majority)

    hits = []
    for sample, rows in val:
        if not sample.state_change:
            continue
        projected = rows @ direction
        split_scores = [projected[k:].mean() - projected[:k].mean() for k in range(1, len(projected))]
        boundary_frame = (sample.parent_start_frame // FEATURE_STRIDE + 1 + int(np.argmax(split_scores))) * 16
        hits.append(abs(boundary_frame - sample.parent_pnr_frame) <= FEATURE_STRIDE)
    assert np.mean(hits) > 0.8


def test_moment_classes_are_learnable(default_dataset: Path) -> None:
    """Nearest class mean on the mean-pooled rows of each moment, fitted on train, beats the majority class on val."""
    layout = Ego4dLayout(default_dataset)
    name = SynthConfig().feature_name

    def pooled(split: str) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for video in read_moments_annotations(layout.moments_annotations(split)).videos:
            features = torch.load(layout.features_dir(name) / f"{video.video_uid}.pt").numpy()
            for label in (label for clip in video.clips for a in clip.annotations for label in a.labels):
                xs.append(features[label.video_start_frame // FEATURE_STRIDE:
                                   label.video_end_frame // FEATURE_STRIDE].mean(0))
                ys.append(label.label)
        return np.stack(xs), np.array(ys)

    train_x, train_y = pooled("train")
    val_x, val_y = pooled("val")
    majority = Counter(val_y.tolist()).most_common(1)[0][1] / len(val_y)
    assert _nearest_class_mean_accuracy(train_x, train_y, val_x, val_y) > max(0.8, majority + 0.3)
