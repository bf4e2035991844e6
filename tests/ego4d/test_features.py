from pathlib import Path

import pytest
import torch

from egostream.ego4d.features import MAX_ABS_FEATURE, FeatureStore
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


def test_empty_feature_file_is_refused(tmp_path: Path):
    torch.save(torch.zeros(0, 4), tmp_path / "a.pt")
    with pytest.raises(InputError) as error:
        FeatureStore(tmp_path, "unused", expected_dim=4).get("a")
    assert error.value.path == str(tmp_path / "a.pt") and error.value.field == "shape"
    assert "no rows" in str(error.value)


@pytest.mark.parametrize(("value", "words"), [(float("nan"), "non-finite value nan"),
                                              (float("-inf"), "non-finite value -inf"),
                                              (1e38, "value 1e+38 in column 2 beyond the feature magnitude limit")])
def test_non_finite_or_huge_values_name_the_first_bad_row(tmp_path: Path, value: float, words: str):
    features = write_features(tmp_path, "a", 6, 4).clone()
    features[3, 2] = value
    features[5, 0] = value
    torch.save(features, tmp_path / "a.pt")
    with pytest.raises(InputError) as error:
        FeatureStore(tmp_path, "unused", expected_dim=4).get("a")
    assert error.value.path == str(tmp_path / "a.pt") and error.value.field == "rows[3]"
    assert words in str(error.value) and "2 bad rows in all" in str(error.value)


def test_the_magnitude_limit_itself_is_accepted(tmp_path: Path):
    features = torch.full((2, 3), -MAX_ABS_FEATURE)
    torch.save(features, tmp_path / "a.pt")
    assert torch.equal(FeatureStore(tmp_path, "unused", expected_dim=3).get("a"), features)


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.complex64])
def test_non_floating_dtype_is_refused(tmp_path: Path, dtype: torch.dtype):
    torch.save(torch.ones(3, 4, dtype=dtype), tmp_path / "a.pt")
    with pytest.raises(InputError) as error:
        FeatureStore(tmp_path, "unused", expected_dim=4).get("a")
    assert error.value.field == "dtype" and str(dtype) in str(error.value)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_floating_dtypes_load_as_float32(tmp_path: Path, dtype: torch.dtype):
    features = torch.arange(12, dtype=dtype).reshape(3, 4)
    torch.save(features, tmp_path / "a.pt")
    loaded = FeatureStore(tmp_path, "unused", expected_dim=4).get("a")
    assert loaded.dtype == torch.float32 and torch.equal(loaded, features.float())


def test_covering_needs_the_first_row_of_a_window_or_every_indexed_row(tmp_path: Path):
    write_features(tmp_path, "a", 5, 2)
    store = FeatureStore(tmp_path, "unused", expected_dim=2)
    assert len(store.covering("a", 4, 9)) == 5            # rows past the end are absent, as the authors slice
    with pytest.raises(InputError) as error:
        store.covering("a", 5, 9)                         # no node left
    assert error.value.path == str(tmp_path / "a.pt") and "has 5 rows" in str(error.value)
    assert len(store.covering("a", 0, 5, all_rows=True)) == 5
    with pytest.raises(InputError, match=r"a\.pt: shape: the feature file has 5 rows, too short .* \[0, 6\)"):
        store.covering("a", 0, 6, all_rows=True)
