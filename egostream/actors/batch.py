"""Batch runs over many videos on a Ray cluster: one result file per video, atomic, resumable, exactly once.

A :class:`BatchJob` says how to compute one video's result (on any worker: it returns the file's bytes) and how to
check an existing result file (on the driver). :func:`run_batch`

1. skips every video whose result file exists and validates (an interrupted run resumes where it stopped);
2. sends every other video to the cluster as one Ray task; a task on a node that dies is retried by Ray on another
   node (``max_retries``), so a killed worker costs time, not results;
3. writes each result from the driver, as soon as it arrives, to a temporary file in the output folder renamed over
   the result path (:func:`os.replace`), so a result file is either absent or complete, only the driver's
   filesystem needs the output folder, and each video is written exactly once per run;
4. reports bad input (:class:`~egostream.errors.InputError`: a corrupt video, a wrong width; it pickles with its
   fields) as a failed item ``(key, reason)`` naming the file, and goes on: the other items finish and keep their
   results. A task that fails otherwise on the cluster (a bug, a worker that died more than ``max_retries``
   times) is recorded the same way, with the error's type, rather than abandoning the items in flight.

Without an address (``backend="local"``) the same run happens in this process, one video after the other.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from egostream.errors import InputError
from egostream.io.atomic import write_bytes_atomic

__all__ = ["BatchItem", "BatchJob", "BatchReport", "run_batch"]


@dataclass(frozen=True)
class BatchItem:
    """One video: its ``key`` (video uid), the ``source`` the job reads (a path or URI) and the result ``output``."""

    key: str
    source: str
    output: Path


class BatchJob(Protocol):
    """What a batch run computes. Must be picklable (it is shipped to the workers)."""

    def compute(self, item: BatchItem) -> bytes:
        """The result file's bytes for ``item`` (runs on a worker); raise InputError for bad input."""

    def validate(self, path: Path) -> bool:
        """Whether the existing file at ``path`` is a complete, valid result (runs on the driver)."""


@dataclass
class BatchReport:
    """``written``: results written by this run; ``skipped``: valid results already there; ``failed``: key ->
    why (bad input). Each key appears in exactly one of them."""

    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    wall_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"written": len(self.written), "skipped": len(self.skipped), "failed": dict(self.failed),
                "wall_s": round(self.wall_s, 3)}


def _check_unique(items: Sequence[BatchItem]) -> None:
    seen: dict[str, BatchItem] = {}
    for item in items:
        for other in (seen.get(item.key), *(i for i in seen.values() if i.output == item.output)):
            if other is not None:
                raise InputError(item.source, "video uid", f"{item.key!r} and {other.source} write the same "
                                 f"result ({item.output}); video uids must be unique")
        seen[item.key] = item


def _compute(job: BatchJob, item: BatchItem) -> bytes | InputError:
    """Run on a worker; bad input comes back as a value so that Ray does not retry it."""
    try:
        return job.compute(item)
    except InputError as error:
        return error


def run_batch(items: Sequence[BatchItem], job: BatchJob, *, backend: str = "ray", max_retries: int = 3,
              num_cpus: float = 1, num_gpus: float = 0,
              on_done: Callable[[str, str], None] | None = None) -> BatchReport:
    """Compute every item's result file once (see the module doc). Ray must already be connected for
    ``backend="ray"`` (:func:`egostream.actors.ray_stages.connect`). ``on_done(key, status)`` is called with
    status ``"written"``, ``"skipped"`` or ``"failed"`` as videos finish (progress display)."""
    began = time.monotonic()
    _check_unique(items)
    report = BatchReport()

    def settle(item: BatchItem, outcome: bytes | InputError) -> None:
        if isinstance(outcome, InputError):
            report.failed[item.key] = str(outcome)
            status = "failed"
        else:
            write_bytes_atomic(item.output, outcome)
            report.written.append(item.key)
            status = "written"
        if on_done is not None:
            on_done(item.key, status)

    pending = []
    for item in items:
        if item.output.is_file() and job.validate(item.output):
            report.skipped.append(item.key)
            if on_done is not None:
                on_done(item.key, "skipped")
        else:
            pending.append(item)

    if backend == "local":
        for item in pending:
            settle(item, _compute(job, item))
    elif backend == "ray":
        import ray
        from ray.exceptions import RayError

        remote = ray.remote(_compute).options(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=max_retries,
                                              retry_exceptions=False)
        job_ref = ray.put(job)
        in_flight = {remote.remote(job_ref, item): item for item in pending}
        while in_flight:
            done, _ = ray.wait(list(in_flight), num_returns=1)
            item = in_flight.pop(done[0])
            try:
                outcome = ray.get(done[0])
            except RayError as error:
                outcome = InputError(item.source, item.key, _task_failure(error))
            settle(item, outcome)
    else:
        raise ValueError(f"backend must be 'ray' or 'local', got {backend!r}")
    report.wall_s = time.monotonic() - began
    return report


def _task_failure(error: BaseException) -> str:
    """One line for a Ray task that raised or died: the innermost error's type and message."""
    cause = error
    while isinstance(getattr(cause, "cause", None), BaseException):
        cause = cause.cause  # type: ignore[attr-defined]
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}"
