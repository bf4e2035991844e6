"""The four stages of a stream as plain classes: decode → extract → engine → sink.

Each stage wraps a user-facing object built by a factory (a video source, a feature extractor, a streaming engine,
a result sink) and adds what the pipeline needs to run it in a separate process and to restart it after a crash:
construction is cheap and side-effect free (a restarted Ray actor re-runs ``__init__`` with the same arguments);
the stream is (re)attached by an explicit call (:meth:`DecodeStage.start`, :meth:`EngineStage.restore`,
:meth:`SinkStage.open`) that tells the stage where the stream stands. The stages run unchanged in-process (tests,
``--local``) or as Ray actors (:mod:`egostream.actors.ray_stages`).

The objects they wrap only need these small protocols, so plain stub classes serve in tests:

- :class:`Source`: iterable of windows in stream order (``live = True`` for cameras and network streams).
- :class:`Extractor`: ``extract(windows) -> Tensor [B, D]`` (one feature row per window).
- :class:`Engine`: ``push(rows [B, D]) -> list of results``; rows carry consecutive absolute indices from 0;
  an optional ``finish() -> list of results`` is called at the end of the stream.
  Optional ``state_dict()`` / ``load_state_dict(state)`` make crash recovery replay only the rows since the last
  snapshot instead of the whole stream.
- :class:`Sink`: ``write(result)``, ``close()``, and ``records() -> int`` (complete records already in the output,
  after truncating a partly written last one) so a restarted sink appends without duplicates.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch

from egostream.io.queues import BoundedQueue, OverflowPolicy, QueueClosed

__all__ = ["Source", "Extractor", "Engine", "Sink", "Packet", "DecodeStage", "ExtractStage", "EngineStage",
           "SinkStage"]


@runtime_checkable
class Source(Protocol):
    def __iter__(self) -> Iterator[Any]: ...


@runtime_checkable
class Extractor(Protocol):
    def extract(self, windows: Sequence[Any]) -> torch.Tensor: ...


@runtime_checkable
class Engine(Protocol):
    def push(self, rows: torch.Tensor) -> list[Any]: ...


@runtime_checkable
class Sink(Protocol):
    def write(self, result: Any) -> None: ...

    def close(self) -> None: ...

    def records(self) -> int: ...


@dataclass
class Packet:
    """One window of the stream: its absolute ``index`` (row index of its feature), the wall-clock time it was
    ready (``received_s``, seconds since the epoch), the seconds spent decoding it and the decoded ``payload``."""

    index: int
    received_s: float
    decode_s: float
    payload: Any = field(repr=False)


class _StatusLines(logging.Handler):
    """Keeps the last status lines of the network sources (:func:`egostream.io.sources.log_status`)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: deque[str] = deque(maxlen=64)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class DecodeStage:
    """Reads a source on a background thread into a bounded queue (block for files, drop-oldest for live).

    ``source_factory()`` is called by :meth:`start`, so a restarted stage re-opens its source. A window's absolute
    index is its ``index`` attribute (:class:`~egostream.io.frames.FrameWindow`) or else its position. ``live``
    sources cannot seek: after a restart their windows are numbered on from ``first_index``; file sources skip the
    windows before ``first_index`` so the stream resumes exactly where it stopped. The sources' status lines
    (a network source waiting for its sender) are kept for :meth:`status_lines`, so that the supervisor can show
    them wherever the stage runs.
    """

    def __init__(self, source_factory: Callable[[], Iterable[Any]], *, live: bool = False, capacity: int = 8,
                 policy: OverflowPolicy | str | None = None) -> None:
        self.source_factory = source_factory
        self.live = live
        policy = OverflowPolicy(policy) if policy is not None else (
            OverflowPolicy.DROP_OLDEST if live else OverflowPolicy.BLOCK)
        self.queue: BoundedQueue[Packet] = BoundedQueue(capacity, policy)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._status = _StatusLines()

    def start(self, first_index: int = 0) -> bool:
        """Open the source and start reading at window ``first_index``; idempotent. Returns True."""
        if self._thread is None:
            from egostream.io.sources import STATUS_LOGGER

            STATUS_LOGGER.addHandler(self._status)
            self._thread = threading.Thread(target=self._read, args=(first_index,), name="egostream-decode",
                                            daemon=True)
            self._thread.start()
        return True

    def _read(self, first_index: int) -> None:
        try:
            source = iter(self.source_factory())
            position = 0
            while True:
                began = time.monotonic()
                try:
                    window = next(source)
                except StopIteration:
                    break
                index = self._window_index(window, position, first_index)
                position += 1
                if index >= first_index:
                    self.queue.put(Packet(index, time.time(), time.monotonic() - began, window))
        except QueueClosed:
            pass
        except BaseException as error:  # handed to the consumer by next()
            self._error = error
        finally:
            self.queue.close()

    def _window_index(self, window: Any, position: int, first_index: int) -> int:
        """A file window keeps its own ``index`` (else its position); a re-opened live source counts on from
        ``first_index``."""
        if self.live:
            return first_index + position
        return int(getattr(window, "index", position))

    def next(self, max_items: int = 1, timeout: float = 0.5) -> tuple[list[Packet] | None, int]:
        """Up to ``max_items`` packets (``[]`` when none arrived within ``timeout`` s, ``None`` at the end of the
        stream) and the number of windows dropped so far by the drop-oldest policy."""
        batch = self.queue.get_batch(max_items, timeout)
        if not batch and self.queue.drained():
            if self._error is not None:
                raise self._error
            return None, self.queue.dropped
        return batch, self.queue.dropped

    def status_lines(self) -> list[str]:
        """The status lines logged since the last call, oldest first."""
        lines = []
        while self._status.lines:
            lines.append(self._status.lines.popleft())
        return lines

    def stop(self) -> None:
        from egostream.io.sources import STATUS_LOGGER

        STATUS_LOGGER.removeHandler(self._status)
        self.queue.close()


