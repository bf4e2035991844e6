"""The one device setting: names resolve in one place; a device this machine cannot use is one clear error."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from egostream.device import module_device, resolve_device
from egostream.errors import InputError


def test_cpu_and_auto_resolve() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    expected = torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")
    assert resolve_device("auto") == resolve_device(None) == resolve_device(" AUTO ") == expected


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "tpu:0"])
def test_an_unknown_device_names_the_field(spec: str) -> None:
    with pytest.raises(InputError, match="device") as raised:
        resolve_device(spec)
    assert raised.value.field == "device"


def test_a_cuda_device_that_is_not_there_is_refused() -> None:
    missing = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(InputError, match=f"cuda:{missing}"):
        resolve_device(f"cuda:{missing}")


def test_module_device_follows_parameters_then_buffers() -> None:
    assert module_device(nn.Linear(2, 2)) == torch.device("cpu")
    assert module_device(nn.Identity()) == torch.device("cpu")
    holder = nn.Module()
    holder.register_buffer("scale", torch.ones(1, device="meta"))
    assert module_device(holder) == torch.device("meta")
