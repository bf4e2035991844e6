from __future__ import annotations

import pytest

from egostream.registry import Registry


def test_register_get_and_errors() -> None:
    reg: Registry[type] = Registry("task")

    @reg.register("ar")
    class AR:
        pass

    assert reg.get("ar") is AR and "ar" in reg and reg.names() == ["ar"] and len(reg) == 1
    with pytest.raises(KeyError, match="unknown task 'lta'; known: ar"):
        reg.get("lta")
    with pytest.raises(KeyError, match="registered twice"):
        reg.register("ar")(AR)
