"""Run the project's CUDA sources on the CPU: compile them with the host C++ compiler under ``cuda_emulator.h``.

:class:`EmulatedModule` stands in for ``cupy.RawModule``: ``get_function(name)`` returns a kernel called like a CuPy
raw kernel, ``kernel(grid, block, args)``, with NumPy arrays for device pointers and NumPy scalars for values. The
arguments are checked against the kernel's C signature (array dtype and contiguity, exact scalar type), which CuPy
does not do: a mismatch there would silently pass garbage to the GPU. This lets the test suite run the kernels' real
source and the real launch code (the ``*_device`` functions, which take the array-view function) without a GPU. What it
cannot show: device memory, CuPy's NVRTC, the DLPack hand-over to CUDA tensors and speed, which the ``cupy`` runs of
the same tests cover on a GPU (NVRTC compilation alone is checked by ``test_cuda_sources.py``). Every array argument
is copied to the end of pages between two inaccessible ones, so an access just past its end is reported as a memory
fault of the launch (one before its start only once it leaves the first data page).
"""
from __future__ import annotations

import ctypes
import hashlib
import mmap
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from egostream.kernels._cuda import CudaSource

__all__ = ["EmulatedModule", "HOST_COMPILER", "requires_host_compiler"]

HOST_COMPILER = shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
requires_host_compiler = pytest.mark.skipif(HOST_COMPILER is None, reason="needs a host C++ compiler (g++)")

_HEADER = Path(__file__).with_name("cuda_emulator.h")
_KERNEL = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(([^)]*)\)')
_SCALARS = {"int": np.int32, "unsigned int": np.uint32, "long long": np.int64, "unsigned long long": np.uint64,
            "float": np.float32, "double": np.float64}
_CTYPES = {np.int32: ctypes.c_int32, np.uint32: ctypes.c_uint32, np.int64: ctypes.c_int64,
           np.uint64: ctypes.c_uint64, np.float32: ctypes.c_float, np.float64: ctypes.c_double}


@dataclass(frozen=True)
class _Parameter:
    name: str
    element: type  # the NumPy scalar type of the value, or of the pointed-to elements
    pointer: bool
    writable: bool  # a pointer to non-const elements


def _parse_parameters(text: str, macros: dict[str, str]) -> list[_Parameter]:
    parameters = []
    for declaration in text.split(","):
        declaration = " ".join(declaration.replace("*", " * ").split())
        *type_words, name = declaration.split(" ")
        pointer = "*" in type_words
        pointee_const = pointer and "const" in type_words[:type_words.index("*")]
        words = [macros.get(word, word) for word in type_words if word not in ("const", "*")]
        parameters.append(_Parameter(name, _SCALARS[" ".join(words)], pointer, pointer and not pointee_const))
    return parameters


_PAGE = mmap.PAGESIZE
_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.mmap.restype = ctypes.c_void_p
_LIBC.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_LIBC.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_LIBC.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]


