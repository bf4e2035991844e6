"""MQ post-processing (NMS + clipping) against Hier-EgoPack's ``EvalMeter._postprocessing`` golden output."""
from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from egostream import optional
from egostream.tasks.mq_postprocessing import postprocess_mq_detections
from egostream.testing import golden_dir
from tests.kernels.device_backends import DeviceBackend


# The module (the package re-exports a function of the same name).
nms_module = importlib.import_module("egostream.kernels.nms")
_COMPILED = pytest.param("compiled", marks=pytest.mark.skipif(not optional.WITH_NUMBA, reason="needs Numba"))


@pytest.mark.parametrize("cpu_kernel", [_COMPILED, "numpy"])
@pytest.mark.parametrize("golden_file", sorted(golden_dir().glob("mq_postprocessing__*.json")), ids=lambda p: p.stem)
def test_mq_postprocessing_golden(golden_file: Path, kernel_backend: DeviceBackend, cpu_kernel: str,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nms_module, "CPU_KERNEL", cpu_kernel)
    golden = json.loads(golden_file.read_text())
    inputs = np.load(golden_file.parent / golden["inputs"]["file"])
    expected = np.load(golden_file.parent / golden["expected"]["arrays_file"])

    segs, scores, cls_idxs, vlen = (torch.from_numpy(inputs[key]).to(kernel_backend.device)
                                    for key in ("segs", "scores", "cls_idxs", "vlen"))
    result = postprocess_mq_detections(segs, scores, cls_idxs, vlen, **golden["expected"]["call"],
                                       backend=kernel_backend.name)

    assert len(result.orig_idx) == golden["expected"]["n_out"]
    np.testing.assert_array_equal(result.orig_idx.cpu().numpy(), expected["orig_idx"])
    np.testing.assert_array_equal(result.cls_idxs.cpu().numpy(), expected["cls_idxs"])
    np.testing.assert_allclose(result.scores.cpu().numpy(), expected["scores"], rtol=0, atol=2e-6)
    segs = result.segs.cpu().numpy()
    np.testing.assert_array_equal(segs, expected["segs"])
    negative_zero = int(np.sum((segs == 0) & np.signbit(segs)))
    assert negative_zero == golden["expected"].get("n_negative_zero_in_segs", negative_zero)


def test_clipping_rules() -> None:
    segs = torch.tensor([[-3.0, 2.0], [5.0, 12.0], [0.0, 10.0]])
    result = postprocess_mq_detections(segs, torch.tensor([0.9, 0.8, 0.7]), torch.tensor([0, 1, 2]), 10.0,
                                       backend="cpu")
    assert result.orig_idx.tolist() == [0, 1, 2]
    assert result.segs.tolist() == [[0.0, 2.0], [5.0, 10.0], [0.0, 10.0]]
    assert np.signbit(result.segs[0, 0].item()) and not np.signbit(result.segs[2, 0].item())
