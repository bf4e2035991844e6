"""Stages as Ray actors that Ray restarts after a crash (``max_restarts``); see :mod:`egostream.actors.handles`.

The actor holds one stage object built by a factory (a picklable callable); a restarted actor re-runs the factory
with the same arguments, so the stage is fresh and the supervisor re-attaches it to the stream.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError

from egostream.actors.handles import StageCrashed
from egostream.actors.reaper import Reaper

__all__ = ["RayStage", "StageActor", "connect", "disconnect"]

_reaper: Reaper | None = None  # the watcher of the local instance that connect() started


class StageActor:
    """The body of every stage actor: ``call(method, *args)`` forwards to the stage object."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self.stage = factory()

    def call(self, method: str, *args: Any) -> Any:
        return getattr(self.stage, method)(*args)

    def pid(self) -> int:
        """The actor's process id (tests kill it to check recovery)."""
        return os.getpid()


class RayStage:
    """A stage running in a Ray actor with ``max_restarts`` restarts (-1: unlimited).

    ``options`` are Ray actor options (``num_cpus``, ``num_gpus``, ``scheduling_strategy``...).
    ``recover_timeout_s`` bounds how long :meth:`recover` waits for the restarted actor.
    """

    def __init__(self, factory: Callable[[], Any], name: str, *, max_restarts: int = -1,
                 recover_timeout_s: float = 60.0, **options: Any) -> None:
        self.name = name
        self.recover_timeout_s = recover_timeout_s
        options.setdefault("num_cpus", 0)
        actor_class = ray.remote(StageActor).options(max_restarts=max_restarts, max_task_retries=0, **options)
        self.actor = actor_class.remote(factory)

    def call(self, method: str, *args: Any) -> Any:
        try:
            return ray.get(self.actor.call.remote(method, *args))
        except RayActorError as error:
            raise StageCrashed(f"stage {self.name!r} died: {type(error).__name__}") from error

    def recover(self) -> None:
        deadline = time.monotonic() + self.recover_timeout_s
        while True:
            try:
                ray.get(self.actor.pid.remote(), timeout=max(deadline - time.monotonic(), 0.1))
                return
            except (RayActorError, GetTimeoutError) as error:
                if time.monotonic() >= deadline:
                    raise RuntimeError(f"stage {self.name!r} was not restarted within "
                                       f"{self.recover_timeout_s:.0f} s") from error
                time.sleep(0.1)

    def shutdown(self) -> None:
        ray.kill(self.actor, no_restart=True)


def connect(address: str | None = None, *, object_store_memory: int | None = None,
            num_cpus: int | None = None) -> bool:
    """Join the Ray cluster at ``address`` (``"auto"``, ``HOST:PORT``; ``None``: start a new local instance, never
    joining one that happens to run on this machine) unless Ray is already initialised in this process.

    Returns True when this call initialised Ray; the caller then owns :func:`disconnect`. A local instance is
    watched by a :class:`~egostream.actors.reaper.Reaper`, so its processes die with this one even after SIGKILL.
    """
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if address is None:
        options.update(num_cpus=num_cpus, object_store_memory=object_store_memory)
    in_main_thread = threading.current_thread() is threading.main_thread()
    sigterm = signal.getsignal(signal.SIGTERM) if in_main_thread else None
    global _reaper
    _reaper = Reaper.start() if address is None else None
    ray.init(address=address if address is not None else "local", **options)
    if sigterm is not None:
        # ray.init makes SIGTERM call sys.exit in the driver (ray/_private/worker.py, init); keep the caller's
        # handler, which stops the stream cleanly (egostream.cli).
        signal.signal(signal.SIGTERM, sigterm)
    return True


def disconnect() -> None:
    """Shut down the Ray instance :func:`connect` initialised (and release its reaper)."""
    global _reaper
    ray.shutdown()
    if _reaper is not None:
        _reaper.release()
        _reaper = None
