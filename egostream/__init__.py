"""egostream: streaming, online egocentric perception with Hier-EgoPack."""
from __future__ import annotations

__version__ = "0.1.0"

from egostream.errors import InputError  # noqa: E402

__all__ = ["__version__", "InputError"]
