"""The two evaluation protocols of the AR, LTA, OSCC and PNR metrics, selected by name.

* ``official``: the Ego4D benchmark repositories (EGO4D/forecasting for AR and LTA, EGO4D/hands-and-objects for OSCC
  and PNR), i.e. the numbers a challenge server reports.
* ``hier-egopack``: the meters in sapeirone/hier-egopack ``utils/meters/ego4d/`` that produced the paper's numbers.
"""
from __future__ import annotations

__all__ = ["PROTOCOLS", "check_protocol"]

PROTOCOLS: tuple[str, ...] = ("official", "hier-egopack")


def check_protocol(protocol: str) -> str:
    """Return ``protocol`` unchanged, or raise ``ValueError`` naming the known protocols."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown metric protocol {protocol!r}; known protocols: {', '.join(PROTOCOLS)}")
    return protocol
