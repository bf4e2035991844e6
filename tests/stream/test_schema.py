"""WindowResult records: every field survives msgpack and JSON, the version comes first, bad records are named."""
from __future__ import annotations

import dataclasses
import json
import math
import types
import typing

import msgpack
import pytest

from egostream.errors import InputError
from egostream.stream import schema
from egostream.stream.labels import LabelNames
from egostream.stream.schema import (SCHEMA_VERSION, Action, ActionReadout, AnticipationReadout, KeyframeReadout,
                                     Label, Moment, MomentsReadout, PrototypeMatch, ScoredAction,
                                     ScoredLabel, Span, StateChangeReadout, WindowResult, decode_payload,
                                     encode_frame, result_from_record, result_to_record)


def full_result(window_index: int = 3) -> WindowResult:
    """A result with every field set, floats that float32 cannot hold and non-ASCII names."""
    verb, noun = Label(7, "cut_(trim,_slice)"), Label(411, "tomato ü")
    return WindowResult(
        stream_id="video-ü-1", window_index=window_index, rows=120 + window_index, time_s=64.1,
        received_wall_s=1_700_000_000.123456789, emitted_wall_s=1_700_000_000.2,
        latency_ms={"engine": 1.25, "ar": 0.1, "total": 3.3333333333333335},
        ar=ActionReadout(Span(56.1, 64.1), (ScoredLabel(7, "cut", 0.7), ScoredLabel(2, "put", 0.1)),
                         (ScoredLabel(411, "tomato", 0.5),)),
        lta=AnticipationReadout(Span(32.0, 64.1), (ScoredAction(ScoredLabel(7, "cut", 0.3),
                                                                ScoredLabel(411, "tomato", 0.2)),) * 2,
                                ((Action(verb, noun), Action(noun, verb)), (Action(verb, verb), Action(noun, noun))),
                                seed=2**40 + 5),
        oscc=StateChangeReadout(Span(56.1, 64.1), True, 0.6180339887498949),
        pnr=KeyframeReadout(Span(56.1, 64.1), time_s=60.2, offset_s=4.1, frame=1806, index=8, score=-0.25),
        mq=MomentsReadout(Span(0.0, 64.1), (Moment(1.5, 9.25, Label(12, "\"quoted, label\""), 0.9, 0, 3, True),
                                           Moment(30.0, 64.1, Label(0, "x"), 1e-300, 7, 12, False))),
        evidence={"ego4d/ar": (PrototypeMatch(4, verb, noun, -0.5), PrototypeMatch(0, noun, verb, 1.0)),
                  "ego4d/lta": ()},
        filled=True,
    )


def _schema_classes() -> set[type]:
    """Every dataclass reachable from WindowResult's type hints."""
    found: set[type] = set()

    def visit(annotation: object) -> None:
        if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
            if annotation not in found:
                found.add(annotation)
                for hint in typing.get_type_hints(annotation).values():
                    visit(hint)
        for arg in typing.get_args(annotation):
            visit(arg)

    visit(WindowResult)
    return found


def _instances(value: object, seen: set[type]) -> None:
    if dataclasses.is_dataclass(value):
        seen.add(type(value))
        for f in dataclasses.fields(value):
            field_value = getattr(value, f.name)
            assert field_value is not None, f"{type(value).__name__}.{f.name} is not exercised"
            _instances(field_value, seen)
    elif isinstance(value, (tuple, list)):
        for item in value:
            _instances(item, seen)
    elif isinstance(value, dict):
        for item in value.values():
            _instances(item, seen)


def test_full_result_exercises_every_schema_class_and_field() -> None:
    seen: set[type] = set()
    _instances(full_result(), seen)
    assert seen == _schema_classes()


def test_msgpack_round_trip_keeps_every_field() -> None:
    result = full_result()
    frame = encode_frame(result)
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    assert decode_payload(frame[4:]) == result


def test_json_round_trip_keeps_every_field() -> None:
    result = full_result()
    assert result_from_record(json.loads(json.dumps(result_to_record(result)))) == result


def test_a_record_written_before_the_filled_flag_reads_as_not_filled() -> None:
    record = result_to_record(full_result())
    del record["filled"]
    old = decode_payload(msgpack.packb(record, use_bin_type=True))
    assert old.filled is False and old == dataclasses.replace(full_result(), filled=False)


