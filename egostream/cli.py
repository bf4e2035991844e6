"""The ``egostream`` command.

Each subcommand is a small function; heavy imports (torch, ray) happen inside it so ``egostream --help`` is fast.
Every expected failure (:func:`~egostream.errors.describe_failure`: bad input, wherever it was raised, or an output
that cannot be written) prints one line naming the file and field and exits 2; SIGINT (Ctrl-C) and SIGTERM stop a
command cleanly with exit status 130 / 143.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from egostream import __version__
from egostream.config import apply_overrides
from egostream.errors import InputError, Interrupted, describe_failure

__all__ = ["main", "build_parser"]

PROTOCOLS = ("hier-egopack", "official")


def _task(name: str) -> str:
    """A registered task name (``--task``); the registry is read only when a task is given (it imports torch)."""
    from egostream.tasks.base import task_names

    if name not in task_names():
        raise argparse.ArgumentTypeError(f"unknown task {name!r}; known: {', '.join(task_names())}")
    return name


def _task_or_all(name: str) -> str:
    return name if name == "all" else _task(name)


def _cmd_eval(args: argparse.Namespace) -> int:
    from egostream.ego4d.evaluation import evaluate_files

    metrics = evaluate_files(
        task=args.task,
        protocol=args.protocol,
        annotations=args.annotations,
        predictions=args.predictions,
        labels=args.labels,
    )
    json.dump(metrics, sys.stdout, indent=None, sort_keys=True)
    sys.stdout.write("\n")
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    from egostream.config import load_config
    from egostream.ego4d.synthetic import SynthConfig, generate_dataset

    overrides = [f"videos={args.videos}", f"seed={args.seed}", *args.overrides]
    cfg = load_config(SynthConfig, args.config, overrides)
    summary = generate_dataset(args.root, cfg)
    json.dump(summary, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


def _cmd_baseline(args: argparse.Namespace) -> int:
    from egostream.ego4d.baselines import write_prior_submission

    path = write_prior_submission(args.task, args.annotations, args.out, prior=args.prior, seed=args.seed,
                                  protocol=args.protocol)
    sys.stdout.write(f"{path}\n")
    return 0


_REPLAY_OPTIONS = {"batch_size": int, "authors_batched_lta": bool, "lta_batch_size": int, "seed": int,
                   "precision": str}


def _cmd_replay_stream(args: argparse.Namespace) -> int:
    """``replay --stream``: one video's features through the streaming engine; the table goes to stderr."""
    from dataclasses import asdict

    from rich.console import Console

    from egostream.replay import checkpoint_spec
    from egostream.stream.config import DEFAULT_STREAM_CONFIG, load_stream_config
    from egostream.replay_stream import replay_stream

    if not args.video:
        raise InputError(None, "--video", "replay --stream needs --video UID")
    stream_config = load_stream_config(args.stream_config or DEFAULT_STREAM_CONFIG, args.overrides)
    summary = replay_stream(args.data, args.video, checkpoint_spec(args.checkpoint, "all"), args.out,
                            features=args.features, format=args.format, backpack=args.backpack,
                            stream_config=stream_config, console=Console(stderr=True), force=args.force,
                            resume=args.resume, device=args.device)
    json.dump({**asdict(summary), "out": str(summary.out)}, sys.stdout, sort_keys=True, default=str)
    sys.stdout.write("\n")
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    if args.stream:
        return _cmd_replay_stream(args)
    if args.task is None:
        raise InputError(None, "--task", "replay needs --task T|all (or --stream --video UID)")
    if args.resume:
        raise InputError(None, "--resume", "only with --stream (replay keeps finished task files by itself)")
    from egostream.replay import checkpoint_spec, replay

    options = apply_overrides({}, args.overrides)
    for key, value in options.items():
        if key not in _REPLAY_OPTIONS:
            raise InputError(None, key, f"unknown replay option; known: {', '.join(_REPLAY_OPTIONS)}")
        if not isinstance(value, _REPLAY_OPTIONS[key]):
            raise InputError(None, key, f"expected {_REPLAY_OPTIONS[key].__name__}, got {value!r}")
    from egostream.io.outputs import check_output_folder

    checkpoints = checkpoint_spec(args.checkpoint, args.task)
    check_output_folder(args.out)
    if args.ray_address:
        from egostream.actors.commands import replay_on_cluster

        metrics = replay_on_cluster(args.task, args.protocol, str(args.data), args.split, checkpoints, str(args.out),
                                    args.ray_address, force=args.force, features=args.features, device=args.device,
                                    **options)
    else:
        metrics = replay(args.task, args.protocol, args.data, args.split, checkpoints, args.out,
                         features=args.features, force=args.force, device=args.device,
                         **options)  # type: ignore[arg-type]
    json.dump(metrics, sys.stdout, indent=None, sort_keys=True)
    sys.stdout.write("\n")
    return _report_failures(args.command, metrics.get("failed", {}))


