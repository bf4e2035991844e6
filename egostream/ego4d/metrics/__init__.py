"""Benchmark metrics, exact to the official Ego4D evaluators (protocol ``official``) and to the Hier-EgoPack meters (protocol ``hier-egopack``)."""
