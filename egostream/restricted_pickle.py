"""Reading pickled files without running pickled code: :class:`RestrictedUnpickler` and :func:`load_restricted`.

The allow-list admits tensors, storages, dtypes, plain containers, ``typing`` markers and numpy scalars/arrays;
every ``omegaconf`` object (the authors' Hier-EgoPack configs), and every object of the extra ``stub_modules`` a
caller names (EgoVLP's pickled ``parse_config.ConfigParser`` with its argparse/pathlib parts), becomes an inert
:class:`OmegaConfStub` holding its constructor arguments and pickled state; anything else raises
:class:`~egostream.errors.InputError` naming the file and the global. A leaf module: any layer may use it.
"""
from __future__ import annotations

import builtins
import collections
import os
import pickle
import typing
from pathlib import Path
from typing import Any

import torch

from egostream.errors import InputError

__all__ = ["OmegaConfStub", "RestrictedUnpickler", "load_restricted"]


class OmegaConfStub:
    """Inert stand-in for any pickled ``omegaconf`` object: it records its constructor arguments and state only."""

    omegaconf_name = "omegaconf"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


_SAFE_BUILTINS = frozenset({"dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "str", "bytes",
                            "bytearray", "bool", "slice", "range", "object"})
_PYTHON2_BUILTINS = {"long": "int", "unicode": "str"}  # protocol-2 pickles name the py2 types
_SAFE_TYPING = frozenset({"Any", "Dict", "List", "Tuple", "Optional", "Union", "Sequence", "Mapping"})
_SAFE_TORCH_REBUILDERS = {
    ("torch._utils", "_rebuild_tensor"), ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"), ("torch._tensor", "_rebuild_from_type_v2"),
    ("torch.nn.parameter", "Parameter"), ("torch", "Tensor"), ("torch", "Size"), ("torch", "device"),
    ("torch.storage", "UntypedStorage"), ("torch", "UntypedStorage")}
_SAFE_NUMPY = {("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"), ("numpy", "dtype"),
               ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray")}


def _stub_class(module: str, name: str) -> type[OmegaConfStub]:
    return type(name, (OmegaConfStub,), {"omegaconf_name": f"{module}.{name}"})


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only an allow-list of globals (set ``source`` to the file for error messages).

    Allowed: torch tensor/parameter rebuilders, storages, dtypes, ``torch.Size``/``torch.device``; ``OrderedDict``
    and ``defaultdict``; plain builtin types; ``typing`` markers; numpy scalars/arrays; ``omegaconf.*`` (as
    :class:`OmegaConfStub` subclasses). Anything else raises :class:`InputError`.
    """

    source: str | None = None
    #: further modules whose every global becomes an inert stub (e.g. EgoVLP's pickled ``parse_config``)
    stub_modules: tuple[str, ...] = ()

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("omegaconf") or module.split(".")[0] in self.stub_modules:
            return _stub_class(module, name)
        if module in ("builtins", "__builtin__"):
            name = _PYTHON2_BUILTINS.get(name, name)
            if name in _SAFE_BUILTINS:
                return getattr(builtins, name)
        if module == "collections" and name in ("OrderedDict", "defaultdict"):
            return getattr(collections, name)
        if module == "typing" and name in _SAFE_TYPING:
            return getattr(typing, name)
        if (module, name) in _SAFE_TORCH_REBUILDERS or (module, name) in _SAFE_NUMPY:
            return super().find_class(module, name)
        if module == "torch":
            value = getattr(torch, name, None)
            if isinstance(value, torch.dtype) or (isinstance(value, type) and name.endswith("Storage")):
                return value
        raise InputError(self.source, "pickle global",
                         f"refusing to load '{module}.{name}': only tensors, plain containers and omegaconf configs "
                         "are allowed in a checkpoint (nothing executable)")


def _restricted_pickle_module(source: str, stub_modules: tuple[str, ...] = ()) -> Any:
    """A ``pickle_module`` for ``torch.load`` whose Unpickler is :class:`RestrictedUnpickler` bound to ``source``
    (and stubbing ``stub_modules``)."""

    class BoundUnpickler(RestrictedUnpickler):
        pass

    BoundUnpickler.source = source
    BoundUnpickler.stub_modules = tuple(stub_modules)

    class RestrictedPickleModule:
        Unpickler = BoundUnpickler
        UnpicklingError = pickle.UnpicklingError

        @staticmethod
        def load(file: Any, **kwargs: Any) -> Any:
            return BoundUnpickler(file, **kwargs).load()

    return RestrictedPickleModule


def load_restricted(path: str | os.PathLike[str], stub_modules: tuple[str, ...] = ()) -> Any:
    """``torch.load`` of ``path`` on the CPU through :class:`RestrictedUnpickler`: tensors and plain containers
    load, ``omegaconf`` and ``stub_modules`` objects become inert stubs, anything else raises :class:`InputError`
    naming the file and the global. Nothing pickled is executed."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, None, "checkpoint file not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_restricted_pickle_module(
            str(path), tuple(stub_modules)))
    except InputError:
        raise
    except Exception as err:  # torch/pickle raise many types for corrupt or foreign files
        cause = err.__cause__ or err.__context__
        if isinstance(cause, InputError):
            raise cause from err
        first_line = next(iter(str(err).splitlines()), "")
        raise InputError(path, None, f"not a readable torch checkpoint: {type(err).__name__}: {first_line}") from err
