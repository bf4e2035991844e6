"""The model bundle: the authors' checkpoints reproduce every reference head output through the bundle (one
backbone pass for all tasks), EgoPack checkpoints run their fused heads, tiny random bundles round-trip through our
format, and bad inputs say what differs."""
from __future__ import annotations

import shutil
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import pytest
import torch

from egostream.backbone.graphs import VideoBatch
from egostream.checkpoint import load_checkpoint, save_checkpoint
from egostream.config import load_config
from egostream.errors import InputError
from egostream.backpack import EgoPackInteraction, fusion_rule
from egostream.model import EgoPackHead, ModelBundle, ModelConfig, TaskModel
from egostream.tasks.neck import ProjectionNeck
from egostream.tasks import TaskInputs, task_class
from egostream.testing import reference_dir
from tests.reference_fixtures import reference_manifest

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "model"


def _head_cases(prefix: str) -> list[str]:
    """Cases that run one task head from a checkpoint on one input batch (``task_*`` or ``egopack_<task>_*``)."""
    return sorted(name for name, case in reference_manifest()["cases"].items()
                  if name.startswith(prefix) and case.get("task") and isinstance(case.get("inputs_file"), str))


@lru_cache(maxsize=4)
def _bundle(checkpoint: str) -> ModelBundle:
    return ModelBundle.from_checkpoints(reference_dir() / checkpoint, feature_dim=None)


def _batch(case: dict) -> tuple[VideoBatch, TaskInputs, dict[str, torch.Tensor]]:
    root = reference_dir()
    batch = torch.load(root / case["inputs_file"], map_location="cpu", weights_only=True)
    videos = VideoBatch.from_padded(batch["input.x"].flatten(1), batch["input.pos"], batch["input.batch"],
                                    batch["input.indices"], batch["input.mask"])
    expected = torch.load(root / case["expected_file"], map_location="cpu", weights_only=True)
    return videos, TaskInputs.from_collated(batch), expected


def _compare_outputs(outputs, expected: dict[str, torch.Tensor], prefix: str, renamed: dict[str, str]) -> int:
    compared = 0
    for field in outputs._fields:
        key = f"{prefix}.{renamed.get(field, field)}"
        if key in expected:
            torch.testing.assert_close(getattr(outputs, field), expected[key], atol=1e-5, rtol=0, msg=key)
            compared += 1
    return compared


@pytest.mark.parametrize("name", _head_cases("task_"))
def test_bundle_reference_heads(name: str) -> None:
    case = reference_manifest()["cases"][name]
    bundle = _bundle(case["checkpoint"])
    short = task_class(case["task"]).name
    head = bundle.head(short)
    if short == "lta":  # the fixtures hold the authors' batched future graph (fixture README §9.6)
        head.config = replace(head.config, authors_batched_graph=True)
    videos, inputs, expected = _batch(case)
    with torch.no_grad():
        outputs = bundle.run(short, videos, inputs)
    assert _compare_outputs(outputs, expected, f"expected.{short}", {}) >= 1


def test_bundle_reference_one_backbone_pass_for_all_tasks() -> None:
    """A multi-task checkpoint gives one shared backbone: every task gets the same graphs object."""
    cases = [reference_manifest()["cases"][name] for name in _head_cases("task_")]
    if not cases:
        pytest.skip("no reference cases")
    bundle = _bundle(cases[0]["checkpoint"])
    loaded = load_checkpoint(reference_dir() / cases[0]["checkpoint"])
    assert sorted(bundle.tasks) == sorted(task_class(name).name for name in loaded.tasks)
    assert len(bundle.backbones) == 1
    videos, _, _ = _batch(cases[0])
    graphs = bundle.graphs(videos)
    assert len({id(value) for value in graphs.values()}) == 1 and set(graphs) == set(bundle.tasks)


@pytest.mark.parametrize("name", _head_cases("egopack_"))
def test_bundle_reference_egopack_heads(name: str) -> None:
    case = reference_manifest()["cases"][name]
    bundle = _bundle(case["checkpoint"])
    short = task_class(case["task"]).name
    assert bundle.tasks == [short] and short in bundle.egopack
    videos, inputs, expected = _batch(case)
    with torch.no_grad():
        outputs = bundle.run(short, videos, inputs)
    assert _compare_outputs(outputs, expected, f"expected.egopack_{short}", {"features": "fused_features"}) >= 2


