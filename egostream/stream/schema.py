"""The output schema of the streaming engine: one :class:`WindowResult` per emitted window.

A result is a tree of frozen dataclasses. On the wire it is one msgpack map (or one JSON object) whose keys are the
field names, in field order, so the schema version comes first::

    {"schema_version": 1, "schema": "egostream.window_result", "stream_id": "...", "window_index": 3,
     "rows": 120, "time_s": 64.0, "received_wall_s": ..., "emitted_wall_s": ..., "latency_ms": {"backbone": ...},
     "ar": {"span": {"start_s": 56.0, "end_s": 64.0}, "verbs": [{"id": 3, "name": "cut", "score": 0.41}, ...], ...}, ...}

Every class id travels with its name (LTA verb/noun taxonomy, MQ class names), every time says its unit in its
name (``_s`` seconds, ``_ms`` milliseconds, ``rows`` feature rows, ``frame`` video frames). Stream times are seconds
from the first frame of the stream (feature row ``i`` covers frames ``[16 i, 16 i + 16)``, its node sits at
``(0.5 + i) * 16 / 30`` s); wall-clock times are UNIX seconds.

A stream of results is a sequence of frames, each a 4-byte big-endian payload length followed by the msgpack map
(:func:`encode_frame`); :mod:`egostream.io.sinks` writes and reads them.
"""
from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgpack

from egostream.config import from_dict, to_dict
from egostream.errors import InputError

__all__ = [
    "SCHEMA_NAME", "SCHEMA_VERSION", "FRAME_HEADER", "MAX_FRAME_BYTES",
    "Span", "Label", "ScoredLabel", "Action", "ScoredAction", "PrototypeMatch", "Moment",
    "ActionReadout", "AnticipationReadout", "StateChangeReadout", "KeyframeReadout", "MomentsReadout",
    "WindowResult",
    "result_to_record", "result_from_record", "encode_frame", "decode_payload", "json_safe"]

SCHEMA_NAME = "egostream.window_result"
#: Version of the record layout. A reader refuses records of a newer version than it knows.
SCHEMA_VERSION = 1
#: Frame header: the payload length in bytes, unsigned 32-bit big-endian.
FRAME_HEADER = struct.Struct(">I")
#: A length prefix above this is taken as a corrupt header (the stream cannot be re-synchronised after it).
MAX_FRAME_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Span:
    """A stretch of stream time, ``[start_s, end_s]`` seconds (both ends inclusive where nodes are selected)."""

    start_s: float
    end_s: float


@dataclass(frozen=True)
class Label:
    """A class id with its name."""

    id: int
    name: str


@dataclass(frozen=True)
class ScoredLabel:
    """A class id, its name and its probability (softmax or sigmoid, in [0, 1])."""

    id: int
    name: str
    score: float


@dataclass(frozen=True)
class Action:
    """A (verb, noun) pair."""

    verb: Label
    noun: Label


@dataclass(frozen=True)
class ScoredAction:
    """A (verb, noun) pair with the probability of each."""

    verb: ScoredLabel
    noun: ScoredLabel


@dataclass(frozen=True)
class PrototypeMatch:
    """One backpack prototype near the query: its row, (verb, noun) pair and cosine similarity in [-1, 1]."""

    prototype: int
    verb: Label
    noun: Label
    similarity: float


@dataclass(frozen=True)
class Moment:
    """One detected moment (MQ) in stream seconds.

    ``level`` is the hierarchy level of the node that produced it and ``node`` that node's absolute index at its
    level (node ``k`` of level ``d`` is anchored at feature row ``2**d * k``). ``final`` is True when that node can
    no longer change; a final moment is emitted in exactly one window, the first that finds its node final (see
    :class:`egostream.stream.readouts.MomentLedger`), with that window's score and bounds.
    """

    start_s: float
    end_s: float
    label: Label
    score: float
    level: int
    node: int
    final: bool


@dataclass(frozen=True)
class ActionReadout:
    """AR: the current action over the trailing ``span``; top-k, best first."""

    span: Span
    verbs: tuple[ScoredLabel, ...]
    nouns: tuple[ScoredLabel, ...]


@dataclass(frozen=True)
class AnticipationReadout:
    """LTA: the next ``Z`` actions after the observed ``span``.

    ``top1`` is the most likely verb and noun of each future step (``Z`` items); ``samples`` holds ``K`` sequences of
    ``Z`` actions drawn from the per-step softmax with a generator seeded by ``seed``.
    """

    span: Span
    top1: tuple[ScoredAction, ...]
    samples: tuple[tuple[Action, ...], ...]
    seed: int


@dataclass(frozen=True)
class StateChangeReadout:
    """OSCC over the trailing window ``span``: did an object change state, and with which probability."""

    span: Span
    state_change: bool
    probability: float


@dataclass(frozen=True)
class KeyframeReadout:
    """PNR over the trailing window ``span``: the point-of-no-return keyframe.

    ``time_s`` is the keyframe's stream time (``frame / fps``), ``offset_s`` its distance from the window start,
    ``frame`` its absolute frame number, ``index`` its position among the 16 sampled frames and ``score`` its logit.
    """

    span: Span
    time_s: float
    offset_s: float
    frame: int
    index: int
    score: float


