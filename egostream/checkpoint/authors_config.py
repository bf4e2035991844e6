"""The authors' pickled hydra config as plain data: :func:`plain_config` turns the inert ``omegaconf`` stubs of
:mod:`egostream.restricted_pickle` into dicts/lists/scalars (``DictConfig._content``, ``ListConfig._content``,
value nodes' ``_val``), and :func:`resolve_interpolations` resolves whole-string interpolations such as
``${model.hidden_size}`` or ``${..features_size}``; anything else (resolver calls, string templates) stays the
literal string. Neither hydra nor omegaconf is imported."""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from egostream.errors import InputError
from egostream.restricted_pickle import OmegaConfStub

__all__ = ["plain_config", "resolve_interpolations"]


def plain_config(value: Any) -> Any:
    """Replace omegaconf stubs by the plain values they hold (dicts, lists, scalars)."""
    if isinstance(value, OmegaConfStub):
        state = value.state if isinstance(value.state, Mapping) else {}
        if "_content" in state:
            return plain_config(state["_content"])
        if "_val" in state:
            return plain_config(state["_val"])
        return None
    if isinstance(value, Mapping):
        return {key: plain_config(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_config(item) for item in value]
    return value


_INTERPOLATION = re.compile(r"^\$\{(\.*)([A-Za-z0-9_/\.\-]+)\}$")


def resolve_interpolations(root: Any, path: Path) -> Any:
    """Resolve whole-string ``${a.b}`` (absolute) and ``${..b}`` (relative) references; keep others verbatim.

    A reference that leads back to itself (``a: ${a}``, ``a: {x: ${a}}``, ``a: ${b}, b: ${a}``) is an
    :class:`InputError` naming ``path`` and the key holding it (omegaconf itself fails on such configs too).
    """

    def lookup(target: tuple[str, ...]) -> Any:
        node = root
        for part in target:
            if not isinstance(node, Mapping) or part not in node:
                raise KeyError(part)
            node = node[part]
        return node

    def resolve(value: Any, parents: tuple[str, ...], active: tuple[tuple[str, ...], ...]) -> Any:
        if isinstance(value, Mapping):
            return {k: resolve(v, (*parents, str(k)), active) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v, (*parents, str(i)), active) for i, v in enumerate(value)]
        match = _INTERPOLATION.match(value) if isinstance(value, str) else None
        if match is None:
            return value
        dots, dotted = match.groups()
        # omegaconf: "${.x}" is a sibling of the node holding the reference, each extra dot goes one level up.
        base = parents[:len(parents) - len(dots)] if dots else ()
        target = (*base, *dotted.split("."))
        try:
            found = lookup(target)
        except KeyError:
            return value
        chain = (*active, parents)
        if any(node[:len(target)] == target for node in chain):
            raise InputError(path, "config." + ".".join(parents),
                             f"cyclic interpolation {value}: {' -> '.join('.'.join(node) for node in chain)} -> "
                             f"{'.'.join(target)}")
        return resolve(found, target, chain)

    return resolve(root, (), ())
