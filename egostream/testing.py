"""Test helpers: skip decorators for optional hardware and the locations of the shared fixtures."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from egostream.optional import WITH_CUPY

__all__ = ["requires_cuda", "golden_dir", "reference_dir", "ego4d_fixtures_dir", "extractor_reference_dir"]

_REPO_ROOT = Path(__file__).resolve().parent.parent
_SHARED_FIXTURES = _REPO_ROOT.parent / "shared" / "fixtures"

requires_cuda = pytest.mark.skipif(not WITH_CUPY, reason="needs CuPy and a CUDA device")


def ego4d_fixtures_dir() -> Path:
    """The real Ego4D vocabularies (``shared/fixtures/ego4d``)."""
    return Path(os.environ.get("EGOSTREAM_EGO4D_FIXTURES_DIR", _SHARED_FIXTURES / "ego4d"))


def golden_dir() -> Path:
    """Golden metric/NMS cases: ``$EGOSTREAM_GOLDEN_DIR``, default ``shared/fixtures/ego4d/golden``."""
    return Path(os.environ.get("EGOSTREAM_GOLDEN_DIR", _SHARED_FIXTURES / "ego4d" / "golden"))


def reference_dir() -> Path:
    """Authors'-model parity cases: ``$EGOSTREAM_REFERENCE_DIR``, default ``shared/fixtures/hier_egopack_reference``."""
    return Path(os.environ.get("EGOSTREAM_REFERENCE_DIR", _SHARED_FIXTURES / "hier_egopack_reference"))


def extractor_reference_dir() -> Path:
    """Official Omnivore / EgoVLP extractor outputs: ``$EGOSTREAM_EXTRACTOR_REFERENCE_DIR``, default
    ``shared/fixtures/extractor_reference``."""
    return Path(os.environ.get("EGOSTREAM_EXTRACTOR_REFERENCE_DIR", _SHARED_FIXTURES / "extractor_reference"))
