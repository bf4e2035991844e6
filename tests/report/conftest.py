"""The report tests share the real synthetic stream of :mod:`tests.report.synthetic_stream`."""
from tests.report.synthetic_stream import synthetic_stream

__all__ = ["synthetic_stream"]
