"""``egostream extract`` and ``egostream run`` with the Omnivore and EgoVLP extractors on checkpoints in the released
layouts (the extractor_reference fixture), on a real video encoded here with PyAV at 24 fps (not the 30 fps clock).

The expected rows are built from the raw frames by the canonical-clock rule (canonical frame k shows the latest
source frame at or before k / 30 s), the Ego4D window rule and the fixture-verified transforms and models, so these
tests check decoding, resampling, windowing, batching and the file layout end to end.
"""
from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from egostream.backbone.extractors import EgoVLPExtractor, OmnivoreExtractor
from egostream.backbone.extractors.video_sampling import (ego4d_windows, egovlp_mq_frame_indices,
                                                          egovlp_window_offsets)
from egostream.backbone.extractors.video_transforms import ego4d_omnivore_transform, egovlp_transform
from egostream.cli import main
from egostream.config import CONFIG_DIR, load_config, to_dict
from egostream.io.sinks import read_results
from egostream.model import ModelConfig
from egostream.testing import extractor_reference_dir

FOLDER = extractor_reference_dir()
SOURCE_FPS = 24
MANIFEST = json.loads((FOLDER / "manifest.json").read_text()) if (FOLDER / "manifest.json").is_file() else {}


def _omnivore_options() -> list[str]:
    dims = MANIFEST["dims"]["omnivore"]
    return [f"side_size={dims['side_size']}", f"crop_size={dims['crop_size']}", "device=cpu"]


def _egovlp_options() -> list[str]:
    dims = MANIFEST["dims"]["egovlp"]
    return [f"num_heads={dims['num_heads']}", f"input_res={dims['input_res']}", f"center_crop={dims['center_crop']}",
            "device=cpu"]


def _options(values: list[str]) -> dict[str, Any]:
    return {key: (int(value) if value.isdigit() else value) for key, value in (v.split("=", 1) for v in values)}


OMNIVORE_WEIGHTS = FOLDER / "checkpoints" / "omnivore_swin3d_small.torch"
EGOVLP_WEIGHTS = FOLDER / "checkpoints" / "egovlp_small.pth"


def encode_lossless(path: Path, frames: np.ndarray, fps: int) -> None:
    """RGB uint8 [N, H, W, 3] -> an H.264 RGB file with qp 0 (lossless), ``fps`` frames per second."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264rgb", rate=Fraction(fps))
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "rgb24"
        stream.options = {"qp": "0", "preset": "ultrafast"}
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")))
        container.mux(stream.encode(None))


def canonical(frames: np.ndarray, fps: int) -> np.ndarray:
    """The 30 fps canonical frames of ``frames`` shown at ``fps``: slot k holds the latest source frame at or
    before k / 30 s, for the slots before the end of the last frame (N / fps s)."""
    slots = np.arange(int(np.ceil(len(frames) * 30 / fps)))
    return frames[np.floor(slots * fps / 30 + 1e-3).astype(int)]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A 24 fps video of the fixture's raw clip, and its canonical frames."""
    raw = torch.load(FOLDER / "inputs" / "raw_clip.pt", weights_only=True)["input.clip_uint8"].numpy()
    folder = tmp_path_factory.mktemp("videos")
    path = folder / "clip24.mp4"
    encode_lossless(path, raw, SOURCE_FPS)
    return path, canonical(raw, SOURCE_FPS)


def _model_checkpoint(path: Path, feature_name: str, feature_dim: int) -> Path:
    """A tiny random Hier-EgoPack trained (as its config says) on ``feature_name`` features of width D."""
    config = load_config(ModelConfig, CONFIG_DIR / "model" / "tiny.yaml",
                         [f"feature_name={feature_name}", f"feature_dim={feature_dim}"])
    return config.build(seed=0).save(path, config={"model": to_dict(config)})


@pytest.fixture(scope="module")
def omnivore_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dim = OmnivoreExtractor(OMNIVORE_WEIGHTS, device="cpu").dim
    return _model_checkpoint(tmp_path_factory.mktemp("model") / "hier_egopack_omnivore.pt", "omnivore_video_swinl",
                             dim)


@pytest.fixture(scope="module")
def egovlp_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dim = EgoVLPExtractor(EGOVLP_WEIGHTS, **_options(_egovlp_options())).dim
    return _model_checkpoint(tmp_path_factory.mktemp("model") / "hier_egopack_egovlp.pt", "egovlp", dim)


