"""The official test-time frame transforms of the Ego4D Omnivore features and of EgoVLP, on tensors.

Both resize with bilinear interpolation WITHOUT antialiasing (the torchvision 0.12 / 0.13 behaviour the features
were made with; torchvision >= 0.17 antialiases by default, which moves values by up to 0.3) and crop at offsets
rounded half-to-even (Python ``round``). Inputs are RGB uint8 frames [T, H, W, 3] as decoders return them.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from egostream.backbone.extractors.base import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["ego4d_omnivore_transform", "egovlp_transform", "center_crop_offsets"]


def center_crop_offsets(height: int, width: int, crop: int) -> tuple[int, int]:
    """(top, left) of a ``crop`` x ``crop`` centre crop: ``int(round((size - crop) / 2))``, half to even
    (torchvision transforms.functional ``center_crop`` and ``_transforms_video.center_crop``)."""
    return int(round((height - crop) / 2.0)), int(round((width - crop) / 2.0))


def _channel_stats(values: Sequence[float], like: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(shape)


def ego4d_omnivore_transform(frames: torch.Tensor, side_size: int = 256, crop_size: int = 224,
                             mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
                             ) -> torch.Tensor:
    """uint8 [T, H, W, 3] -> float32 [3, T, crop, crop], Ego4D's Omnivore video transform in its order: ``/ 255``,
    per-channel ``(x - mean) / std``, short side to ``side_size`` (long side ``floor(long / short * side)``,
    bilinear, no antialias), centre crop. Reproduces facebookresearch/Ego4d ego4d/features/models/omnivore.py
    ``get_transform`` with pytorchvideo ``ShortSideScale`` (transforms/functional.py ``short_side_scale``) and
    torchvision ``NormalizeVideo`` / ``CenterCropVideo``."""
    video = frames.permute(3, 0, 1, 2).to(torch.float32) / 255.0  # [C, T, H, W]
    video = (video - _channel_stats(mean, video, (3, 1, 1, 1))) / _channel_stats(std, video, (3, 1, 1, 1))
    height, width = video.shape[-2:]
    if width < height:
        size = (int(math.floor((float(height) / width) * side_size)), side_size)
    else:
        size = (side_size, int(math.floor((float(width) / height) * side_size)))
    video = F.interpolate(video, size=size, mode="bilinear", align_corners=False)
    top, left = center_crop_offsets(size[0], size[1], crop_size)
    return video[..., top:top + crop_size, left:left + crop_size]


def _resize_short_side(video: torch.Tensor, size: int) -> torch.Tensor:
    """torchvision 0.13 ``Resize(size)`` on a tensor [..., H, W]: unchanged when the short side already is
    ``size``, else short side to ``size`` and long side ``int(size * long / short)``, bilinear, no antialias
    (torchvision 0.13 transforms/functional_tensor.py ``resize``)."""
    height, width = video.shape[-2:]
    short, long = (width, height) if width <= height else (height, width)
    if short == size:
        return video
    new_long = int(size * long / short)
    out_size = (new_long, size) if width <= height else (size, new_long)
    return F.interpolate(video, size=out_size, mode="bilinear", align_corners=False)


def egovlp_transform(frames: torch.Tensor, input_res: int = 224, center_crop: int = 256,
                     mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> torch.Tensor:
    """uint8 [T, H, W, 3] -> float32 [T, 3, input_res, input_res], EgoVLP's test transform: ``/ 255``, short side
    to ``center_crop``, centre crop ``center_crop``, short side to ``input_res``, per-channel
    ``(x - mean) / std``. Reproduces showlab/EgoVLP data_loader/transforms.py ``init_video_transform_dict()["test"]``
    as data_loader/Ego4D_MQ_dataset.py applies it (on the clip as [3, T, H, W], torchvision 0.13 semantics)."""
    video = frames.permute(3, 0, 1, 2).to(torch.float32) / 255  # [3, T, H, W]
    video = _resize_short_side(video, center_crop)
    top, left = center_crop_offsets(video.shape[-2], video.shape[-1], center_crop)
    video = video[..., top:top + center_crop, left:left + center_crop]
    video = _resize_short_side(video, input_res)
    video = (video - _channel_stats(mean, video, (3, 1, 1, 1))) / _channel_stats(std, video, (3, 1, 1, 1))
    return video.transpose(0, 1)
