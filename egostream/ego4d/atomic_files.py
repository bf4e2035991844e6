"""Compatibility alias of :mod:`egostream.io.atomic` (kept while :mod:`egostream.demo` imports it from here)."""
from egostream.io.atomic import write_bytes_atomic, write_json_atomic, write_text_atomic

__all__ = ["write_bytes_atomic", "write_json_atomic", "write_text_atomic"]
