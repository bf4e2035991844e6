"""A run interrupted after an epoch and resumed from its checkpoint continues as the uninterrupted run.

Bit-identity needs one intra-op thread: with several, torch's CPU kernels may sum in a different order from one call
to the next, so even two uninterrupted runs differ in the last bits of the weights (about 1e-7 after a few steps on
2 threads). With one thread a resumed run and the uninterrupted run are equal to the bit, as are two full runs.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from egostream.checkpoint import load_checkpoint
from egostream.errors import InputError
from egostream.model import ModelBundle
from egostream.train.loop import train
from egostream.train.recipe import TRAIN_CONFIG_DIR, load_recipe
from egostream.train.seeding import torch_threads

OVERRIDES = ["num_epochs=3", "batch_size=1", "lr_warmup_epochs=1", "eval_every_epochs=1"]


@pytest.fixture
def one_thread() -> Iterator[None]:
    with torch_threads(1):
        yield


@pytest.mark.usefixtures("one_thread")
def test_resume_continues_bit_identically(data_root: Path, tmp_path: Path) -> None:
    recipe = load_recipe("single", ["ar"], TRAIN_CONFIG_DIR / "tiny_single.yaml", OVERRIDES)
    full = train(recipe, data_root, tmp_path / "full")
    interrupted = train(recipe, data_root, tmp_path / "parts", stop_after_epochs=2)
    assert interrupted.epochs_completed == 2 and len(interrupted.records) == 2
    resumed = train(recipe, data_root, tmp_path / "parts", resume=interrupted.checkpoint)
    assert resumed.epochs_completed == 3
    full_state, resumed_state = full.bundle.state_dict(), resumed.bundle.state_dict()
    assert full_state.keys() == resumed_state.keys()
    assert all(torch.equal(resumed_state[key], full_state[key]) for key in full_state)
    assert resumed.records == full.records  # same losses, learning rates and validation metrics per epoch
    assert [record["epoch"] for record in resumed.records] == [1, 2, 3]
    # The checkpoint is our format: the trained bundle loads from it for replay.
    loaded = ModelBundle.from_checkpoints(resumed.checkpoint)
    assert all(torch.equal(value, full_state[f"heads.{key}"]) for key, value in loaded.heads.state_dict().items()
               if f"heads.{key}" in full_state)
    saved = load_checkpoint(resumed.checkpoint)
    assert saved.step == full.records[-1]["step"]
    assert saved.training_state is not None and saved.training_state["epoch"] == 3
    assert "training_state" not in saved.config


def test_resume_refuses_another_recipe(data_root: Path, tmp_path: Path) -> None:
    recipe = load_recipe("single", ["ar"], TRAIN_CONFIG_DIR / "tiny_single.yaml", OVERRIDES)
    first = train(recipe, data_root, tmp_path, stop_after_epochs=1)
    other = load_recipe("single", ["ar"], TRAIN_CONFIG_DIR / "tiny_single.yaml", [*OVERRIDES, "optimizer.lr=0.1"])
    with pytest.raises(InputError, match="optimizer"):
        train(other, data_root, tmp_path, resume=first.checkpoint)