@dataclass(frozen=True)
class MomentsReadout:
    """MQ over the retained ``horizon``: the moments that became final in this window (never repeated
    later) and every provisional moment, by decreasing score."""

    horizon: Span
    moments: tuple[Moment, ...]


@dataclass(frozen=True)
class WindowResult:
    """Everything the engine says about one window (one emission every ``emit_every`` seconds of stream).

    Attributes:
        schema_version: :data:`SCHEMA_VERSION` of the writer (always the first key on the wire).
        schema: :data:`SCHEMA_NAME`, so a record names its own kind.
        stream_id: the stream (a video uid when replaying Ego4D features).
        window_index: 0, 1, 2, ... in emission order.
        rows: feature rows received so far; the readouts see rows ``[0, rows)``.
        time_s: stream time covered by those rows (``rows * stride_frames / fps``).
        received_wall_s: UNIX time at which the window's last row was received.
        emitted_wall_s: UNIX time at which the result was emitted.
        latency_ms: stage name -> milliseconds (engine update, each readout, ``total`` receive-to-emit).
        ar, lta, oscc, pnr, mq: the readout of each task the model has (``None`` for a task it lacks).
        evidence: support task -> the backpack prototypes nearest to the current action, nearest first.
        plugins: the readouts of plug-in tasks (tasks without a field of their own), by the task's result field,
            as plain maps (the readout dataclass's fields). Written only when not empty, so a stream of the
            built-in tasks has exactly the keys above.
        filled: True when a row pushed since the previous window was a refill (a live source dropped windows and
            the pipeline repeated the last row in their place); records written before this field read as False.
        attention: a translation (EgoT2-s) model's share of the primary task's attention paid to each source task
            in this window's readout (sums to 1; empty, and not written, for other models).
        discontinuity: a timestamp discontinuity of the source (a jump, a 2^33 wrap, a reconnect) falls in the
            windows this result is the first to include (:mod:`egostream.io.timeline`).
        decode_errors: the decoder skipped or flagged corrupt frames in those windows (:mod:`egostream.io.decoders`).
    """

    stream_id: str
    window_index: int
    rows: int
    time_s: float
    received_wall_s: float
    emitted_wall_s: float
    latency_ms: dict[str, float] = field(default_factory=dict)
    ar: ActionReadout | None = None
    lta: AnticipationReadout | None = None
    oscc: StateChangeReadout | None = None
    pnr: KeyframeReadout | None = None
    mq: MomentsReadout | None = None
    evidence: dict[str, tuple[PrototypeMatch, ...]] = field(default_factory=dict)
    plugins: dict[str, Any] = field(default_factory=dict)
    attention: dict[str, float] = field(default_factory=dict)
    filled: bool = False
    discontinuity: bool = False
    decode_errors: bool = False
    schema_version: int = SCHEMA_VERSION
    schema: str = SCHEMA_NAME


# The version key is written first, then the fields in declaration order (which ends with these two).
_HEAD_KEYS = ("schema_version", "schema")


def result_to_record(result: WindowResult) -> dict[str, Any]:
    """The plain map of ``result`` (str keys, lists, numbers, bools, None): ``schema_version`` first; ``plugins``
    only when a plug-in task reported, ``attention`` only for a translation model."""
    record = to_dict(result)
    for optional in ("plugins", "attention"):
        if not record[optional]:
            del record[optional]
    return {**{key: record.pop(key) for key in _HEAD_KEYS}, **record}


def result_from_record(record: Any, source: str | None = None) -> WindowResult:
    """Rebuild a :class:`WindowResult` from its map, checking the version and every field's type.

    Raises:
        InputError: naming ``source`` and the field when the map is not a valid record.
    """
    if not isinstance(record, Mapping):
        raise InputError(source, None, f"expected a map, got {type(record).__name__}")
    version = record.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise InputError(source, "schema_version", f"missing or not an integer: {version!r}")
    if version > SCHEMA_VERSION:
        raise InputError(source, "schema_version", f"version {version} is newer than this reader "
                                                   f"(it reads up to {SCHEMA_VERSION}); upgrade egostream")
    if record.get("schema") != SCHEMA_NAME:
        raise InputError(source, "schema", f"expected {SCHEMA_NAME!r}, got {record.get('schema')!r}")
    return from_dict(WindowResult, record, source=source)


def encode_frame(result: WindowResult) -> bytes:
    """One frame: the 4-byte big-endian length of the msgpack payload, then the payload."""
    payload = msgpack.packb(result_to_record(result), use_bin_type=True)
    return FRAME_HEADER.pack(len(payload)) + payload


def decode_payload(payload: bytes, source: str | None = None) -> WindowResult:
    """A :class:`WindowResult` from one frame's msgpack payload (without the length prefix).

    Raises:
        InputError: the payload is not one msgpack value, or not a valid record.
    """
    try:
        record = msgpack.unpackb(payload, raw=False, strict_map_key=True)
    except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, ValueError) as error:
        raise InputError(source, None, f"not a msgpack map ({type(error).__name__}: {error})") from None
    return result_from_record(record, source)


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by ``None`` (JSON has no NaN; OSCC over an empty span
    is NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value
