"""A small name -> object registry, one per kind of thing (task, metric, feature extractor, source)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects. ``@REGISTRY.register("name")`` adds one; ``REGISTRY.get("name")`` finds it.

    Adding a new task, extractor or source is one new module that registers itself under a new name.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._items:
                raise KeyError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return add

    def unregister(self, name: str) -> T:
        """Remove ``name`` (a plug-in being unloaded); returns what was registered."""
        try:
            return self._items.pop(name)
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}") from None

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise KeyError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def in_order(self) -> list[str]:
        """The names in registration order (where the first match wins, as for cross-task modules)."""
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)
