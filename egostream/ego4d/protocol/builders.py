"""The registry of benchmark-protocol sample builders and the protocol switch."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol

from egostream.ego4d.features import FeatureSpec
from egostream.ego4d.layout import Ego4dLayout
from egostream.registry import Registry

__all__ = ["ProtocolName", "PROTOCOLS", "SampleBuilder", "SAMPLE_BUILDERS", "check_protocol", "is_test_split"]

ProtocolName = Literal["hier-egopack", "official"]
PROTOCOLS: tuple[ProtocolName, ...] = ("hier-egopack", "official")


class SampleBuilder(Protocol):
    """Builds the samples of one task and split from the files of ``layout``.

    ``has_features(video_uid)`` (usually :meth:`FeatureStore.has`) drops samples whose feature file is missing, as
    the authors' datasets do (hier-egopack@4fff4e5:data/ego4d/AR.py L67); None keeps every sample.
    """

    def __call__(self, layout: Ego4dLayout, split: str, spec: FeatureSpec, *, protocol: ProtocolName = ...,
                 has_features: Callable[[str], bool] | None = ...) -> list[Any]: ...


SAMPLE_BUILDERS: Registry[SampleBuilder] = Registry("protocol sample builder")


def check_protocol(protocol: str) -> ProtocolName:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    return protocol  # type: ignore[return-value]


def is_test_split(split: str) -> bool:
    """The authors switch to test behaviour when 'test' is in the split name (LTA.py L133, MQ.py L105)."""
    return "test" in split