def _tiny(**overrides) -> ModelConfig:
    config = load_config(ModelConfig, CONFIGS / "tiny.yaml")
    return replace(config, **overrides)


def _random_batch(num_rows: list[int], dim: int) -> tuple[VideoBatch, TaskInputs]:
    generator = torch.Generator().manual_seed(1)
    features = [torch.randn(n, dim, generator=generator) for n in num_rows]
    videos = VideoBatch.from_videos(features, [(0.5 + torch.arange(n)) * 16 / 30 for n in num_rows])
    segments = torch.tensor([[0.0, 3.0], [1.0, 6.0]] * len(num_rows))
    return videos, TaskInputs(segments=segments, segment_video=torch.arange(len(num_rows)).repeat_interleave(2),
                              labels=torch.zeros(2 * len(num_rows), dtype=torch.long),
                              duration=torch.full((len(num_rows),), 20.0))


def test_presets_have_the_authors_sizes() -> None:
    for name, dim, depth in (("egovlp_depth1", 256, 1), ("egovlp_depth8", 256, 8), ("omnivore_depth1", 1536, 1),
                             ("omnivore_depth8", 1536, 8)):
        config = load_config(ModelConfig, CONFIGS / f"{name}.yaml")
        assert (config.feature_dim, config.depth, config.hidden_size, config.features_size) == (dim, depth, 768, 768)
        assert ("mq" in config.tasks) == (depth == 8)


def test_tiny_bundle_round_trips_through_our_format(tmp_path) -> None:
    bundle = _tiny().build(seed=0)
    path = bundle.save(tmp_path / "tiny.pth")
    loaded = ModelBundle.from_checkpoints(path, feature_dim=32)
    assert loaded.tasks == bundle.tasks and len(loaded.backbones) == 1
    videos, inputs = _random_batch([9, 14], 32)
    with torch.no_grad():
        for task in ("ar", "oscc", "mq", "lta"):
            for mine, theirs in zip(bundle.run(task, videos, inputs), loaded.run(task, videos, inputs)):
                if isinstance(mine, torch.Tensor):
                    torch.testing.assert_close(mine, theirs, atol=0, rtol=0)


def test_per_task_backbones_are_shared_only_when_equal(tmp_path) -> None:
    first = _tiny(tasks=("ar", "mq")).build(seed=0)
    first.save(tmp_path / "a.pth")
    shutil.copy(tmp_path / "a.pth", tmp_path / "copy.pth")
    _tiny(tasks=("ar", "mq")).build(seed=1).save(tmp_path / "b.pth")
    same = ModelBundle.from_checkpoints({"ar": tmp_path / "a.pth", "mq": tmp_path / "copy.pth"})
    assert len(same.backbones) == 1
    different = ModelBundle.from_checkpoints({"ar": tmp_path / "a.pth", "mq": tmp_path / "b.pth"})
    assert len(different.backbones) == 2
    videos, inputs = _random_batch([7], 32)
    graphs = different.graphs(videos)
    assert graphs["ar"] is not graphs["mq"]
    with torch.no_grad():
        alone = ModelBundle.from_checkpoints(tmp_path / "b.pth", tasks=["mq"]).run("mq", videos, inputs)
        torch.testing.assert_close(different.run("mq", videos, inputs).cls_logits, alone.cls_logits)


def test_feature_width_mismatch_names_both_widths(tmp_path) -> None:
    path = _tiny().build(seed=0).save(tmp_path / "tiny.pth")
    with pytest.raises(InputError, match="D=32.*D=256"):
        ModelBundle.from_checkpoints(path, feature_dim=256)
    bundle = ModelBundle.from_checkpoints(path)
    videos, inputs = _random_batch([5], 24)
    with pytest.raises(InputError, match="D=32"):
        bundle.run("ar", videos, inputs)


def test_missing_task_names_the_task(tmp_path) -> None:
    path = _tiny(tasks=("ar", "oscc")).build(seed=0).save(tmp_path / "two.pth")
    with pytest.raises(InputError, match="ego4d/mq"):
        ModelBundle.from_checkpoints({"mq": path})


