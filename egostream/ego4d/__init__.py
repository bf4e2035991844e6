"""Ego4D data layer: annotation readers, feature store, benchmark-protocol samples, metrics, submission files and the synthetic Ego4D-format data generator."""
