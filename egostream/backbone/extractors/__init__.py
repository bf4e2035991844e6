"""Feature extractors: windows of frames -> one feature row per window, registered by name in ``EXTRACTORS``."""
from egostream.backbone.extractors.base import (EXTRACTORS, FeatureExtractor, build_extractor, prepare_frames,
                                                sample_frame_indices)
from egostream.backbone.extractors.clip import OpenClipExtractor, cached_pretrained_file
from egostream.backbone.extractors.egovlp import EgoVLPExtractor
from egostream.backbone.extractors.omnivore import OmnivoreExtractor
from egostream.backbone.extractors.pixel_projection import PixelProjectionExtractor
from egostream.backbone.extractors.torchscript import TorchScriptExtractor

__all__ = ["EXTRACTORS", "FeatureExtractor", "build_extractor", "prepare_frames", "sample_frame_indices",
           "OpenClipExtractor", "cached_pretrained_file", "PixelProjectionExtractor", "TorchScriptExtractor",
           "EgoVLPExtractor", "OmnivoreExtractor"]
