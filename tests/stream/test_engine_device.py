"""The engine's state lives on the configured device (found by walking the state, not by trusting the config), a push
reads back from the device only the documented scalars, and on CUDA the engine equals the CPU run."""
from __future__ import annotations

import collections
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from egostream.device import resolve_device
import egostream.kernels.gated_messages as message_passing
import egostream.kernels.neighbour_pool as pooling
from egostream.stream import StreamConfig, StreamEngine
from egostream.stream.engine import host_reads_per_push
from tests.stream.streams import random_backbone, single_threaded_torch  # noqa: F401 (autouse fixture)

DEPTH = 4


def tensors_in(obj: Any, seen: set[int] | None = None) -> Iterator[torch.Tensor]:
    """Every tensor reachable from ``obj`` through attributes, containers and tuples (modules not entered)."""
    seen = set() if seen is None else seen
    if id(obj) in seen or isinstance(obj, torch.nn.Module):
        return
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from tensors_in(value, seen)
    elif isinstance(obj, (list, tuple, set)):
        for value in obj:
            yield from tensors_in(value, seen)
    elif hasattr(obj, "__dict__"):
        yield from tensors_in(vars(obj), seen)


@pytest.mark.parametrize("spec", ["cpu", "auto"])
@pytest.mark.parametrize("mode", ["incremental", "recompute"])
def test_every_tensor_of_the_engine_state_is_on_the_device(spec: str, mode: str) -> None:
    device = resolve_device(spec)
    engine = StreamEngine(random_backbone(DEPTH, 0).to(device), StreamConfig(horizon_s=20.0, engine_mode=mode))
    for start in range(0, 90, 7):
        engine.push(torch.randn(7, 6))  # host rows: the engine copies them to its device
    found = list(tensors_in(engine))
    assert len(found) >= 5
    assert {tensor.device for tensor in found} == {device}


class HostReads:
    """Counts the tensor methods that read device memory back to the host, while active."""

    NAMES = ("item", "tolist", "numpy", "cpu", "__int__", "__bool__", "__float__", "__index__")

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        self.active = False
        for name in self.NAMES:
            original = getattr(torch.Tensor, name)

            def counted(tensor: torch.Tensor, *args: Any, _name: str = name, _original: Any = original,
                        **kwargs: Any) -> Any:
                if self.active:
                    self.calls[_name] += 1
                return _original(tensor, *args, **kwargs)

            monkeypatch.setattr(torch.Tensor, name, counted)


def test_a_push_reads_back_only_the_documented_scalars(monkeypatch: pytest.MonkeyPatch) -> None:
    # the PyTorch message passing and pooling, as on a CUDA device: the compiled CPU paths hand CPU tensors to Numba
    # as NumPy views (no copy), and never run on a device
    monkeypatch.setattr(message_passing, "CPU_KERNEL", "torch")
    monkeypatch.setattr(pooling, "CPU_KERNEL", "torch")
    engine = StreamEngine(random_backbone(DEPTH, 1), StreamConfig(horizon_s=30.0))
    reads = HostReads(monkeypatch)
    rows = torch.randn(900, 6)
    per_push = {}
    for start in range(0, len(rows), 3):
        reads.active = start in (60, 300, 450, 600, 897)
        reads.calls.clear()
        engine.push(rows[start:start + 3])
        if reads.active:
            per_push[start] = dict(reads.calls)
    reads.active = False
    budget = host_reads_per_push(DEPTH)
    assert len(per_push) == 5
    for start, calls in per_push.items():
        # only scalar reads (no tensor copied to the host), within a budget that does not grow with the stream
        assert set(calls) <= {"__int__", "__bool__"}, (start, calls)
        assert 0 < sum(calls.values()) <= budget, (start, calls)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("mode", ["incremental", "recompute"])
def test_the_engine_on_cuda_equals_the_cpu_run(mode: str) -> None:
    backbone = random_backbone(DEPTH, 2)
    config = StreamConfig(horizon_s=20.0, engine_mode=mode)
    on_cpu = StreamEngine(backbone, config)
    on_gpu = StreamEngine(random_backbone(DEPTH, 2).to("cuda"), config)
    rows = torch.randn(150, 6)
    for start in range(0, len(rows), 5):
        on_cpu.push(rows[start:start + 5])
        on_gpu.push(rows[start:start + 5])
    expected, got = on_cpu.graphs(), on_gpu.graphs()
    assert got.x.device.type == "cuda"
    torch.testing.assert_close(got.x.cpu(), expected.x, atol=1e-5, rtol=0)
    assert torch.equal(got.indices.cpu(), expected.indices)
