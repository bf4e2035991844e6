"""The streaming engine: sliding hierarchical graph, incremental updates, window emission and the output schema."""
