"""Prototype accumulation against a brute-force mean, and the Backpack file format (round trip, bad input)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from egostream.backpack import Backpack, PrototypeBuilder, file_sha256
from egostream.errors import InputError


def small_backpack() -> Backpack:
    builder = PrototypeBuilder(["ego4d/lta", "ego4d/pnr"], num_verbs=3, num_nouns=4, feature_size=2)
    builder.add({"ego4d/lta": torch.tensor([[1.0, 2.0], [3.0, 4.0]]), "ego4d/pnr": torch.tensor([[0.0, 1.0], [2.0, 3.0]])},
                torch.tensor([2, 0]), torch.tensor([1, 3]))
    builder.add({"ego4d/lta": torch.tensor([[5.0, 6.0]]), "ego4d/pnr": torch.tensor([[4.0, 5.0]])},
                torch.tensor([2]), torch.tensor([1]))
    return builder.finish(source_checkpoint_sha256="ab" * 32)


def test_builder_means_per_pair_in_label_order() -> None:
    backpack = small_backpack()
    # label ids: (2, 1) -> 9 (twice), (0, 3) -> 3 (once); rows in increasing label order: 3, then 9.
    assert backpack.label_ids.tolist() == [3, 9]
    assert backpack.verb_labels.tolist() == [0, 2] and backpack.noun_labels.tolist() == [3, 1]
    assert backpack.support.tolist() == [1, 2]
    torch.testing.assert_close(backpack.task_prototypes("ego4d/lta"), torch.tensor([[3.0, 4.0], [3.0, 4.0]]))
    torch.testing.assert_close(backpack.task_prototypes("ego4d/pnr"), torch.tensor([[2.0, 3.0], [2.0, 3.0]]))
    assert backpack.support_tasks == ["ego4d/lta", "ego4d/pnr"] and backpack.feature_size == 2


def test_builder_matches_brute_force_mean() -> None:
    generator = torch.Generator().manual_seed(3)
    builder = PrototypeBuilder(["t"], num_verbs=4, num_nouns=5, feature_size=3)
    rows, labels = [], []
    for _ in range(3):
        features = torch.randn(7, 3, generator=generator)
        verbs, nouns = torch.randint(0, 4, (7,), generator=generator), torch.randint(0, 5, (7,), generator=generator)
        builder.add({"t": features}, verbs, nouns)
        rows.append(features)
        labels.append(verbs * 5 + nouns)
    backpack = builder.finish()
    all_rows, all_labels = torch.cat(rows), torch.cat(labels)
    expected_ids = sorted(set(all_labels.tolist()))
    assert backpack.label_ids.tolist() == expected_ids
    brute = torch.stack([all_rows[all_labels == label].mean(0) for label in expected_ids])
    torch.testing.assert_close(backpack.prototypes["t"], brute, atol=1e-6, rtol=0)


def test_save_load_round_trip(tmp_path: Path) -> None:
    backpack = small_backpack()
    path = tmp_path / "sub" / "backpack.pt"
    backpack.save(path)
    loaded = Backpack.load(path)
    assert loaded.path == path and loaded.source_checkpoint_sha256 == "ab" * 32
    assert (loaded.num_verbs, loaded.num_nouns, loaded.support_tasks) == (3, 4, backpack.support_tasks)
    for name in ("verb_labels", "noun_labels", "support"):
        assert torch.equal(getattr(loaded, name), getattr(backpack, name))
    for task in backpack.support_tasks:
        assert torch.equal(loaded.prototypes[task], backpack.prototypes[task])
    assert [p.name for p in path.parent.iterdir()] == ["backpack.pt"]  # no temporary file left behind


def test_file_sha256(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"abc")
    assert file_sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_load_rejects_other_files(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"format": "something else"}, path)
    with pytest.raises(InputError, match="other.pt: format"):
        Backpack.load(path)
    torch.save({"format": "egostream.backpack", "version": 99}, path)
    with pytest.raises(InputError, match="version"):
        Backpack.load(path)
    with pytest.raises(InputError, match="no such backpack file"):
        Backpack.load(tmp_path / "missing.pt")


def test_prototype_width_mismatch_is_rejected() -> None:
    backpack = small_backpack()
    with pytest.raises(InputError, match="disagree on the prototype width"):
        Backpack({"a": torch.zeros(2, 2), "b": torch.zeros(2, 3)}, backpack.verb_labels, backpack.noun_labels,
                 backpack.support, 3, 4)
    with pytest.raises(InputError, match="feature_size: the model expects 48-wide prototypes"):
        backpack.require(backpack.support_tasks, feature_size=48)
    with pytest.raises(InputError, match=r"expected \[2, 3\]"):
        PrototypeBuilder(["t"], 3, 4, feature_size=3).add({"t": torch.zeros(2, 2)}, torch.tensor([0, 1]),
                                                          torch.tensor([0, 1]))


def test_unknown_support_task_is_rejected() -> None:
    backpack = small_backpack()
    with pytest.raises(InputError, match="unknown support task 'ego4d/oscc'"):
        backpack.task_prototypes("ego4d/oscc")
    with pytest.raises(InputError, match="support_tasks"):
        backpack.require(["ego4d/lta", "ego4d/oscc"], feature_size=2)
    with pytest.raises(InputError, match="expected features of"):
        PrototypeBuilder(["t"], 3, 4, 2).add({"u": torch.zeros(1, 2)}, torch.tensor([0]), torch.tensor([0]))


def test_labels_outside_the_vocabulary_are_rejected() -> None:
    with pytest.raises(InputError, match="vocabulary"):
        PrototypeBuilder(["t"], 3, 4, 2).add({"t": torch.zeros(1, 2)}, torch.tensor([3]), torch.tensor([0]))
    with pytest.raises(InputError, match="no labelled segment"):
        PrototypeBuilder(["t"], 3, 4, 2).finish()
