"""The project's exceptions: every bad input names the file and the field at fault."""
from __future__ import annotations

from os import PathLike

__all__ = ["InputError", "PredictionCountError"]


class InputError(ValueError):
    """Bad input: a missing or malformed file, a wrong field, an unknown label.

    The message always starts with the file (or source) and the field, so a user sees at once where to look:
    ``annotations/v1/fho_lta_val.json: clips[3].verb_label: unknown verb id 900 (taxonomy has 115 verbs)``.
    """

    def __init__(self, path: str | PathLike[str] | None, field: str | None, message: str) -> None:
        self.path = None if path is None else str(path)
        self.field = field
        self.reason = message
        where = ": ".join(part for part in (self.path, field) if part)
        super().__init__(f"{where}: {message}" if where else message)


class PredictionCountError(InputError):
    """A prediction file lacks samples, or holds samples the ground truth does not have."""

    def __init__(self, path: str | PathLike[str] | None, field: str | None, missing: list[str],
                 extra: list[str]) -> None:
        self.missing = list(missing)
        self.extra = list(extra)
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first: {', '.join(missing[:3])})")
        if extra:
            parts.append(f"{len(extra)} not in the ground truth (first: {', '.join(extra[:3])})")
        super().__init__(path, field, "; ".join(parts))