def test_version_is_the_first_key_on_the_wire() -> None:
    raw = msgpack.unpackb(encode_frame(full_result())[4:], raw=False)
    assert list(raw)[:2] == ["schema_version", "schema"]
    assert raw["schema_version"] == SCHEMA_VERSION


def test_record_is_self_describing_with_names_and_ids() -> None:
    record = result_to_record(full_result())
    assert record["ar"]["verbs"][0] == {"id": 7, "name": "cut", "score": 0.7}
    assert record["mq"]["moments"][0]["label"] == {"id": 12, "name": "\"quoted, label\""}
    assert list(record["mq"]["moments"][1])[-3:] == ["level", "node", "final"]
    assert (record["mq"]["moments"][1]["level"], record["mq"]["moments"][1]["node"]) == (7, 12)
    assert record["evidence"]["ego4d/ar"][0]["noun"] == {"id": 411, "name": "tomato ü"}
    assert record["ar"]["span"] == {"start_s": 56.1, "end_s": 64.1}


def test_nan_probability_round_trips_through_both_formats() -> None:
    result = dataclasses.replace(full_result(), oscc=StateChangeReadout(Span(0.0, 1.0), False, math.nan))
    for decoded in (decode_payload(encode_frame(result)[4:]),
                    result_from_record(json.loads(json.dumps(result_to_record(result))))):
        assert decoded.oscc is not None and math.isnan(decoded.oscc.probability)


def test_missing_tasks_are_none() -> None:
    minimal = WindowResult("s", 0, 1, 0.5, 1.0, 1.0)
    assert decode_payload(encode_frame(minimal)[4:]) == minimal


def test_newer_version_is_refused_with_the_field_named() -> None:
    record = result_to_record(full_result())
    record["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(InputError, match="schema_version.*newer"):
        result_from_record(record, "x.msgpack")


@pytest.mark.parametrize(("path", "value", "match"), [
    (("rows",), "many", "rows: expected an integer"),
    (("ar", "verbs"), 3, "ar.*expected a list, got 3"),
    (("pnr", "frame"), 1.5, "pnr.*expected an integer, got 1.5"),
    (("oscc", "state_change"), 1, "oscc.*expected true or false, got 1"),
    (("schema",), "other", "schema: expected"),
])
def test_bad_field_is_named(path: tuple[str, ...], value: object, match: str) -> None:
    record = result_to_record(full_result())
    node = record
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(InputError, match=match):
        result_from_record(record, "results.msgpack")


def test_unknown_key_is_refused() -> None:
    record = result_to_record(full_result())
    record["surprise"] = 1
    with pytest.raises(InputError, match="surprise: unknown key"):
        result_from_record(record)


def test_payload_that_is_not_msgpack_is_an_input_error() -> None:
    with pytest.raises(InputError, match="not a msgpack map"):
        decode_payload(b"\xc1")
    with pytest.raises(InputError, match="expected a map"):
        decode_payload(msgpack.packb([1, 2]))


def test_label_names_fall_back_for_ids_past_the_vocabulary() -> None:
    names = LabelNames(verbs=("take",), nouns=("cup", "knife"), moments=())
    assert names.verb(0) == Label(0, "take")
    assert names.verb(5) == Label(5, "verb#5")
    assert names.noun(1).name == "knife"
    assert names.moment(3) == Label(3, "moment#3")


def test_ego4d_label_names_are_the_shipped_vocabularies() -> None:
    names = LabelNames.ego4d()
    assert (len(names.verbs), len(names.nouns), len(names.moments)) == (115, 478, 110)


def test_every_schema_type_is_exported() -> None:
    exported = {getattr(schema, name) for name in schema.__all__}
    assert _schema_classes() <= exported
    assert all(not isinstance(getattr(schema, name), types.ModuleType) for name in schema.__all__)


def test_records_written_before_the_source_flags_still_read() -> None:
    record = result_to_record(dataclasses.replace(full_result(), discontinuity=True, decode_errors=True))
    assert record["discontinuity"] is True and record["decode_errors"] is True
    old = {key: value for key, value in record.items() if key not in ("discontinuity", "decode_errors")}
    decoded = result_from_record(old, "old.msgpack")
    assert (decoded.discontinuity, decoded.decode_errors) == (False, False)
    assert dataclasses.replace(decoded, discontinuity=True, decode_errors=True) == result_from_record(record)
