"""Ego4D data layer: annotation readers, feature store, benchmark-protocol samples, metrics, submission files and the
synthetic Ego4D-format data generator."""
from egostream.ego4d.annotations import (read_lta_annotations, read_moments_annotations,
                                         read_state_change_annotations, read_video_metadata)
from egostream.ego4d.evaluation import evaluate_files
from egostream.ego4d.features import EGOVLP, OMNIVORE_VIDEO_SWINL, FeatureSpec, FeatureStore
from egostream.ego4d.layout import Ego4dLayout
from egostream.ego4d.protocol import SAMPLE_BUILDERS
from egostream.ego4d.synthetic import SynthConfig, generate_dataset
from egostream.ego4d.taxonomy import load_lta_taxonomy, load_mq_labels

__all__ = [
    "Ego4dLayout", "FeatureSpec", "FeatureStore", "EGOVLP", "OMNIVORE_VIDEO_SWINL",
    "read_lta_annotations", "read_state_change_annotations", "read_moments_annotations", "read_video_metadata",
    "load_lta_taxonomy", "load_mq_labels", "SAMPLE_BUILDERS", "evaluate_files", "SynthConfig", "generate_dataset",
]
