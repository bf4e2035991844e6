"""Several linear layers that read the same input, applied as one small-batch GEMM.

A streaming push multiplies a handful of node rows (``M`` of about 1-20) by many large weight matrices (the TDGC
``lin_rel`` and ``lin_root`` of every level, ``768 x 768``). At that shape the time is the weights' memory traffic
and the BLAS call's fixed cost, not arithmetic, so two things pay:

* **one GEMM per input**: the layers that read the same rows (a TDGC layer's ``lin_rel`` and ``lin_root``) are
  stacked into one ``[sum F_k, D]`` weight, one call instead of ``k``;
* **oneDNN's pre-packed weights on the CPU**: the weight is reordered once into oneDNN's blocked layout
  (``torch.ops.mkldnn._reorder_linear_weight``, what ``torch.compile``'s CPU freezing pass uses) and applied with
  ``torch.ops.mkldnn._linear_pointwise``. On the 2-core CI machine a depth-8 push's 32 ``768 x 768`` matrices take
  about half the time of ``torch.nn.functional.linear`` (MKL) at ``M = 6`` and ``M = 18``, and 20 % less at
  ``M = 82`` (``python benchmarks/kernels.py``, ``stacked_linear`` rows).

Each output row depends on its own input row only, so a row's value does not depend on which rows shared its batch
(checked by the tests for every batch size 1-64). Results equal ``torch.nn.functional.linear`` to float32 rounding
(a different summation order), not bit for bit. Off the CPU, or where this PyTorch build lacks the oneDNN ops
(:data:`WITH_ONEDNN_LINEAR`), the stacked weight goes through ``torch.nn.functional.linear``.

The packed weight is a cache of the layers' parameters, one per stack of layers in the process (every stream of a
model shares it; it goes with the model's first layer): it is rebuilt when a parameter changes in place (its version
counter moves) or is replaced, and it is never pickled (a stream snapshot refers to the model's layers).
"""
from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["PackedSequential", "StackedLinear", "WITH_ONEDNN_LINEAR"]


def _onednn_linear_available() -> bool:
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        weight = torch.ops.mkldnn._reorder_linear_weight(torch.eye(8), 4)
        out = torch.ops.mkldnn._linear_pointwise(torch.ones(2, 8), weight, None, "none", [], "")
    except (AttributeError, RuntimeError):  # a build without these ops, or a CPU oneDNN does not support
        return False
    return bool(torch.equal(out, torch.ones(2, 8)))


#: True where this PyTorch build runs pre-packed oneDNN linear layers on the CPU.
WITH_ONEDNN_LINEAR: bool = _onednn_linear_available()

# batch size oneDNN tunes the packed layout for; any batch size runs on it (a stream window has ~1-20 rows)
_PACKING_BATCH = 16

_STACKING_LOCK = threading.Lock()
_STACKING_SCRATCH: Tensor | None = None

# first layer of a stack -> {the stack's layer ids: (parameters key, weight, bias, packed)}; weak, so a model's packed
# weights go with the model
_PACKED: weakref.WeakKeyDictionary[nn.Module, dict[tuple[int, ...], tuple[tuple[int, ...], Tensor, Tensor, bool]]] = \
    weakref.WeakKeyDictionary()


class StackedLinear:
    """``x [M, D] -> (linears[0](x) [M, F_0], linears[1](x) [M, F_1], ...)`` as one GEMM (see the module docstring).

    Args:
        linears: layers with the same ``in_features``, on one device (bias optional per layer).
    """

    def __init__(self, linears: Sequence[nn.Linear]) -> None:
        if not linears or len({layer.in_features for layer in linears}) != 1:
            raise ValueError("StackedLinear needs one or more linear layers with the same in_features")
        self.linears = list(linears)
        self.widths = [layer.out_features for layer in self.linears]

    def prepare(self) -> None:
        """Pack the weights now (the first call would), so that the first real call costs what the next ones do."""
        self._weights()

    def _parameters_key(self) -> tuple[int, ...]:
        params = [p for layer in self.linears for p in (layer.weight, layer.bias) if p is not None]
        return tuple(v for p in params for v in (p.data_ptr(), p._version))

    def _weights(self) -> tuple[Tensor, Tensor, bool]:
        """``(weight, bias, packed)``: the stacked ``[sum F, D]`` weight (oneDNN-packed when ``packed``) and bias."""
        key = self._parameters_key()
        stacks = _PACKED.setdefault(self.linears[0], {})
        stack = tuple(id(layer) for layer in self.linears)
        found = stacks.get(stack)
        if found is None or found[0] != key:
            found = stacks[stack] = (key, *self._pack())
        return found[1], found[2], found[3]

    @torch.no_grad()
    def _pack(self) -> tuple[Tensor, Tensor, bool]:
        weights = [layer.weight for layer in self.linears]
        bias = torch.cat([layer.bias if layer.bias is not None else layer.weight.new_zeros(layer.out_features)
                          for layer in self.linears])
        first = weights[0]
        if not (WITH_ONEDNN_LINEAR and first.device.type == "cpu" and first.dtype == torch.float32):
            return torch.cat(weights), bias, False
        global _STACKING_SCRATCH
        with _STACKING_LOCK:
            # the stacked weight is only the reorder's input: one scratch buffer for every stack, because a
            # temporary per stack stays in the C allocator's heap after it is freed (+90 % RSS over the packed
            # weights of a depth-8 backbone, measured)
            size = sum(weight.numel() for weight in weights)
            if _STACKING_SCRATCH is None or _STACKING_SCRATCH.numel() < size:
                _STACKING_SCRATCH = torch.empty(size)
            stacked = _STACKING_SCRATCH[:size].view(sum(self.widths), first.shape[1])
            torch.cat(weights, out=stacked)
            return torch.ops.mkldnn._reorder_linear_weight(stacked, _PACKING_BATCH), bias, True

    @torch.no_grad()
    def __call__(self, x: Tensor) -> tuple[Tensor, ...]:
        """Each layer's output for ``x [M, D]`` (views into one ``[M, sum F]`` result)."""
        weight, bias, packed = self._weights()
        if packed and x.dtype == torch.float32 and x.device.type == "cpu" and len(x):
            out = torch.ops.mkldnn._linear_pointwise(x.contiguous(), weight, bias, "none", [], "")
        else:
            out = nn.functional.linear(x, self._dense_weight(weight, packed), bias)
        return tuple(out.split(self.widths, dim=1))

    def _dense_weight(self, weight: Tensor, packed: bool) -> Tensor:
        return torch.cat([layer.weight for layer in self.linears]) if packed else weight


class PackedSequential:
    """An ``nn.Sequential`` of per-row modules in eval mode, its ``nn.Linear`` layers run as :class:`StackedLinear`
    (one-layer stacks) and the other modules as they are: ``x [M, D] -> [M, F]``, equal to ``sequential(x)`` to
    float32 rounding. Used for small-batch inference only (no autograd)."""

    def __init__(self, sequential: nn.Sequential) -> None:
        self.steps: list[StackedLinear | nn.Module] = [StackedLinear([module]) if isinstance(module, nn.Linear)
                                                       else module for module in sequential]

    @torch.no_grad()
    def __call__(self, x: Tensor) -> Tensor:
        for step in self.steps:
            x = step(x)[0] if isinstance(step, StackedLinear) else step(x)
        return x
