"""Loading the authors' Hier-EgoPack checkpoints as they are, and saving/loading egostream's own checkpoints.

One module per concern:

- :mod:`~egostream.checkpoint.reading`: :func:`load_checkpoint`, the one place a checkpoint file is read (without
  running pickled code), its format detected from the top-level keys and non-finite weights refused;
- :mod:`~egostream.checkpoint.loaded`: :class:`LoadedCheckpoint`, a checkpoint of any format as plain data;
- :mod:`~egostream.checkpoint.authors`: the authors' formats ``"multi_task"`` (``train_multi_task.py``),
  ``"egopack"`` (``train_egopack.py``) and ``"egopack_module"`` (a plain ``EgoPack.state_dict()``);
- :mod:`~egostream.checkpoint.authors_config`: the authors' pickled ``omegaconf.DictConfig`` as plain data, with
  whole-string interpolations resolved (no hydra or omegaconf needed);
- :mod:`~egostream.checkpoint.native`: our own format ``"egostream"`` (:func:`save_checkpoint`, readable versions);
- :mod:`~egostream.checkpoint.module_state`: strict loading into modules (:func:`load_module_state`,
  :func:`load_backbone`) with a message saying what differs.

Read a file once and pass the :class:`LoadedCheckpoint` along: the model loaders
(:meth:`egostream.model.ModelBundle.from_checkpoints`, :func:`egostream.bundles.load_bundle`) take either.
"""
from __future__ import annotations

from egostream.checkpoint.authors import infer_backbone_config
from egostream.checkpoint.loaded import CheckpointFormat, LoadedCheckpoint
from egostream.checkpoint.module_state import load_backbone, load_module_state
from egostream.checkpoint.native import FORMAT_NAME, FORMAT_VERSION, READABLE_VERSIONS, save_checkpoint
from egostream.checkpoint.reading import load_checkpoint
from egostream.restricted_pickle import OmegaConfStub, RestrictedUnpickler

__all__ = ["CheckpointFormat", "LoadedCheckpoint", "RestrictedUnpickler", "OmegaConfStub", "load_checkpoint",
           "load_backbone", "load_module_state", "save_checkpoint", "infer_backbone_config",
           "FORMAT_NAME", "FORMAT_VERSION", "READABLE_VERSIONS"]
