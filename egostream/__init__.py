"""egostream: streaming, online egocentric perception with Hier-EgoPack.

The public API lives at package level; names load lazily, so ``import egostream`` (and ``egostream --help``) does
not import torch or Ray until a name that needs them is used::

    import egostream

    bundle = egostream.ModelBundle.from_checkpoints("hier_egopack_multitask.pth")
    emitter = egostream.WindowEmitter(bundle, egostream.load_stream_config())
    for rows in feature_rows:                      # [m, D] feature rows, in stream order
        for result in emitter.push(rows):          # a WindowResult every emit_every_s seconds
            print(result.ar, result.lta, result.mq)

Benchmark replay and training are the modules ``egostream.replay`` (``replay(...)``) and ``egostream.train``
(``egostream.train.loop.train(...)``).
"""
from __future__ import annotations

from egostream.errors import InputError, PredictionCountError
from egostream.lazy_exports import lazy_exports

__version__ = "0.1.0"

#: public name -> the module that defines it
_PUBLIC: dict[str, str] = {
    # model
    "ModelBundle": "egostream.model",
    "ModelConfig": "egostream.model",
    "load_checkpoint": "egostream.checkpoint",
    "save_checkpoint": "egostream.checkpoint",
    "HierarchicalBackbone": "egostream.backbone.hierarchy",
    "BackboneConfig": "egostream.backbone.hierarchy",
    "TASKS": "egostream.tasks.base",
    "Backpack": "egostream.backpack.prototypes",
    # streaming
    "StreamEngine": "egostream.stream.engine",
    "StreamConfig": "egostream.stream.config",
    "ReadoutConfig": "egostream.stream.config",
    "load_stream_config": "egostream.stream.config",
    "WindowEmitter": "egostream.stream.windows",
    "WindowResult": "egostream.stream.schema",
    "LabelNames": "egostream.stream.labels",
    "open_sink": "egostream.io.sinks",
    "read_results": "egostream.io.sinks",
    "subscribe": "egostream.io.result_client",
    "ResultServer": "egostream.io.result_server",
    "write_report": "egostream.report.build",
    # video in
    "open_source": "egostream.io.sources",
    "build_extractor": "egostream.backbone.extractors",
    "run_stream": "egostream.actors.commands",
    "extract_features": "egostream.actors.commands",
    # Ego4D benchmark
    "load_recipe": "egostream.train.recipe",
    "evaluate_files": "egostream.ego4d.evaluation",
    "FeatureStore": "egostream.ego4d.features",
    "SynthConfig": "egostream.ego4d.synthetic",
    "generate_dataset": "egostream.ego4d.synthetic",
    # configuration
    "load_config": "egostream.config",
}

__all__ = ["__version__", "InputError", "PredictionCountError", *sorted(_PUBLIC)]

__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC, globals())
