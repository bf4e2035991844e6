"""Where :class:`~egostream.stream.schema.WindowResult` records go, and how to read them back.

Two formats:

* ``msgpack``: a sequence of frames, each a 4-byte big-endian payload length and one msgpack map
  (:func:`egostream.stream.schema.encode_frame`), to a file (:class:`FrameFileSink`) or a TCP/Unix socket
  (:class:`FrameSocketSink`);
* ``jsonl``: one JSON object per line (:class:`JsonlSink`), the same map as the msgpack payload.

The readers (:func:`read_frames`, :func:`read_jsonl`, :func:`read_results`) never fail on a damaged stream: a record
that does not decode is skipped and reported as *corrupt*, an incomplete last record (a writer that was killed, a
file copied while written) is reported as *truncated*; both land in a :class:`ReadReport` next to the good records.
"""
from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, Literal, Protocol

from egostream.errors import InputError
from egostream.io.atomic import AtomicFile
from egostream.stream.schema import (FRAME_HEADER, MAX_FRAME_BYTES, WindowResult, decode_payload, encode_frame,
                                     result_from_record, result_to_record)

__all__ = ["SinkFormat", "ResultSink", "FrameFileSink", "FrameSocketSink", "JsonlSink", "open_sink",
           "StreamProblem", "ReadReport", "ReadResult", "iter_frames", "read_frames", "iter_jsonl", "read_jsonl",
           "read_results", "encode_jsonl_line", "complete_records"]

SinkFormat = Literal["msgpack", "jsonl"]


class ResultSink(Protocol):
    """Anything that takes results one at a time and is closed at the end of the stream."""

    def write(self, result: WindowResult) -> None: ...

    def close(self) -> None: ...


