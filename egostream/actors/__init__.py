"""Ray actors and pipelines: decode, extract, perceive, sink; cluster batch runs.

Stage logic is plain classes (:mod:`.stages`), testable without Ray; :class:`StreamPipeline` runs them in-process or
as Ray actors, and :func:`run_batch` spreads per-video jobs over a cluster with atomic, exactly-once result files.
"""
from egostream.actors.batch import BatchItem, BatchReport, run_batch
from egostream.actors.pipeline import PipelineConfig, StreamPipeline, StreamReport, run_streams
from egostream.io.queues import BoundedQueue, OverflowPolicy

__all__ = ["StreamPipeline", "PipelineConfig", "StreamReport", "run_streams", "BatchItem", "BatchReport",
           "run_batch", "BoundedQueue", "OverflowPolicy"]
