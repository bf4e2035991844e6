"""Training on one device: with ``device`` given explicitly and through ``auto``, every module input, every
parameter and every optimizer state tensor lives on the resolved device, observed by torch's global module and
optimizer hooks (which only record); the ``cuda``-marked test compares a short CUDA run with the CPU run."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.nn.modules.module import register_module_forward_pre_hook
from torch.optim.optimizer import register_optimizer_step_post_hook

from egostream.device import resolve_device
from egostream.errors import InputError
from egostream.train.loop import train
from egostream.train.recipe import TRAIN_CONFIG_DIR, load_recipe
from tests.tensor_walk import tensors_in

OVERRIDES = ["num_epochs=2", "batch_size=1", "lr_warmup_epochs=1", "eval_every_epochs=1"]


class Observed:
    """The devices of every module input and of every optimizer state tensor after each step, while active."""

    def __init__(self) -> None:
        self.inputs: set[torch.device] = set()
        self.optimizer_state: set[torch.device] = set()
        self.parameters: set[torch.device] = set()
        self.steps = 0
        self.calls = 0

    def module_inputs(self, module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        found = tensors_in(args)
        self.calls += len(found)
        self.inputs.update(tensor.device for tensor in found)

    def after_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self.steps += 1
        self.optimizer_state.update(t.device for state in optimizer.state.values() for t in tensors_in(state)
                                    if t.dim() > 0)
        self.parameters.update(p.device for group in optimizer.param_groups for p in group["params"])


@pytest.fixture
def observed() -> Iterator[Observed]:
    seen = Observed()
    handles = [register_module_forward_pre_hook(seen.module_inputs), register_optimizer_step_post_hook(seen.after_step)]
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_training_keeps_model_batches_and_optimizer_state_on_the_device(data_root: Path, tmp_path: Path,
                                                                        observed: Observed, device: str) -> None:
    expected = resolve_device(device)
    recipe = load_recipe("single", ["ar"], TRAIN_CONFIG_DIR / "tiny_single.yaml", OVERRIDES)
    result = train(recipe, data_root, tmp_path / "run", device=device)
    assert observed.steps > 0 and observed.calls > 0
    assert observed.inputs == observed.optimizer_state == observed.parameters == {expected}
    assert {p.device for p in result.bundle.parameters()} == {expected}
    assert [record["epoch"] for record in result.records] == [1, 2] and "val" in result.records[-1]


def test_training_refuses_an_unusable_device(data_root: Path, tmp_path: Path) -> None:
    recipe = load_recipe("single", ["ar"], TRAIN_CONFIG_DIR / "tiny_single.yaml", OVERRIDES)
    missing = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(InputError) as raised:
        train(recipe, data_root, tmp_path / "run", device=f"cuda:{missing}")
    assert raised.value.field == "device" and not (tmp_path / "run").exists()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_short_cuda_run_equals_the_cpu_run(data_root: Path, tmp_path: Path) -> None:
    recipe = load_recipe("single", ["ar"], TRAIN_CONFIG_DIR / "tiny_single.yaml", OVERRIDES)
    runs = {device: train(recipe, data_root, tmp_path / device, device=device) for device in ("cpu", "cuda")}
    cpu, cuda = runs["cpu"].bundle.state_dict(), runs["cuda"].bundle.state_dict()
    assert cpu.keys() == cuda.keys()
    for key in cpu:
        torch.testing.assert_close(cuda[key].cpu(), cpu[key], rtol=1e-5, atol=1e-5)
    for cpu_record, cuda_record in zip(runs["cpu"].records, runs["cuda"].records):
        for key, value in cpu_record.items():
            if key.startswith("loss/") or key == "lr":
                assert cuda_record[key] == pytest.approx(value, rel=1e-5, abs=1e-5)
