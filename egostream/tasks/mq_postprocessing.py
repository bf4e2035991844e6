"""Moment-query post-processing: soft-NMS over one clip's candidate moments, then clipping them to the clip.

Reproduces Hier-EgoPack's ``EvalMeter._postprocessing`` (sapeirone/hier-egopack@4fff4e5:utils/meters/ego4d/mq.py),
which copies ActionFormer's: one ``batched_nms`` call with the meter's constants, then every boundary ``<= 0`` is
multiplied by 0 and every boundary ``>= duration`` becomes ``boundary * 0 + duration``, in float32. Quirk kept on
purpose: a negative boundary becomes ``-0.0`` (negative zero), which compares equal to ``0.0``.

Defaults are the authors' evaluation settings: iou 0.1 (unused by soft-NMS), min score 0.001, at most 2000 moments,
Gaussian soft-NMS, per class, voting threshold 0.95 (unused by per-class NMS), and sigma 2.0 from
``configs/components/eval_meter/ego4d/mq.yaml`` (the ``EvalMeter`` constructor's own default is 0.9).
"""
from __future__ import annotations

import torch
from torch import Tensor

from egostream.kernels._dispatch import Backend
from egostream.kernels.nms import NMSResult, batched_nms

__all__ = ["postprocess_mq_detections"]


def postprocess_mq_detections(segs: Tensor, scores: Tensor, cls_idxs: Tensor, duration_s: float | Tensor, *,
                              iou_threshold: float = 0.1, min_score: float = 0.001, max_seg_num: int = 2000,
                              use_soft_nms: bool = True, multiclass: bool = True, sigma: float = 2.0,
                              voting_thresh: float = 0.95, backend: Backend = "auto") -> NMSResult:
    """NMS and clipping of one clip's candidate moments.

    Args:
        segs: ``[N, 2]`` float32 candidate (start, end) in seconds from the clip start.
        scores: ``[N]`` float32 candidate probabilities.
        cls_idxs: ``[N]`` int64 MQ class ids.
        duration_s: clip length in seconds (rounded to float32, as the authors' ``duration`` tensor).
        iou_threshold, min_score, max_seg_num, use_soft_nms, multiclass, sigma, voting_thresh: as in
            :func:`egostream.kernels.nms.batched_nms`; defaults are the authors' evaluation settings.
        backend: ``"auto"``, ``"cpu"`` or ``"cupy"``.

    Returns:
        :class:`~egostream.kernels.nms.NMSResult` sorted by decreasing score, segments clipped to
        ``[0, duration_s]`` (negative boundaries become ``-0.0``).
    """
    result = batched_nms(segs, scores, cls_idxs, iou_threshold=iou_threshold, min_score=min_score,
                         max_seg_num=max_seg_num, use_soft_nms=use_soft_nms, multiclass=multiclass, sigma=sigma,
                         voting_thresh=voting_thresh, backend=backend)
    clipped = result.segs.clone()
    duration = torch.as_tensor(duration_s, dtype=torch.float32, device=clipped.device)
    at_or_before_start = clipped <= 0.0
    clipped[at_or_before_start] *= 0.0
    at_or_after_end = clipped >= duration
    clipped[at_or_after_end] = clipped[at_or_after_end] * 0.0 + duration
    return result._replace(segs=clipped)