def _report_failures(command: str, failed: dict[str, str]) -> int:
    """One stderr line per failed batch item (``key: reason``); exit status 2 when any failed, else 0."""
    for key, reason in failed.items():
        sys.stderr.write(f"egostream {command}: skipped {key}: {reason}\n")
    return 2 if failed else 0


def _split_run_items(items: Sequence[str]) -> tuple[list[str], list[str]]:
    """``run``'s positionals: sources (files, cameras, URLs) and ``key=value`` stream overrides (an item with ``=``
    that is neither a URL nor an existing file)."""
    sources, overrides = [], []
    for item in items:
        if "=" in item and "://" not in item and not Path(item).exists():
            overrides.append(item)
        else:
            sources.append(item)
    if not sources:
        raise InputError(None, "SOURCE", "run needs at least one video file, camera or URL")
    return sources, overrides


def _cmd_run(args: argparse.Namespace) -> int:
    from egostream.actors.commands import run_sources
    from egostream.actors.perception import checkpoint_paths
    from egostream.stream.config import load_stream_config

    sources, overrides = _split_run_items([*args.sources, *args.overrides])
    stream_config = load_stream_config(args.stream_config or None, overrides)
    suffix = ".jsonl" if args.format == "jsonl" else ".msgpack"
    if len(sources) > 1:
        from egostream.actors.commands import stream_id_of

        outs = [args.out / f"{stream_id_of(source)}{suffix}" for source in sources]
        reports = [args.out / stream_id_of(source) for source in sources]
    else:
        outs, reports = [args.out], [args.report] if args.report is not None else [None]
    server = None
    if args.serve is not None:
        from egostream.io.result_server import ResultServer, parse_bind
        from egostream.report.page import build_page

        host, port = parse_bind(args.serve)
        server = ResultServer(host, port, page=build_page([], mode="live", title="egostream run (live)")).start()
        sys.stderr.write(f"egostream run: windows on {server.url}, live page {server.page_url}\n")
    try:
        results = run_sources(sources, checkpoint_paths(args.checkpoint), args.extractor, [str(out) for out in outs],
                              extractor_options=apply_overrides({}, args.extractor_options), format=args.format,
                              stream_config=stream_config, backend="local" if args.local else "ray",
                              ray_address=args.ray_address, extractor_gpus=args.extractor_gpus,
                              window_frames=args.window_frames, decoder_backend=args.decoder,
                              live_table=not args.no_table, backpack=str(args.backpack) if args.backpack else None,
                              server=server, force=args.force, resume=args.resume,
                              source_options=_key_values(args.source_options, "--source-option"),
                              device=args.device, gpus_per_stream=args.gpus_per_stream)
    finally:
        if server is not None:
            server.close()
    failed = {source: report.failed for source, report in zip(sources, results) if report.failed is not None}
    if len(sources) == 1 and failed:
        sys.stderr.write(f"egostream run: error: {failed[sources[0]]}\n")
        return 2
    summaries = []
    for report, out, report_dir in zip(results, outs, reports):
        summary = {**report.as_dict(stream_config.row_period_s), "out": str(out)}
        if report_dir is not None and report.failed is None:
            from egostream.report import write_report

            summary["report"] = str(write_report(out, report_dir).page)
        summaries.append(summary)
    json.dump(summaries[0] if len(sources) == 1 else {"streams": summaries}, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return _report_failures(args.command, failed)


def _cmd_report(args: argparse.Namespace) -> int:
    from egostream.report import write_report

    summary = write_report(args.results, args.out, annotations=args.annotations, video=args.video)
    json.dump(summary.as_dict(), sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


def _key_values(items: list[str], flag: str) -> dict[str, str]:
    """``key=value`` texts as a dict of strings (an item without ``=`` is an error naming ``flag``)."""
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(None, flag, f"expected key=value, got {item!r}")
        pairs[key] = value
    return pairs


def _cmd_extract(args: argparse.Namespace) -> int:
    from egostream.actors.commands import extract_features
    from egostream.io.outputs import check_output_folder

    check_output_folder(args.out)
    report = extract_features([str(video) for video in args.videos], str(args.out), args.extractor,
                              extractor_options=apply_overrides({}, args.overrides), window_frames=args.window_frames,
                              decoder_backend=args.decoder, ray_address=args.ray_address,
                              gpus_per_video=args.gpus_per_video, device=args.device)
    json.dump(report.as_dict(), sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return _report_failures(args.command, report.failed)


def _cmd_train(args: argparse.Namespace) -> int:
    from egostream.train.loop import train
    from egostream.train.recipe import load_recipe

    overrides = list(args.overrides)
    if args.support_checkpoint:  # translation: the frozen source checkpoint(s)
        overrides.append(f"translation.sources=[{','.join(str(path) for path in args.support_checkpoint)}]")
    recipe = load_recipe(args.stage, args.task, args.config, overrides)
    result = train(recipe, args.data, args.out, resume=args.resume, device=args.device)
    json.dump({"checkpoint": str(result.checkpoint), "epochs": result.epochs_completed,
               "metrics": result.records[-1] if result.records else None}, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


def _cmd_backpack_build(args: argparse.Namespace) -> int:
    from egostream.checkpoint import load_checkpoint
    from egostream.ego4d.batching import TaskDataset, batch_loader
    from egostream.ego4d.features import FeatureSpec, FeatureStore
    from egostream.ego4d.layout import Ego4dLayout
    from egostream.model import ModelConfig
    from egostream.train.data import load_split
    from egostream.train.prototypes import backpack_from_checkpoint

    loaded = load_checkpoint(args.checkpoint)
    if loaded.backbone_config is None:
        raise InputError(args.checkpoint, "backbone_config", "the support checkpoint holds no backbone")
    dim = loaded.backbone_config.input_size
    store = FeatureStore(args.data, args.features, expected_dim=dim)
    samples = load_split(Ego4dLayout.from_root(args.data), store, FeatureSpec(args.features, dim=dim), "ar", "train",
                         args.protocol)
    vocabulary = ModelConfig()
    backpack = backpack_from_checkpoint(loaded, batch_loader(TaskDataset(samples, store), args.batch_size),
                                        vocabulary.num_verbs, vocabulary.num_nouns, progress=True,
                                        device=args.device)
    backpack.save(args.out)
    json.dump({"backpack": str(args.out), "support_tasks": backpack.support_tasks,
               "prototypes": backpack.num_prototypes, "feature_size": backpack.feature_size}, sys.stdout,
              sort_keys=True)
    sys.stdout.write("\n")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from egostream.demo import load_demo_config, run_demo

    cfg = load_demo_config(args.config, args.overrides)
    report = run_demo(cfg, args.out, force=args.force, device=args.device)
    return 0 if all(row["beats_chance"] for row in report.metrics["tasks"]) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="egostream", description="Streaming, online egocentric perception with Hier-EgoPack (see README.md).")
    parser.add_argument("--version", action="version", version=f"egostream {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    def device_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--device", default="auto", metavar="DEVICE",
                       help="where the model runs: auto (the first usable CUDA GPU, else the CPU), cpu, cuda or "
                            "cuda:N (default: auto)")

    p = command("eval", "Score a prediction file against Ego4D annotations; prints one JSON object.", _cmd_eval)
    p.add_argument("--task", required=True, type=_task, help="a registered task: ar, lta, oscc, pnr, mq or a plug-in")
    p.add_argument("--protocol", default="official", choices=PROTOCOLS,
                   help="official: the Ego4D evaluators; hier-egopack: the authors' meters (paper numbers)")
    p.add_argument("--annotations", required=True, type=Path,
                   help="fho_lta_{split}.json, fho_oscc-pnr_{split}.json or moments_{split}.json")
    p.add_argument("--predictions", required=True, type=Path, help="predictions in the official submission format")
    p.add_argument("--labels", type=Path, default=None,
                   help="MQ only: mq_labels.tsv (class-id order); default: the one next to the annotations")

    p = command("synth", "Write a small synthetic Ego4D-format dataset (annotations and features).", _cmd_synth)
    p.add_argument("root", type=Path, help="output folder (created)")
    p.add_argument("--videos", type=int, default=12, help="number of videos")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--config", type=Path, default=None, help="YAML config (default: built-in defaults)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")

    p = command("baseline", "Write the class-prior (chance-level) predictions for a task, in the submission format.",
                _cmd_baseline)
    p.add_argument("--task", required=True, type=_task, help="a registered task: ar, lta, oscc, pnr, mq or a plug-in")
    p.add_argument("--annotations", required=True, type=Path, help="the annotation file to predict for")
    p.add_argument("--out", required=True, type=Path, help="prediction file to write (atomically)")
    p.add_argument("--prior", type=Path, default=None,
                   help="annotation file whose class frequencies form the prior (default: --annotations)")
    p.add_argument("--protocol", default="official", choices=PROTOCOLS, help="which LTA sample windows to predict")
    p.add_argument("--seed", type=int, default=0, help="seed of the tie-break between equally frequent classes")

    p = command("replay", "Evaluate a model on an Ego4D split under a benchmark protocol: writes the official "
                          "submission files and metrics.json; prints the metrics as one JSON object.", _cmd_replay)
    p.add_argument("--task", default=None, type=_task_or_all,
                   help="a registered task (ar, lta, oscc, pnr, mq, plug-ins) or all; required unless --stream")
    p.add_argument("--protocol", default="hier-egopack", choices=PROTOCOLS,
                   help="hier-egopack: the authors' samples and meters (paper numbers); official: the Ego4D evaluators")
    p.add_argument("--data", required=True, type=Path, help="Ego4D data root (annotations/, features/<name>/)")
    p.add_argument("--split", default="val")
    p.add_argument("--checkpoint", required=True, action="append", metavar="[TASK=]CKPT",
                   help="checkpoint for every task, or TASK=CKPT for one task (repeatable)")
    p.add_argument("--out", required=True, type=Path, help="output folder (<task>.json, metrics.json)")
    p.add_argument("--features", default="egovlp", help="feature folder name under features/ (default: egovlp)")
    p.add_argument("--force", action="store_true",
                   help="re-run tasks whose submission file already exists; with --stream: replace an existing --out")
    p.add_argument("--resume", action="store_true",
                   help="with --stream: continue an interrupted --out from its last complete window")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="run each task as one task on this Ray cluster (e.g. auto or HOST:6379); the data root must "
                        "be visible to every node")
    p.add_argument("--stream", action="store_true",
                   help="stream one video (--video) through the streaming engine; --out is then the result file")
    p.add_argument("--video", default=None, metavar="UID", help="with --stream: the video uid")
    p.add_argument("--format", default=None, choices=("msgpack", "jsonl"),
                   help="with --stream: result format (default from the --out suffix: .jsonl or msgpack)")
    p.add_argument("--stream-config", type=Path, default=None,
                   help="with --stream: StreamConfig YAML (default configs/stream/default.yaml)")
    p.add_argument("--backpack", type=Path, default=None,
                   help="with --stream: backpack file (egostream backpack build) for the prototype evidence")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="batch_size=4, authors_batched_lta=true, lta_batch_size=64, seed=0, precision=float32 "
                        "(bfloat16/float16: autocast heads); with --stream: StreamConfig keys (emit_every_s=1, "
                        "readouts.ar_span_s=2)")
    device_option(p)

    p = command("train", "Train a model: single-task, multi-task, EgoPack or translation stage (the authors' recipes).",
                _cmd_train)
    p.add_argument("stage", choices=("single", "multi", "egopack", "translation"))
    p.add_argument("--task", required=True, action="append", type=_task,
                   help="task to train (repeat for the multi-task stage)")
    p.add_argument("--data", required=True, type=Path, help="Ego4D data folder (annotations, features/<name>/)")
    p.add_argument("--out", required=True, type=Path, help="output folder: checkpoint.pt, metrics.jsonl, recipe.yaml")
    p.add_argument("--config", type=Path, default=None,
                   help="recipe YAML (default: configs/train/single_<task>.yaml, multi_task.yaml, "
                        "egopack_<task>.yaml or translation_<task>.yaml)")
    p.add_argument("--resume", type=Path, default=None, help="checkpoint.pt of an interrupted run to continue")
    p.add_argument("--support-checkpoint", type=Path, action="append", default=[],
                   help="translation: a frozen source checkpoint (one multi-task, or one single-task per source task; "
                        "repeat)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="recipe overrides (optimizer.lr=5e-5)")
    device_option(p)

    p = command("backpack", "EgoPack backpack tools.", _cmd_backpack_build)
    backpack_sub = p.add_subparsers(dest="backpack_command", required=True, metavar="BACKPACK_COMMAND")
    b = backpack_sub.add_parser("build", help="Build the prototypes of a support checkpoint from the AR train split.",
                                description="Build the prototypes of a support checkpoint from the AR train split.")
    b.set_defaults(func=_cmd_backpack_build)
    b.add_argument("--checkpoint", required=True, type=Path, help="support (multi-task) checkpoint")
    b.add_argument("--data", required=True, type=Path, help="Ego4D data folder")
    b.add_argument("--out", required=True, type=Path, help="backpack file to write (atomically)")
    b.add_argument("--features", default="egovlp", help="feature folder name under features/ (default: egovlp)")
    b.add_argument("--protocol", default="hier-egopack", choices=PROTOCOLS)
    b.add_argument("--batch-size", type=int, default=8, help="AR clips per batch (the authors' 8)")
    device_option(b)

    p = command("run", "Stream video files, cameras or network URLs through decode -> extract -> engine -> sink "
                       "(Ray actors; several sources run as parallel pipelines) into result files; live table on the "
                       "terminal, final report as JSON.", _cmd_run)
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="video file, /dev/videoN camera, or rtsp/udp/http URL (several: one pipeline each); "
                        "key=value items among them are StreamConfig overrides (emit_every_s=1, readouts.ar_span_s=2)")
    p.add_argument("--checkpoint", required=True, action="append", metavar="[TASK=]CKPT",
                   help="checkpoint for every task, or TASK=CKPT for one task (repeatable)")
    p.add_argument("--extractor", required=True,
                   help="registered feature extractor (omnivore, egovlp, open_clip, torchscript, ...)")
    p.add_argument("--extractor-option", dest="extractor_options", action="append", default=[],
                   metavar="key=value",
                   help="extractor option, e.g. weights=swinL_In21k_checkpoint.torch device=cuda (repeatable)")
    p.add_argument("--out", required=True, type=Path,
                   help="result file (msgpack frames or JSONL); with several sources a folder: <id>.msgpack and the "
                        "report <id>/report.html of each (id: the file name without its suffix)")
    p.add_argument("--format", default="msgpack", choices=("msgpack", "jsonl"))
    p.add_argument("--stream-config", type=Path, default=None,
                   help="StreamConfig YAML (default: the StreamConfig defaults, as configs/stream/default.yaml)")
    p.add_argument("--backpack", type=Path, default=None,
                   help="backpack file (egostream backpack build): the nearest prototypes as evidence in every window")
    p.add_argument("--serve", default=None, metavar="HOST:PORT",
                   help="publish every window over WebSocket (ws://HOST:PORT/ws, msgpack; egostream.subscribe) with a "
                        "live page at http://HOST:PORT/; PORT alone binds 127.0.0.1")
    p.add_argument("--report", type=Path, default=None, metavar="DIR",
                   help="one source: also write the report (egostream report) of the result file into DIR")
    p.add_argument("--window-frames", type=int, default=None,
                   help="frames per window (default: the extractor's own, omnivore 32, else 16)")
    p.add_argument("--decoder", default="pyav", choices=("pyav", "decord"), help="decoder of video files")
    p.add_argument("--ray-address", default=None, metavar="ADDR", help="Ray cluster to join (default: a local one)")
    p.add_argument("--local", action="store_true", help="run every stage in this process instead of Ray actors")
    p.add_argument("--extractor-gpus", type=float, default=0.0,
                   help="GPUs reserved by each extractor actor (default: --gpus-per-stream on CUDA, none on the CPU)")
    p.add_argument("--gpus-per-stream", type=float, default=0.25,
                   help="on CUDA: GPUs the engine and the extractor actor of each stream request (default 0.25)")
    device_option(p)
    p.add_argument("--no-table", action="store_true", help="no live table (only the final JSON report)")
    p.add_argument("--force", action="store_true", help="replace an existing --out (kept until the new one is done)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted --out from its last complete window")
    p.add_argument("--source-option", dest="source_options", action="append", default=[], metavar="key=value",
                   help="network source option (repeatable): open_timeout_s, read_timeout_s, max_retries, backoff_s, "
                        "max_backoff_s, give_up=end|error, or an FFmpeg option such as rtsp_transport=tcp")
    p.set_defaults(overrides=[])

    p = command("report", "Turn a result file (msgpack or JSONL) into a self-contained HTML timeline (report.html, "
                          "plotly.js embedded, works offline) and PNGs; prints what it wrote as JSON.", _cmd_report)
    p.add_argument("results", type=Path, metavar="RESULTS", help="result file of run or replay --stream")
    p.add_argument("--out", required=True, type=Path, help="output folder (report.html, timeline.png, <track>.png)")
    p.add_argument("--annotations", type=Path, default=None, metavar="ANN",
                   help="Ego4D data root (annotations/v1/...): the ground truth drawn under each track")
    p.add_argument("--video", type=Path, default=None, help="the streamed video: thumbnails on a video track")

    p = command("extract", "Extract features of videos in the Ego4D layout: one <video_uid>.pt [T, D] per video, "
                           "written atomically, resumable; spread over a Ray cluster with --ray-address.",
                _cmd_extract)
    p.add_argument("videos", nargs="+", type=Path, metavar="VIDEOS", help="video files and/or folders of videos")
    p.add_argument("--out", required=True, type=Path, help="features folder (e.g. DATA/features/<name>)")
    p.add_argument("--extractor", required=True,
                   help="registered feature extractor (omnivore, egovlp, open_clip, torchscript, ...)")
    p.add_argument("--window-frames", type=int, default=None,
                   help="frames per window (default: the extractor's own, omnivore 32, else 16)")
    p.add_argument("--decoder", default="pyav", choices=("pyav", "decord"))
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="Ray cluster (auto or HOST:PORT); default: this process, one video after the other")
    p.add_argument("--gpus-per-video", type=float, default=0.0,
                   help="on CUDA: GPUs reserved by each video's task (default 0: 0.25)")
    device_option(p)
    p.add_argument("--extractor-option", dest="overrides", action="append", default=[], metavar="key=value",
                   help="extractor option, e.g. weights=egovlp.pth sampling=ego4d-mq (repeatable)")

    p = command("demo", "The main job on synthetic data, nothing downloaded: synthesize a dataset and videos, extract "
                        "features, train a tiny model, stream a held-out video through the Ray pipeline (live table), "
                        "print its metrics next to chance. Resumable: finished steps are reused.", _cmd_demo)
    p.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder (default: ./demo_out)")
    p.add_argument("--config", type=Path, default=None, help="DemoConfig YAML (default: configs/demo.yaml)")
    p.add_argument("--force", action="store_true", help="start afresh instead of reusing finished steps")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides (train.num_epochs=4)")
    device_option(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from egostream.plugins import load_plugins

    # torch_geometric scripts a helper at import time; torch >= 2.10 warns about that on every command. The warning
    # is about PyG's code, not the user's input, so it is silenced for the command line only.
    warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=FutureWarning)
    try:
        load_plugins()
    except InputError as err:
        sys.stderr.write(f"egostream: error: {err}\n")
        return 2
    parser = build_parser()
    # ``key=value`` overrides may stand before or after the options (``synth ROOT --videos 4 depth=2``); argparse
    # would give the positional an empty list as soon as an option follows it, so the extras are collected here.
    args, extras = parser.parse_known_args(argv)
    if extras:
        if not hasattr(args, "overrides") or any("=" not in item or item.startswith("-") for item in extras):
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
        args.overrides = [*args.overrides, *extras]
    previous = _raise_on_sigterm()
    try:
        if getattr(args, "device", None) is not None:  # a device this machine cannot use fails before any work
            from egostream.device import resolve_device

            resolve_device(args.device)
        status = int(args.func(args))
        sys.stdout.flush()  # a closed pipe (``| head``) surfaces here, not at interpreter exit
        return status
    except BrokenPipeError:
        # The reader went away: point stdout at /dev/null so the interpreter's final flush stays silent, and exit
        # as a process killed by SIGPIPE would (128 + 13), like other Unix tools in a pipeline.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except KeyboardInterrupt as err:
        interrupted = err if isinstance(err, Interrupted) else Interrupted(signal.SIGINT)
        sys.stderr.write(f"egostream {args.command}: interrupted ({interrupted}); finished outputs are kept\n")
        return interrupted.exit_status
    except Exception as err:
        line = describe_failure(err)
        if line is None:
            raise
        sys.stderr.write(f"egostream {args.command}: error: {line}\n")
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _raise_on_sigterm() -> signal.Handlers | None:
    """Make SIGTERM raise :class:`~egostream.errors.Interrupted` in the main thread (as SIGINT raises
    KeyboardInterrupt), so a terminated command cleans up like an interrupted one; returns the previous handler."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def terminate(signum: int, frame: object) -> None:
        raise Interrupted(signum)

    return signal.signal(signal.SIGTERM, terminate)  # type: ignore[return-value]


if __name__ == "__main__":
    raise SystemExit(main())
