"""The streaming engine: sliding hierarchical graph, incremental updates, window emission and the output schema."""
from egostream.stream.config import StreamConfig, load_stream_config, row_positions_s
from egostream.stream.engine import PushStats, StreamEngine

__all__ = ["StreamConfig", "load_stream_config", "row_positions_s", "StreamEngine", "PushStats"]
