"""A stub batch job: a video's result is a deterministic text of its key; every attempt is logged (start and end,
with the Ray node it ran on) so a test can see a retried video; a source named ``bad*`` is bad input."""
from __future__ import annotations

import os
import time
from pathlib import Path

from egostream.actors.batch import BatchItem
from egostream.errors import InputError


def expected_bytes(key: str) -> bytes:
    return f"result of {key}\n".encode()


class EchoJob:
    def __init__(self, attempts_log: Path, seconds: float = 0.0) -> None:
        self.attempts_log = attempts_log
        self.seconds = seconds

    def _log(self, event: str, key: str) -> None:
        node = os.environ.get("RAY_NODE_ID", "")
        try:
            import ray

            node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else "local"
        except ImportError:
            pass
        with self.attempts_log.open("a") as stream:
            stream.write(f"{event} {key} {node}\n")

    def compute(self, item: BatchItem) -> bytes:
        self._log("start", item.key)
        if item.source.startswith("bad"):
            raise InputError(item.source, "video", "cannot decode")
        time.sleep(self.seconds)
        self._log("end", item.key)
        return expected_bytes(item.key)

    def validate(self, path: Path) -> bool:
        return path.read_bytes() == expected_bytes(path.stem)


def attempts(log: Path) -> list[tuple[str, str, str]]:
    if not log.exists():
        return []
    return [tuple(line.split(" ")) for line in log.read_text().splitlines()]  # type: ignore[misc]
