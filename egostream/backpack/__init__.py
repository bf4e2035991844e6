"""The EgoPack backpack: task prototypes, their storage and the cross-task interaction."""
from egostream.backpack.fusion import (FusionRule, NodeFusion, ProjectedMeanFusion, SegmentFusion, Segments,
                                       VideoFusion, consult_backpack, fusion_rule, support_queries)
from egostream.backpack.interaction import (EgoPackInteraction, InteractionResult, InteractionStage,
                                            authors_interaction_keys, knn_edge_index)
from egostream.backpack.prototypes import Backpack, PrototypeBuilder, file_sha256

__all__ = [
    "Backpack", "PrototypeBuilder", "file_sha256",
    "EgoPackInteraction", "InteractionResult", "InteractionStage", "knn_edge_index", "authors_interaction_keys",
    "FusionRule", "SegmentFusion", "VideoFusion", "NodeFusion", "ProjectedMeanFusion", "Segments",
    "fusion_rule", "support_queries", "consult_backpack",
]
