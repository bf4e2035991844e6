"""Where :class:`~egostream.stream.schema.WindowResult` records go, and how to read them back.

Two formats:

* ``msgpack``: a sequence of frames, each a 4-byte big-endian payload length and one msgpack map
  (:func:`egostream.stream.schema.encode_frame`), to a file or a TCP/Unix socket (:class:`FrameSocketSink`);
* ``jsonl``: one JSON object per line, the same map as the msgpack payload, to a file.

Every result file (``run``, ``run --resume``, ``replay --stream`` and its ``--resume``, the demo) is written by one
resumable atomic writer, :class:`ResultFile`: records are appended to a hidden partial file that replaces the result
when the stream ends or is stopped; a failed stream leaves the result as it was and its partial file for a resume
(:func:`seed_resume`), which keeps the complete records and cuts a torn last one.

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
from egostream.io.atomic import write_bytes_atomic
from egostream.stream.schema import (FRAME_HEADER, MAX_FRAME_BYTES, WindowResult, decode_payload, encode_frame,
                                     result_from_record, result_to_record)

__all__ = ["SinkFormat", "ResultSink", "ResultFile", "ResultFileFactory", "FrameSocketSink", "open_sink",
           "partial_path", "seed_resume", "StreamProblem", "ReadReport", "ReadResult", "iter_frames", "read_frames",
           "iter_jsonl", "read_jsonl", "read_results", "encode_jsonl_line", "complete_records"]

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


def partial_path(path: str | os.PathLike[str]) -> Path:
    """The hidden file ``.<name>.partial`` next to ``path`` that a stream's results are appended to until it ends."""
    target = Path(path)
    return target.parent / f".{target.name}.partial"


class ResultFile:
    """The result file of a stream: records for ``path`` as msgpack frames or JSONL, appended and flushed one by one
    to :func:`partial_path` (a reader following it sees whole records).

    :meth:`close` (the stream's clean end, or a stop) fsyncs the partial file and renames it over ``path``, so
    ``path`` appears complete or not at all; :meth:`abort` (a failure) leaves ``path`` untouched and keeps the
    partial file for a resume when it holds records. ``resume=True`` keeps the complete records of the partial file
    (cutting a torn last one) and appends: a restarted sink, or a resumed run seeded by :func:`seed_resume`;
    otherwise the partial file starts empty. Used as a context manager, an exception aborts, else it closes.

    Raises:
        InputError: ``format`` is neither ``"msgpack"`` nor ``"jsonl"`` (field ``format``).
    """

    def __init__(self, path: str | os.PathLike[str], format: SinkFormat | str = "msgpack",
                 resume: bool = False) -> None:
        if format not in ("msgpack", "jsonl"):
            raise InputError(path, "format", f"unknown result format {format!r}; expected 'msgpack' or 'jsonl'")
        self.path = Path(path)
        self.partial = partial_path(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.encode: Callable[[WindowResult], bytes] = encode_frame if format == "msgpack" else encode_jsonl_line
        self.count = 0
        if resume and self.partial.exists():
            end, self.count = complete_records(self.partial.read_bytes(), format)
            with self.partial.open("r+b") as stream:
                stream.truncate(end)
        else:
            self.partial.write_bytes(b"")
        self._stream: BinaryIO = self.partial.open("ab")

    def write(self, result: WindowResult) -> None:
        """Append one record and flush it."""
        self._stream.write(self.encode(result))
        self._stream.flush()
        self.count += 1

    def records(self) -> int:
        """Records in the file so far, kept ones included (the ``Sink`` protocol of :mod:`egostream.actors.stages`)."""
        return self.count

    def close(self) -> None:
        """fsync the partial file and rename it over ``path`` (the published result); idempotent."""
        if not self._stream.closed:
            os.fsync(self._stream.fileno())
            self._stream.close()
            os.replace(self.partial, self.path)

    def abort(self) -> None:
        """Close without publishing: ``path`` keeps its old content (or stays absent); the partial file stays for a
        resume when it holds records, else it is removed."""
        if not self._stream.closed:
            self._stream.close()
            if self.count == 0:
                self.partial.unlink(missing_ok=True)

    def __enter__(self) -> ResultFile:
        return self

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()


def open_sink(path: str | os.PathLike[str], format: SinkFormat = "msgpack", *, resume: bool = False) -> ResultFile:
    """The :class:`ResultFile` of ``path`` in ``format`` (``"msgpack"`` frames or ``"jsonl"``)."""
    return ResultFile(path, format, resume)


def seed_resume(path: str | os.PathLike[str], format: SinkFormat | str) -> int:
    """Prepare the resume of the result file ``path``: its partial file gets the complete records of whichever holds
    more, ``path`` (a stopped run) or a partial file left by a killed or failed run; returns that number of records.
    A :class:`ResultFile` opened with ``resume=True`` then appends to them."""
    target, partial = Path(path), partial_path(path)
    best, count = b"", 0
    for candidate in (target, partial):
        if candidate.is_file():
            data = candidate.read_bytes()
            end, records = complete_records(data, format)
            if records > count or not best:
                best, count = data[:end], records
    write_bytes_atomic(partial, best)
    return count


@dataclass(frozen=True)
class ResultFileFactory:
    """``factory(resume)`` -> :class:`ResultFile` of ``path`` (picklable: the sink stage of
    :mod:`egostream.actors.pipeline` builds its file inside its actor, and again, resuming, after a crash)."""

    path: str
    format: str = "msgpack"

    def __call__(self, resume: bool) -> ResultFile:
        return ResultFile(self.path, self.format, resume)


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
