"""Test videos: H.264 files and loopback UDP streams rendered from label sequences with PyAV."""
from __future__ import annotations

import socket
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from egostream.io.synthetic_video import label_colour, render_video

NUM_CLASSES = 3
SIZE = (48, 64)


def segment_labels(lengths: Sequence[int]) -> list[int]:
    """Per-frame labels: ``lengths[c]`` frames of label ``c % NUM_CLASSES``, in order."""
    return [c % NUM_CLASSES for c, length in enumerate(lengths) for _ in range(length)]


def make_video(directory: Path, labels: Sequence[int], fps: float = 30.0, suffix: str = ".mp4") -> Path:
    """An H.264 file of ``labels`` (one frame each) at ``fps``."""
    path = directory / f"video_{fps:g}fps{suffix}"
    render_video(path, labels, fps, num_classes=NUM_CLASSES, size=SIZE)
    return path


def dominant_label(image: np.ndarray) -> int:
    """The label whose colour is nearest the image's brightest pixels (stripes only darken the colour)."""
    bright = image.reshape(-1, 3).astype(np.float64)
    bright = bright[bright.sum(axis=1) >= np.quantile(bright.sum(axis=1), 0.5)].mean(axis=0)
    colours = np.stack([label_colour(c, NUM_CLASSES) for c in range(NUM_CLASSES)]).astype(np.float64)
    return int(np.argmin(((colours - bright) ** 2).sum(axis=1)))


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def free_tcp_port() -> int:
    """A TCP port nobody listens on (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stream_udp_in_thread(port: int, labels: Sequence[int], fps: float = 30.0, delay_s: float = 0.3) -> threading.Thread:
    """Start a thread that waits ``delay_s`` then sends ``labels`` as live mpegts to udp://127.0.0.1:``port``,
    paced at ``fps``."""
    def send() -> None:
        threading.Event().wait(delay_s)
        render_video(f"udp://127.0.0.1:{port}?pkt_size=1316", labels, fps, num_classes=NUM_CLASSES, size=SIZE,
                     format="mpegts", realtime=True)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread
