"""Grouping annotation records by a key, keeping first-appearance order (Python dict order, as the authors do)."""
from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

__all__ = ["group_in_order"]

ItemT = TypeVar("ItemT")
KeyT = TypeVar("KeyT", bound=Hashable)


def group_in_order(items: Iterable[ItemT], key: Callable[[ItemT], KeyT]) -> dict[KeyT, list[ItemT]]:
    """Items grouped by ``key``; groups in order of first appearance, items in input order within a group."""
    groups: dict[KeyT, list[ItemT]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups
