from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from egostream.config import apply_overrides, from_dict, load_config, to_dict
from egostream.errors import InputError


@dataclass(frozen=True)
class Inner:
    depth: int = 3
    radius_s: float = 2.0


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    mode: Literal["a", "b"] = "a"
    sizes: tuple[int, ...] = (1, 2)
    out: Path | None = None
    inner: Inner = field(default_factory=Inner)


def test_defaults_overrides_and_nesting(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("name: y\ninner:\n  depth: 8\n")
    cfg = load_config(Outer, path, ["inner.radius_s=1.5", "sizes=[4, 5]", "out=/tmp/o", "mode=b"])
    assert cfg == Outer(name="y", mode="b", sizes=(4, 5), out=Path("/tmp/o"), inner=Inner(depth=8, radius_s=1.5))
    assert to_dict(cfg)["inner"] == {"depth": 8, "radius_s": 1.5}
    with pytest.raises(Exception):
        cfg.name = "z"  # type: ignore[misc]  # frozen


def test_int_is_accepted_for_float_but_not_the_reverse() -> None:
    assert from_dict(Inner, {"radius_s": 2}).radius_s == 2.0
    with pytest.raises(InputError, match="depth: expected an integer"):
        from_dict(Inner, {"depth": 2.5})


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["inner.depht=2"], "inner.depht: unknown key"),
        (["mode=c"], "mode: 'c' is not one of"),
        (["inner.depth=eight"], "inner.depth: expected an integer"),
        (["novalue"], "key=value"),
    ],
)
def test_bad_overrides_name_the_key(overrides: list[str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_config(Outer, None, overrides)


def test_missing_and_malformed_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nope.yaml: config file not found"):
        load_config(Outer, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(InputError, match="bad.yaml: not valid YAML"):
        load_config(Outer, bad)


def test_apply_overrides_does_not_mutate_input() -> None:
    data = {"inner": {"depth": 1}}
    assert apply_overrides(data, ["inner.depth=2"]) == {"inner": {"depth": 2}}
    assert data == {"inner": {"depth": 1}}


@dataclass(frozen=True)
class WithPairs:
    span: tuple[float, int] = (1.0, 2)
    inner: Inner | None = None


def test_fixed_length_tuples_and_optional_sections_keep_types_and_key_names() -> None:
    cfg = from_dict(WithPairs, {"span": [3, 4], "inner": {"depth": 5}})
    assert cfg.span == (3.0, 4) and isinstance(cfg.span[0], float) and cfg.inner == Inner(depth=5)
    with pytest.raises(InputError, match=r"span\[1\]: expected an integer"):
        from_dict(WithPairs, {"span": [3, 4.5]})
    with pytest.raises(InputError, match="inner.depth: expected an integer"):
        from_dict(WithPairs, {"inner": {"depth": "x"}})


@pytest.mark.parametrize(("content", "field", "words"), [
    (b"name: caf\xe9\n", "encoding", "not UTF-8: byte 0xe9 at offset 9"),
    (b"a: [[[[", None, "not valid YAML: expected the node content, but found '<stream end>' at line 1 column 8"),
    (b"a: " + b"[" * 1200 + b"]" * 1200 + b"\n", None, "nested too deeply"),
    (b"inner: &x {loop: *x}\n", "inner.loop", "contains itself"),
    (b"inner: {values: &y [1, *y]}\n", "inner.values[1]", "contains itself"),
])
def test_unreadable_config_files_are_one_line_errors(tmp_path: Path, content: bytes, field: str | None,
                                                     words: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        load_config(Outer, path)
    assert caught.value.path == str(path) and caught.value.field == field
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_a_config_path_that_is_a_folder_and_an_override_that_is_not_yaml(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a folder"):
        load_config(Outer, tmp_path)
    with pytest.raises(InputError) as caught:
        apply_overrides({}, ["inner.values=[[["])
    assert caught.value.field == "inner.values=[[[" and "not valid YAML" in str(caught.value)
