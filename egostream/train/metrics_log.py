"""The metrics log of a training run: one JSON object per line, one line per epoch (``metrics.jsonl``).

Each record holds the epoch, the optimizer step reached, the learning rate, the mean training losses and, when the
epoch was evaluated, the validation metrics. The file is rewritten atomically after every epoch, so a crash never
leaves a torn line, and a resumed run first drops the records of epochs after the checkpoint it resumes from.
Non-finite numbers are written as ``null`` (JSON has no NaN).
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

from egostream.errors import InputError
from egostream.io.atomic import write_text_atomic

__all__ = ["MetricsLog"]


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by ``None`` (recursively through mappings and lists)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


class MetricsLog:
    """The JSONL metrics log at ``path`` (created on the first :meth:`append`)."""

    def __init__(self, path: str | PathLike[str]) -> None:
        self.path = Path(path)

    def records(self) -> list[dict[str, Any]]:
        """Every record written so far, in order (empty if the file does not exist)."""
        if not self.path.is_file():
            return []
        records = []
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise InputError(self.path, f"line {number}", f"not JSON: {err}") from None
            if not isinstance(record, dict) or not isinstance(record.get("epoch"), int):
                raise InputError(self.path, f"line {number}", "expected an object with an integer 'epoch'")
            records.append(record)
        return records

    def append(self, record: Mapping[str, Any]) -> None:
        """Add one epoch's record (it must have an integer ``epoch``)."""
        if not isinstance(record.get("epoch"), int):
            raise ValueError("a metrics record needs an integer 'epoch'")
        self._write([*self.records(), _finite(dict(record))])

    def keep_until(self, epoch: int) -> None:
        """Drop the records of epochs after ``epoch`` (a run resumed from the end of ``epoch`` rewrites them)."""
        records = self.records()
        kept = [record for record in records if record["epoch"] <= epoch]
        if len(kept) != len(records):
            self._write(kept)

    def _write(self, records: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(record, allow_nan=False, sort_keys=True) + "\n" for record in records)
        write_text_atomic(self.path, text)
