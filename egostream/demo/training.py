"""Step 3 of ``egostream demo``: the tiny multi-task model, trained with :func:`egostream.train.loop.train`."""
from __future__ import annotations

from typing import Any

from rich.console import Console

from egostream.demo.config import DemoConfig, DemoPaths

__all__ = ["train_model"]


def train_model(cfg: DemoConfig, paths: DemoPaths, console: Console, device: str = "cpu") -> dict[str, Any]:
    """Step 3: train the multi-task model of ``cfg.train`` on the extracted features, on ``device`` (an
    interrupted run resumes from its last epoch's checkpoint)."""
    from egostream.checkpoint import load_checkpoint
    from egostream.train.loop import train

    resume = None
    if paths.checkpoint.is_file():
        state = load_checkpoint(paths.checkpoint).training_state or {}
        resume = paths.checkpoint if 0 < int(state.get("epoch", 0)) else None
    console.print(f"  training {', '.join(cfg.train.tasks)} for {cfg.train.num_epochs} epochs"
                  + (f" (resuming {resume})" if resume else ""))
    result = train(cfg.train, paths.data, paths.train, resume=resume, device=device)
    last = result.records[-1]
    return {"checkpoint": str(result.checkpoint), "epochs": result.epochs_completed,
            "losses": {key.removeprefix("loss/"): round(value, 4) for key, value in last.items()
                       if key.startswith("loss/")}}
