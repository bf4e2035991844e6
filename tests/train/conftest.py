"""Fixtures of the training tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from egostream.ego4d.synthetic import SynthConfig, generate_dataset


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic Ego4D folder (3 videos of 2 minutes, every task) for short training runs, one per module."""
    root = tmp_path_factory.mktemp("synthetic")
    generate_dataset(root, SynthConfig(videos=3, min_video_sec=120, max_video_sec=130, train_fraction=0.67,
                                       state_change_samples_per_video=4, moments_per_video=4))
    return root
