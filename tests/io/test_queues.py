"""Bounded queues: the block policy waits for room, drop-oldest evicts and counts, neither exceeds its capacity; the
last item is never lost; a closed queue drains, a discarded one is empty."""
from __future__ import annotations

import threading
import time

import pytest

from egostream.io.queues import BoundedQueue, QueueClosed


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


def _blocked_writer(queue: BoundedQueue[int]) -> tuple[threading.Thread, list[BaseException]]:
    """A thread putting one more item into the full ``queue``, and the errors it gets."""
    errors: list[BaseException] = []

    def put_blocked() -> None:
        try:
            queue.put(1)
        except QueueClosed as error:
            errors.append(error)

    writer = threading.Thread(target=put_blocked)
    writer.start()
    time.sleep(0.05)
    return writer, errors


def test_close_drains_then_signals_the_end_and_releases_blocked_writers() -> None:
    queue: BoundedQueue[int] = BoundedQueue(1)
    queue.put(0)
    writer, errors = _blocked_writer(queue)
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


@pytest.mark.parametrize("policy", ["block", "drop_oldest"])
def test_the_last_item_goes_past_a_full_queue_and_ends_the_stream(policy: str) -> None:
    queue: BoundedQueue[object] = BoundedQueue(2, policy)
    queue.put(0)
    queue.put(1)
    error = RuntimeError("source gave up")
    queue.put_last(error)  # a full blocking queue does not wait for it, a drop-oldest one evicts nothing for it
    assert queue.dropped == 0 and queue.high_water == 2 and len(queue) == 3 and queue.closed
    with pytest.raises(QueueClosed):
        queue.put(2)
    with pytest.raises(QueueClosed):
        queue.put_last(3)
    assert queue.get_batch(10) == [0, 1, error]
    assert queue.get_batch(1) == [] and queue.drained()


def test_discard_drops_what_is_queued_and_wakes_blocked_readers_and_writers() -> None:
    queue: BoundedQueue[int] = BoundedQueue(1)
    got: list[list[int]] = []
    reader = threading.Thread(target=lambda: got.append(queue.get_batch(1)))
    reader.start()
    time.sleep(0.05)
    queue.discard()
    reader.join(timeout=2)
    assert not reader.is_alive() and got == [[]]
    refilled: BoundedQueue[int] = BoundedQueue(1)
    refilled.put(0)
    writer, errors = _blocked_writer(refilled)
    refilled.discard()
    writer.join(timeout=2)
    assert len(errors) == 1 and len(refilled) == 0 and refilled.get_batch(1) == [] and refilled.dropped == 0


def test_high_water_is_the_deepest_the_queue_got() -> None:
    queue: BoundedQueue[int] = BoundedQueue(5)
    for item in range(3):
        queue.put(item)
    queue.get_batch(2)
    queue.put(3)
    assert queue.high_water == 3 and len(queue) == 2
