"""Stream snapshots hold the stream state only: tensors packed bit-exactly, model modules refused, the size set by
the horizon and not by the model (depth-8 preset, 8-minute horizon: under 5 MB), and a restored emitter continues
exactly like the uninterrupted one."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from egostream.config import CONFIG_DIR, load_config
from egostream.model import ModelBundle, ModelConfig
from egostream.stream import StreamConfig
from egostream.stream.snapshot import SnapshotError, dumps_state, loads_state, pack_tensor, unpack_tensor
from egostream.stream.windows import WindowEmitter
from egostream.train.seeding import torch_threads

SNAPSHOT_LIMIT_BYTES = 5 * 1000 * 1000
# The 8-minute horizon is 900 rows; a longer stream makes every level evict.
STREAM_ROWS = 1100


@pytest.mark.parametrize("tensor", [
    torch.tensor([0.0, -0.0, 1.5, float("inf"), float("nan"), 1e-45]),
    torch.randn(7, 5, dtype=torch.float64),
    torch.arange(12, dtype=torch.long).reshape(3, 2, 2) - 6,
    torch.empty(0, 768),
    torch.tensor(3.25),
], ids=["float32-special", "float64", "int64-3d", "empty", "scalar"])
def test_packed_tensors_come_back_bit_exact(tensor: torch.Tensor) -> None:
    back = unpack_tensor(pack_tensor(tensor))
    assert back.dtype == tensor.dtype and back.shape == tensor.shape
    as_int = {torch.float32: torch.int32, torch.float64: torch.int64}.get(tensor.dtype, tensor.dtype)
    assert torch.equal(back.view(as_int), tensor.view(as_int))


def test_a_module_that_is_not_shared_is_refused() -> None:
    layer = nn.Linear(3, 3)
    with pytest.raises(SnapshotError, match="Linear"):
        dumps_state({"rows": torch.zeros(2), "head": layer}, {})
    # declared shared, it travels as a reference and comes back as the restoring side's own object
    other = nn.Linear(3, 3)
    state = loads_state(dumps_state({"head": layer}, {"head": layer}), {"head": other})
    assert state["head"] is other


def test_a_snapshot_names_only_objects_the_restoring_side_provides() -> None:
    layer = nn.Linear(1, 1)
    data = dumps_state({"head": layer}, {"head": layer})
    with pytest.raises(SnapshotError, match="head"):
        loads_state(data, {})


def _preset(**changes: object) -> ModelConfig:
    return dataclasses.replace(load_config(ModelConfig, CONFIG_DIR / "model" / "egovlp_depth8.yaml"), **changes)


def _fast_forward(bundle: ModelBundle, rows: torch.Tensor) -> WindowEmitter:
    """The rows in pushes of 100, the last 20 in pushes of 4 (the pipeline's batch size: a snapshot keeps the inputs
    of the last push's block window); one window per hour of stream, so no readout runs."""
    emitter = WindowEmitter(bundle, StreamConfig(emit_every_s=3600.0))
    cut = len(rows) - 20
    for start in [*range(0, cut, 100), *range(cut, len(rows), 4)]:
        assert emitter.push(rows[start:min(start + (100 if start < cut else 4), cut if start < cut else len(rows))]) == []
    return emitter


def _parameter_bytes(bundle: ModelBundle) -> int:
    return sum(p.numel() * p.element_size() for p in bundle.parameters())


def test_depth8_snapshot_is_under_5mb_and_independent_of_the_model_size() -> None:
    rows = torch.randn(STREAM_ROWS, 256, generator=torch.Generator().manual_seed(0))
    with torch_threads(2):
        small = _preset().build(seed=0)
        large = _preset(classifier_hidden=2048).build(seed=0)  # same backbone and neck widths, larger classifiers
        emitter = _fast_forward(small, rows)
        state = emitter.state_dict()
        large_state = _fast_forward(large, rows).state_dict()
    assert emitter.engines[0].config.horizon_rows < STREAM_ROWS
    assert len(state) < SNAPSHOT_LIMIT_BYTES
    assert _parameter_bytes(large) - _parameter_bytes(small) > SNAPSHOT_LIMIT_BYTES
    assert len(large_state) == len(state)  # same backbone, same stream: same state, whatever the classifiers weigh
    assert len(state) < _parameter_bytes(small) / 10


def test_a_restored_emitter_continues_exactly_like_the_uninterrupted_one() -> None:
    rows = torch.randn(STREAM_ROWS + 40, 256, generator=torch.Generator().manual_seed(1))
    with torch_threads(2):
        bundle = _preset().build(seed=1)
        straight = _fast_forward(bundle, rows[:STREAM_ROWS])
        restored = WindowEmitter(bundle, StreamConfig(emit_every_s=3600.0))
        restored.load_state_dict(straight.state_dict())
        for emitter in (straight, restored):
            for start in range(STREAM_ROWS, len(rows), 7):
                emitter.push(rows[start:start + 7])
        expected, got = straight.views(), restored.views()
        for task in expected:
            assert torch.equal(expected[task].graphs.x, got[task].graphs.x)
            assert torch.equal(expected[task].graphs.indices, got[task].graphs.indices)
        window, again = straight.finish(0.0)[0], restored.finish(0.0)[0]
    assert (window.rows, window.ar, window.lta, window.oscc, window.pnr, window.mq) == (
        again.rows, again.ar, again.lta, again.oscc, again.pnr, again.mq)
