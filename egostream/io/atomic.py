"""Atomic file writes: a reader never sees a half-written annotation, feature or submission file.

Every writer of the Ego4D data layer writes a temporary file in the destination folder, flushes it to disk and
renames it over the destination with :func:`os.replace` (atomic on POSIX and Windows), so an interrupted run leaves
either the old file or the new one, never a truncated one.
"""
from __future__ import annotations

import json
import os
import tempfile
from os import PathLike
from pathlib import Path
from typing import Any

__all__ = ["write_bytes_atomic", "write_json_atomic", "write_text_atomic"]


def write_bytes_atomic(path: str | PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (creating parent folders); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | PathLike[str], text: str) -> Path:
    """Write ``text`` as UTF-8 to ``path`` atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | PathLike[str], document: Any, *, indent: int | None = None) -> Path:
    """Write ``document`` as JSON to ``path`` atomically (keys in insertion order, so output is reproducible)."""
    return write_text_atomic(path, json.dumps(document, indent=indent, allow_nan=False) + "\n")
