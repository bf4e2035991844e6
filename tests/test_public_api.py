"""The package-level API: every advertised name resolves to the object of its defining module, lazily."""
from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import egostream


@pytest.mark.parametrize("name", sorted(egostream._PUBLIC))
def test_every_public_name_resolves_to_its_module_object(name: str) -> None:
    module = importlib.import_module(egostream._PUBLIC[name])
    assert getattr(egostream, name) is getattr(module, name)
    assert name in dir(egostream) and name in egostream.__all__


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        egostream.Nope  # noqa: B018


def test_importing_the_package_and_the_cli_does_not_import_torch() -> None:
    code = "import sys, egostream, egostream.cli; print('torch' in sys.modules, 'ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
