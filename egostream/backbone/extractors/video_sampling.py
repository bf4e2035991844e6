"""Which frames the official feature pipelines feed their models: Ego4D's window rule and EgoVLP's MQ/NLQ sampling.

Frame indices are on the 30 fps canonical clock of the video (frame i at i / 30 s). Both rules are reproduced from
the official code and checked against its outputs (``shared/fixtures/extractor_reference``).
"""
from __future__ import annotations

import numpy as np

__all__ = ["ego4d_windows", "egovlp_mq_frame_indices", "egovlp_window_offsets"]


def ego4d_windows(num_frames: int, window_frames: int = 32, stride_frames: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Ego4D's windows of an ``num_frames``-frame video: (first frame [W], frame count [W]), int64.

    Window k holds frames [stride * k, stride * k + window); when the grid does not end on the last frame, one more
    window [N - window, N) is added (back padding); a video shorter than one window gives one window of all its
    N frames. Reproduces pytorchvideo ``UniformClipSampler(window / 30, stride / 30, backpad_last=True)`` over the
    stream duration with Ego4D's ``get_frames`` time test (facebookresearch/Ego4d ego4d/features/dataset.py and
    pytorchvideo/data/clip_sampling.py); the count is Ego4d's ``_num_fvs`` (ego4d/features/extract_features.py).
    """
    if num_frames < 1:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if num_frames < window_frames:
        return np.zeros(1, np.int64), np.full(1, num_frames, np.int64)
    starts = list(range(0, num_frames - window_frames + 1, stride_frames))
    if (num_frames - window_frames) % stride_frames:
        starts.append(num_frames - window_frames)
    return np.asarray(starts, np.int64), np.full(len(starts), window_frames, np.int64)


def egovlp_mq_frame_indices(start_s: float, end_s: float, num_frames: int, fps: float = 1.87,
                            frames_per_window: int = 4, video_fps: float = 30.0) -> np.ndarray:
    """Frame indices (int64 [F], into the whole video) that EgoVLP's MQ/NLQ feature extraction reads for the clip
    [``start_s``, ``end_s``] of a video of ``num_frames`` frames.

    ``int((end - start) * fps * frames_per_window + 1)`` intervals evenly cover frames [start * 30,
    min(N, end * 30)] (``np.linspace``, truncated to int), and the frame of each interval is
    ``(a + b - 1) // 2`` of its bounds: about 7.48 frames per second, not a 16-frame grid. Reproduces
    showlab/EgoVLP data_loader/Ego4D_MQ_dataset.py ``_get_video_feats`` and base/base_dataset.py
    ``sample_frames_clips`` / ``read_frames_decord_start_end`` (test mode), float64 operations in the same order.
    """
    num = (end_s - start_s) * fps * frames_per_window
    acc_samples = num + 1
    start = max(0.0, start_s * video_fps)
    end = min(float(num_frames), end_s * video_fps)
    intervals = np.linspace(start=start, stop=end, num=int(acc_samples) + 1).astype(int)
    return ((intervals[:-1] + intervals[1:] - 1) // 2).astype(np.int64)


def egovlp_window_offsets(window_frames: int = 16, count: int = 4) -> np.ndarray:
    """The ``count`` frames (offsets into a ``window_frames``-frame window, int64) that the ``grid16`` mode feeds
    EgoVLP: EgoVLP's own test-time uniform rule applied to the window, the middle ``(a + b - 1) // 2`` of each of
    ``count`` equal parts (16 frames, 4 samples: 1, 5, 9, 13; showlab/EgoVLP base/base_dataset.py
    ``sample_frames`` with ``sample="uniform"``)."""
    bounds = np.linspace(0, window_frames, count + 1).astype(int)
    return ((bounds[:-1] + bounds[1:] - 1) // 2).astype(np.int64)
