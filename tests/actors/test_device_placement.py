"""The actors on one device: the model stages' placement (device setting, GPU share) is resolved once; an
extractor that takes a ``device`` option gets it unless one was given; the engine factory loads on the device."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from egostream.actors.commands import DEFAULT_GPUS_PER_STREAM, device_placement
from egostream.actors.perception import EmitterEngineFactory, ExtractorSpec
from egostream.backbone.extractors import EXTRACTORS
from egostream.device import resolve_device
from egostream.errors import InputError


class NoDeviceExtractor:
    """An extractor whose constructor takes no device option."""

    def __init__(self, dim: int = 4) -> None:
        self.dim = dim


@pytest.fixture
def no_device_extractor() -> Iterator[str]:
    EXTRACTORS.register("test_no_device")(NoDeviceExtractor)  # type: ignore[arg-type]
    try:
        yield "test_no_device"
    finally:
        EXTRACTORS.unregister("test_no_device")


@pytest.mark.parametrize("backend", ["ray", "local"])
def test_a_cpu_run_requests_no_gpu(backend: str) -> None:
    assert device_placement("cpu", backend, DEFAULT_GPUS_PER_STREAM) == ("cpu", 0.0)
    expected = resolve_device("auto")
    placed = device_placement("auto", backend, DEFAULT_GPUS_PER_STREAM)
    assert placed == (("cpu", 0.0) if expected.type == "cpu" else
                      ("cuda" if backend == "ray" else str(expected), DEFAULT_GPUS_PER_STREAM))


def test_an_unusable_device_is_refused_before_anything_runs() -> None:
    missing = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(InputError) as raised:
        device_placement(f"cuda:{missing}", "ray", DEFAULT_GPUS_PER_STREAM)
    assert raised.value.field == "device"


def test_the_extractor_gets_the_device_option_unless_given(no_device_extractor: str) -> None:
    built = ExtractorSpec("pixel_projection", {"dim": 8}, device="cpu")()
    assert built.device == torch.device("cpu")
    assert ExtractorSpec("pixel_projection", {"dim": 8}, device="cpu").build_options() == {"dim": 8, "device": "cpu"}
    given = ExtractorSpec("pixel_projection", {"device": "meta"}, device="cpu")
    assert given.build_options() == {"device": "meta"}
    assert ExtractorSpec(no_device_extractor, {"dim": 3}, device="cpu").build_options() == {"dim": 3}
    assert ExtractorSpec("pixel_projection", {"dim": 8}).build_options() == {"dim": 8}


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_the_engine_factory_loads_the_model_on_the_device(checkpoint: Path, device: str) -> None:
    engine = EmitterEngineFactory(str(checkpoint), device=device)()
    bundle = engine.emitter.bundle
    expected = resolve_device(device)
    assert {p.device for p in bundle.parameters()} | {b.device for b in bundle.buffers()} == {expected}
