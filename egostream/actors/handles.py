"""How the pipeline supervisor talks to a stage: in this process, or through a Ray actor that Ray restarts.

A handle turns "the process running the stage died" into :class:`StageCrashed`, and :meth:`StageHandle.recover`
waits until a fresh instance answers. Everything else the stage raises (bad input, a bug) passes through unchanged
and stops the stream.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["StageCrashed", "StageHandle", "LocalStage"]


class StageCrashed(RuntimeError):
    """The process running a stage died; its state is gone and a fresh instance replaces it."""


class StageHandle(Protocol):
    name: str

    def call(self, method: str, *args: Any) -> Any:
        """Call ``method`` of the stage and return its result; raises :class:`StageCrashed` if the stage died."""

    def recover(self) -> None:
        """Block until a restarted stage answers (raises if it cannot be restarted)."""

    def shutdown(self) -> None:
        """Release the stage (end of stream)."""


class LocalStage:
    """A stage object in this process, built by ``factory()``. A stage that raises :class:`StageCrashed` (tests
    simulate a crash that way) is rebuilt by :meth:`recover`, as Ray rebuilds a restarted actor."""

    def __init__(self, factory: Callable[[], Any], name: str) -> None:
        self.factory = factory
        self.name = name
        self.restarts = 0
        self._stage = factory()

    def call(self, method: str, *args: Any) -> Any:
        return getattr(self._stage, method)(*args)

    def recover(self) -> None:
        self.restarts += 1
        self._stage = self.factory()

    def shutdown(self) -> None:
        stop = getattr(self._stage, "stop", None)
        if callable(stop):
            stop()
