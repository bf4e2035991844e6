"""Plug-in discovery: modules named by EGOSTREAM_PLUGINS are imported; a bad name is an error naming it."""
from __future__ import annotations

import sys

import pytest

from egostream.cli import main
from egostream.errors import InputError
from egostream.plugins import ENVIRONMENT_VARIABLE, load_plugins


def test_environment_variable_modules_are_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "tests.toy_task", raising=False)
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, " tests.toy_task , ")
    assert "tests.toy_task" in load_plugins()
    assert "tests.toy_task" in sys.modules


def test_a_missing_plugin_module_is_named(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "no_such_egostream_plugin")
    with pytest.raises(InputError, match="EGOSTREAM_PLUGINS: no_such_egostream_plugin: cannot import"):
        load_plugins()
    assert main(["eval", "--help"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no_such_egostream_plugin" in err[0]
