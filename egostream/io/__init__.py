"""Video sources and result sinks."""
