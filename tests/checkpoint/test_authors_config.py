"""The authors' pickled config as plain data, interpolations resolved (:mod:`egostream.checkpoint.authors_config`)."""
from __future__ import annotations

from pathlib import Path

import pytest

from egostream.checkpoint import load_checkpoint
from egostream.errors import InputError
from egostream.testing import reference_dir
from tests.checkpoint.tiny import authors_checkpoint
from tests.reference_fixtures import reference_manifest

CHECKPOINTS = sorted(reference_manifest()["checkpoints"].items())


@pytest.mark.skipif(not CHECKPOINTS, reason="no reference checkpoints found")
def test_authors_config_becomes_plain_with_interpolations_resolved() -> None:
    name, entry = next((n, e) for n, e in CHECKPOINTS if e["format"] == "train_multi_task.py")
    config = load_checkpoint(reference_dir() / entry["file"]).config
    model = config["model"]
    assert model["conv"]["in_channels"] == model["hidden_size"]  # "${model.hidden_size}" in the yaml
    for task in config["tasks"].values():
        assert task["input_size"] == model["hidden_size"]


@pytest.mark.parametrize(("config", "key"), [
    ({"model": {"hidden_size": "${model.hidden_size}"}}, "config.model.hidden_size"),
    ({"model": {"conv": {"in_channels": "${model}"}}}, "config.model.conv.in_channels"),
    ({"a": "${b}", "b": {"c": "${..a}"}}, "config.b.c"),
    ({"model": {"x": "${.y}", "y": "${model.x}"}}, "config.model.y"),
])
def test_cyclic_interpolation_fails_naming_the_key(tmp_path: Path, config: dict, key: str) -> None:
    path = authors_checkpoint(tmp_path / "cyclic.pth", config)
    with pytest.raises(InputError) as caught:
        load_checkpoint(path)
    assert caught.value.path == str(path) and caught.value.field == key
    assert "cyclic interpolation" in str(caught.value)


def test_chained_and_repeated_interpolations_still_resolve(tmp_path: Path) -> None:
    config = {"model": {"hidden_size": 8, "conv": {"in_channels": "${model.hidden_size}"}},
              "a": "${b}", "b": "${model.conv}", "c": "${a}", "d": "${..model.hidden_size}", "e": "${missing}"}
    loaded = load_checkpoint(authors_checkpoint(tmp_path / "ok.pth", config))
    assert loaded.config["a"] == loaded.config["c"] == {"in_channels": 8}
    assert loaded.config["model"]["conv"]["in_channels"] == 8 and loaded.config["e"] == "${missing}"
