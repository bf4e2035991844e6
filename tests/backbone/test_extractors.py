import numpy as np
import pytest
import torch

from egostream.backbone.extractors import (EXTRACTORS, OpenClipExtractor, PixelProjectionExtractor,
                                           TorchScriptExtractor, build_extractor, cached_pretrained_file,
                                           prepare_frames, sample_frame_indices)
from egostream.errors import InputError
from egostream.io import EGOVLP_WINDOWS, FileSource, WindowStream
from tests.io.video_factory import make_video, segment_labels


@pytest.fixture(scope="module")
def video_windows(tmp_path_factory):
    labels = segment_labels([32, 32, 32, 32])  # windows 0-1 label 0, 2-3 label 1, 4-5 label 2, 6-7 label 0
    path = make_video(tmp_path_factory.mktemp("videos"), labels)
    with WindowStream(FileSource(path), EGOVLP_WINDOWS) as stream:
        return list(stream)


def test_registry_names():
    assert {"open_clip", "torchscript", "pixel_projection"} <= set(EXTRACTORS.names())


def test_sample_frame_indices():
    assert sample_frame_indices(16, 4).tolist() == [2, 6, 10, 14]
    assert sample_frame_indices(16, 1).tolist() == [8]
    assert sample_frame_indices(16, 16).tolist() == list(range(16))
    assert sample_frame_indices(8, 16).tolist() == [i // 2 for i in range(16)]
    assert sample_frame_indices(16, None).tolist() == list(range(16))


def test_prepare_frames_crops_the_centre_and_normalises():
    frames = torch.zeros(1, 4, 6, 3, dtype=torch.uint8)
    frames[0, :, 1:5, 0] = 255  # the central 4x4 square is red
    images = prepare_frames(frames, 4, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    assert images.shape == (1, 3, 4, 4)
    assert torch.allclose(images[0, 0], torch.ones(4, 4)) and torch.allclose(images[0, 1:], -torch.ones(2, 4, 4))


def test_pixel_projection_is_deterministic_and_separates_the_labels(video_windows):
    extractor = PixelProjectionExtractor(dim=32, seed=3, device="cpu", batch_size=3)
    features = extractor.extract(video_windows)
    assert features.shape == (8, 32) and features.dtype == torch.float32
    again = PixelProjectionExtractor(dim=32, seed=3, device="cpu").extract(video_windows)  # other batch size
    assert torch.allclose(features, again, atol=1e-6)
    distances = torch.cdist(features, features)
    same = [(0, 1), (2, 3), (4, 5), (0, 6), (1, 7)]
    different = [(1, 2), (3, 4), (5, 6), (0, 2), (2, 4)]
    assert max(distances[i, j] for i, j in same) < min(distances[i, j] for i, j in different)
    # hand-computed: a constant grey window maps to (grey - 0.5) * column sums of the projection
    grey = np.full((1, 16, 8, 8, 3), 153, np.uint8)
    expected = (153 / 255 - 0.5) * extractor.projection.sum(dim=0)
    assert torch.allclose(extractor.extract(grey)[0], expected, atol=1e-5)


def test_open_clip_vit_b16_random_weights_gives_512_wide_rows(video_windows):
    extractor = OpenClipExtractor("ViT-B-16", allow_random_weights=True, frames_per_window=1, device="cpu",
                                  batch_size=4)
    assert (extractor.dim, extractor.image_size) == (512, 224)
    features = extractor.extract([video_windows[0], video_windows[2], video_windows[0]])
    assert features.shape == (3, 512) and torch.isfinite(features).all()
    assert torch.allclose(features.norm(dim=1), torch.ones(3), atol=1e-4)  # one L2-normalised embedding each
    assert torch.allclose(features[0], features[2], atol=1e-5) and not torch.allclose(features[0], features[1])


def test_open_clip_never_downloads(tmp_path):
    with pytest.raises(InputError, match="never downloads"):
        cached_pretrained_file("ViT-B-16", "laion2b_s34b_b88k", cache_dir=tmp_path)
    with pytest.raises(InputError, match="checkpoint=<local weights file>"):
        OpenClipExtractor("ViT-B-16")
    with pytest.raises(InputError, match="absent.pt"):
        OpenClipExtractor("ViT-B-16", checkpoint=tmp_path / "absent.pt")


class MeanPoolEncoder(torch.nn.Module):
    """A stand-in video encoder: [B, 3, T, H, W] -> [B, 3 * width_factor] by mean pooling and tiling."""

    def __init__(self, width_factor: int) -> None:
        super().__init__()
        self.width_factor = width_factor

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return video.mean(dim=(2, 3, 4)).repeat(1, self.width_factor)


@pytest.fixture()
def exported_encoder(tmp_path):
    path = tmp_path / "encoder.pt"
    torch.jit.trace(MeanPoolEncoder(4), torch.zeros(1, 3, 8, 32, 32)).save(str(path))
    return path


def test_torchscript_extractor_runs_the_exported_module(exported_encoder, video_windows):
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    extractor = TorchScriptExtractor(exported_encoder, frames_per_window=8, image_size=32, mean=mean, std=std,
                                     device="cpu", batch_size=3)
    assert extractor.dim == 12
    features = extractor.extract(video_windows)
    assert features.shape == (8, 12)
    # reference: the same module on the documented input, built by hand
    clips = torch.from_numpy(np.stack([w.frames for w in video_windows])[:, sample_frame_indices(16, 8)])
    images = prepare_frames(clips.flatten(0, 1), 32, mean, std).view(8, 8, 3, 32, 32).transpose(1, 2)
    assert torch.allclose(features, MeanPoolEncoder(4)(images), atol=1e-5)


def test_width_mismatch_fails_before_streaming(exported_encoder, tmp_path):
    with pytest.raises(InputError) as caught:
        build_extractor("torchscript", expected_dim=256, model_checkpoint=tmp_path / "model.ckpt",
                        checkpoint=exported_encoder, frames_per_window=8, image_size=32, device="cpu")
    assert str(caught.value).startswith(f"{tmp_path / 'model.ckpt'}: feature width: the model was trained on 256")
    with pytest.raises(InputError, match="trained on 256 .* produces 32"):
        build_extractor("pixel_projection", expected_dim=256, dim=32, device="cpu")
    assert build_extractor("pixel_projection", expected_dim=32, dim=32, device="cpu").dim == 32


def test_bad_torchscript_checkpoints_fail_at_build(tmp_path):
    with pytest.raises(InputError, match="no such TorchScript file"):
        TorchScriptExtractor(tmp_path / "absent.pt", device="cpu")
    not_script = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(2)}, not_script)
    with pytest.raises(InputError, match="not a TorchScript module"):
        TorchScriptExtractor(not_script, device="cpu")
    frame_encoder = tmp_path / "frame_encoder.pt"  # wants [B, 3, H, W], not a clip
    torch.jit.script(torch.nn.Conv2d(3, 4, 3)).save(str(frame_encoder))
    with pytest.raises(InputError, match="rejects a float"):
        TorchScriptExtractor(frame_encoder, frames_per_window=2, image_size=8, device="cpu")
    no_pool = tmp_path / "no_pool.pt"  # returns [B, 3, T, H, W]
    torch.jit.script(torch.nn.Identity()).save(str(no_pool))
    with pytest.raises(InputError, match=r"one feature row per clip \(\[1, D\]\), got \[1, 3, 2, 8, 8\]"):
        TorchScriptExtractor(no_pool, frames_per_window=2, image_size=8, device="cpu")
