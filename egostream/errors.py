"""The project's exceptions: every bad input names the file and the field at fault.

Every expected failure reaches the user as one line: :func:`describe_failure` finds the :class:`InputError` (or the
:class:`OSError` of an unwritable output) inside whatever carried it (a Ray task or actor error, a chain of
``raise ... from``) and the CLI prints that line and exits 2. :class:`InputError` pickles with its fields, so one
raised in a Ray worker arrives on the driver intact.
"""
from __future__ import annotations

import signal
from os import PathLike
from typing import Any

__all__ = ["InputError", "PredictionCountError", "Interrupted", "describe_failure"]


def _rebuild(cls: type[InputError], message: str, state: dict[str, Any]) -> InputError:
    """Unpickle an :class:`InputError` (or subclass) without re-running its ``__init__``."""
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class InputError(ValueError):
    """Bad input: a missing or malformed file, a wrong field, an unknown label.

    The message always starts with the file (or source) and the field, so a user sees at once where to look:
    ``annotations/v1/fho_lta_val.json: clips[3].verb_label: unknown verb id 900 (taxonomy has 115 verbs)``.
    """

    def __init__(self, path: str | PathLike[str] | None, field: str | None, message: str) -> None:
        self.path = None if path is None else str(path)
        self.field = field
        self.reason = message
        where = ": ".join(part for part in (self.path, field) if part)
        super().__init__(f"{where}: {message}" if where else message)

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception pickles as ``cls(*args)``, which does not fit this constructor (nor a subclass's): rebuild the
        # instance from its message and attributes instead.
        return _rebuild, (type(self), str(self), dict(self.__dict__))


class PredictionCountError(InputError):
    """A prediction file lacks samples, or holds samples the ground truth does not have."""

    def __init__(self, path: str | PathLike[str] | None, field: str | None, missing: list[str],
                 extra: list[str]) -> None:
        self.missing = list(missing)
        self.extra = list(extra)
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first: {', '.join(missing[:3])})")
        if extra:
            parts.append(f"{len(extra)} not in the ground truth (first: {', '.join(extra[:3])})")
        super().__init__(path, field, "; ".join(parts))


class Interrupted(KeyboardInterrupt):
    """The command was stopped by a signal (SIGINT: Ctrl-C, or SIGTERM); ``exit_status`` is 128 + the signal."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        self.signum = int(signum)
        super().__init__(signal.Signals(self.signum).name)

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


def _causes(error: BaseException) -> list[BaseException]:
    """``error`` and what it wraps, outermost first: Ray's ``cause`` (task and actor errors), then ``__cause__``."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        wrapped = getattr(current, "cause", None)
        current = wrapped if isinstance(wrapped, BaseException) else current.__cause__
    return chain


def describe_failure(error: BaseException) -> str | None:
    """The one line to show for an expected failure, or ``None`` for a bug (which keeps its traceback).

    Expected: an :class:`InputError` anywhere in the chain of ``error`` (a Ray ``RayTaskError`` / ``RayActorError``
    is unwrapped through its ``cause``; Ray's error subclassing the cause is not trusted for its message, which is
    a traceback), or an :class:`OSError` naming a file (an output that cannot be written).
    """
    chain = _causes(error)
    # The outermost InputError that is not a Ray wrapper (those carry ``cause``) says the most: one raised ``from``
    # another (a source that gave up after failed opens) names the whole story.
    for link in chain:
        if isinstance(link, InputError) and getattr(link, "cause", None) is None:
            return str(link)
    for link in reversed(chain):
        if isinstance(link, OSError) and link.filename is not None and getattr(link, "cause", None) is None:
            return f"{link.filename}: {link.strerror or type(link).__name__}"
    return None
