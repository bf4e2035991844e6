"""Bounded queues between pipeline stages, with an overflow policy chosen per source.

A file source can wait for the pipeline, so its queues *block* the producer when full; a live source (camera,
network stream) cannot, so its queue *drops the oldest* item to make room and counts the drop. Either way a queue
never holds more than ``capacity`` items, so memory stays flat however fast the producer is.
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
    """Raised by :meth:`BoundedQueue.put` after :meth:`BoundedQueue.close`."""


class BoundedQueue(Generic[Item]):
    """A thread-safe FIFO of at most ``capacity`` items.

    ``put`` blocks while full (``BLOCK``) or evicts the oldest item (``DROP_OLDEST``, counted in :attr:`dropped`).
    ``get_batch`` returns up to ``max_items`` items once at least one is there, or ``[]`` when the queue is closed
    and drained (end of stream) or ``timeout`` seconds passed.
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
        with self._condition:
            if self.policy is OverflowPolicy.BLOCK:
                while len(self._items) >= self.capacity and not self._closed:
                    self._condition.wait()
            elif len(self._items) >= self.capacity:
                self._items.popleft()
                self.dropped += 1
            if self._closed:
                raise QueueClosed("put on a closed queue")
            self._items.append(item)
            self.high_water = max(self.high_water, len(self._items))
            self._condition.notify_all()

    def get_batch(self, max_items: int = 1, timeout: float | None = None) -> list[Item]:
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

    @property
    def closed(self) -> bool:
        return self._closed

    def drained(self) -> bool:
        """Closed and empty: the consumer has seen every item."""
        with self._condition:
            return self._closed and not self._items

    def __len__(self) -> int:
        return len(self._items)
