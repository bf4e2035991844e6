"""The JSONL metrics log."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from egostream.errors import InputError
from egostream.train.metrics_log import MetricsLog


def test_append_keep_until_and_nan(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "metrics.jsonl")
    assert log.records() == []
    for epoch in range(1, 4):
        log.append({"epoch": epoch, "loss": {"ar": 1.0 / epoch}, "lr": float("nan") if epoch == 2 else 0.1})
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
    assert json.loads(lines[1])["lr"] is None
    log.keep_until(1)
    assert [r["epoch"] for r in log.records()] == [1]
    assert log.records()[0]["loss"] == {"ar": 1.0}


def test_malformed_line_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 1}\nnot json\n')
    with pytest.raises(InputError, match="line 2"):
        MetricsLog(path).records()
