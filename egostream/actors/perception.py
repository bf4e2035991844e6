"""The real stages of ``egostream run``: video windows, a registered feature extractor, the model's window emitter
and a result file that a restarted sink appends to. Each is a small picklable factory, built inside its actor.

- :class:`VideoWindows`: the windows of a source on the canonical clock (:mod:`egostream.io`).
- :class:`ExtractorSpec`: a registered extractor (:data:`egostream.backbone.extractors.EXTRACTORS`) and options.
- :class:`EmitterEngine`: a :class:`~egostream.stream.windows.WindowEmitter` over a model loaded from checkpoints,
  with ``state_dict`` / ``load_state_dict`` snapshots that leave the model out (it is reloaded from the checkpoints
  by a restarted actor), so crash recovery replays only the rows since the last snapshot.
- the result file: :class:`egostream.io.sinks.ResultFileFactory` (a hidden partial file renamed over the result at
  the stream's end; re-opened after a crash, or by ``--resume``, it keeps the complete records and appends).
"""
from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import torch

from egostream.errors import InputError

__all__ = ["VideoWindows", "ExtractorSpec", "checkpoint_feature_name", "EmitterEngine", "EmitterEngineFactory",
           "annotate_latency", "network_source_options"]


@dataclass(frozen=True)
class VideoWindows:
    """Calling it gives an iterator over the :class:`~egostream.io.frames.FrameWindow` s of ``uri`` (a file,
    camera or network URL; :func:`egostream.io.open_source`) with ``window_frames`` / ``stride_frames`` windows,
    each carrying the source's counters so far in ``source_counts`` (:meth:`egostream.io.VideoSource.counts` and
    the clock's ``source_frames`` / ``canonical_frames`` / ``missing_frames`` / ``out_of_order``).

    ``source_options`` (network URLs only, ``key -> text``): the :class:`~egostream.io.ReconnectPolicy` fields
    (``open_timeout_s``, ``read_timeout_s``, ``max_retries``, ``backoff_s``, ``max_backoff_s``, ``give_up``) and
    any other key as an FFmpeg protocol/demuxer option (e.g. ``rtsp_transport=tcp``)."""

    uri: str
    window_frames: int = 16
    stride_frames: int = 16
    backend: str = "pyav"
    size: tuple[int, int] | None = None
    source_options: tuple[tuple[str, str], ...] = ()

    @property
    def live(self) -> bool:
        """Cameras and network streams: they run at their own pace (the pipeline drops their oldest windows)."""
        from egostream.io.sources import NETWORK_SCHEMES

        return urlsplit(self.uri).scheme.lower() in NETWORK_SCHEMES or self.uri.startswith(("/dev/video", "v4l2:"))

    def source_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :func:`egostream.io.open_source` for ``uri`` (raises InputError on bad options)."""
        network = urlsplit(self.uri).scheme.lower() in _network_schemes()
        if self.source_options and not network:
            raise InputError(self.uri, "source options", "only network sources take source options")
        if network:
            return {"size": self.size, **network_source_options(self.uri, dict(self.source_options))}
        return {"size": self.size} if self.live else {"size": self.size, "backend": self.backend}

    def __call__(self) -> Iterator[Any]:
        from egostream.io import ClockCounters, WindowSpec, iter_windows, open_source

        source = open_source(self.uri, **self.source_kwargs())
        spec = WindowSpec(self.window_frames, self.stride_frames)
        clock = ClockCounters()
        frames = source.frames()
        try:
            for window in iter_windows(frames, spec, last_frame_duration_s=lambda: source.last_frame_duration_s,
                                       counters=clock):
                counts = {**source.counts(), "source_frames": clock.source_frames,
                          "canonical_frames": clock.canonical_frames, "missing_frames": clock.missing,
                          "out_of_order": clock.out_of_order}
                yield dataclasses.replace(window, source_counts=counts)
        finally:
            frames.close()


def _network_schemes() -> frozenset[str]:
    from egostream.io.sources import NETWORK_SCHEMES

    return NETWORK_SCHEMES


def network_source_options(uri: str, options: Mapping[str, str]) -> dict[str, Any]:
    """:class:`~egostream.io.NetworkSource` keyword arguments from ``key -> text`` options: the
    :class:`~egostream.io.ReconnectPolicy` fields become ``policy``, the rest FFmpeg ``options``.

    Raises:
        InputError: naming ``uri`` and the option when a policy value is not valid.
    """
    from egostream.io.sources import ReconnectPolicy

    fields = {item.name for item in dataclasses.fields(ReconnectPolicy)}
    policy: dict[str, Any] = {}
    ffmpeg: dict[str, str] = {}
    for key, text in options.items():
        if key not in fields:
            ffmpeg[key] = str(text)
            continue
        try:
            policy[key] = str(text) if key == "give_up" else (int(text) if key == "max_retries" else float(text))
        except ValueError as error:
            raise InputError(uri, f"source option {key}", f"not a number: {text!r}") from error
    try:
        return {"policy": ReconnectPolicy(**policy), "options": ffmpeg}
    except ValueError as error:
        raise InputError(uri, "source options", str(error)) from error


@dataclass(frozen=True)
class ExtractorSpec:
    """A registered extractor ``name`` with constructor ``options``; ``expected_dim`` (the model's feature width)
    and ``expected_name`` (the feature set it was trained on, when the checkpoint records it) are checked when it
    is built, naming ``model_checkpoint`` in the error. ``device`` (``auto``, ``cpu``, ``cuda:N``) is passed as the
    ``device`` option to an extractor whose constructor takes one, unless ``options`` already name a device."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    expected_dim: int | None = None
    model_checkpoint: str | None = None
    expected_name: str | None = None
    device: str | None = None

    def build_options(self) -> dict[str, Any]:
        """The constructor options the extractor gets: ``options``, plus ``device`` where it applies."""
        from egostream.backbone.extractors import EXTRACTORS

        options = dict(self.options)
        takes_device = "device" in inspect.signature(EXTRACTORS.get(self.name)).parameters
        if self.device is not None and takes_device and "device" not in options:
            options["device"] = self.device
        return options

    def __call__(self) -> Any:
        from egostream.backbone.extractors import build_extractor

        return build_extractor(self.name, expected_dim=self.expected_dim, model_checkpoint=self.model_checkpoint,
                               expected_name=self.expected_name, **self.build_options())


def checkpoint_feature_name(checkpoint: Any) -> str | None:
    """The feature set a model checkpoint (a file, or a :class:`~egostream.checkpoint.LoadedCheckpoint` already
    read) was trained on, when it records one: the authors' ``features.name`` (``egovlp``,
    ``omnivore_video_swinl``) or ours, ``model.feature_name``; ``None`` otherwise."""
    from egostream.checkpoint import LoadedCheckpoint, load_checkpoint

    config = (checkpoint if isinstance(checkpoint, LoadedCheckpoint) else load_checkpoint(checkpoint)).config
    authors, ours = config.get("features"), config.get("model")
    if isinstance(authors, Mapping) and isinstance(authors.get("name"), str):
        return str(authors["name"])
    if isinstance(ours, Mapping) and isinstance(ours.get("feature_name"), str):
        return str(ours["feature_name"])
    return None


class EmitterEngine:
    """The engine stage's object for a real model: rows in, :class:`~egostream.stream.schema.WindowResult` s out."""

    def __init__(self, emitter: Any) -> None:
        self.emitter = emitter

    def push(self, rows: torch.Tensor) -> list[Any]:
        """Push rows [B, D], split at the emission rows, so a window is emitted at every multiple of
        ``emit_every_rows`` whatever batches the extractor happened to form (the emitter gives one window per push)."""
        every = self.emitter.config.emit_every_rows
        results: list[Any] = []
        start = 0
        while start < len(rows):
            room = every - self.emitter.num_rows % every
            results.extend(self.emitter.push(rows[start:start + room]))
            start += room
        return results

    def finish(self) -> list[Any]:
        return self.emitter.finish()

    def state_dict(self) -> bytes:
        """The emitter's stream state (bytes; no model weights: see :meth:`WindowEmitter.state_dict`)."""
        return self.emitter.state_dict()

    def load_state_dict(self, state: bytes) -> None:
        self.emitter.load_state_dict(state)


@dataclass(frozen=True)
class EmitterEngineFactory:
    """Loads the model from ``checkpoints`` (one path, or ``{task: path}``) and builds an :class:`EmitterEngine`.
    ``stream_config`` is a :class:`~egostream.stream.config.StreamConfig` (default settings when ``None``);
    ``backpack`` a backpack file (``egostream backpack build``) whose nearest prototypes every window reports as its
    ``evidence`` (none without it). The model loads on ``device`` (``auto``, ``cpu``, ``cuda:N``; in a Ray actor
    that requested a GPU, ``cuda`` is the GPU Ray assigned), and the engine keeps its state there. ``model``: the
    model already loaded from ``checkpoints`` (:func:`egostream.bundles.load_bundle`, on any device), which the
    factory then moves to ``device`` instead of reading the files again (it travels with the factory to a Ray
    actor, so a restarted engine needs no checkpoint file either)."""

    checkpoints: str | Mapping[str, str]
    stream_id: str = "stream"
    stream_config: Any = None
    feature_dim: int | None = None
    backpack: str | None = None
    device: str = "cpu"
    model: Any = None

    def __call__(self) -> EmitterEngine:
        from egostream.bundles import load_bundle
        from egostream.stream.config import StreamConfig
        from egostream.stream.labels import LabelNames
        from egostream.stream.windows import WindowEmitter

        if self.model is not None:
            from egostream.device import resolve_device

            bundle = self.model.to(resolve_device(self.device)).eval()
        else:
            spec = dict(self.checkpoints) if isinstance(self.checkpoints, Mapping) else self.checkpoints
            bundle = load_bundle(spec, feature_dim=self.feature_dim, device=self.device)
        config = self.stream_config if self.stream_config is not None else StreamConfig()
        evidence = None
        if self.backpack is not None:
            from egostream.backpack.prototypes import Backpack
            from egostream.stream.readouts import EvidenceReader

            evidence = EvidenceReader.from_bundle(bundle, Backpack.load(self.backpack), config.readouts.evidence_k)
        return EmitterEngine(WindowEmitter(bundle, config, names=LabelNames.ego4d(), evidence=evidence,
                                           stream_id=self.stream_id))


def annotate_latency(result: Any, latency_ms: Mapping[str, float]) -> Any:
    """``result`` with the pipeline's stage times added to its ``latency_ms`` (``decode``, ``extract``,
    ``engine_push``, ``end_to_end``, ``glass_to_answer``; milliseconds), next to the engine's own entries."""
    names = {"decode_ms": "decode", "extract_ms": "extract", "engine_ms": "engine_push", "end_to_end_ms": "end_to_end",
             "glass_to_answer_ms": "glass_to_answer"}
    extra = {names.get(key, key): float(value) for key, value in latency_ms.items()}
    return dataclasses.replace(result, latency_ms={**result.latency_ms, **extra})


def checkpoint_paths(items: Sequence[str], task: str = "all") -> str | dict[str, str]:
    """The ``--checkpoint`` arguments as :class:`EmitterEngineFactory` takes them (see ``egostream replay``)."""
    from egostream.replay import checkpoint_spec

    spec = checkpoint_spec(items, task)
    return {name: str(path) for name, path in spec.items()} if isinstance(spec, Mapping) else str(spec)
