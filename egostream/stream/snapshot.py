"""Snapshots of stream state for crash recovery: the state only, never the model (DESIGN §10).

A snapshot is the pickled state object (an emitter, its engines, ledgers and readout caches) in which

* every :class:`torch.nn.Module` and every other object the caller declares *shared* (the model bundle, the
  backpack) is written as a reference by name and bound again, on restore, to the restoring process's own objects;
  a module that is not declared (a model the caller did not expect in the state) is refused, so weights can never
  ride along;
* tensors are written compactly (:func:`pack_tensor`): only their elements, byte planes shuffled and zlib-compressed,
  bit-exact, and restored on the device of the restoring process's model.

So a snapshot's size depends on the stream (rows retained in the horizon), not on the model's size.
"""
from __future__ import annotations

import io
import pickle
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["SnapshotError", "pack_tensor", "unpack_tensor", "dumps_state", "loads_state", "restore_device",
           "shared_modules"]

_SHARED = "egostream-shared"
# Byte planes that zlib cannot shrink by 2 % (the low mantissa bytes of float features) are stored as they are.
_ZLIB_LEVEL = 6
_MIN_GAIN = 0.98
# A plane whose first 64 KiB do not shrink at zlib level 1 is taken as incompressible without compressing it all.
_SAMPLE_BYTES = 1 << 16
_restore_device: list[torch.device] = [torch.device("cpu")]


class SnapshotError(RuntimeError):
    """The state reaches a model module that was not declared shared, or a snapshot names an unknown object."""


def pack_tensor(tensor: Tensor) -> dict[str, Any]:
    """A bit-exact compact form of ``tensor`` (any shape, any plain dtype): shape, dtype, and the element bytes
    with byte plane ``b`` of every element stored together (``b = 0 .. itemsize - 1``), each plane zlib-compressed
    when that saves at least 2 % (the sign/exponent plane of float features shrinks to about 40 %).
    The one host copy of the state happens here."""
    array = tensor.detach().contiguous().cpu().numpy().reshape(-1)
    planes = array.view(np.uint8).reshape(-1, array.itemsize).T if array.size else np.empty((0, 0), np.uint8)
    stored = []
    for plane in planes:
        raw = np.ascontiguousarray(plane).tobytes()
        sample = raw[:_SAMPLE_BYTES]
        if len(zlib.compress(sample, 1)) >= _MIN_GAIN * len(sample):
            stored.append((False, raw))
            continue
        packed = zlib.compress(raw, _ZLIB_LEVEL)
        stored.append((True, packed) if len(packed) < _MIN_GAIN * len(raw) else (False, raw))
    return {"shape": tuple(tensor.shape), "dtype": str(tensor.dtype).removeprefix("torch."), "planes": stored}


def unpack_tensor(packed: Mapping[str, Any], device: torch.device | None = None) -> Tensor:
    """The tensor of :func:`pack_tensor`, on ``device`` (default: the device of the snapshot being restored)."""
    dtype = getattr(torch, packed["dtype"])
    shape = tuple(packed["shape"])
    itemsize = torch.empty((), dtype=dtype).element_size()
    planes = np.frombuffer(b"".join(zlib.decompress(data) if compressed else data
                                    for compressed, data in packed["planes"]), dtype=np.uint8)
    count = int(np.prod(shape, dtype=np.int64))
    elements = np.ascontiguousarray(planes.reshape(itemsize, count).T) if count else np.empty((0, itemsize), np.uint8)
    tensor = torch.frombuffer(bytearray(elements.tobytes()), dtype=dtype) if count else torch.empty(0, dtype=dtype)
    return tensor.reshape(shape).to(device if device is not None else _restore_device[-1])


def restore_device() -> torch.device:
    """The device tensors of the snapshot being restored go to (the CPU outside :func:`loads_state`)."""
    return _restore_device[-1]


def _reduce_tensor(tensor: Tensor) -> tuple[Any, tuple[Any, ...]]:
    return unpack_tensor, (pack_tensor(tensor),)


class _StatePickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, shared: Mapping[str, Any]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._names = {id(obj): name for name, obj in shared.items()}
        self.dispatch_table = {Tensor: _reduce_tensor}

    def persistent_id(self, obj: Any) -> Any:
        name = self._names.get(id(obj))
        if name is not None:
            return (_SHARED, name)
        if isinstance(obj, (nn.Module, nn.Parameter)):
            raise SnapshotError(f"the stream state reaches a {type(obj).__name__} that is not shared: snapshots "
                                "never carry model weights")
        return None


class _StateUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, shared: Mapping[str, Any]) -> None:
        super().__init__(file)
        self._shared = shared

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 2 and pid[0] == _SHARED and pid[1] in self._shared):
            raise SnapshotError(f"the snapshot refers to {pid!r}, which this process does not provide")
        return self._shared[pid[1]]


def shared_modules(prefix: str, module: nn.Module) -> dict[str, Any]:
    """``{prefix.name: submodule}`` for ``module`` and every submodule (names as ``named_modules`` gives them)."""
    return {f"{prefix}.{name}" if name else prefix: sub for name, sub in module.named_modules()}


def dumps_state(state: Any, shared: Mapping[str, Any]) -> bytes:
    """Pickle ``state`` with the objects of ``shared`` (name -> object) written as references."""
    buffer = io.BytesIO()
    _StatePickler(buffer, shared).dump(state)
    return buffer.getvalue()


def loads_state(data: bytes, shared: Mapping[str, Any], device: torch.device | None = None) -> Any:
    """The state of :func:`dumps_state`, its references bound to ``shared``, its tensors on ``device``."""
    _restore_device.append(device if device is not None else torch.device("cpu"))
    try:
        return _StateUnpickler(io.BytesIO(data), shared).load()
    finally:
        _restore_device.pop()
