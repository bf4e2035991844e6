"""Batch order: full shuffled passes, a pure function of (seed, stream, step)."""
from __future__ import annotations

import pytest

from egostream.errors import InputError
from egostream.train.sampling import ShuffledBatches


def test_each_pass_is_a_permutation_with_the_tail_dropped() -> None:
    batches = ShuffledBatches(num_samples=10, batch_size=3, seed=7)
    assert len(batches) == 3
    for pass_index in range(3):
        drawn = [i for step in range(3 * pass_index, 3 * pass_index + 3) for i in batches.batch(step)]
        assert len(drawn) == 9 and len(set(drawn)) == 9 and set(drawn) <= set(range(10))
        assert drawn == batches.permutation(pass_index)[:9].tolist()
    assert batches.permutation(0).tolist() != batches.permutation(1).tolist()


def test_order_depends_only_on_seed_stream_and_step() -> None:
    first = ShuffledBatches(50, 4, seed=3, stream=1)
    sequential = [first.batch(step) for step in range(30)]
    fresh = ShuffledBatches(50, 4, seed=3, stream=1)
    assert [fresh.batch(step) for step in (29, 5, 17)] == [sequential[29], sequential[5], sequential[17]]
    assert ShuffledBatches(50, 4, seed=3, stream=2).batch(0) != sequential[0]
    assert ShuffledBatches(50, 4, seed=4, stream=1).batch(0) != sequential[0]


def test_too_few_samples_for_one_batch() -> None:
    with pytest.raises(InputError, match="cannot fill one batch"):
        ShuffledBatches(3, 4, seed=0, name="ar")
