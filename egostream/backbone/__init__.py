"""The Hier-EgoPack backbone (temporal distance-gated convolution, hierarchical GNN) and the feature extractors."""
from egostream.backbone.graphs import LevelGraphs, VideoBatch
from egostream.backbone.hierarchy import BackboneConfig, HierarchicalBackbone, build_backbone
from egostream.backbone.tdgc import DistanceGatedConv

__all__ = ["LevelGraphs", "VideoBatch", "BackboneConfig", "HierarchicalBackbone", "build_backbone", "DistanceGatedConv"]
