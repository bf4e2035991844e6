"""``egostream demo`` end to end at a reduced size: every artefact, a complete window stream, trained metrics above
the class-prior chance level, a second run (through the command line) that reuses every finished step, and a
deterministic synthesis (byte-identical annotations, features of the planted model and H.264 videos)."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console

from egostream.cli import main
from egostream.demo import (STEPS, DemoConfig, DemoPaths, DemoReport, frame_labels, load_demo_config,
                            render_labelled_frames, run_demo, synthesize, window_truth)
from egostream.ego4d.layout import Ego4dLayout
from egostream.errors import InputError
from egostream.io.sinks import read_results
from egostream.io.synthetic_video import label_colour

# Four videos (two train, two val) of 70-75 s with 1-1.6 s actions: every clip holds an LTA window (8 + 20 actions).
REDUCED = ["synth.videos=4", "synth.train_fraction=0.5", "synth.min_video_sec=70.0", "synth.max_video_sec=75.0",
           "synth.min_action_sec=1.0", "synth.max_action_sec=1.6", "synth.max_action_gap_sec=0.3",
           "synth.state_change_samples_per_video=4", "synth.moments_per_video=3", "synth.max_moment_sec=10.0",
           "train.num_epochs=8", "train.batch_size=1", "train.progress=false", "live_table=false"]


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


def _artefacts(out: Path) -> dict[str, bytes]:
    """Every file of a run (path relative to ``out`` -> bytes), except the resolved config."""
    return {str(path.relative_to(out)): path.read_bytes() for path in sorted(out.rglob("*"))
            if path.is_file() and path != DemoPaths(out).config}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoConfig, DemoReport]:
    cfg = load_demo_config(overrides=REDUCED)
    return cfg, run_demo(cfg, tmp_path_factory.mktemp("demo") / "out", console=_quiet())


def test_the_default_config_is_configs_demo_yaml() -> None:
    assert load_demo_config() == DemoConfig()


def test_every_artefact_exists(demo: tuple[DemoConfig, DemoReport]) -> None:
    cfg, report = demo
    paths = DemoPaths(report.out)
    assert [step.name for step in report.steps] == list(STEPS) and not any(step.reused for step in report.steps)
    assert all((paths.steps / f"{name}.json").is_file() for name in STEPS)
    layout = Ego4dLayout(paths.data)
    uids = [labels.video_uid for labels in frame_labels(paths.data)]
    assert len(uids) == cfg.synth.videos
    for uid in uids:
        assert (paths.videos / f"{uid}.mp4").is_file()
        rows = torch.load(layout.features_dir(cfg.feature_name) / f"{uid}.pt", weights_only=True)
        assert rows.dtype == torch.float32 and rows.shape[1] == cfg.train.model.feature_dim
    assert paths.checkpoint.is_file() and (paths.train / "metrics.jsonl").is_file()
    for task in cfg.train.tasks:
        assert (paths.replay / f"{task}.json").is_file() and (paths.chance / f"{task}.json").is_file()
    assert json.loads(paths.metrics.read_text()) == report.metrics


def test_the_demo_ends_with_the_report_of_the_streamed_video(demo: tuple[DemoConfig, DemoReport]) -> None:
    _, report = demo
    windows = len(read_results(report.step("stream").summary["results_file"]).results)
    assert report.page == DemoPaths(report.out).report / "report.html" and report.page.is_file()
    assert report.page.read_text().count('"window_index":') == windows > 0
    assert (report.page.parent / "timeline.png").is_file() and (report.page.parent / "video.png").is_file()


def test_the_stream_file_reads_back_complete(demo: tuple[DemoConfig, DemoReport]) -> None:
    cfg, report = demo
    stream = report.step("stream").summary
    read = read_results(stream["results_file"])
    assert read.report.ok and read.report.truncated is None and read.report.records == len(read.results)
    results = read.results
    assert len(results) == stream["report"]["results"] > 0
    assert [result.window_index for result in results] == list(range(len(results)))
    assert {result.stream_id for result in results} == {stream["video_uid"]}
    # one window every emit_every_s of stream time, the last one at the video's last row
    assert all(result.rows % cfg.stream.emit_every_rows == 0 for result in results[:-1])
    assert results[-1].rows == stream["report"]["rows"]
    assert all(result.ar and result.lta and result.oscc and result.pnr and result.mq for result in results)
    assert report.metrics["streaming"]["windows"] == len(results) and not report.metrics["streaming"]["truncated"]


def test_trained_metrics_beat_chance_on_ar_and_oscc(demo: tuple[DemoConfig, DemoReport]) -> None:
    _, report = demo
    rows = {(row["task"], row["metric"]): row for row in report.metrics["tasks"]}
    assert {task for task, _ in rows} == {"ar", "lta", "oscc", "pnr", "mq"}
    for task in ("ar", "oscc"):
        task_rows = [row for (name, _), row in rows.items() if name == task]
        assert all(row["trained"] > row["chance"] and row["beats_chance"] for row in task_rows), task_rows
    streaming = report.metrics["streaming"]
    assert streaming["windows_with_action"] > 0
    assert streaming["verb_top1_pct"] > streaming["chance_verb_top1_pct"]


def test_rendered_frames_show_the_labels_of_their_time(demo: tuple[DemoConfig, DemoReport]) -> None:
    cfg, report = demo
    labels = frame_labels(DemoPaths(report.out).data, cfg.synth.seed)[0]
    frames = list(render_labelled_frames(labels, cfg.frame_size))
    assert len(frames) == labels.num_frames
    height, width = cfg.frame_size
    verb_frames = np.flatnonzero(labels.verb >= 0)
    empty_frames = np.flatnonzero(labels.verb < 0)
    assert len(verb_frames) and len(empty_frames)
    for frame in (verb_frames[0], verb_frames[-1]):
        quadrant = frames[frame][:height // 2, :width // 2].reshape(-1, 3)
        colour = label_colour(int(labels.verb[frame]), len(labels.verb_classes)).astype(int)
        # the stripes scale the colour by 0.75 or 1.0: the brightest pixels carry the label's colour
        assert np.abs(quadrant.max(axis=0).astype(int) - colour).max() <= 1
    assert (frames[empty_frames[0]][:height // 2, :width // 2] == frames[empty_frames[0]][0, 0]).all()


def test_window_truth_takes_the_largest_overlap() -> None:
    class Span:
        def __init__(self, start_s: float, end_s: float) -> None:
            self.start_s, self.end_s = start_s, end_s

    first, second = Span(0.0, 3.0), Span(3.5, 10.0)
    assert window_truth([first, second], 1.0, 5.0) is first  # 2 s against 1.5 s
    assert window_truth([first, second], 2.5, 6.0) is second
    assert window_truth([first, second], 3.1, 3.4) is None


def test_a_second_run_reuses_every_step_and_changes_nothing(demo: tuple[DemoConfig, DemoReport],
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    _, report = demo
    before = _artefacts(report.out)
    code = main(["demo", "--out", str(report.out), *REDUCED])
    printed = capsys.readouterr().out
    assert code == (0 if all(row["beats_chance"] for row in report.metrics["tasks"]) else 1)
    assert printed.count("reusing the finished step") == len(STEPS) and "above chance" in printed
    assert _artefacts(report.out) == before


def test_another_config_on_the_same_folder_needs_force(demo: tuple[DemoConfig, DemoReport]) -> None:
    _, report = demo
    before = _artefacts(report.out)
    with pytest.raises(InputError, match="--force"):
        run_demo(load_demo_config(overrides=[*REDUCED, "train.num_epochs=3"]), report.out, console=_quiet())
    assert _artefacts(report.out) == before


def test_synthesis_is_deterministic(tmp_path: Path) -> None:
    cfg = load_demo_config(overrides=["synth.videos=2", "synth.min_video_sec=60.0", "synth.max_video_sec=61.0",
                                      "synth.state_change_samples_per_video=2", "synth.moments_per_video=2"])
    runs = []
    for name in ("first", "second"):
        synthesize(cfg, DemoPaths(tmp_path / name), _quiet())
        runs.append(_artefacts(tmp_path / name))
    assert runs[0] == runs[1] and sum(path.endswith(".mp4") for path in runs[0]) == 2
