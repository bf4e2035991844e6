from pathlib import Path

import pytest
import torch

from egostream.ego4d.features import FeatureStore
from egostream.errors import InputError

from tests.ego4d.annotation_factory import write_features


def test_finds_features_under_the_authors_layout(tmp_path: Path):
    expected = write_features(tmp_path / "raw" / "features" / "egovlp", "v1", 5, 4)
    store = FeatureStore(tmp_path, "egovlp", expected_dim=4)
    assert store.has("v1") and not store.has("v2")
    assert torch.equal(store.get("v1"), expected)


def test_lru_evicts_least_recently_used_by_count(tmp_path: Path):
    for uid in ("a", "b", "c"):
        write_features(tmp_path, uid, 3, 2)
    store = FeatureStore(tmp_path, "unused", expected_dim=2, cache_size=2)
    first = store.get("a")
    store.get("b")
    assert store.get("a") is first  # a hit: now "b" is the least recently used
    store.get("c")
    assert len(store) == 2 and store.get("a") is first


def test_lru_bounded_by_bytes(tmp_path: Path):
    for uid in ("a", "b"):
        write_features(tmp_path, uid, 4, 8)  # 4 * 8 * 4 = 128 bytes each
    store = FeatureStore(tmp_path, "unused", expected_dim=8, cache_size=10, cache_bytes=200)
    store.get("a")
    store.get("b")
    assert len(store) == 1 and store.cached_bytes == 128


def test_wrong_feature_width(tmp_path: Path):
    write_features(tmp_path, "a", 3, 5)
    with pytest.raises(InputError) as error:
        FeatureStore(tmp_path, "unused", expected_dim=4).get("a")
    assert error.value.path == str(tmp_path / "a.pt") and error.value.field == "shape"
    assert "expected [T, 4], found [3, 5]" in str(error.value)


def test_missing_feature_file(tmp_path: Path):
    with pytest.raises(InputError, match=r"b\.pt: feature file of video 'b' not found"):
        FeatureStore(tmp_path, "unused", expected_dim=4).get("b")
