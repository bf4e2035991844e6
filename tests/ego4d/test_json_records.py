"""``load_json`` / ``read_utf8``: every way a JSON or text input can be unreadable is an InputError naming the file."""
from __future__ import annotations

from pathlib import Path

import pytest

from egostream.ego4d.json_records import load_json, load_json_record, read_utf8
from egostream.errors import InputError


def _error(path: Path) -> InputError:
    with pytest.raises(InputError) as caught:
        load_json(path)
    assert caught.value.path == str(path)
    return caught.value


def test_non_utf8_bytes_name_the_offset(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes('{"label": "caf'.encode() + "é".encode("latin-1") + b'"}')
    error = _error(path)
    assert error.field == "encoding" and "byte 0xe9 at offset 14" in str(error)


def test_nesting_beyond_the_parser_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 1200 + "]" * 1200)
    assert "nested too deeply" in str(_error(path))


def test_ordinary_nesting_parses(tmp_path: Path) -> None:
    path = tmp_path / "nested.json"
    path.write_text("[" * 50 + "1" + "]" * 50)
    value = load_json(path)
    for _ in range(50):
        value = value[0]
    assert value == 1


def test_a_number_beyond_float_range_is_refused_and_nan_literals_parse(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    path.write_text('{"score": 1e400}')
    assert "1e400 does not fit a float" in str(_error(path))
    path.write_text('{"score": NaN, "other": 1e308}')
    value = load_json(path)
    assert value["score"] != value["score"] and value["other"] == 1e308


@pytest.mark.parametrize("make", ["folder", "missing"])
def test_a_folder_or_a_missing_file(tmp_path: Path, make: str) -> None:
    path = tmp_path / "labels"
    if make == "folder":
        path.mkdir()
    with pytest.raises(InputError) as caught:
        read_utf8(path)
    assert caught.value.path == str(path)
    assert ("is a folder" if make == "folder" else "file not found") in str(caught.value)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_numbers_of_records_must_be_finite(tmp_path: Path, literal: str) -> None:
    path = tmp_path / "a.json"
    path.write_text(f'{{"clips": [{{"start_sec": {literal}, "end_sec": 2}}]}}')
    (clip,) = load_json_record(path).records("clips")
    assert clip.number("end_sec") == 2.0
    for read in (clip.number, clip.optional_number):
        with pytest.raises(InputError) as caught:
            read("start_sec")
        assert caught.value.path == str(path) and caught.value.field == "clips[0].start_sec"
