"""open_clip image encoders applied to sampled frames of each window, features averaged over the frames.

Weights come only from the user's disk: ``checkpoint`` (a local file holding the open_clip/CLIP state dict) or
``pretrained`` (an open_clip tag such as ``"laion2b_s34b_b88k"``) found in the local caches — the Hugging Face hub
cache (``HF_HOME`` / ``HF_HUB_CACHE``, or ``cache_dir``) for hub-hosted tags, ``~/.cache/clip`` (or ``cache_dir``)
for URL-hosted ones. egostream never downloads: a tag missing from the cache raises
:class:`~egostream.errors.InputError` saying where it looked and how to fetch it, whatever ``HF_HUB_OFFLINE`` is.
``allow_random_weights=True`` builds the architecture with random weights (tests and benchmarks only).
"""
from __future__ import annotations

import os
from os import PathLike
from pathlib import Path

import torch
import torch.nn.functional as F

from egostream.backbone.extractors.base import EXTRACTORS, FeatureExtractor, prepare_frames
from egostream.errors import InputError

__all__ = ["OpenClipExtractor", "cached_pretrained_file"]


def _hub_candidates(filename: str) -> list[str]:
    """open_clip's hub file names, safetensors first (open_clip@3.3.0: pretrained._get_safe_alternatives)."""
    if filename == "open_clip_pytorch_model.bin":
        return ["open_clip_model.safetensors", filename]
    if filename.endswith((".bin", ".pth")):
        return [filename[:-4] + ".safetensors", filename]
    return [filename]


def cached_pretrained_file(model_name: str, tag: str, cache_dir: str | PathLike[str] | None = None) -> Path:
    """The local file of open_clip's pretrained ``tag`` for ``model_name``, without any network access.

    Raises :class:`InputError` when the tag is unknown or its weights are not in the local cache.
    """
    import open_clip

    where = f"open_clip:{model_name}/{tag}"
    config = open_clip.get_pretrained_cfg(model_name, tag)
    if not config:
        known = ", ".join(open_clip.list_pretrained_tags_by_model(model_name)) or "none"
        raise InputError(where, "pretrained", f"unknown tag; tags of {model_name}: {known}")
    looked: list[str] = []
    hub = config.get("hf_hub", "")
    if hub:
        from huggingface_hub import try_to_load_from_cache

        # 'org/repo/' means open_clip's default file name (open_clip@3.3.0: pretrained.download_pretrained)
        repo_id, filename = os.path.split(hub)
        for candidate in _hub_candidates(filename or "open_clip_pytorch_model.bin"):
            found = try_to_load_from_cache(repo_id, candidate, cache_dir=cache_dir)
            if isinstance(found, str):
                return Path(found)
        looked.append(f"the Hugging Face cache (run `huggingface-cli download {repo_id}` where there is network)")
    url = config.get("url", "")
    if url:
        local = Path(cache_dir or Path.home() / ".cache" / "clip") / os.path.basename(url)
        if local.is_file():
            return local
        looked.append(f"{local} (download {url})")
    raise InputError(where, "pretrained", f"weights not in the local cache; looked in {' and in '.join(looked)}. "
                                          f"egostream never downloads (HF_HUB_OFFLINE="
                                          f"{os.environ.get('HF_HUB_OFFLINE', 'unset')}): fetch them yourself, or "
                                          "pass checkpoint=<local file>")


@EXTRACTORS.register("open_clip")
class OpenClipExtractor(FeatureExtractor):
    """Row = mean over ``frames_per_window`` sampled frames of the image embedding (L2-normalised first when
    ``normalize``), width ``model.visual.output_dim`` (512 for ViT-B-16). Frames are prepared as open_clip's eval
    transform does (shorter side to the model's image size, bicubic; centre crop; the model's mean/std), but on
    tensors, so values differ from the PIL pipeline by resampling round-off."""

    def __init__(self, model_name: str = "ViT-B-16", checkpoint: str | PathLike[str] | None = None,
                 pretrained: str | None = None, *, allow_random_weights: bool = False, frames_per_window: int = 4,
                 normalize: bool = True, cache_dir: str | PathLike[str] | None = None,
                 device: str | torch.device = "auto", batch_size: int = 8) -> None:
        import open_clip

        super().__init__(frames_per_window, device, batch_size)
        if checkpoint is not None and pretrained is not None:
            raise InputError(checkpoint, "checkpoint", "give either checkpoint or pretrained, not both")
        if checkpoint is None and pretrained is None and not allow_random_weights:
            raise InputError(None, "checkpoint", f"open_clip {model_name}: give checkpoint=<local weights file> or "
                                                 "pretrained=<tag in the local cache>")
        if model_name not in open_clip.list_models():
            raise InputError(None, "model_name", f"unknown open_clip model {model_name!r}")
        weights = Path(checkpoint) if checkpoint is not None else (
            cached_pretrained_file(model_name, pretrained, cache_dir) if pretrained is not None else None)
        if weights is not None and not weights.is_file():
            raise InputError(weights, "checkpoint", "no such weights file")
        model = open_clip.create_model(model_name, pretrained=None, **self._quick_gelu(model_name, pretrained))
        if weights is not None:
            try:
                open_clip.load_checkpoint(model, str(weights))
            except (RuntimeError, KeyError, ValueError, OSError) as error:
                raise InputError(weights, "checkpoint", f"cannot load into open_clip {model_name}: {error}") from error
        self.model = model.to(self.device).eval()
        self.model_name = model_name
        self.normalize = normalize
        visual = self.model.visual
        self.dim = int(visual.output_dim)
        image_size = visual.image_size
        self.image_size = int(image_size[0] if isinstance(image_size, (tuple, list)) else image_size)
        preprocess = getattr(visual, "preprocess_cfg", {})
        self.mean = tuple(preprocess.get("mean", open_clip.OPENAI_DATASET_MEAN))
        self.std = tuple(preprocess.get("std", open_clip.OPENAI_DATASET_STD))

    @staticmethod
    def _quick_gelu(model_name: str, pretrained: str | None) -> dict[str, bool]:
        """OpenAI-trained tags need QuickGELU, as open_clip's factory sets from the tag's config."""
        import open_clip

        config = open_clip.get_pretrained_cfg(model_name, pretrained) if pretrained else {}
        return {"force_quick_gelu": True} if config.get("quick_gelu", False) else {}

    def encode(self, clips: torch.Tensor) -> torch.Tensor:
        batch, frames = clips.shape[:2]
        images = prepare_frames(clips.flatten(0, 1), self.image_size, self.mean, self.std)
        embeddings = self.model.encode_image(images)  # [B*T, dim]
        if self.normalize:
            embeddings = F.normalize(embeddings, dim=-1)
        return embeddings.view(batch, frames, -1).mean(dim=1)
