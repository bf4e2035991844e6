"""Video sources and result sinks."""
from egostream.io.clock import CANONICAL_FPS, CanonicalClock, ClockCounters, ClockMark
from egostream.io.decoders import DECODERS, DecordDecoder, PyAVDecoder, StreamReadError
from egostream.io.frames import FrameWindow, TimedFrame
from egostream.io.sources import (SOURCES, CameraSource, FileSource, NetworkSource, ReconnectPolicy, VideoSource,
                                  open_source)
from egostream.io.timeline import PTS_WRAP_S, StreamTimeline, TimelineCounters
from egostream.io.window_stream import StreamStats, WindowStream, iter_windows
from egostream.io.windows import EGOVLP_WINDOWS, OMNIVORE_WINDOWS, Windower, WindowSpec, expected_window_count

__all__ = [
    "CANONICAL_FPS", "CanonicalClock", "ClockCounters", "ClockMark", "PTS_WRAP_S", "StreamTimeline",
    "TimelineCounters", "DECODERS", "DecordDecoder", "PyAVDecoder", "StreamReadError",
    "FrameWindow", "TimedFrame", "SOURCES", "CameraSource", "FileSource", "NetworkSource", "ReconnectPolicy",
    "VideoSource", "open_source", "StreamStats", "WindowStream", "iter_windows", "EGOVLP_WINDOWS", "OMNIVORE_WINDOWS",
    "Windower", "WindowSpec", "expected_window_count",
]
