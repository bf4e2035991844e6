"""The bounded queue between a producer and a consumer, with an overflow policy chosen per source.

A file source can wait for its consumer, so its queues *block* the producer when full; a live source (camera,
network stream) cannot, so its queue *drops the oldest* item to make room and counts the drop. Either way a queue
never holds more than ``capacity`` items (plus one last item, see :meth:`BoundedQueue.put_last`), so memory stays
flat however fast the producer is.

One class serves every stage that hands items on: the window stream of a source
(:class:`~egostream.io.window_stream.WindowStream`), the stages of the ``run`` pipeline
(:mod:`egostream.actors.stages`, :mod:`egostream.actors.pipeline`) and each subscriber of the result server
(:mod:`egostream.io.result_server`). It imports nothing of the package, so any layer may use it.
"""
from __future__ import annotations

import enum
import threading
import time
from collections import deque
from typing import Generic, TypeVar

__all__ = ["OverflowPolicy", "BoundedQueue", "QueueClosed"]

Item = TypeVar("Item")


class OverflowPolicy(str, enum.Enum):
    """What :meth:`BoundedQueue.put` does when the queue is full."""

    BLOCK = "block"
    DROP_OLDEST = "drop_oldest"


class QueueClosed(Exception):
    """Raised by :meth:`BoundedQueue.put` / :meth:`BoundedQueue.put_last` on a closed queue."""


class BoundedQueue(Generic[Item]):
    """A thread-safe FIFO of at most ``capacity`` items.

    ``put`` blocks while full (``BLOCK``) or evicts the oldest item (``DROP_OLDEST``, counted in :attr:`dropped`);
    :attr:`high_water` is the most items it held after a ``put``. ``put_last`` queues the producer's last item (the
    end of a stream, an error for the consumer) without waiting or evicting, and closes the queue, so that item is
    never lost. ``get_batch`` returns up to ``max_items`` items once at least one is there, or ``[]`` when the
    queue is closed and drained (end of stream) or ``timeout`` seconds passed. ``close`` ends the stream (readers
    drain what is left); ``discard`` also drops what is queued (the consumer has gone).
    """

    def __init__(self, capacity: int, policy: OverflowPolicy | str = OverflowPolicy.BLOCK) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.policy = OverflowPolicy(policy)
        self.dropped = 0
        self.high_water = 0
        self._items: deque[Item] = deque()
        self._closed = False
        self._condition = threading.Condition()

    def put(self, item: Item) -> None:
        """Queue ``item`` (waiting for room, or evicting the oldest item; see the class doc).

        Raises:
            QueueClosed: the queue was closed before or while waiting.
        """
        with self._condition:
            if self.policy is OverflowPolicy.BLOCK:
                while len(self._items) >= self.capacity and not self._closed:
                    self._condition.wait()
            elif len(self._items) >= self.capacity and not self._closed:
                self._items.popleft()
                self.dropped += 1
            if self._closed:
                raise QueueClosed("put on a closed queue")
            self._items.append(item)
            self.high_water = max(self.high_water, len(self._items))
            self._condition.notify_all()

    def put_last(self, item: Item) -> None:
        """Queue the producer's last ``item`` past the capacity (no wait, no eviction, not in :attr:`high_water`)
        and close the queue: readers get it after the items before it, then the end of the stream.

        Raises:
            QueueClosed: the queue was already closed.
        """
        with self._condition:
            if self._closed:
                raise QueueClosed("put on a closed queue")
            self._items.append(item)
            self._closed = True
            self._condition.notify_all()

    def get_batch(self, max_items: int = 1, timeout: float | None = None) -> list[Item]:
        """Up to ``max_items`` items, oldest first, waiting up to ``timeout`` seconds (``None``: until an item
        comes or the queue is closed) for the first; ``[]`` at the end of the stream or on time-out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            while not self._items and not self._closed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return []
                self._condition.wait(remaining)
            batch = [self._items.popleft() for _ in range(min(max_items, len(self._items)))]
            self._condition.notify_all()
            return batch

    def close(self) -> None:
        """No more puts; readers drain what is left and then get ``[]``; blocked writers raise :class:`QueueClosed`."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    def discard(self) -> None:
        """:meth:`close` and drop every queued item (frees them now; not counted in :attr:`dropped`)."""
        with self._condition:
            self._closed = True
            self._items.clear()
            self._condition.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def drained(self) -> bool:
        """Closed and empty: the consumer has seen every item."""
        with self._condition:
            return self._closed and not self._items

    def __len__(self) -> int:
        return len(self._items)
