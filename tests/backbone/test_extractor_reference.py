"""extractor_reference: the Omnivore and EgoVLP extractors against the official code's outputs.

Every case listed in ``manifest.json`` of ``$EGOSTREAM_EXTRACTOR_REFERENCE_DIR`` (default
``shared/fixtures/extractor_reference``) runs; sizes, clips, window rules and tolerances come from the manifest and
the case files, so another folder of the same layout runs unchanged. Cases of the full-size preprocessing check the
extractors' defaults, which are the released constants.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from egostream.backbone.extractors import EgoVLPExtractor, OmnivoreExtractor
from egostream.backbone.extractors.video_sampling import ego4d_windows, egovlp_mq_frame_indices
from egostream.backbone.extractors.video_transforms import ego4d_omnivore_transform, egovlp_transform
from egostream.io.windows import Windower, WindowSpec
from egostream.testing import extractor_reference_dir

FOLDER = extractor_reference_dir()


def _manifest() -> dict[str, Any]:
    path = FOLDER / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else {"cases": {}}


MANIFEST = _manifest()
TOL = MANIFEST.get("tolerances", {})


def _load(relative: str) -> dict[str, torch.Tensor]:
    return torch.load(FOLDER / relative, map_location="cpu", weights_only=True)


def _close(actual: torch.Tensor, expected: torch.Tensor, atol: float, what: str) -> None:
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    deviation = (actual.double() - expected.double()).abs().max().item() if expected.numel() else 0.0
    assert deviation <= atol, f"{what}: max abs deviation {deviation:.3g} > {atol}"


def _features_atol() -> float:
    return float(TOL["features_and_model_outputs_atol"])


def _preprocess_atol() -> float:
    return float(TOL["preprocessed_tensors_atol"])


def _egovlp(case: dict[str, Any], **options: Any) -> EgoVLPExtractor:
    dims = MANIFEST["dims"]["egovlp"]
    return EgoVLPExtractor(FOLDER / case["checkpoint"], num_heads=dims["num_heads"], device="cpu", **options)


def _omnivore(case: dict[str, Any], **options: Any) -> OmnivoreExtractor:
    return OmnivoreExtractor(FOLDER / case["checkpoint"], device="cpu", **options)


def _inference_config() -> dict[str, Any]:
    return json.loads((FOLDER / "configs" / "omnivore_swin3d_small.json").read_text())["ego4d_inference_config"]


def _mq_config() -> dict[str, Any]:
    return json.loads((FOLDER / "configs" / "egovlp_small.json").read_text())["mq_extraction"]


def egovlp_sampling(case: dict[str, Any], expected: dict[str, torch.Tensor]) -> None:
    per_window = _mq_config()["data_loader.video_params.num_frames"]
    batch = _mq_config()["model_batch"]
    for scenario in case["inputs"]:
        name = scenario["scenario"]
        indices = egovlp_mq_frame_indices(scenario["video_start_sec"], scenario["video_end_sec"], scenario["vlen"],
                                          fps=_mq_config()["fps"], frames_per_window=per_window)
        assert np.array_equal(indices, expected[f"expected.{name}.frame_idxs"].numpy()), name
        windows = len(indices) // per_window
        assert windows == int(expected[f"expected.{name}.num_windows"]), name
        assert (windows // batch) * batch == int(expected[f"expected.{name}.num_computed_rows"]), name


def egovlp_preprocess_full(case: dict[str, Any], expected: dict[str, torch.Tensor]) -> None:
    released = _mq_config()["released_values"]
    frames = _load(case["inputs_file"])["input.frames_uint8"]
    _close(egovlp_transform(frames), expected["expected.video"], _preprocess_atol(), "default transform")
    _close(egovlp_transform(frames, released["input_res"], released["center_crop"]), expected["expected.video"],
           _preprocess_atol(), "released transform")


def egovlp_model(case: dict[str, Any], expected: dict[str, torch.Tensor]) -> None:
    extractor = _egovlp(case)
    inputs = _load(case["inputs_file"])
    assert inputs, "no inputs"
    for name, video in inputs.items():
        suffix = name.removeprefix("input.video_")
        with torch.no_grad():
            _close(extractor.forward_model(video), expected[f"expected.features_{suffix}"], _features_atol(), name)
            _close(extractor.model.video_model(video), expected[f"aux.video_model_{suffix}"], _features_atol(), name)


def egovlp_pipeline(case: dict[str, Any], expected: dict[str, torch.Tensor]) -> None:
    dims, clip = MANIFEST["dims"]["egovlp"], case["clip"]
    raw = _load(case["inputs_file"])["input.clip_uint8"]
    assert len(raw) == clip["vlen"]
    start, end = clip["video_start_sec"], clip["video_end_sec"]
    options = {"sampling": "ego4d-mq", "input_res": dims["input_res"], "center_crop": dims["center_crop"],
               "mq_fps": _mq_config()["fps"], "model_batch": _mq_config()["model_batch"],
               "frames_per_window": _mq_config()["data_loader.video_params.num_frames"]}
    extractor = _egovlp(case, zero_rows=True, **options)
    indices = extractor.mq_frame_indices(len(raw), start, end)
    assert np.array_equal(indices, expected["expected.frame_idxs"].numpy())
    _close(extractor.preprocess(raw[indices]), expected["expected.preprocessed"], _preprocess_atol(), "preprocessed")
    features = extractor.video_features(len(raw), enumerate(raw.numpy()), start, end)
    _close(features, expected["expected.features"], _features_atol(), "features (zero rows)")
    computed = (len(features) // extractor.model_batch) * extractor.model_batch
    assert torch.equal(features[computed:], torch.zeros_like(features[computed:])), "zero rows must be exactly 0"
    # batch 3 (not the official 4) and without the quirk: every row, whatever the batching
    every_row = _egovlp(case, zero_rows=False, batch_size=3, **options)
    _close(every_row.video_features(len(raw), enumerate(raw.numpy()), start, end),
           expected["aux.features_all_windows"], _features_atol(), "features (all windows)")


def omnivore_windows(case: dict[str, Any], expected: dict[str, torch.Tensor]) -> None:
    config = _inference_config()
    (lengths,) = case["inputs"].values()
    for length in lengths:
        first, count = ego4d_windows(length, config["frame_window"], config["stride"])
        assert np.array_equal(first, expected[f"expected.N{length}.window_first_frame"].numpy()), length
        assert np.array_equal(count, expected[f"expected.N{length}.window_num_frames"].numpy()), length
        if length >= config["frame_window"]:  # the streaming windower cuts the same windows (shorter: README)
            windower = Windower(WindowSpec(config["frame_window"], config["stride"], float(config["fps"])))
            image = np.zeros((1, 1, 3), np.uint8)
            cut = [w for i in range(length) if (w := windower.push(i, image)) is not None]
            cut += [w for w in [windower.finish()] if w is not None]
            assert [w.start_frame for w in cut] == first.tolist(), length
            assert [w.index for w in cut] == list(range(len(first))), length


def omnivore_preprocess_full(case: dict[str, Any], expected: dict[str, torch.Tensor]) -> None:
    frames = _load(case["inputs_file"])["input.frames_uint8"]
    _close(ego4d_omnivore_transform(frames), expected["expected.video"], _preprocess_atol(), "default transform")


def omnivore_model(case: dict[str, Any], expected: dict[str, torch.Tensor]) -> None:
    extractor = _omnivore(case)
    video = _load(case["inputs_file"])["input.video"]
    heads = torch.load(FOLDER / case["checkpoint"], map_location="cpu", weights_only=True)["heads"]
    with torch.no_grad():
        features = extractor.forward_model(video)
        _close(features, expected["expected.features"], _features_atol(), "features")
        logits = torch.nn.functional.linear(features, heads["video.1.weight"], heads["video.1.bias"])
        _close(logits, expected["aux.video_head_logits"], _features_atol(), "video head")
        image = torch.nn.functional.linear(extractor.forward_model(video[:, :, :1]), heads["image.weight"],
                                           heads["image.bias"])
        _close(image, expected["aux.image_head_logits_first_frame"], _features_atol(), "image head, one frame")
        x = extractor.model.patch_embed(video)  # torchvision: stage i = features[2i] (+ its PatchMerging)
        stages = extractor.model.features
        for stage in range(len(extractor.config.depths)):
            x = stages[2 * stage](x)
            if 2 * stage + 1 < len(stages):
                x = stages[2 * stage + 1](x)
            _close(x.permute(0, 4, 1, 2, 3), expected[f"aux.interim{stage}"], _features_atol(), f"stage {stage}")


def omnivore_pipeline(case: dict[str, Any], expected: dict[str, torch.Tensor]) -> None:
    dims, config = MANIFEST["dims"]["omnivore"], _inference_config()
    raw = _load(case["inputs_file"])["input.clip_uint8"]
    first, count = ego4d_windows(len(raw), config["frame_window"], config["stride"])
    indices = np.stack([np.arange(f, f + c) for f, c in zip(first, count)])
    assert np.array_equal(indices, expected["expected.window_frame_indices"].numpy())
    extractor = _omnivore(case, side_size=dims["side_size"], crop_size=dims["crop_size"], batch_size=2)
    clips = raw.numpy()[indices]  # [W, 32, H, W, 3]
    _close(extractor.preprocess(torch.from_numpy(clips)), expected["expected.model_input"], _preprocess_atol(),
           "model input")
    _close(extractor.extract(clips), expected["expected.features"], _features_atol(), "features")


RUNNERS: dict[str, Callable[[dict[str, Any], dict[str, torch.Tensor]], None]] = {
    runner.__name__: runner for runner in (egovlp_sampling, egovlp_preprocess_full, egovlp_model, egovlp_pipeline,
                                           omnivore_windows, omnivore_preprocess_full, omnivore_model,
                                           omnivore_pipeline)}


@pytest.mark.parametrize("name", sorted(MANIFEST["cases"]))
def test_extractor_reference(name: str) -> None:
    case = MANIFEST["cases"][name]
    runner = RUNNERS.get(name)
    assert runner is not None, f"no runner for case {name!r} of {FOLDER / 'manifest.json'}"
    expected = _load(case["expected_file"])
    listed = set(case.get("tensors", {}))
    assert listed <= set(expected), f"{name}: {sorted(listed - set(expected))} missing from {case['expected_file']}"
    runner(case, expected)


def test_extractor_reference_cases_are_discovered() -> None:
    assert MANIFEST["cases"], f"no cases in {FOLDER / 'manifest.json'}"
    assert Path(FOLDER / "checkpoints").is_dir()
