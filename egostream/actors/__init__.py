"""Ray actors and pipelines: decode, extract, perceive, sink; cluster batch runs."""