def encode_jsonl_line(result: WindowResult) -> bytes:
    """One JSONL line (UTF-8, ending in ``\\n``): the record map with ``schema_version`` first.

    Floats are written with Python's shortest round-tripping repr; a NaN (OSCC over an empty span) is written as
    ``NaN``, which Python's and most JSON readers accept.
    """
    return (json.dumps(result_to_record(result), ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


class _FileSink:
    """A byte sink on a file; ``atomic=True`` writes a hidden temporary file and renames it on :meth:`close`."""

    def __init__(self, path: str | os.PathLike[str], *, atomic: bool = False) -> None:
        self.path = Path(path)
        self.atomic = atomic
        self.count = 0
        if atomic:
            self._atomic_file: AtomicFile | None = AtomicFile(self.path)
            self._stream: BinaryIO = self._atomic_file.stream
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._atomic_file = None
            self._stream = open(self.path, "wb")  # noqa: SIM115 - closed by close()

    def _encode(self, result: WindowResult) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def keep(self, data: bytes, records: int) -> None:
        """Start the output with ``records`` complete, already encoded records (``data``; a resumed stream)."""
        self._stream.write(data)
        self._stream.flush()
        self.count += records

    def write(self, result: WindowResult) -> None:
        """Append one record and flush it, so a reader following the file sees whole records."""
        self._stream.write(self._encode(result))
        self._stream.flush()
        self.count += 1

    def records(self) -> int:
        """Records written so far (the ``Sink`` protocol of :mod:`egostream.actors.stages`)."""
        return self.count

    def close(self) -> None:
        """Close the file (and, when atomic, fsync and move it to ``path``)."""
        if self._stream.closed:
            return
        if self._atomic_file is not None:
            self._atomic_file.commit()
        else:
            self._stream.close()

    def abort(self) -> None:
        """Close without publishing: an atomic sink deletes its temporary file (``path`` is left untouched)."""
        if self._atomic_file is not None:
            self._atomic_file.abort()
        else:
            self._stream.close()

    def __enter__(self) -> _FileSink:
        return self

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        if exc_type is not None and self.atomic:
            self.abort()
        else:
            self.close()


class FrameFileSink(_FileSink):
    """Length-prefixed msgpack frames to a file."""

    def _encode(self, result: WindowResult) -> bytes:
        return encode_frame(result)


class JsonlSink(_FileSink):
    """One JSON object per line to a file."""

    def _encode(self, result: WindowResult) -> bytes:
        return encode_jsonl_line(result)


class FrameSocketSink:
    """Length-prefixed msgpack frames to a connected stream socket.

    Args:
        target: a connected ``socket.socket``, or a ``(host, port)`` TCP address to connect to.
    """

    def __init__(self, target: socket.socket | tuple[str, int]) -> None:
        self._socket = target if isinstance(target, socket.socket) else socket.create_connection(target)
        self.count = 0

    def write(self, result: WindowResult) -> None:
        self._socket.sendall(encode_frame(result))
        self.count += 1

    def records(self) -> int:
        """Records sent so far."""
        return self.count

    def close(self) -> None:
        """Half-close (the reader sees the end of the stream), then close the socket."""
        try:
            self._socket.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self._socket.close()

    def __enter__(self) -> FrameSocketSink:
        return self

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        self.close()


def open_sink(path: str | os.PathLike[str], format: SinkFormat = "msgpack", *, atomic: bool = True) -> _FileSink:
    """A file sink for ``format`` (``"msgpack"`` frames or ``"jsonl"``); atomic by default (see :class:`_FileSink`)."""
    if format == "msgpack":
        return FrameFileSink(path, atomic=atomic)
    if format == "jsonl":
        return JsonlSink(path, atomic=atomic)
    raise InputError(None, "format", f"unknown result format {format!r}; expected 'msgpack' or 'jsonl'")


def complete_records(data: bytes, format: SinkFormat | str) -> tuple[int, int]:
    """``(bytes, records)``: the length and count of the complete records at the start of a result file's ``data``
    (``"msgpack"`` frames or ``"jsonl"`` lines); what follows them is a torn last record of an interrupted writer."""
    if format == "jsonl":
        end = data.rfind(b"\n") + 1
        return end, data.count(b"\n", 0, end)
    offset = count = 0
    while offset + FRAME_HEADER.size <= len(data):
        (size,) = FRAME_HEADER.unpack_from(data, offset)
        if offset + FRAME_HEADER.size + size > len(data):
            break
        offset += FRAME_HEADER.size + size
        count += 1
    return offset, count


@dataclass(frozen=True)
class StreamProblem:
    """A damaged record: its position (0-based record ``index``, byte ``offset``), ``kind`` and what is wrong."""

    index: int
    offset: int
    kind: Literal["truncated", "corrupt"]
    message: str

    def __str__(self) -> str:
        return f"record {self.index} at byte {self.offset}: {self.kind}: {self.message}"


@dataclass
class ReadReport:
    """What a reader found: ``records`` decoded fine, ``problems`` in stream order."""

    source: str
    records: int = 0
    problems: list[StreamProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def truncated(self) -> StreamProblem | None:
        """The incomplete last record, if the stream ended inside one."""
        return next((p for p in self.problems if p.kind == "truncated"), None)

    @property
    def corrupt(self) -> list[StreamProblem]:
        return [p for p in self.problems if p.kind == "corrupt"]

    def summary(self) -> str:
        """One line per problem after a count line, e.g. for a CLI warning."""
        head = f"{self.source}: {self.records} records read"
        if self.ok:
            return head
        return "\n".join([f"{head}, {len(self.problems)} damaged:", *(f"  {p}" for p in self.problems)])


@dataclass
class ReadResult:
    """The good records of a stream and the report on the rest."""

    results: list[WindowResult]
    report: ReadReport


def _read_up_to(stream: IO[bytes], size: int) -> bytes:
    """Read ``size`` bytes, fewer only at the end of the stream (sockets and pipes may return short reads)."""
    chunks, missing = [], size
    while missing:
        chunk = stream.read(missing)
        if not chunk:
            break
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def iter_frames(stream: IO[bytes], report: ReadReport) -> Iterator[WindowResult]:
    """Decode length-prefixed msgpack frames from a binary stream until its end, recording problems in ``report``.

    A frame whose payload does not decode is skipped (*corrupt*) and reading goes on at the next frame; a length
    prefix above :data:`~egostream.stream.schema.MAX_FRAME_BYTES` is *corrupt* too but ends the reading, since
    the next frame boundary is then unknown; an end of stream inside a frame is *truncated*.
    """
    offset, index = 0, 0
    while True:
        header = _read_up_to(stream, FRAME_HEADER.size)
        if not header:
            return
        if len(header) < FRAME_HEADER.size:
            report.problems.append(StreamProblem(index, offset, "truncated",
                                                 f"the stream ends inside a frame header ({len(header)} of "
                                                 f"{FRAME_HEADER.size} bytes)"))
            return
        (size,) = FRAME_HEADER.unpack(header)
        if size > MAX_FRAME_BYTES:
            report.problems.append(StreamProblem(index, offset, "corrupt",
                                                 f"frame length {size} exceeds {MAX_FRAME_BYTES} bytes (a damaged "
                                                 "header); the rest of the stream cannot be framed and is not read"))
            return
        payload = _read_up_to(stream, size)
        if len(payload) < size:
            report.problems.append(StreamProblem(index, offset, "truncated",
                                                 f"the stream ends inside a frame ({len(payload)} of {size} "
                                                 "payload bytes)"))
            return
        try:
            result = decode_payload(payload, f"frame {index}")
        except InputError as error:
            report.problems.append(StreamProblem(index, offset, "corrupt", str(error)))
        else:
            report.records += 1
            yield result
        offset += FRAME_HEADER.size + size
        index += 1


def read_frames(source: str | os.PathLike[str] | IO[bytes]) -> ReadResult:
    """All good records of a msgpack frame file (or open binary stream), with the :class:`ReadReport`."""
    if isinstance(source, (str, os.PathLike)):
        return _read_file(source, iter_frames)
    name = getattr(source, "name", None)
    report = ReadReport(name if isinstance(name, str) else "<stream>")
    return ReadResult(list(iter_frames(source, report)), report)


def iter_jsonl(stream: IO[bytes], report: ReadReport) -> Iterator[WindowResult]:
    """Decode JSONL records; a bad line is *corrupt*, a bad last line without its newline is *truncated*."""
    offset = 0
    for index, line in enumerate(stream):
        complete = line.endswith(b"\n")
        try:
            result = result_from_record(json.loads(line.decode("utf-8")), f"line {index + 1}")
        except (ValueError, InputError) as error:
            kind: Literal["truncated", "corrupt"] = "corrupt" if complete else "truncated"
            reason = str(error) if isinstance(error, InputError) else f"line {index + 1}: not JSON ({error})"
            report.problems.append(StreamProblem(index, offset, kind, reason))
        else:
            report.records += 1
            yield result
        offset += len(line)


def read_jsonl(path: str | os.PathLike[str]) -> ReadResult:
    """All good records of a JSONL result file, with the :class:`ReadReport`."""
    return _read_file(path, iter_jsonl)


def _read_file(path: str | os.PathLike[str],
               decode: Callable[[IO[bytes], ReadReport], Iterator[WindowResult]]) -> ReadResult:
    """The good records ``decode`` finds in the file at ``path``, with the :class:`ReadReport`."""
    report = ReadReport(str(path))
    try:
        with open(path, "rb") as stream:
            return ReadResult(list(decode(stream, report)), report)
    except FileNotFoundError:
        raise InputError(path, None, "no such result file") from None


def read_results(path: str | os.PathLike[str], format: SinkFormat | None = None) -> ReadResult:
    """Read a result file; ``format`` defaults to ``jsonl`` for ``*.jsonl`` names and ``msgpack`` otherwise."""
    chosen = format or ("jsonl" if Path(path).suffix == ".jsonl" else "msgpack")
    if chosen == "jsonl":
        return read_jsonl(path)
    if chosen == "msgpack":
        return read_frames(path)
    raise InputError(path, "format", f"unknown result format {chosen!r}; expected 'msgpack' or 'jsonl'")
