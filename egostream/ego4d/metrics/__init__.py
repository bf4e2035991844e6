"""Benchmark metrics, exact to the official Ego4D evaluators (protocol ``official``) and to the Hier-EgoPack meters (protocol ``hier-egopack``)."""
from egostream.ego4d.metrics.ar import ar_metrics
from egostream.ego4d.metrics.lta import lta_edit_distances, lta_metrics
from egostream.ego4d.metrics.mq import MQ_PROTOCOLS, load_mq_labels, mq_metrics
from egostream.ego4d.metrics.oscc import oscc_metrics
from egostream.ego4d.metrics.pnr import pnr_errors_s, pnr_metrics
from egostream.ego4d.metrics.protocol import PROTOCOLS

__all__ = [
    "MQ_PROTOCOLS",
    "PROTOCOLS",
    "ar_metrics",
    "lta_edit_distances",
    "load_mq_labels",
    "lta_metrics",
    "mq_metrics",
    "oscc_metrics",
    "pnr_errors_s",
    "pnr_metrics",
]
