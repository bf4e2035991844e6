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


def test_registration_order_and_unregister() -> None:
    reg: Registry[int] = Registry("cross-task module")
    reg.register("b")(1)
    reg.register("a")(2)
    assert reg.in_order() == ["b", "a"] and reg.names() == ["a", "b"]
    assert reg.unregister("b") == 1 and reg.in_order() == ["a"] and "b" not in reg
    with pytest.raises(KeyError, match="unknown cross-task module 'b'"):
        reg.unregister("b")
