"""Typed, validated access to the fields of a JSON record, with errors that name the file and the field path.

Every Ego4D reader goes through :class:`JsonRecord`: a bad type or a missing key raises
:class:`egostream.errors.InputError` whose field is the full path inside the file, e.g. ``clips[3].verb_label``.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterator
from os import PathLike
from pathlib import Path
from typing import Any

from egostream.errors import InputError

__all__ = ["JsonRecord", "load_json", "load_json_record", "read_utf8"]

_MISSING = object()


def read_utf8(path: str | PathLike[str]) -> str:
    """The text of the UTF-8 file ``path``; a missing file, a folder, an unreadable file or bytes that are not UTF-8
    are an InputError naming ``path`` (non-UTF-8: the byte offset)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(path, None, "is a folder, not a file")
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, None, "file not found") from None
    except UnicodeDecodeError as error:
        raise InputError(path, "encoding", f"not UTF-8: byte {error.object[error.start]:#04x} at offset "
                                           f"{error.start}") from None
    except OSError as error:
        raise InputError(path, None, f"cannot read the file: {error.strerror or error}") from None


def load_json(path: str | PathLike[str]) -> Any:
    """Parse the UTF-8 JSON document in ``path``.

    A missing or unreadable file, non-UTF-8 bytes, malformed JSON, nesting deeper than Python's parser can follow
    (about 1,000 levels; the Ego4D files nest 6) or a number too large for a float (``1e400``) is an InputError
    naming ``path``. ``NaN`` and ``Infinity`` parse (the readers of numbers refuse them where a finite value is
    needed).
    """
    path = Path(path)
    text = read_utf8(path)
    try:
        return json.loads(text, parse_float=_finite_float)
    except json.JSONDecodeError as error:
        raise InputError(path, None, f"malformed JSON at line {error.lineno} column {error.colno}: {error.msg}") from None
    except ValueError as error:
        raise InputError(path, None, str(error)) from None
    except RecursionError:
        raise InputError(path, None, "JSON nested too deeply (arrays or objects hundreds of levels deep)") from None


def _finite_float(text: str) -> float:
    """A JSON number; one that overflows a float (``1e400``) is refused instead of becoming infinity."""
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:40]} does not fit a float")
    return value


def load_json_record(path: str | PathLike[str]) -> JsonRecord:
    """Parse the JSON object in ``path``; a missing file, malformed JSON or a non-object top level is an InputError."""
    return JsonRecord(Path(path), "", load_json(path))


class JsonRecord:
    """One JSON object of a file, at a known field path (``""`` for the top level).

    Accessors check the type of the value they return; ``optional_*`` return ``None`` when the key is absent or null.
    """

    def __init__(self, path: Path, field: str, value: Any) -> None:
        if not isinstance(value, dict):
            raise InputError(path, field or None, f"expected a JSON object, got {_type_name(value)}")
        self.path = path
        self.field = field
        self._value: dict[str, Any] = value

    def field_path(self, key: str) -> str:
        """The dotted path of ``key`` inside the file, e.g. ``clips[3].verb_label``."""
        return f"{self.field}.{key}" if self.field else key

    def error(self, key: str | None, message: str) -> InputError:
        """An InputError for ``key`` of this record (the record itself when ``key`` is None)."""
        return InputError(self.path, self.field_path(key) if key is not None else (self.field or None), message)

    def has(self, key: str) -> bool:
        """Whether ``key`` is present with a non-null value."""
        return self._value.get(key) is not None

    def _get(self, key: str, optional: bool) -> Any:
        value = self._value.get(key, _MISSING)
        if value is _MISSING or value is None:
            if optional:
                return None
            raise self.error(key, "missing field" if value is _MISSING else "must not be null")
        return value

    def _typed(self, key: str, optional: bool, accepted: tuple[type, ...], expected: str) -> Any:
        value = self._get(key, optional)
        if value is None:
            return None
        if isinstance(value, bool) and bool not in accepted or not isinstance(value, accepted):
            raise self.error(key, f"expected {expected}, got {_type_name(value)} {value!r:.60}")
        return value

    def string(self, key: str) -> str:
        return self._typed(key, False, (str,), "a string")

    def optional_string(self, key: str) -> str | None:
        return self._typed(key, True, (str,), "a string")

    def integer(self, key: str) -> int:
        return self._typed(key, False, (int,), "an integer")

    def optional_integer(self, key: str) -> int | None:
        return self._typed(key, True, (int,), "an integer")

    def number(self, key: str) -> float:
        """A finite number (``NaN`` and ``Infinity``, which Python's JSON parser accepts, are refused)."""
        return self._finite(key, self._typed(key, False, (int, float), "a number"))

    def optional_number(self, key: str) -> float | None:
        value = self._typed(key, True, (int, float), "a number")
        return None if value is None else self._finite(key, value)

    def _finite(self, key: str, value: int | float) -> float:
        number = float(value)
        if not math.isfinite(number):
            raise self.error(key, f"expected a finite number, got {value!r}")
        return number

    def boolean(self, key: str) -> bool:
        return self._typed(key, False, (bool,), "a boolean")

    def optional_boolean(self, key: str) -> bool | None:
        return self._typed(key, True, (bool,), "a boolean")

    def string_or_integer(self, key: str) -> str:
        """A string or an integer identifier, returned as a string."""
        return str(self._typed(key, False, (str, int), "a string or an integer"))

    def records(self, key: str) -> Iterator[JsonRecord]:
        """The JSON objects of the list at ``key``, each at its own field path ``key[i]``."""
        items = self._typed(key, False, (list,), "a list")
        for index, item in enumerate(items):
            yield JsonRecord(self.path, f"{self.field_path(key)}[{index}]", item)

    def record(self, key: str) -> JsonRecord:
        return JsonRecord(self.path, self.field_path(key), self._get(key, False))

    def optional_record(self, key: str) -> JsonRecord | None:
        value = self._get(key, True)
        return None if value is None else JsonRecord(self.path, self.field_path(key), value)

    def string_list(self, key: str) -> list[str]:
        items = self._typed(key, False, (list,), "a list")
        for index, item in enumerate(items):
            if not isinstance(item, str):
                raise self.error(f"{key}[{index}]", f"expected a string, got {_type_name(item)}")
        return list(items)


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)
