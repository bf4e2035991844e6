"""``egostream demo`` orchestration: the steps in order, each resumable (``OUT/steps/<step>.json``), and the final
table."""
from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.table import Table

from egostream.config import to_dict
from egostream.demo.config import DemoConfig, DemoPaths
from egostream.demo.dataset import synthesize
from egostream.demo.features import extract
from egostream.demo.scoring import evaluate
from egostream.demo.streaming import stream_held_out
from egostream.demo.training import train_model
from egostream.device import resolve_device
from egostream.errors import InputError
from egostream.io.atomic import write_json_atomic, write_text_atomic
from egostream.train.seeding import torch_threads

__all__ = ["STEPS", "StepResult", "DemoReport", "run_demo", "write_demo_report", "metrics_table"]


STEPS = ("synthesize", "extract", "train", "stream", "evaluate")


@dataclass(frozen=True)
class StepResult:
    """One step of a run: its summary and whether this run computed it (``reused``: a previous run did)."""

    name: str
    summary: dict[str, Any]
    reused: bool
    wall_s: float


@dataclass(frozen=True)
class DemoReport:
    """What :func:`run_demo` did: each step's result, the final metrics, the output folder and the report page."""

    out: Path
    steps: tuple[StepResult, ...]
    page: Path

    @property
    def metrics(self) -> dict[str, Any]:
        return self.step("evaluate").summary

    def step(self, name: str) -> StepResult:
        return next(step for step in self.steps if step.name == name)


def _check_config(cfg: DemoConfig, paths: DemoPaths, force: bool) -> None:
    """Start afresh under ``force``; otherwise refuse an output folder made with another config."""
    text = json.dumps(to_dict(cfg), sort_keys=True)
    if force:
        for path in paths.owned():
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
    elif paths.config.is_file() and json.loads(paths.config.read_text()) != json.loads(text):
        raise InputError(paths.config, None, "this output folder was made with another demo config; re-run with "
                                             "--force (starts afresh) or choose another --out")
    paths.root.mkdir(parents=True, exist_ok=True)
    write_text_atomic(paths.config, text + "\n")


def run_demo(cfg: DemoConfig, out: str | PathLike[str] = "demo_out", *, force: bool = False,
             console: Console | None = None, device: str = "cpu") -> DemoReport:
    """Run the five steps into ``out`` (see the module docstring); finished steps of an earlier run with the same
    config are reused unless ``force``. Extraction, training, the stream and the replay run on ``device``
    (resolved first: InputError, field ``device``, for one this machine cannot use)."""
    resolve_device(device)
    console = console or Console()
    paths = DemoPaths(Path(out))
    _check_config(cfg, paths, force)
    results: dict[str, StepResult] = {}
    bodies: dict[str, Callable[[], dict[str, Any]]] = {
        "synthesize": lambda: synthesize(cfg, paths, console),
        "extract": lambda: extract(cfg, paths, console, device),
        "train": lambda: train_model(cfg, paths, console, device),
        "stream": lambda: stream_held_out(cfg, paths, console, device),
        "evaluate": lambda: evaluate(cfg, paths, console, results["stream"].summary, device),
    }
    # One torch thread: multi-threaded CPU reductions sum in a varying order, so two threads give different weights
    # on every run (the model is tiny: one thread is as fast).
    with torch_threads(1):
        for number, name in enumerate(STEPS, start=1):
            results[name] = _run_step(number, name, bodies[name], paths, console)
    page = write_demo_report(paths, results["stream"].summary)
    report = DemoReport(paths.root, tuple(results[name] for name in STEPS), page)
    console.print(metrics_table(report.metrics))
    console.print(f"report: {page}")
    return report


def write_demo_report(paths: DemoPaths, stream: Mapping[str, Any]) -> Path:
    """The streamed video's timeline report (ground truth under the tracks, thumbnails of the video) in
    ``OUT/report/``; returns the page's path."""
    from egostream.report import write_report

    uid = stream["video_uid"]
    return write_report(stream["results_file"], paths.report, annotations=paths.data,
                        video=paths.videos / f"{uid}.mp4", title=f"egostream demo: held-out video {uid}").page


def _run_step(number: int, name: str, body: Callable[[], dict[str, Any]], paths: DemoPaths,
              console: Console) -> StepResult:
    """Run one step (or reuse its summary from an earlier run), with a header and its wall time."""
    marker = paths.steps / f"{name}.json"
    console.rule(f"[bold]{number}/{len(STEPS)} {name}")
    began = time.monotonic()
    if marker.is_file():
        summary, reused = json.loads(marker.read_text()), True
        console.print(f"  reusing the finished step ({marker})")
    else:
        summary, reused = body(), False
        write_json_atomic(marker, summary, indent=2)
    result = StepResult(name, summary, reused, time.monotonic() - began)
    console.print(f"  {name} {'reused' if reused else 'done'} in {result.wall_s:.1f} s")
    return result


def metrics_table(metrics: Mapping[str, Any]) -> Group:
    """The final view: trained vs chance per task (val split), and the streamed windows' AR accuracy."""
    table = Table(title=f"held-out (val) metrics, {metrics['protocol']} protocol", header_style="bold")
    for column in ("task", "metric", "trained", "chance", ""):
        table.add_column(column, justify="right" if column in ("trained", "chance") else "left")
    for row in metrics["tasks"]:
        arrow = "↑" if row["higher_is_better"] else "↓"
        table.add_row(row["task"].upper(), f"{row['metric']} {arrow}", f"{row['trained']:.2f}",
                      f"{row['chance']:.2f}", "[green]above chance[/]" if row["beats_chance"] else "[red]not above[/]")
    streaming = metrics["streaming"]
    check = Table(title="streamed held-out video: per-window current action vs ground truth", header_style="bold")
    for column in ("", "verb top-1 %", "noun top-1 %"):
        check.add_column(column, justify="left" if not column else "right")
    check.add_row("trained", f"{streaming['verb_top1_pct']:.1f}", f"{streaming['noun_top1_pct']:.1f}")
    check.add_row("chance (train majority)", f"{streaming['chance_verb_top1_pct']:.1f}",
                  f"{streaming['chance_noun_top1_pct']:.1f}")
    check.caption = (f"{streaming['windows_with_action']} of {streaming['windows']} windows overlap an annotated "
                     "action")
    return Group(table, check)
