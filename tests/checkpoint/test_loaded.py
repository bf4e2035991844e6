"""A loaded checkpoint's parts: clear errors for what it does not hold (:mod:`egostream.checkpoint.loaded`)."""
from __future__ import annotations

from pathlib import Path

import pytest
from torch import nn

from egostream.checkpoint import load_checkpoint, save_checkpoint
from egostream.errors import InputError


def test_missing_task_and_missing_egopack_are_clear_errors(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "a.pt", tasks={"ego4d/ar": nn.Linear(2, 2)})
    loaded = load_checkpoint(path)
    with pytest.raises(InputError, match="no task 'ego4d/mq'.*ego4d/ar"):
        loaded.task_state("ego4d/mq")
    with pytest.raises(InputError, match="no EgoPack"):
        loaded.egopack_state()