class _GuardedCopy:
    """An array argument's bytes copied to the end of fresh pages, between two inaccessible pages: a kernel reading or
    writing just past the end of the argument faults at once (the launch then reports a memory fault), and one running
    off its start faults once past the slack of the first data page instead of touching the interpreter's memory."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        data_pages = max(1, -(-array.nbytes // _PAGE))
        self.size = (data_pages + 2) * _PAGE
        base = _LIBC.mmap(None, self.size, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS,
                          -1, 0)
        if base is None or base == ctypes.c_void_p(-1).value:
            raise OSError(ctypes.get_errno(), "mmap failed for a guarded kernel argument")
        self.base = base
        back_guard = base + (data_pages + 1) * _PAGE
        for guard in (base, back_guard):
            if _LIBC.mprotect(guard, _PAGE, 0) != 0:  # PROT_NONE
                raise OSError(ctypes.get_errno(), "mprotect failed for a guarded kernel argument")
        self.address = back_guard - array.nbytes
        ctypes.memmove(self.address, array.ctypes.data, array.nbytes)

    def copy_back(self) -> None:
        ctypes.memmove(self.array.ctypes.data, self.address, self.array.nbytes)

    def release(self) -> None:
        _LIBC.munmap(self.base, self.size)


class EmulatedKernel:
    """One ``extern "C" __global__`` function of an :class:`EmulatedModule`."""

    def __init__(self, entry: Any, name: str, parameters: list[_Parameter], order: int) -> None:
        self.name, self.parameters, self.order = name, parameters, order
        self._entry = entry
        self._entry.restype = ctypes.c_int
        self._entry.argtypes = [ctypes.c_uint, ctypes.c_uint, ctypes.c_uint] + [
            ctypes.c_void_p if p.pointer else _CTYPES[p.element] for p in parameters]

    def _check(self, parameter: _Parameter, value: Any) -> None:
        where = f"{self.name}({parameter.name})"
        if parameter.pointer:
            if not isinstance(value, np.ndarray):
                raise TypeError(f"{where}: expected an array, got {type(value).__name__}")
            if value.dtype.type is not parameter.element or not value.flags.c_contiguous:
                raise TypeError(f"{where}: expected a C-contiguous {np.dtype(parameter.element)} array, got "
                                f"{value.dtype} (contiguous={value.flags.c_contiguous})")
        elif type(value) is not parameter.element:
            raise TypeError(f"{where}: expected a {np.dtype(parameter.element)} scalar, got {type(value).__name__}")

    def __call__(self, grid: tuple[int, ...], block: tuple[int, ...], args: tuple[Any, ...]) -> None:
        if len(grid) != 1 or len(block) != 1:
            raise ValueError(f"{self.name}: the emulator runs 1-D grids and blocks, got {grid} x {block}")
        if len(args) != len(self.parameters):
            raise TypeError(f"{self.name}: expected {len(self.parameters)} arguments, got {len(args)}")
        for parameter, value in zip(self.parameters, args):
            self._check(parameter, value)
        guarded = {i: _GuardedCopy(value) for i, (p, value) in enumerate(zip(self.parameters, args)) if p.pointer}
        try:
            status = self._entry(grid[0], block[0], self.order,
                                 *(guarded[i].address if i in guarded else value for i, value in enumerate(args)))
            if status == 0:
                for i, copy in guarded.items():
                    if self.parameters[i].writable:
                        copy.copy_back()
        finally:
            for copy in guarded.values():
                copy.release()
        if status == 1:
            raise RuntimeError(f"{self.name}: barrier divergence (threads returned or waited at different "
                               f"__syncthreads() while others waited)")
        if status == 2:
            raise RuntimeError(f"{self.name}: memory fault (an access past the end of an argument, or to an invalid "
                               f"address)")


class EmulatedModule:
    """A CUDA compilation unit built for the host (a stand-in for ``cupy.RawModule``).

    Args:
        source: the unit, with its ``-D`` macros.
        build_dir: where the generated harness and the shared library are written (one library per distinct unit).
        order: the default thread order of every phase (0 ascending, 1 descending, >= 2 a seeded shuffle).
    """

    def __init__(self, source: CudaSource, build_dir: Path, *, order: int = 0) -> None:
        if HOST_COMPILER is None:
            raise RuntimeError("no host C++ compiler found (g++, c++ or clang++)")
        code = source.code()
        macros = {name: str(value) for name, value in source.defines}
        signatures = _KERNEL.findall(code)
        self._kernels = {name: _parse_parameters(params, macros) for name, params in signatures}
        harness = "\n".join([f'#include "{_HEADER}"', code, *(self._entry_point(*s) for s in signatures)])
        build_key = harness + _HEADER.read_text() + repr(source.macro_options())  # a header edit rebuilds too
        digest = hashlib.sha256(build_key.encode()).hexdigest()[:16]
        library = build_dir / f"cuda_emulation_{digest}.so"
        if not library.exists():
            build_dir.mkdir(parents=True, exist_ok=True)
            harness_file = build_dir / f"cuda_emulation_{digest}.cpp"
            harness_file.write_text(harness)
            command = [HOST_COMPILER, "-std=c++17", "-O2", "-ffp-contract=off", "-fno-fast-math", "-fPIC",
                       "-shared", "-w", *source.macro_options(), str(harness_file), "-o", str(library)]
            compiled = subprocess.run(command, capture_output=True, text=True)
            if compiled.returncode != 0:
                raise RuntimeError(f"host build of {source.files or 'inline source'} failed:\n{compiled.stderr}")
        self._library = ctypes.CDLL(str(library))
        self.order = order

    @staticmethod
    def _entry_point(name: str, parameter_text: str) -> str:
        """``emulate_<name>(grid, block, order, <the kernel's parameters>)``: the kernel launched under the emulator."""
        arguments = ", ".join(declaration.replace("*", " ").split()[-1] for declaration in parameter_text.split(","))
        return (f'extern "C" int emulate_{name}(unsigned int grid, unsigned int block, unsigned int order, '
                f"{parameter_text}) {{\n"
                f"    return emulator::launch(grid, block, order, [&]() {{ {name}({arguments}); }});\n}}")

    def get_function(self, name: str, order: int | None = None) -> EmulatedKernel:
        return EmulatedKernel(getattr(self._library, f"emulate_{name}"), name, self._kernels[name],
                              self.order if order is None else order)
