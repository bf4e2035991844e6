"""Step 2 of ``egostream demo``: the rendered videos' features, through the ``egostream extract`` code path."""
from __future__ import annotations

from typing import Any

from rich.console import Console

from egostream.demo.config import DemoConfig, DemoPaths
from egostream.errors import InputError

__all__ = ["extract"]


def extract(cfg: DemoConfig, paths: DemoPaths, console: Console, device: str = "cpu") -> dict[str, Any]:
    """Step 2: ``egostream extract`` of every rendered video into ``data/features/<feature_name>/`` (resumable per
    video), on ``device`` unless the extractor options name one. Raises InputError when a video fails."""
    from egostream.actors.commands import extract_features

    with console.status(f"extracting {cfg.extractor} features of {len(list(paths.videos.glob('*.mp4')))} videos"):
        report = extract_features([str(paths.videos)], str(paths.features(cfg.feature_name)), cfg.extractor,
                                  extractor_options=cfg.extractor_options, window_frames=cfg.window_frames,
                                  decoder_backend=cfg.decoder, device=device)
    if report.failed:
        uid, reason = next(iter(report.failed.items()))
        raise InputError(paths.videos / f"{uid}.mp4", "frames", reason)
    return report.as_dict()
