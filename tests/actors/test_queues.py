"""Bounded queues: the block policy waits for room, drop-oldest evicts and counts, neither exceeds its capacity."""
from __future__ import annotations

import threading
import time

import pytest

from egostream.actors.queues import BoundedQueue, QueueClosed


def test_drop_oldest_keeps_the_newest_items_and_counts_the_rest() -> None:
    queue: BoundedQueue[int] = BoundedQueue(3, "drop_oldest")
    for item in range(10):
        queue.put(item)
        assert len(queue) <= 3
    assert queue.dropped == 7 and queue.get_batch(10) == [7, 8, 9]


def test_block_waits_until_the_consumer_makes_room() -> None:
    queue: BoundedQueue[int] = BoundedQueue(2, "block")
    queue.put(0)
    queue.put(1)
    writer = threading.Thread(target=queue.put, args=(2,))
    writer.start()
    time.sleep(0.05)
    assert writer.is_alive() and len(queue) == 2
    assert queue.get_batch(1) == [0]
    writer.join(timeout=2)
    assert not writer.is_alive() and queue.get_batch(5) == [1, 2] and queue.dropped == 0


def test_close_drains_then_signals_the_end_and_releases_blocked_writers() -> None:
    queue: BoundedQueue[int] = BoundedQueue(1)
    queue.put(0)
    errors: list[BaseException] = []

    def put_blocked() -> None:
        try:
            queue.put(1)
        except QueueClosed as error:
            errors.append(error)

    writer = threading.Thread(target=put_blocked)
    writer.start()
    time.sleep(0.05)
    queue.close()
    writer.join(timeout=2)
    assert len(errors) == 1
    assert queue.get_batch(4) == [0]
    assert queue.get_batch(4) == [] and queue.drained()


def test_get_batch_times_out_empty() -> None:
    assert BoundedQueue(1).get_batch(1, timeout=0.01) == []


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        BoundedQueue(0)
