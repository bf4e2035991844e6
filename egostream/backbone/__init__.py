"""The Hier-EgoPack backbone (temporal distance-gated convolution, hierarchical GNN) and the feature extractors."""
