"""Replay on one device: with ``device`` given explicitly and through ``auto``, every parameter of the model and
every tensor any module of it receives lives on the resolved device (walked through forward pre-hooks, which
observe and change nothing); bf16 autocast of the heads runs and stays close to float32; the ``cuda``-marked test
compares the CUDA submission files with the CPU ones."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from egostream.device import resolve_device
from egostream.errors import InputError
from egostream.model import ModelBundle
from egostream.replay import replay
from tests.tensor_walk import tensors_in
from tests.test_replay import TASKS, dataset

__all__ = ["dataset"]  # the synthetic data and tiny checkpoint of tests/test_replay.py


def replay_devices(bundle: ModelBundle, run) -> tuple[set[torch.device], int]:
    """Run ``run()`` with a forward pre-hook on every module of ``bundle``; the devices of every tensor any module
    received, and how many tensors that was."""
    seen: list[torch.Tensor] = []

    def record(module, args, kwargs):
        seen.extend(tensors_in(args) + tensors_in(kwargs))

    handles = [module.register_forward_pre_hook(record, with_kwargs=True) for module in bundle.modules()]
    try:
        run()
    finally:
        for handle in handles:
            handle.remove()
    return {tensor.device for tensor in seen}, len(seen)


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_replay_keeps_the_model_and_every_batch_tensor_on_the_device(dataset, tmp_path, device: str) -> None:
    data, checkpoint = dataset
    expected = resolve_device(device)
    bundle = ModelBundle.from_checkpoints(checkpoint, device=device)
    assert {p.device for p in bundle.parameters()} | {b.device for b in bundle.buffers()} == {expected}
    devices, count = replay_devices(bundle, lambda: replay("all", "hier-egopack", data, "val", checkpoint,
                                                           tmp_path / "out", features="synthetic", progress=False,
                                                           bundle=bundle, device=device))
    assert count > 0 and devices == {expected}
    assert {p.device for p in bundle.parameters()} | {b.device for b in bundle.buffers()} == {expected}
    assert sorted(json.loads((tmp_path / "out" / "metrics.json").read_text())) == sorted(TASKS)


def test_replay_refuses_an_unusable_device_and_an_unknown_precision(dataset, tmp_path) -> None:
    data, checkpoint = dataset
    missing = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(InputError) as raised:
        replay("oscc", "hier-egopack", data, "val", checkpoint, tmp_path / "a", features="synthetic", progress=False,
               device=f"cuda:{missing}")
    assert raised.value.field == "device"
    with pytest.raises(InputError) as raised:
        replay("oscc", "hier-egopack", data, "val", checkpoint, tmp_path / "b", features="synthetic", progress=False,
               precision="float8")
    assert raised.value.field == "precision"


def test_bfloat16_heads_run_and_stay_close_to_float32(dataset, tmp_path) -> None:
    data, checkpoint = dataset
    runs = {precision: replay("all", "hier-egopack", data, "val", checkpoint, tmp_path / precision,
                              features="synthetic", progress=False, device="cpu", precision=precision)
            for precision in ("float32", "bfloat16")}
    exact = json.loads((tmp_path / "float32" / "ar.json").read_text())
    mixed = json.loads((tmp_path / "bfloat16" / "ar.json").read_text())
    assert exact.keys() == mixed.keys()
    difference = max(float(np.abs(np.subtract(exact[key][part], mixed[key][part])).max())
                     for key in exact for part in ("verb", "noun"))
    scale = max(float(np.abs(exact[key][part]).max()) for key in exact for part in ("verb", "noun"))
    # Autocast really ran: bf16 keeps 8 significant bits, so the logits differ, by at most a few bf16 steps.
    assert 0 < difference <= 2.0 ** -6 * scale
    assert runs["bfloat16"].keys() == runs["float32"].keys()
    for task in TASKS:
        for name, value in runs["float32"][task].items():
            if isinstance(value, float) and name != "n_samples":
                assert abs(runs["bfloat16"][task][name] - value) <= 0.1 * max(1.0, abs(value)), (task, name)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_replay_writes_the_cpu_submission_files(dataset, tmp_path) -> None:
    data, checkpoint = dataset
    for device in ("cpu", "cuda"):
        replay("all", "hier-egopack", data, "val", checkpoint, tmp_path / device, features="synthetic",
               progress=False, device=device)
    for task in TASKS:
        cpu = json.loads((tmp_path / "cpu" / f"{task}.json").read_text())
        cuda = json.loads((tmp_path / "cuda" / f"{task}.json").read_text())
        if task == "ar":
            assert cpu.keys() == cuda.keys()
            for key in cpu:
                for part in ("verb", "noun"):
                    np.testing.assert_allclose(cuda[key][part], cpu[key][part], rtol=1e-5, atol=1e-5)
        elif task == "mq":
            detected, expected = cuda["detect_results"], cpu["detect_results"]
            assert detected.keys() == expected.keys()
            for key in expected:
                assert [m["label"] for m in detected[key]] == [m["label"] for m in expected[key]]
                np.testing.assert_allclose([[m["score"], *m["segment"]] for m in detected[key]],
                                           [[m["score"], *m["segment"]] for m in expected[key]], rtol=1e-5, atol=1e-5)
        else:
            assert cuda == cpu, task
