"""Replay equality (DESIGN.md §4): the streaming readouts of a video equal the offline readouts, i.e. the same heads
applied to the same spans of the offline backbone's output on rows [0, n) at every emitted window."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from egostream.backpack.prototypes import Backpack
from egostream.stream.readouts import EvidenceReader, MomentLedger, NodeView, Readouts
from egostream.stream.schema import WindowResult
from egostream.stream.windows import WindowEmitter
from tests.kernels.device_backends import EmulatedBuilds
from tests.stream.test_readouts import GRID, NAMES, SPANS, stream_rows, tiny_bundle

NUM_ROWS = 45  # longer than the 12 s (22-row) horizon, so the engine evicts nodes during the stream


def assert_close(streamed: object, offline: object, where: str = "result") -> None:
    """Equal trees: ids, names, flags and counts exactly, floats to 1e-5 relative / 1e-6 absolute."""
    if dataclasses.is_dataclass(streamed):
        assert type(streamed) is type(offline), where
        for f in dataclasses.fields(streamed):
            assert_close(getattr(streamed, f.name), getattr(offline, f.name), f"{where}.{f.name}")
    elif isinstance(streamed, (tuple, list)):
        assert len(streamed) == len(offline), where  # type: ignore[arg-type]
        for i, (a, b) in enumerate(zip(streamed, offline)):  # type: ignore[call-overload]
            assert_close(a, b, f"{where}[{i}]")
    elif isinstance(streamed, dict):
        assert streamed.keys() == offline.keys(), where  # type: ignore[union-attr]
        for key in streamed:
            assert_close(streamed[key], offline[key], f"{where}[{key}]")  # type: ignore[index]
    elif isinstance(streamed, float):
        assert math.isclose(streamed, offline, rel_tol=1e-5, abs_tol=1e-6), f"{where}: {streamed} != {offline}"
    else:
        assert streamed == offline, f"{where}: {streamed!r} != {offline!r}"


def evidence_reader() -> EvidenceReader:
    generator = torch.Generator().manual_seed(5)
    prototypes = {task: torch.randn(10, 16, generator=generator) for task in ("ego4d/ar", "ego4d/lta")}
    backpack = Backpack(prototypes, torch.arange(10) // 2, torch.arange(10) % 2, torch.ones(10, dtype=torch.long),
                        7, 9)
    return EvidenceReader.from_bundle(tiny_bundle(), backpack, k=3)


def streamed_windows(push_size: int) -> list[WindowResult]:
    emitter = WindowEmitter(tiny_bundle(), GRID, SPANS, NAMES, evidence_reader())
    rows = stream_rows(NUM_ROWS)
    return emitter.push_many(rows[i:i + push_size] for i in range(0, NUM_ROWS, push_size)) + emitter.finish()


@pytest.mark.parametrize("push_size", [1, 4])
def test_streaming_readouts_equal_offline_readouts(push_size: int) -> None:
    bundle = tiny_bundle()
    windows = streamed_windows(push_size)
    every = GRID.emit_every_rows
    expected_rows = sorted({min(NUM_ROWS, -(-n // push_size) * push_size) for n in range(every, NUM_ROWS + 1, every)}
                           | {NUM_ROWS})
    assert [w.rows for w in windows] == expected_rows
    readouts = Readouts(bundle, GRID, SPANS, NAMES, evidence_reader())
    rows = stream_rows(NUM_ROWS)
    ledger = MomentLedger(GRID)
    final_moments = 0
    for window in windows:
        view = NodeView.offline(bundle.backbone("ar"), rows[:window.rows], GRID)
        offline = readouts.read({task: view for task in bundle.tasks})
        assert offline.mq is not None
        emitted = ledger.update(offline.mq)
        final_moments += sum(m.final for m in emitted.moments)
        for task in ("ar", "lta", "oscc", "pnr", "evidence"):
            assert_close(getattr(window, task), getattr(offline, task), f"window {window.window_index}.{task}")
        assert_close(window.mq, emitted, f"window {window.window_index}.mq")
    assert final_moments > 0, "the stream is long enough for some moments to become final"


def test_final_moments_are_emitted_once_per_final_node_and_class() -> None:
    windows = streamed_windows(1)
    seen = set()
    for window in windows:
        assert window.mq is not None
        for moment in window.mq.moments:
            if moment.final:
                key = (moment.level, moment.node, moment.label.id)
                assert key not in seen, f"window {window.window_index} re-emits the final moment {key}"
                seen.add(key)
    assert seen
    # at most one final per (final node, class) of the whole stream
    final_counts = NodeView.offline(tiny_bundle().backbone("mq"), stream_rows(NUM_ROWS), GRID).outputs_final
    assert all(node < final_counts[level] for level, node, _ in seen)
    assert len(seen) <= sum(final_counts) * len(NAMES.moments)


def _without_timings(window: WindowResult) -> WindowResult:
    return dataclasses.replace(window, received_wall_s=0.0, emitted_wall_s=0.0, latency_ms={})


@pytest.fixture(scope="module")
def cpu_windows() -> list[WindowResult]:
    return streamed_windows(2)


def test_every_kernel_on_the_emulated_cuda_path_gives_the_same_windows(
        cpu_windows: list[WindowResult], emulated_kernels_everywhere: EmulatedBuilds) -> None:
    windows = streamed_windows(2)
    # the engine's incremental edges, the evidence top-k and the MQ NMS all ran as (emulated) CUDA kernels
    assert set(emulated_kernels_everywhere.calls) == {"edges", "topk", "nms"}
    assert [_without_timings(w) for w in windows] == [_without_timings(w) for w in cpu_windows]
