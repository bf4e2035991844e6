"""Typed, frozen configuration dataclasses loaded from YAML and overridden with ``key=value`` strings.

Every command builds its settings the same way::

    cfg = load_config(SynthConfig, "configs/synth/default.yaml", ["videos=12", "seed=3"])

Nested dataclasses are addressed with dots (``model.depth=8``). Values are parsed as YAML scalars and then checked
against the field's type, so ``depth=eight`` fails with a message naming the key.
"""
from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from egostream.errors import InputError

__all__ = ["load_config", "from_dict", "to_dict", "apply_overrides", "CONFIG_DIR"]

C = TypeVar("C")

#: The ``configs/`` folder of a source checkout.
CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain ``dict`` of a config dataclass (tuples become lists), ready for YAML or JSON."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        if isinstance(value, Mapping):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, Path):
            return str(value)
        return value

    return plain(cfg)


def _coerce(value: Any, annotation: Any, key: str, source: str | None) -> Any:
    """Check ``value`` against ``annotation`` and convert where YAML cannot say the type (tuples, paths)."""
    origin = get_origin(annotation)
    if annotation is Any:
        return value
    if origin in (Union, types.UnionType):
        options = get_args(annotation)
        if value is None and type(None) in options:
            return None
        concrete = [option for option in options if option is not type(None)]
        if len(concrete) == 1:
            return _coerce(value, concrete[0], key, source)
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key, source)
            except InputError as err:
                errors.append(err.reason)
        raise InputError(source, key, f"{value!r} fits none of {annotation}: {'; '.join(errors)}")
    if origin is Literal:
        if value not in get_args(annotation):
            raise InputError(source, key, f"{value!r} is not one of {list(get_args(annotation))}")
        return value
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, Mapping):
            raise InputError(source, key, f"expected a mapping for {annotation.__name__}, got {value!r}")
        return from_dict(annotation, value, source=source, prefix=f"{key}.")
    if origin in (tuple, list, Sequence, typing.Sequence):
        if not isinstance(value, (list, tuple)):
            raise InputError(source, key, f"expected a list, got {value!r}")
        args = get_args(annotation)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise InputError(source, key, f"expected {len(args)} items, got {len(value)}")
            return tuple(_coerce(v, a, f"{key}[{i}]", source) for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        return tuple(_coerce(v, item, f"{key}[{i}]", source) for i, v in enumerate(value))
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise InputError(source, key, f"expected a mapping, got {value!r}")
        kt, vt = get_args(annotation) or (Any, Any)
        return {_coerce(k, kt, key, source): _coerce(v, vt, f"{key}.{k}", source) for k, v in value.items()}
    if annotation is Path:
        if not isinstance(value, (str, PathLike)):
            raise InputError(source, key, f"expected a path, got {value!r}")
        return Path(value)
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(source, key, f"expected a number, got {value!r}")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(source, key, f"expected an integer, got {value!r}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise InputError(source, key, f"expected true or false, got {value!r}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise InputError(source, key, f"expected a string, got {value!r}")
        return value
    if isinstance(annotation, type) and not isinstance(value, annotation):
        raise InputError(source, key, f"expected {annotation.__name__}, got {value!r}")
    return value


@functools.cache
def _fields_of(cls: type) -> tuple[dict[str, Any], frozenset[str]]:
    """The resolved type hints and init field names of a dataclass (cached: resolving hints is the slow part of
    reading a record with hundreds of nested dataclasses)."""
    return get_type_hints(cls), frozenset(f.name for f in dataclasses.fields(cls) if f.init)


def from_dict(cls: type[C], data: Mapping[str, Any], *, source: str | None = None, prefix: str = "") -> C:
    """Build ``cls`` from a mapping, checking every key and type; unknown keys are an error."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints, names = _fields_of(cls)
    unknown = sorted(set(data) - names)
    if unknown:
        raise InputError(source, prefix + unknown[0], f"unknown key; {cls.__name__} has: {', '.join(sorted(names))}")
    kwargs = {name: _coerce(value, hints[name], prefix + name, source) for name, value in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise InputError(source, prefix.rstrip(".") or None, str(err)) from None


def _parse_override(text: str) -> tuple[list[str], Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise InputError(None, text, "an override must look like key=value (for example model.depth=8)")
    if not raw.strip():
        return key.strip().split("."), ""
    try:
        return key.strip().split("."), yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise InputError(None, text, f"the value is not valid YAML: {_yaml_problem(err)}") from None


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``a.b.c=value`` override set (values parsed as YAML scalars)."""
    out: dict[str, Any] = yaml.safe_load(yaml.safe_dump(data)) or {}
    for text in overrides:
        path, value = _parse_override(text)
        node = out
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise InputError(None, text, f"{part!r} is a value, not a section")
            node = child
        node[path[-1]] = value
    return out


def _yaml_problem(err: yaml.YAMLError) -> str:
    """One line for a YAML error: the problem and where (PyYAML's own text spans several lines)."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or next(iter(str(err).splitlines()), type(err).__name__)
    return problem if mark is None else f"{problem} at line {mark.line + 1} column {mark.column + 1}"


def _refuse_alias_cycles(value: Any, source: str, field: str = "", open_ids: frozenset[int] = frozenset()) -> None:
    """InputError naming the first key whose value contains itself (a YAML alias cycle such as ``&a [*a]``)."""
    if not isinstance(value, (dict, list)):
        return
    if id(value) in open_ids:
        raise InputError(source, field or None, "the value contains itself (a cyclic YAML alias)")
    items = value.items() if isinstance(value, dict) else ((f"[{i}]", item) for i, item in enumerate(value))
    for key, item in items:
        child = f"{field}{key}" if str(key).startswith("[") else f"{field}.{key}" if field else str(key)
        _refuse_alias_cycles(item, source, child, open_ids | {id(value)})


def load_config(cls: type[C], path: str | PathLike[str] | None = None, overrides: Sequence[str] = ()) -> C:
    """Load ``cls`` from a YAML file (or from its defaults when ``path`` is None), then apply overrides."""
    data: dict[str, Any] = {}
    source = None
    if path is not None:
        source = str(path)
        try:
            with open(path, encoding="utf-8") as handle:
                loaded = yaml.safe_load(handle)
        except FileNotFoundError:
            raise InputError(source, None, "config file not found") from None
        except IsADirectoryError:
            raise InputError(source, None, "is a folder, not a file") from None
        except UnicodeDecodeError as err:
            raise InputError(source, "encoding", f"not UTF-8: byte {err.object[err.start]:#04x} at offset "
                                                 f"{err.start}") from None
        except yaml.YAMLError as err:
            raise InputError(source, None, f"not valid YAML: {_yaml_problem(err)}") from None
        except RecursionError:
            raise InputError(source, None, "YAML nested too deeply") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise InputError(source, None, "the top level must be a mapping")
        _refuse_alias_cycles(loaded, source)
        data = loaded or {}
    if overrides:
        data = apply_overrides(data, overrides)
        source = f"{source or cls.__name__} (with overrides)"
    return from_dict(cls, data, source=source)