class ExtractStage:
    """Maps a batch of windows to feature rows [B, D] with the extractor built by ``extractor_factory()``."""

    def __init__(self, extractor_factory: Callable[[], Extractor]) -> None:
        self.extractor_factory = extractor_factory
        self._extractor: Extractor | None = None

    def prepare(self) -> bool:
        """Build the extractor now (a missing or mismatched checkpoint fails before the stream starts)."""
        if self._extractor is None:
            self._extractor = self.extractor_factory()
        return True

    def extract(self, payloads: Sequence[Any]) -> torch.Tensor:
        self.prepare()
        assert self._extractor is not None
        rows = self._extractor.extract(payloads)
        if rows.dim() != 2 or rows.shape[0] != len(payloads):
            raise ValueError(f"the extractor returned {list(rows.shape)} for {len(payloads)} windows, "
                             f"expected [{len(payloads)}, D]")
        return rows.detach().to("cpu", torch.float32)


class EngineStage:
    """Runs the streaming engine built by ``engine_factory()``; snapshots its state when the engine supports it."""

    def __init__(self, engine_factory: Callable[[], Engine]) -> None:
        self.engine_factory = engine_factory
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = self.engine_factory()
        return self._engine

    def push(self, rows: torch.Tensor) -> list[Any]:
        """Push feature rows [B, D] (the next B absolute indices); returns the results emitted meanwhile."""
        return list(self.engine.push(rows))

    def finish(self) -> list[Any]:
        """End of stream: the engine's last results (``finish()`` when the engine has one)."""
        finish = getattr(self.engine, "finish", None)
        return list(finish()) if callable(finish) else []

    def supports_snapshot(self) -> bool:
        return callable(getattr(self.engine, "state_dict", None)) and callable(
            getattr(self.engine, "load_state_dict", None))

    def snapshot(self) -> Any:
        return self.engine.state_dict()  # type: ignore[attr-defined]

    def restore(self, state: Any | None) -> bool:
        """Start from ``state`` (a :meth:`snapshot`) or, with ``None``, from an empty stream. Returns True."""
        self._engine = self.engine_factory()
        if state is not None:
            self._engine.load_state_dict(state)  # type: ignore[attr-defined]
        return True


class SinkStage:
    """Writes results with the sink built by ``sink_factory(resume)``.

    ``open(resume=False)`` starts a new output; ``open(resume=True)`` (after a crash) re-opens it for appending and
    returns the number of complete records it already holds, the index of the next result to write.
    """

    def __init__(self, sink_factory: Callable[[bool], Sink],
                 annotate: Callable[[Any, dict[str, float]], Any] | None = None) -> None:
        self.sink_factory = sink_factory
        self.annotate = annotate
        self._sink: Sink | None = None

    def open(self, resume: bool = False) -> int:
        self._sink = self.sink_factory(resume)
        return self._sink.records() if resume else 0

    def write(self, results: Sequence[tuple[Any, dict[str, float]]]) -> int:
        """Write ``(result, latency_ms)`` pairs in order; returns how many were written."""
        if self._sink is None:
            raise RuntimeError("SinkStage.write before open()")
        for result, latency_ms in results:
            self._sink.write(self.annotate(result, latency_ms) if self.annotate is not None else result)
        flush = getattr(self._sink, "flush", None)
        if callable(flush):
            flush()
        return len(results)

    def close(self) -> bool:
        """End of stream (or a stop): close the sink, which publishes its output."""
        if self._sink is not None:
            self._sink.close()
            self._sink = None
        return True

    def abort(self) -> bool:
        """A failed stream: close the sink without publishing (``abort()`` when the sink has one, else ``close``)."""
        if self._sink is not None:
            abort = getattr(self._sink, "abort", None)
            (abort if callable(abort) else self._sink.close)()
            self._sink = None
        return True
