"""Result sinks and readers: round trips, truncated and corrupt records reported (never raised); the resumable atomic
result file: published on close, a failure keeps the partial file for a resume, which cuts a torn record and
appends."""
from __future__ import annotations

import dataclasses
import io
import socket
import threading
from pathlib import Path

import msgpack
import pytest

from egostream.errors import InputError
from egostream.io.sinks import (FrameSocketSink, ReadReport, ResultFile, encode_jsonl_line, iter_frames, open_sink,
                                partial_path, read_frames, read_jsonl, read_results, seed_resume)
from egostream.stream.schema import FRAME_HEADER, MAX_FRAME_BYTES, encode_frame
from tests.stream.test_schema import full_result

RESULTS = [full_result(i) for i in range(4)]


@pytest.mark.parametrize("fmt", ["msgpack", "jsonl"])
def test_file_round_trip(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"out.{fmt}"
    with open_sink(path, fmt) as sink:  # type: ignore[arg-type]
        for result in RESULTS:
            sink.write(result)
        assert sink.records() == len(RESULTS)
    read = read_results(path)
    assert read.results == RESULTS
    assert read.report.ok and read.report.records == len(RESULTS)


def test_every_cut_of_the_last_frame_is_reported_as_truncated() -> None:
    frames = [encode_frame(r) for r in RESULTS[:2]]
    whole = frames[0]
    last = frames[-1]
    for cut in range(1, len(last)):
        read = read_frames(io.BytesIO(whole + last[:cut]))
        assert read.results == RESULTS[:1]
        truncated = read.report.truncated
        assert truncated is not None and truncated.index == 1 and truncated.offset == len(whole)
        assert read.report.corrupt == []


def test_corrupt_payload_is_skipped_and_reported_and_reading_goes_on() -> None:
    garbage = b"\xc1\xc1\xc1"
    not_a_record = msgpack.packb({"schema_version": 1, "schema": "egostream.window_result", "rows": "x"})
    stream = b"".join([encode_frame(RESULTS[0]), FRAME_HEADER.pack(len(garbage)) + garbage,
                       FRAME_HEADER.pack(len(not_a_record)) + not_a_record, encode_frame(RESULTS[1])])
    read = read_frames(io.BytesIO(stream))
    assert read.results == RESULTS[:2]
    assert [(p.index, p.kind) for p in read.report.problems] == [(1, "corrupt"), (2, "corrupt")]
    assert "not a msgpack map" in read.report.problems[0].message
    assert "frame 2" in read.report.problems[1].message and "rows" in read.report.problems[1].message
    assert read.report.problems[1].offset == len(encode_frame(RESULTS[0])) + FRAME_HEADER.size + len(garbage)
    assert "2 damaged" in read.report.summary()


def test_impossible_length_header_stops_reading_with_a_report() -> None:
    stream = encode_frame(RESULTS[0]) + FRAME_HEADER.pack(MAX_FRAME_BYTES + 1) + b"\x00" * 10
    read = read_frames(io.BytesIO(stream))
    assert read.results == RESULTS[:1]
    (problem,) = read.report.problems
    assert problem.kind == "corrupt" and "cannot be framed" in problem.message


def test_truncated_file_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "cut.msgpack"
    with open_sink(path) as sink:
        for result in RESULTS:
            sink.write(result)
    path.write_bytes(path.read_bytes()[:-5])
    read = read_frames(path)
    assert read.results == RESULTS[:-1]
    assert read.report.truncated is not None and str(path) in read.report.summary()


def test_jsonl_truncated_last_line_and_corrupt_middle_line(tmp_path: Path) -> None:
    lines = [encode_jsonl_line(r) for r in RESULTS]
    path = tmp_path / "out.jsonl"
    path.write_bytes(lines[0] + b"{not json\n" + lines[1] + lines[2][:-20])
    read = read_jsonl(path)
    assert read.results == RESULTS[:2]
    assert [(p.index, p.kind) for p in read.report.problems] == [(1, "corrupt"), (3, "truncated")]
    assert read.report.problems[0].offset == len(lines[0])


def test_jsonl_record_with_bad_field_is_corrupt(tmp_path: Path) -> None:
    bad = encode_jsonl_line(RESULTS[0]).replace(b'"rows":120', b'"rows":"many"')
    path = tmp_path / "bad.jsonl"
    path.write_bytes(bad + encode_jsonl_line(RESULTS[1]))
    read = read_jsonl(path)
    assert read.results == RESULTS[1:2]
    assert "line 1" in read.report.problems[0].message and "rows" in read.report.problems[0].message


def test_socket_stream_round_trip() -> None:
    writer_socket, reader_socket = socket.socketpair()
    received: list = []
    report = ReadReport("socket")

    def receive() -> None:
        with reader_socket.makefile("rb") as stream:
            received.extend(iter_frames(stream, report))

    thread = threading.Thread(target=receive)
    thread.start()
    with FrameSocketSink(writer_socket) as sink:
        for result in RESULTS:
            sink.write(result)
    thread.join(timeout=10)
    reader_socket.close()
    assert received == RESULTS and report.ok


def test_atomic_sink_publishes_only_on_close(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "out.msgpack"
    sink = open_sink(path, "msgpack")
    sink.write(RESULTS[0])
    assert not path.exists()
    sink.close()
    assert read_frames(path).results == RESULTS[:1]
    assert [p.name for p in path.parent.iterdir()] == ["out.msgpack"]


def test_atomic_sink_interrupted_leaves_no_result_only_the_partial_file(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    with pytest.raises(RuntimeError):
        with open_sink(path, "jsonl") as sink:
            sink.write(RESULTS[0])
            raise RuntimeError("stream died")
    assert list(tmp_path.iterdir()) == [partial_path(path)]  # kept for a resume
    assert read_jsonl(partial_path(path)).results == RESULTS[:1]
    with pytest.raises(RuntimeError):
        with open_sink(tmp_path / "empty.jsonl", "jsonl"):
            raise RuntimeError("died before its first record")
    assert list(tmp_path.iterdir()) == [partial_path(path)]


def test_the_partial_file_is_readable_while_written(tmp_path: Path) -> None:
    path = tmp_path / "live.msgpack"
    with open_sink(path) as sink:
        sink.write(RESULTS[0])
        assert read_frames(partial_path(path)).results == RESULTS[:1]


def test_missing_file_and_unknown_format_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such result file"):
        read_frames(tmp_path / "none.msgpack")
    with pytest.raises(InputError, match="format"):
        open_sink(tmp_path / "x", "csv")  # type: ignore[arg-type]


def test_jsonl_and_msgpack_carry_the_same_record(tmp_path: Path) -> None:
    result = dataclasses.replace(RESULTS[0], stream_id="same")
    for fmt, name in (("msgpack", "a.bin"), ("jsonl", "b.jsonl")):
        with open_sink(tmp_path / name, fmt) as sink:  # type: ignore[arg-type]
            sink.write(result)
    assert read_results(tmp_path / "a.bin").results == read_results(tmp_path / "b.jsonl").results == [result]


def test_a_resumed_result_file_cuts_the_torn_record(tmp_path: Path) -> None:
    for fmt, torn in (("msgpack", b"\x00\x00\x01\x00\x81"), ("jsonl", b'{"schema_vers')):
        path = tmp_path / f"out.{fmt}"
        sink = ResultFile(path, fmt)
        sink.write(RESULTS[0])  # the sink dies here: nothing is published, the partial file ends in a torn record
        with partial_path(path).open("ab") as stream:
            stream.write(torn)
        assert not path.exists()
        resumed = ResultFile(path, fmt, resume=True)
        assert resumed.records() == 1
        resumed.write(RESULTS[1])
        resumed.close()
        read = read_results(path, fmt)
        assert read.report.ok and read.results == RESULTS[:2] and not partial_path(path).exists()


def test_resume_seeds_the_partial_file_with_the_longer_of_result_and_partial(tmp_path: Path) -> None:
    path = tmp_path / "out.msgpack"
    stopped = ResultFile(path, "msgpack")
    stopped.write(RESULTS[0])
    stopped.close()  # a stopped run: one record published
    killed = ResultFile(path, "msgpack", resume=True)
    for result in RESULTS[:3]:
        killed.write(result)  # a killed run: three records in the partial file, never published
    assert seed_resume(path, "msgpack") == 3
    assert ResultFile(path, "msgpack", resume=True).records() == 3
    abandoned = tmp_path / "gone.msgpack"
    failed = ResultFile(abandoned, "msgpack")
    failed.abort()
    assert not abandoned.exists() and not partial_path(abandoned).exists()


def test_resume_keeps_the_complete_records_of_a_torn_result(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    whole = b"".join(encode_jsonl_line(r) for r in RESULTS[:2])
    path.write_bytes(whole + encode_jsonl_line(RESULTS[2])[:-7])  # a result cut inside its third record
    assert seed_resume(path, "jsonl") == 2 and partial_path(path).read_bytes() == whole
    with ResultFile(path, "jsonl", resume=True) as sink:
        sink.write(RESULTS[3])
    assert read_jsonl(path).results == [*RESULTS[:2], RESULTS[3]] and not partial_path(path).exists()
