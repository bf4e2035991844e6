"""The restricted unpickler on EgoVLP's trainer checkpoint: its pickled ``parse_config.ConfigParser`` is refused by
default and becomes an inert stub when the caller names the module."""
from __future__ import annotations

import json

import pytest

from egostream.errors import InputError
from egostream.restricted_pickle import OmegaConfStub, load_restricted
from egostream.testing import extractor_reference_dir

CHECKPOINT = extractor_reference_dir() / "checkpoints" / "egovlp_small.pth"


def test_unknown_pickled_classes_are_refused() -> None:
    with pytest.raises(InputError, match=r"refusing to load '(parse_config|argparse|pathlib)\."):
        load_restricted(CHECKPOINT)


def test_named_modules_become_inert_stubs() -> None:
    content = load_restricted(CHECKPOINT, stub_modules=("parse_config", "argparse", "pathlib"))
    config = content["config"]
    assert isinstance(config, OmegaConfStub) and config.omegaconf_name == "parse_config.ConfigParser"
    expected = json.loads((extractor_reference_dir() / "configs" / "egovlp_small.json").read_text())["FrozenInTime"]
    arch = config.state["_config"]["arch"]
    assert arch["type"] == content["arch"] == "FrozenInTime"
    assert arch["args"]["projection_dim"] == expected["projection_dim"]
    assert arch["args"]["video_params"]["num_frames"] == expected["video_params"]["num_frames"]
