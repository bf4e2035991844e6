"""EgoVLP video features from the released ``egovlp.pth``, in two sampling modes.

The checkpoint is read as the EgoVLP trainer wrote it (showlab/EgoVLP base/base_trainer.py ``_save_checkpoint``:
``{"arch", "epoch", "state_dict", "optimizer", "monitor_best", "config"}``), through the restricted unpickler:
the pickled ``parse_config.ConfigParser`` and its argparse/pathlib parts become inert stubs, nothing pickled runs.
``module.`` prefixes are stripped as utils/util.py ``state_dict_data_parallel_fix`` does; ``video_model.*`` and
``vid_proj.0.*`` load strictly into :class:`~egostream.backbone.extractors.spacetime_transformer.EgoVLPVideoTower`;
the text tower's keys (``text_model.*``, ``txt_proj.*``) are ignored and listed in ``ignored_keys``. Sizes come
from the tensors, except the number of heads (``num_heads``, 12 in the released ViT-B/16), which no tensor holds.

Sampling modes:

``grid16``   one row per 16-frame window of the 30 fps grid (window t = frames [16 t, 16 t + 16), the layout
             Hier-EgoPack's configs declare: window 16, stride 16), the model fed 4 of its frames, offsets 1, 5, 9,
             13 (EgoVLP's own uniform test-time rule). Streams live (``egostream run``). The authors' per-video
             extraction script behind Hier-EgoPack's ``egovlp`` features is not public, so which 4 frames they used
             is unknown: these rows are in EgoVLP's space on Hier-EgoPack's grid, not a copy of that release.
``ego4d-mq`` EgoVLP's own MQ/NLQ recipe (run/test_mq.py, data_loader/Ego4D_MQ_dataset.py): about 7.48 frames per
             second over the whole video (``video_sampling.egovlp_mq_frame_indices``), 4 consecutive samples
             per row (a row every ~16.04 frames); matches EgoVLP's released MQ/NLQ features (per clip there;
             here the clip is the whole video). Needs the video's length first, so it runs in
             ``egostream extract`` only. ``zero_rows=true`` reproduces run/test_mq.py's quirk: the last
             ``W % 4`` rows are never computed and saved as zeros.

Frames: ``/ 255``, short side to ``center_crop`` (256), centre crop, resize to ``input_res`` (224), ImageNet
normalisation (:func:`~egostream.backbone.extractors.video_transforms.egovlp_transform`).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from egostream.backbone.extractors.base import EXTRACTORS, FeatureExtractor
from egostream.backbone.extractors.precision import PRECISIONS, autocast
from egostream.backbone.extractors.spacetime_transformer import EgoVLPVideoTower, SpaceTimeConfig
from egostream.backbone.extractors.video_sampling import egovlp_mq_frame_indices, egovlp_window_offsets
from egostream.backbone.extractors.video_transforms import egovlp_transform
from egostream.errors import InputError
from egostream.restricted_pickle import load_restricted

__all__ = ["EGOVLP_ARCHS", "SAMPLINGS", "load_egovlp_tower", "EgoVLPExtractor"]

_LOG = logging.getLogger(__name__)

#: The released EgoVLP video tower (FrozenInTime's ``SpaceTimeTransformer`` is ViT-B/16 at 224).
EGOVLP_ARCHS: dict[str, SpaceTimeConfig] = {"vit_b16_224": SpaceTimeConfig()}
SAMPLINGS = ("grid16", "ego4d-mq")
_KEPT = ("video_model.", "vid_proj.0.")


def _tower_config(path: Path, state: Mapping[str, Tensor], num_heads: int) -> SpaceTimeConfig:
    try:
        pos = state["video_model.pos_embed"]  # [1, n + 1, E]
        patch = int(state["video_model.patch_embed.proj.weight"].shape[-1])
        depth = 1 + max(int(key.split(".")[2]) for key in state if key.startswith("video_model.blocks."))
        embed = int(pos.shape[-1])
        side = round((int(pos.shape[1]) - 1) ** 0.5)
        hidden = int(state["video_model.blocks.0.mlp.fc1.weight"].shape[0])
        return SpaceTimeConfig(img_size=side * patch, patch_size=patch, embed_dim=embed, depth=depth,
                               num_heads=num_heads, num_frames=int(state["video_model.temporal_embed"].shape[1]),
                               mlp_ratio=hidden / embed, projection_dim=int(state["vid_proj.0.weight"].shape[0]))
    except (KeyError, ValueError, IndexError) as error:
        raise InputError(path, "state_dict", f"not an EgoVLP video tower ({error})") from error


def load_egovlp_tower(path: str | PathLike[str], num_heads: int = 12) -> tuple[EgoVLPVideoTower, list[str]]:
    """The video tower of an EgoVLP trainer checkpoint (module doc), eval mode, and the sorted checkpoint keys it
    ignores (the text tower's)."""
    file = Path(path)
    if not file.is_file():
        raise InputError(file, "weights", "no such EgoVLP checkpoint file")
    content: Any = load_restricted(file, stub_modules=("parse_config", "argparse", "pathlib"))
    state = content.get("state_dict") if isinstance(content, Mapping) else None
    if not isinstance(state, Mapping) or not state:
        raise InputError(file, "state_dict", "expected EgoVLP's trainer layout {'state_dict': ..., 'config': ...}")
    if next(iter(state)).startswith("module."):  # utils/util.py state_dict_data_parallel_fix
        state = {key[len("module."):]: value for key, value in state.items()}
    kept = {key: value for key, value in state.items() if key.startswith(_KEPT)}
    ignored = sorted(key for key in state if not key.startswith(_KEPT))
    config = _tower_config(file, kept, num_heads)
    if config.embed_dim % num_heads:
        raise InputError(file, "num_heads", f"{num_heads} heads do not divide the width {config.embed_dim}")
    tower = EgoVLPVideoTower(config)
    missing, unexpected = tower.load_state_dict(kept, strict=False)
    if missing or unexpected:
        raise InputError(file, "state_dict", f"does not fit an EgoVLP video tower of {config}: missing "
                                             f"{sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}")
    return tower.eval(), ignored


@EXTRACTORS.register("egovlp")
class EgoVLPExtractor(FeatureExtractor):
    """EgoVLP video features, ``projection_dim`` wide (256 released): module doc.

    Args:
        weights: the released EgoVLP checkpoint (``egovlp.pth``).
        arch: ``vit_b16_224`` with random weights (needs ``allow_random_weights``; benchmarks only).
        num_heads: attention heads of the video tower (12 in the released model; no tensor records it).
        sampling: ``grid16`` or ``ego4d-mq`` (module doc).
        zero_rows: ``ego4d-mq`` only: leave the last ``W % model_batch`` rows zero, as run/test_mq.py does.
        model_batch: run/test_mq.py's batch of windows behind the zero rows (4).
        mq_fps: samples per second per frame of a window in ``ego4d-mq`` (1.87, times 4 frames).
        frames_per_window: frames per row (4).
        input_res / center_crop: the model's input side and the crop before it (224 / 256).
        precision: ``float32`` (the reference) or ``bfloat16`` / ``float16`` autocast.
    """

    feature_name = "egovlp"
    window_frames = 16

    def __init__(self, weights: str | PathLike[str] | None = None, *, arch: str | None = None,
                 allow_random_weights: bool = False, num_heads: int = 12, sampling: str = "grid16",
                 zero_rows: bool = False, model_batch: int = 4, mq_fps: float = 1.87, frames_per_window: int = 4,
                 input_res: int = 224, center_crop: int = 256, precision: str = "float32",
                 device: str | torch.device = "auto", batch_size: int = 4) -> None:
        super().__init__(frames_per_window, device, batch_size)
        if sampling not in SAMPLINGS:
            raise InputError(None, "sampling", f"expected one of {', '.join(SAMPLINGS)}, got {sampling!r}")
        if precision not in PRECISIONS:
            raise InputError(None, "precision", f"expected one of {', '.join(PRECISIONS)}, got {precision!r}")
        if zero_rows and sampling != "ego4d-mq":
            raise InputError(None, "zero_rows", "the zero-row quirk belongs to sampling=ego4d-mq")
        self.ignored_keys: list[str] = []
        if weights is not None:
            tower, self.ignored_keys = load_egovlp_tower(weights, num_heads)
            _LOG.info("%s: ignored %d text-tower keys (%s, ...)", weights, len(self.ignored_keys),
                      ", ".join(self.ignored_keys[:2]))
        elif arch in EGOVLP_ARCHS and allow_random_weights:
            tower = EgoVLPVideoTower(EGOVLP_ARCHS[arch]).eval()
        else:
            raise InputError(None, "weights", "give weights=<EgoVLP checkpoint, e.g. egovlp.pth> (or "
                                              f"arch={'|'.join(EGOVLP_ARCHS)} with allow_random_weights=true)")
        if frames_per_window > tower.config.num_frames:
            raise InputError(weights, "frames_per_window", f"the model has {tower.config.num_frames} temporal rows")
        self.weights = None if weights is None else Path(weights)
        self.model = tower.to(self.device)
        self.dim = tower.config.projection_dim
        self.sampling, self.zero_rows, self.model_batch, self.mq_fps = sampling, zero_rows, model_batch, mq_fps
        self.input_res, self.center_crop, self.precision = input_res, center_crop, precision

    @property
    def samples_whole_video(self) -> bool:
        """True in ``ego4d-mq`` mode: rows come from :meth:`video_features`, not from 16-frame windows."""
        return self.sampling == "ego4d-mq"

    def frame_offsets(self, window_frames: int) -> np.ndarray:
        """``grid16``: EgoVLP's uniform rule over the window (1, 5, 9, 13 of 16)."""
        return egovlp_window_offsets(window_frames, int(self.frames_per_window or 4))

    def preprocess(self, frames: Tensor) -> Tensor:
        """uint8 [F, H, W, 3] -> float32 [F, 3, input_res, input_res]."""
        return egovlp_transform(frames, self.input_res, self.center_crop)

    def forward_model(self, video: Tensor) -> Tensor:
        """Model input float32 [B, F, 3, R, R] -> features float32 [B, dim]."""
        with autocast(self.device, self.precision):
            return self.model(video).float()

    def encode(self, clips: Tensor) -> Tensor:
        if self.samples_whole_video:
            raise InputError(None, "sampling", "ego4d-mq samples a whole video at 7.48 frames/s: use it with "
                                               "`egostream extract`; stream with sampling=grid16")
        batch, frames = clips.shape[:2]
        images = self.preprocess(clips.flatten(0, 1))
        return self.forward_model(images.view(batch, frames, *images.shape[1:]))

    def mq_frame_indices(self, num_frames: int, start_s: float = 0.0, end_s: float | None = None) -> np.ndarray:
        """``ego4d-mq``: the frames read for the clip [start_s, end_s] (default: the whole video, N / 30 s)."""
        end = num_frames / 30.0 if end_s is None else end_s
        return egovlp_mq_frame_indices(start_s, end, num_frames, self.mq_fps, int(self.frames_per_window or 4))

    @torch.no_grad()
    def video_features(self, num_frames: int, frames: Iterable[tuple[int, np.ndarray]], start_s: float = 0.0,
                       end_s: float | None = None) -> Tensor:
        """``ego4d-mq`` rows float32 [W, dim] (CPU) of the clip [start_s, end_s] (default the whole video) of a
        video of ``num_frames`` canonical frames, given its frames as ``(index, RGB uint8 [H, W, 3])`` pairs in
        increasing index order (frames not sampled are skipped as they pass, so memory holds one batch of
        windows). W = F // 4 for F sampled frames."""
        wanted = self.mq_frame_indices(num_frames, start_s, end_s)
        per_row = int(self.frames_per_window or 4)
        rows = len(wanted) // per_row
        computed = (rows // self.model_batch) * self.model_batch if self.zero_rows else rows
        needed = wanted[:computed * per_row]
        out = torch.zeros(rows, self.dim)
        pending: list[Tensor] = []
        done = 0
        position = 0
        for index, image in frames:
            while position < len(needed) and needed[position] == index:
                pending.append(self.preprocess(torch.from_numpy(np.ascontiguousarray(image))[None].to(self.device)))
                position += 1
            while len(pending) >= per_row * self.batch_size or (position == len(needed) and pending):
                take = min(len(pending), per_row * self.batch_size)
                video = torch.cat(pending[:take]).view(take // per_row, per_row, 3, self.input_res, self.input_res)
                out[done:done + video.shape[0]] = self.forward_model(video).cpu()
                done += video.shape[0]
                pending = pending[take:]
            if position == len(needed):
                break
        if done != computed:
            raise InputError(None, "frames", f"the video gave {position} of the {len(needed)} frames EgoVLP samples "
                                             f"from its {num_frames} frames")
        return out
