"""Checks on an output path before a command opens anything: it can be written, and writing it loses nothing.

:func:`check_output_file` (a result or submission file) and :func:`check_output_folder` (a folder of results) raise
:class:`~egostream.errors.InputError` naming the path and the option when

- the path is of the wrong kind (a folder where a file is written, a file where a folder is expected, or a file in
  the way of a parent folder);
- its folder cannot be written (read-only, no permission): found by creating and removing a probe file there, which
  also holds for root and for read-only mounts, where permission bits say nothing;
- a file output is one of the command's inputs (the same file, also through a symbolic or hard link);
- a file output already exists and neither ``force`` (replace it) nor ``resume`` (continue it) was given.

Missing parent folders are created (they are new, so nothing pre-existing changes).
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from os import PathLike
from pathlib import Path

from egostream.errors import InputError

__all__ = ["check_output_file", "check_output_folder"]


def _writable_folder(folder: Path, output: Path, field: str) -> None:
    """Create ``folder`` (and parents) if missing and prove a file can be created in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise InputError(output, field, f"{_first_file(folder)} is a file, not a folder") from None
    except OSError as error:
        raise InputError(output, field, f"cannot create the folder {folder}: {error.strerror}") from None
    try:
        handle, probe = tempfile.mkstemp(prefix=".egostream-probe-", dir=folder)
    except OSError as error:
        raise InputError(output, field, f"cannot write in the folder {folder}: {error.strerror}") from None
    os.close(handle)
    os.unlink(probe)


def _first_file(folder: Path) -> Path:
    """The first component of ``folder`` that exists as a non-folder."""
    for parent in (*reversed(folder.parents), folder):
        if parent.exists() and not parent.is_dir():
            return parent
    return folder


def check_output_file(path: str | PathLike[str], *, inputs: Iterable[str | PathLike[str] | None] = (),
                      force: bool = False, resume: bool = False, field: str = "--out",
                      resumable: bool = False) -> Path:
    """Check the result file ``path`` before anything is opened (see the module doc); returns it as a Path.

    ``inputs`` are the command's input files (missing ones and URLs are ignored). ``resumable`` says whether the
    command offers ``--resume`` (it is then suggested in the message about an existing file).
    """
    out = Path(path)
    if force and resume:
        raise InputError(out, "--resume", "cannot be combined with --force (which starts the result afresh)")
    if out.is_dir():
        raise InputError(out, field, "is a folder; expected a result file path")
    for source in inputs:
        if source is not None and out.exists() and Path(source).exists() and os.path.samefile(out, source):
            raise InputError(out, field, f"is the input {source}; writing it would destroy the input")
    if out.exists() and not (force or resume):
        hint = "--force to replace it or --resume to continue it" if resumable else "--force to replace it"
        raise InputError(out, field, f"already exists; pass {hint}")
    _writable_folder(out.parent if str(out.parent) else Path("."), out, field)
    return out


def check_output_folder(path: str | PathLike[str], *, field: str = "--out") -> Path:
    """Check (and create) the output folder ``path``: a folder, or creatable, and writable; returns it."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise InputError(out, field, "is a file; expected a folder")
    _writable_folder(out, out, field)
    return out