def _main(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict[str, Any] | None, str]:
    code = main(argv)
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    return code, json.loads(lines[-1]) if lines else None, captured.err


def expected_omnivore(frames: np.ndarray) -> torch.Tensor:
    extractor = OmnivoreExtractor(OMNIVORE_WEIGHTS, **_options(_omnivore_options()))
    first, count = ego4d_windows(len(frames), 32, 16)
    video = torch.stack([ego4d_omnivore_transform(torch.from_numpy(frames[f:f + c]), extractor.side_size,
                                                  extractor.crop_size) for f, c in zip(first, count)])
    with torch.no_grad():
        return extractor.model(video)


def _egovlp_rows(extractor: EgoVLPExtractor, frames: np.ndarray, indices: np.ndarray, per_row: int) -> torch.Tensor:
    video = egovlp_transform(torch.from_numpy(frames[indices]), extractor.input_res, extractor.center_crop)
    with torch.no_grad():
        return extractor.model(video.view(len(indices) // per_row, per_row, *video.shape[1:]))


def expected_egovlp_grid16(frames: np.ndarray) -> torch.Tensor:
    extractor = EgoVLPExtractor(EGOVLP_WEIGHTS, **_options(_egovlp_options()))
    first, _ = ego4d_windows(len(frames), 16, 16)
    indices = (first[:, None] + egovlp_window_offsets(16, 4)[None]).reshape(-1)
    return _egovlp_rows(extractor, frames, indices, 4)


def expected_egovlp_mq(frames: np.ndarray) -> torch.Tensor:
    extractor = EgoVLPExtractor(EGOVLP_WEIGHTS, **_options(_egovlp_options()))
    indices = egovlp_mq_frame_indices(0.0, len(frames) / 30, len(frames))
    return _egovlp_rows(extractor, frames, indices[:len(indices) // 4 * 4], 4)


def test_extract_omnivore_and_egovlp_from_a_24fps_video(clip, tmp_path, capsys) -> None:
    video, frames = clip
    for name, options, sampling, expected in (
            ("omnivore", _omnivore_options(), [], expected_omnivore(frames)),
            ("egovlp", _egovlp_options(), [], expected_egovlp_grid16(frames)),
            ("egovlp", _egovlp_options(), ["sampling=ego4d-mq"], expected_egovlp_mq(frames))):
        out = tmp_path / f"{name}_{len(sampling)}"
        argv = ["extract", str(video), "--out", str(out), "--extractor", name,
                *[arg for option in [f"weights={FOLDER / 'checkpoints' / _weights(name)}", *options, *sampling]
                  for arg in ("--extractor-option", option)]]
        code, report, err = _main(capsys, argv)
        assert code == 0 and report["written"] == 1, err
        features = torch.load(out / "clip24.pt", weights_only=True)
        assert features.dtype == torch.float32 and features.shape == expected.shape, (name, sampling)
        assert (features - expected).abs().max().item() <= MANIFEST["tolerances"]["features_and_model_outputs_atol"]
        code, report, _ = _main(capsys, argv)  # resumable: a finished file is not recomputed
        assert code == 0 and report["written"] == 0 and report["skipped"] == 1


def _weights(name: str) -> str:
    return OMNIVORE_WEIGHTS.name if name == "omnivore" else EGOVLP_WEIGHTS.name


def test_run_streams_a_video_through_omnivore(clip, omnivore_model, tmp_path, capsys) -> None:
    video, frames = clip
    out = tmp_path / "live.jsonl"
    argv = ["run", str(video), "--checkpoint", str(omnivore_model), "--extractor", "omnivore",
            "--extractor-option", f"weights={OMNIVORE_WEIGHTS}", "--out", str(out), "--format", "jsonl", "--local",
            "--no-table", *[arg for option in _omnivore_options() for arg in ("--extractor-option", option)]]
    code, report, err = _main(capsys, argv)
    assert code == 0, err
    rows = len(ego4d_windows(len(frames), 32, 16)[0])
    assert report["rows"] == rows and report["dropped"] == 0
    results = read_results(out)
    assert results.report.ok and results.results and results.results[-1].rows == rows


def test_run_refuses_egovlp_features_for_an_omnivore_model(clip, omnivore_model, tmp_path, capsys) -> None:
    video, _ = clip
    out = tmp_path / "never.jsonl"
    code, _, err = _main(capsys, ["run", str(video), "--checkpoint", str(omnivore_model), "--extractor", "egovlp",
                                  "--extractor-option", f"weights={EGOVLP_WEIGHTS}", "--out", str(out), "--local",
                                  "--no-table",
                                  *[arg for option in _egovlp_options() for arg in ("--extractor-option", option)]])
    lines = err.strip().splitlines()
    omnivore_dim = OmnivoreExtractor(OMNIVORE_WEIGHTS, device="cpu").dim
    egovlp_dim = EgoVLPExtractor(EGOVLP_WEIGHTS, **_options(_egovlp_options())).dim
    assert code == 2 and len(lines) == 1 and not out.exists()
    assert str(omnivore_model) in lines[0] and str(EGOVLP_WEIGHTS) in lines[0]
    assert f"omnivore_video_swinl features, {omnivore_dim}" in lines[0] and f"egovlp features, {egovlp_dim}" in lines[0]


def test_run_refuses_whole_video_sampling(clip, egovlp_model, tmp_path, capsys) -> None:
    video, _ = clip
    code, _, err = _main(capsys, ["run", str(video), "--checkpoint", str(egovlp_model), "--extractor", "egovlp",
                                  "--extractor-option", f"weights={EGOVLP_WEIGHTS}", "--extractor-option",
                                  "sampling=ego4d-mq", "--out", str(tmp_path / "x.jsonl"), "--local", "--no-table",
                                  *[arg for option in _egovlp_options() for arg in ("--extractor-option", option)]])
    assert code == 2 and "sampling" in err and "egostream extract" in err


def readme_real_model_commands() -> list[list[str]]:
    """The command lines of the README's "Real models" block (after ``<!-- real-models-commands -->``)."""
    import shlex

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = text.split("<!-- real-models-commands -->", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    return [shlex.split(line) for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def test_readme_real_models_commands_run_on_the_fixture_checkpoints(clip, omnivore_model, egovlp_model, tmp_path,
                                                                     capsys, monkeypatch) -> None:
    """Each README line runs with the released file names replaced by the fixture's small checkpoints (and their
    sizes as extractor options), the camera by the test video, ``device=cuda`` by the CPU, and in-process: ``run``
    gets ``--local --no-table`` and ``extract`` loses ``--ray-address``/``--gpus-per-video`` (the Ray cluster path
    is covered by the cluster tests of ``tests/actors/test_commands.py``)."""
    video, _ = clip
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / video.name).write_bytes(video.read_bytes())
    data = tmp_path / "data"
    files = {"/dev/video0": str(video), "videos/": str(videos), "<video_uid>": video.stem,
             "swinL_In21k_checkpoint.torch": str(OMNIVORE_WEIGHTS), "egovlp.pth": str(EGOVLP_WEIGHTS),
             "hier_egopack_omnivore.pth": str(omnivore_model), "hier_egopack_egovlp.pth": str(egovlp_model),
             "device=cuda": "device=cpu"}
    small = {"omnivore": _omnivore_options(), "egovlp": _egovlp_options()}
    monkeypatch.chdir(tmp_path)
    commands = readme_real_model_commands()
    assert [argv[:2] for argv in commands] == [["egostream", "run"], ["egostream", "extract"],
                                               ["egostream", "replay"]]
    for argv in commands:
        args: list[str] = []
        tokens = iter(argv[1:])
        for token in tokens:
            if token in ("--ray-address", "--gpus-per-video"):
                next(tokens)
                continue
            key, _, value = token.rpartition("=")
            token = f"{key}={files.get(value, value)}" if key and value in files else files.get(token, token)
            args.append(token.replace("/data/ego4d", str(data)))
        if "--extractor" in args:
            name = args[args.index("--extractor") + 1]
            args += [arg for option in small[name] for arg in ("--extractor-option", option)]
        if args[0] == "run":
            args += ["--local", "--no-table"]
        code, report, err = _main(capsys, args)
        assert code == 0, (args, err)
    assert read_results(tmp_path / "live.msgpack").report.ok
    features = torch.load(data / "features" / "egovlp" / f"{video.stem}.pt", weights_only=True)
    assert features.shape[1] == EgoVLPExtractor(EGOVLP_WEIGHTS, **_options(_egovlp_options())).dim
    assert read_results(tmp_path / "replay.msgpack").results