def test_another_architecture_says_what_differs(tmp_path) -> None:
    small = _tiny(tasks=("ar",)).build(seed=0)
    config = replace(_tiny(tasks=("ar",)), classifier_hidden=24)
    save_checkpoint(tmp_path / "mismatch.pth", backbone=small.backbones[0], tasks={"ego4d/ar": small.head("ar")},
                    task_configs={"ego4d/ar": config.task_node("ar")})
    with pytest.raises(InputError, match=r"task\[ego4d/ar\].*shape mismatch"):
        ModelBundle.from_checkpoints(tmp_path / "mismatch.pth")
    deep = _tiny(tasks=("mq",), depth=3).build(seed=0)
    save_checkpoint(tmp_path / "shallow_mq.pth", backbone=deep.backbones[0], tasks={"ego4d/mq": deep.head("mq")},
                    task_configs={"ego4d/mq": {**deep.config_nodes["mq"], "depth": 2}})
    with pytest.raises(InputError, match="scales|shape mismatch"):
        ModelBundle.from_checkpoints(tmp_path / "shallow_mq.pth")


def _egopack_bundle(task: str, seed: int = 0) -> ModelBundle:
    """A tiny depth-2 EgoPack bundle whose support tasks are all five tasks, the novel task ``task`` included (the
    authors' default), with random prototypes and necks."""
    torch.manual_seed(seed)
    config = _tiny(tasks=(task,))
    plain = config.build()
    supports = [task_class(name).authors_name for name in ("ar", "lta", "oscc", "pnr", "mq")]
    necks = {name: ProjectionNeck(config.hidden_size, config.features_size) for name in supports}
    interaction = EgoPackInteraction({name: torch.randn(6, config.features_size) for name in supports},
                                     config.features_size, hidden_size=8, k=2, depth=1)
    egopack = EgoPackHead(interaction, necks, fusion_rule(task_class(task).authors_name), {"k": 2})
    return ModelBundle({task: TaskModel(plain.backbone(task), plain.head(task), config.task_node(task), egopack)})


def test_egopack_novel_task_that_is_also_a_support_task_round_trips(tmp_path) -> None:
    bundle = _egopack_bundle("ar")
    path = bundle.save(tmp_path / "egopack_ar.pth")
    loaded = load_checkpoint(path)
    # The novel head and the support neck of the same task are stored apart and come back apart.
    assert loaded.novel_task == "ego4d/ar" and "ego4d/ar" in loaded.support_necks
    assert loaded.task_state("ego4d/ar").keys() == bundle.head("ar").state_dict().keys()
    reloaded = ModelBundle.from_checkpoints(path, feature_dim=32)
    assert reloaded.state_dict().keys() == bundle.state_dict().keys()
    assert all(torch.equal(value, reloaded.state_dict()[key]) for key, value in bundle.state_dict().items())
    videos, inputs = _random_batch([9, 14], 32)
    with torch.no_grad():
        torch.testing.assert_close(reloaded.run("ar", videos, inputs).verb_logits,
                                   bundle.run("ar", videos, inputs).verb_logits, atol=0, rtol=0)


def test_egopack_pnr_on_a_deeper_backbone_reads_level0_nodes() -> None:
    bundle = _egopack_bundle("pnr").eval()
    assert bundle.backbone("pnr").cfg.depth == 2
    videos = VideoBatch.from_videos([torch.randn(16, 32), torch.randn(16, 32)],
                                    [torch.arange(16, dtype=torch.float32) * 0.5] * 2)
    inputs = TaskInputs(indices=torch.arange(16).repeat(2))
    with torch.no_grad():
        _, deep = bundle.backbone("pnr")(videos)
        _, level0 = bundle.backbone("pnr")(videos, max_depth=0)
        assert int(deep.depth.max()) == 1  # two levels: the authors' PNR EgoPack would fail here
        expected = bundle.forward_graphs("pnr", level0, inputs).logits  # the authors' depth-1 setting
        torch.testing.assert_close(bundle.forward_graphs("pnr", deep, inputs).logits, expected, atol=0, rtol=0)
