"""Loading the released Omnivore and EgoVLP checkpoint layouts: key maps, sizes read from the tensors, ignored keys,
refused files, options. Truths come from the extractor_reference manifest and configs, or are stated by hand."""
from __future__ import annotations

import ast
import json
import pickle

import numpy as np
import pytest
import torch

from egostream.backbone.extractors import EgoVLPExtractor, OmnivoreExtractor
from egostream.backbone.extractors.egovlp import EGOVLP_ARCHS, load_egovlp_tower
from egostream.backbone.extractors.omnivore import SWIN_ARCHS, load_omnivore_trunk, omnivore_to_torchvision_key
from egostream.backbone.extractors.video_sampling import egovlp_window_offsets
from egostream.errors import InputError
from egostream.testing import extractor_reference_dir

FOLDER = extractor_reference_dir()


def _json(name: str) -> dict:
    return json.loads((FOLDER / name).read_text())


def _checkpoint_keys(name: str, part: str) -> list[str]:
    listed = _json("manifest.json")["checkpoints"][name][part]
    return [entry[0] for entry in (ast.literal_eval(listed) if isinstance(listed, str) else listed)]


def test_omnivore_key_map_matches_the_manifest() -> None:
    mapping = _json("manifest.json")["torchvision_swin3d"]["trunk_key_to_torchvision_key"]
    assert mapping
    assert {key: omnivore_to_torchvision_key(key) for key in mapping} == mapping


def test_omnivore_sizes_are_read_from_the_checkpoint() -> None:
    config = _json("configs/omnivore_swin3d_small.json")
    swin = config["SwinTransformer3D"]
    _, read = load_omnivore_trunk(FOLDER / "checkpoints" / "omnivore_swin3d_small.torch")
    assert list(read.patch_size) == swin["patch_size"] and read.embed_dim == swin["embed_dim"]
    assert list(read.depths) == swin["depths"] and list(read.num_heads) == swin["num_heads"]
    assert list(read.window_size) == swin["window_size"] and read.dim == config["head_dim_in"]


def test_released_sizes() -> None:
    # Ego4D omnivore_video_swinl rows are 1536 wide, Omnivore Swin-B's trunk gives 1024, EgoVLP's vid_proj 256
    assert SWIN_ARCHS["swin_l"].dim == 1536 and SWIN_ARCHS["swin_b"].dim == 1024
    assert EGOVLP_ARCHS["vit_b16_224"].projection_dim == 256 and EGOVLP_ARCHS["vit_b16_224"].num_heads == 12
    assert egovlp_window_offsets(16, 4).tolist() == [1, 5, 9, 13]  # (a + b - 1) // 2 of [0, 4, 8, 12, 16]


def test_egovlp_loads_the_trainer_checkpoint_and_lists_the_text_tower() -> None:
    sizes = _json("configs/egovlp_small.json")
    tower_sizes = sizes["SpaceTimeTransformer (sizes injected)"]
    tower, ignored = load_egovlp_tower(FOLDER / "checkpoints" / "egovlp_small.pth", tower_sizes["num_heads"])
    config = tower.config
    assert (config.img_size, config.patch_size, config.embed_dim, config.depth, config.num_frames) == (
        tower_sizes["img_size"], tower_sizes["patch_size"], tower_sizes["embed_dim"], tower_sizes["depth"],
        tower_sizes["num_frames"])
    assert config.projection_dim == sizes["FrozenInTime"]["projection_dim"]
    keys = [key.removeprefix("module.") for key in _checkpoint_keys("egovlp_small.pth", "state_dict")]
    assert ignored == sorted(key for key in keys if key.startswith(("text_model.", "txt_proj.")))


def test_loaders_refuse_foreign_files(tmp_path) -> None:
    with pytest.raises(InputError, match="no such Omnivore checkpoint"):
        load_omnivore_trunk(tmp_path / "absent.torch")
    with pytest.raises(InputError, match="no such EgoVLP checkpoint"):
        load_egovlp_tower(tmp_path / "absent.pth")
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(InputError, match="trunk"):
        load_omnivore_trunk(plain)
    with pytest.raises(InputError, match="state_dict"):
        load_egovlp_tower(plain)
    egovlp_as_omnivore = FOLDER / "checkpoints" / "egovlp_small.pth"
    with pytest.raises(InputError, match=str(egovlp_as_omnivore)):
        load_omnivore_trunk(egovlp_as_omnivore)


class _Runs:
    """Pickles a call of ``os.getcwd``: a checkpoint that would run code when loaded."""

    def __reduce__(self) -> tuple:
        import os

        return os.getcwd, ()


def test_egovlp_checkpoint_loading_runs_no_pickled_code(tmp_path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"module.video_model.cls_token": torch.zeros(1, 1, 8)}, "config": _Runs()}, path,
               pickle_protocol=pickle.HIGHEST_PROTOCOL)
    with pytest.raises(InputError, match="refusing to load"):
        load_egovlp_tower(path)


def test_options_are_checked() -> None:
    weights = FOLDER / "checkpoints" / "egovlp_small.pth"
    heads = _json("configs/egovlp_small.json")["SpaceTimeTransformer (sizes injected)"]["num_heads"]
    with pytest.raises(InputError, match="sampling"):
        EgoVLPExtractor(weights, num_heads=heads, sampling="every-frame", device="cpu")
    with pytest.raises(InputError, match="zero_rows"):
        EgoVLPExtractor(weights, num_heads=heads, zero_rows=True, device="cpu")
    with pytest.raises(InputError, match="precision"):
        OmnivoreExtractor(FOLDER / "checkpoints" / "omnivore_swin3d_small.torch", precision="float8", device="cpu")
    with pytest.raises(InputError, match="weights"):
        OmnivoreExtractor(arch="swin_l", device="cpu")  # random weights only when asked for


def test_bfloat16_autocast_is_applied_and_stays_close() -> None:
    extractor = OmnivoreExtractor(FOLDER / "checkpoints" / "omnivore_swin3d_small.torch", device="cpu")
    video = torch.load(FOLDER / "inputs" / "omnivore_model_input.pt", weights_only=True)["input.video"]
    with torch.no_grad():
        reference = extractor.forward_model(video)
        extractor.precision = "bfloat16"
        reduced = extractor.forward_model(video)
    assert reduced.dtype == torch.float32 and not torch.equal(reduced, reference)
    # bfloat16 keeps 8 significant bits: a few percent of the feature scale
    assert (reduced - reference).abs().max() <= 0.1 * reference.abs().max()
    assert np.isfinite(reduced.numpy()).all()
