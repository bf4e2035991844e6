"""Video sources and result sinks.

The names below load lazily (on first use), so importing one small module of the package, such as
:mod:`egostream.io.atomic` or :mod:`egostream.io.frames`, does not import the decoders, the sources or the Ego4D
feature grid (and the packages below ``io`` that write files atomically import no module above them).
"""
from __future__ import annotations

from egostream.lazy_exports import lazy_exports

#: public name -> the module of the package that defines it
_PUBLIC: dict[str, str] = {
    **dict.fromkeys(("CANONICAL_FPS", "CanonicalClock", "ClockCounters", "ClockMark"), "egostream.io.clock"),
    **dict.fromkeys(("PTS_WRAP_S", "StreamTimeline", "TimelineCounters"), "egostream.io.timeline"),
    **dict.fromkeys(("DECODERS", "DecordDecoder", "PyAVDecoder", "StreamReadError"), "egostream.io.decoders"),
    **dict.fromkeys(("FrameWindow", "TimedFrame"), "egostream.io.frames"),
    **dict.fromkeys(("SOURCES", "CameraSource", "FileSource", "NetworkSource", "ReconnectPolicy", "VideoSource",
                     "open_source"), "egostream.io.sources"),
    **dict.fromkeys(("StreamStats", "WindowStream", "iter_windows"), "egostream.io.window_stream"),
    **dict.fromkeys(("EGOVLP_WINDOWS", "OMNIVORE_WINDOWS", "Windower", "WindowSpec", "expected_window_count"),
                    "egostream.io.windows"),
}

__all__ = sorted(_PUBLIC)

__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC, globals())
