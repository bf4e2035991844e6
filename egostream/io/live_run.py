"""Run a long job (stream pipelines, a replay) on a worker thread while the main thread redraws its live view.

The main thread only waits and redraws, so Ctrl-C and SIGTERM (raised there as :class:`KeyboardInterrupt`, see
:class:`egostream.errors.Interrupted`) land in :func:`run_live`, never inside the job: each one asks the job to
stop, and the job's own end (its stages drained, its files closed) is awaited before :func:`run_live` returns, so
nothing the job uses (Ray, an open result file) is torn down under it.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from rich.console import Console, RenderableType
from rich.live import Live

__all__ = ["LiveRun", "run_live"]

Value = TypeVar("Value")

#: seconds between two redraws (and two looks at whether the job has ended)
_POLL_S = 0.25


@dataclass(frozen=True)
class LiveRun(Generic[Value]):
    """What :func:`run_live` returns: the job's ``value`` and the first interrupt that arrived while it ran (the
    caller re-raises it, or carries on with what the stopped job gave)."""

    value: Value
    interrupt: KeyboardInterrupt | None


def run_live(job: Callable[[], Value], stop: Callable[[], None], view: Callable[[], RenderableType] | None,
             console: Console | None, *, transient: bool = False, name: str = "egostream-job") -> LiveRun[Value]:
    """Run ``job()`` on a worker thread named ``name`` until it returns, redrawing ``view()`` on ``console`` about
    four times a second in a rich ``Live`` display (``transient``: erased at the end; no display when ``view`` or
    ``console`` is None), and once more at the end.

    Every :class:`KeyboardInterrupt` that arrives meanwhile calls ``stop()`` (the job should then end soon); the
    first one is returned in :attr:`LiveRun.interrupt`. An exception of ``job`` is raised here once it has ended.
    """
    outcome: dict[str, Any] = {}
    interrupt: KeyboardInterrupt | None = None
    done = threading.Event()

    def body() -> None:
        try:
            outcome["value"] = job()
        except BaseException as error:  # raised in the caller's thread below
            outcome["error"] = error
        finally:
            done.set()

    worker = threading.Thread(target=body, name=name, daemon=True)
    live = None
    if view is not None and console is not None:
        live = Live(console=console, refresh_per_second=4, transient=transient)
        live.start()
    try:
        worker.start()
        # Wait on an Event, not Thread.join: on Python 3.11 a KeyboardInterrupt inside join() can leave the thread
        # marked as stopped while it still runs, and what the job uses would then be torn down under it.
        stopping = False
        while not done.is_set():
            try:
                if stopping:  # in the loop's try, so that another interrupt during stop() is caught as well
                    stopping = False
                    stop()
                done.wait(timeout=_POLL_S)
                if live is not None:
                    live.update(view())  # type: ignore[misc]
            except KeyboardInterrupt as error:
                interrupt, stopping = interrupt or error, True
        if live is not None:
            live.update(view())  # type: ignore[misc]
    finally:
        if live is not None:
            live.stop()
    if "error" in outcome:
        raise outcome["error"]
    return LiveRun(outcome["value"], interrupt)
