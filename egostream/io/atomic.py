"""Atomic file writes: a reader never sees a half-written annotation, feature, submission, checkpoint or result file.

Every writer writes a hidden temporary file (``.<name>.<random>.tmp``) in the destination folder, flushes it to disk
(:func:`os.fsync`) and renames it over the destination with :func:`os.replace` (atomic on POSIX and Windows), so an
interrupted run leaves either the old file or the new one, never a truncated one.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from os import PathLike
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["AtomicFile", "atomic_output", "write_bytes_atomic", "write_text_atomic", "write_json_atomic"]


class AtomicFile:
    """A binary file that appears at ``path`` only when :meth:`commit` is called.

    Creating it makes the parent folders and opens the hidden temporary file next to ``path``; write to
    :attr:`stream`, then either :meth:`commit` (publish) or :meth:`abort` (delete the temporary file, leaving
    ``path`` untouched).
    """

    def __init__(self, path: str | PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        self.temporary = Path(temporary)
        self.stream: BinaryIO = os.fdopen(handle, "wb")

    def commit(self) -> Path:
        """Flush and fsync the temporary file, close it and rename it over ``path``; returns ``path``."""
        self.stream.flush()
        os.fsync(self.stream.fileno())
        self.stream.close()
        os.replace(self.temporary, self.path)
        return self.path

    def abort(self) -> None:
        """Close and delete the temporary file (``path`` keeps its old content, or stays absent)."""
        self.stream.close()
        self.temporary.unlink(missing_ok=True)


@contextmanager
def atomic_output(path: str | PathLike[str]) -> Iterator[BinaryIO]:
    """A binary stream whose content replaces ``path`` when the ``with`` block ends without an exception.

    On any exception (including :class:`KeyboardInterrupt`) the temporary file is deleted and the exception
    re-raised.
    """
    file = AtomicFile(path)
    try:
        yield file.stream
        file.commit()
    except BaseException:
        file.abort()
        raise


def write_bytes_atomic(path: str | PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (creating parent folders); returns the path."""
    with atomic_output(path) as stream:
        stream.write(data)
    return Path(path)


def write_text_atomic(path: str | PathLike[str], text: str) -> Path:
    """Write ``text`` as UTF-8 to ``path`` atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | PathLike[str], document: Any, *, indent: int | None = None) -> Path:
    """Write ``document`` as JSON to ``path`` atomically (keys in insertion order, so output is reproducible)."""
    return write_text_atomic(path, json.dumps(document, indent=indent, allow_nan=False) + "\n")
