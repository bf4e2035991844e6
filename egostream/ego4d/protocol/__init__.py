"""Benchmark-protocol samples for AR, LTA, OSCC, PNR and MQ, built exactly as the authors' datasets build them.

``SAMPLE_BUILDERS.get(task)(layout, split, spec, protocol=..., has_features=store.has)`` returns the samples of a
split. A sample holds a lazy reference to its feature rows (``window.read(store)``, PNR ``read(store)``), the
nodes' positions in seconds (``node_positions_s(n)``) and everything the heads and metrics need.

Padding: the authors' AR, OSCC and MQ datasets pad every sample to 1024 rows with ``mask=False`` rows, which the
model removes before anything else (and which crash on longer clips). egostream never pads: any length works and
the outputs on the real rows are the same.

Protocol switch (``"hier-egopack"`` = the authors' code, behind the paper's numbers; ``"official"`` = the official
Ego4D definition): LTA window count (see :mod:`.lta`), MQ duplicate moments (see :mod:`.mq`). AR, OSCC and PNR samples
are the same under both.
"""
from egostream.ego4d.protocol.builders import PROTOCOLS, SAMPLE_BUILDERS, ProtocolName, SampleBuilder
from egostream.ego4d.protocol.windows import FeatureWindow, centred_node_positions_s, feature_window, \
    frames_to_sample_seconds
from egostream.ego4d.protocol.ar import ARSample, build_ar_samples, load_ar_samples
from egostream.ego4d.protocol.lta import LTASample, build_lta_samples, load_lta_samples, lta_window_count
from egostream.ego4d.protocol.oscc import OSCCSample, build_oscc_samples, load_oscc_samples
from egostream.ego4d.protocol.pnr import PNRSample, build_pnr_samples, load_pnr_samples, pnr_window, \
    random_training_crop
from egostream.ego4d.protocol.mq import MQSample, build_mq_samples, load_mq_samples, primary_moments

__all__ = [
    "PROTOCOLS", "SAMPLE_BUILDERS", "ProtocolName", "SampleBuilder",
    "FeatureWindow", "centred_node_positions_s", "feature_window", "frames_to_sample_seconds",
    "ARSample", "build_ar_samples", "load_ar_samples",
    "LTASample", "build_lta_samples", "load_lta_samples", "lta_window_count",
    "OSCCSample", "build_oscc_samples", "load_oscc_samples",
    "PNRSample", "build_pnr_samples", "load_pnr_samples", "pnr_window", "random_training_crop",
    "MQSample", "build_mq_samples", "load_mq_samples", "primary_moments",
]
