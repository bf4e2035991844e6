"""Module-scoped set-up shared by the tests that train on synthetic data (tests/train/test_training_synthetic.py,
tests/translation/test_translation_synthetic.py, tests/test_toy_task.py): one intra-op torch thread for the whole
module (every number reproducible, fast on a loaded machine), a work folder named after the module, and the
synthetic Ego4D dataset of the module's ``DATA`` (a :class:`~egostream.ego4d.synthetic.SynthConfig`) in it.

A test module imports the fixtures it uses (``from tests.synthetic_setup import data_root, one_thread, workdir``,
listed in its ``__all__``) and defines ``DATA``."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from egostream.ego4d.synthetic import generate_dataset
from egostream.train.seeding import torch_threads

__all__ = ["one_thread", "workdir", "data_root"]


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    return tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])


@pytest.fixture(scope="module")
def data_root(workdir: Path, request: pytest.FixtureRequest) -> Path:
    generate_dataset(workdir / "data", request.module.DATA)
    return workdir / "data"
