"""The translation model: frozen sources, the K = 1 identity-like sanity case, attention shares, output types,
batching, the training stage's parameter split and the checkpoint (round trip, recorded sources)."""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from egostream.backbone.graphs import LevelGraphs, VideoBatch
from egostream.checkpoint import load_checkpoint
from egostream.errors import InputError
from egostream.model import ModelBundle
from egostream.tasks.ar import AROutput
from egostream.tasks.lta import LTAOutput
from egostream.tasks.oscc import OSCCOutput
from egostream.tasks.pnr import PNROutput
from egostream.train.optim import OptimizerConfig, build_optimizer
from egostream.translation import FrozenSources, TranslationBundle, is_translation_checkpoint
from egostream.translation.translator import time_encoding
from tests.stream.streams import single_threaded_torch
from tests.translation.models import (PRIMARY_TASKS, SOURCE_TASKS, clip_batch, source_bundle, task_inputs,
                                      tiny_model, translation)

__all__ = ["single_threaded_torch"]

OUTPUT_TYPES = {"ar": AROutput, "lta": LTAOutput, "oscc": OSCCOutput, "pnr": PNROutput}


def _weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in module.state_dict().items()}


@pytest.mark.parametrize("task", PRIMARY_TASKS)
def test_frozen_sources_get_no_gradient_and_do_not_change(task: str) -> None:
    model = translation(task)
    sources_before = _weights(model.sources)
    translator_before = _weights(model.translator)
    trained = [model.translator, model.primary_head]
    optimizer = build_optimizer(trained, OptimizerConfig(lr=1e-2))
    model.train()
    assert not model.sources.training and not any(m.training for m in model.sources.modules())
    batch = clip_batch((16, 16))
    for _ in range(3):
        optimizer.zero_grad()
        inputs = task_inputs(task, batch)
        model.head(task).loss(model.run(task, batch, inputs), inputs).mean().backward()
        optimizer.step()
    assert all(not p.requires_grad and p.grad is None for p in model.sources.parameters())
    assert all(torch.equal(value, sources_before[key]) for key, value in model.sources.state_dict().items())
    changed = [key for key, value in model.translator.state_dict().items()
               if not torch.equal(value, translator_before[key])]
    assert changed, "the translator did not train"
    # The optimizer holds exactly the translator's and the head's parameters, none of the sources'.
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert held == {id(p) for m in trained for p in m.parameters()}


@pytest.mark.parametrize("task", PRIMARY_TASKS)
def test_outputs_have_the_task_type_and_batching_does_not_change_them(task: str) -> None:
    model = translation(task).eval()
    lengths = (16, 32, 16)  # padding in the batched encoder
    batch = clip_batch(lengths, seed=3)
    outputs = model.run(task, batch, task_inputs(task, batch, labels=False))
    assert isinstance(outputs, OUTPUT_TYPES[task])
    # Each video alone: neither the padding nor the other videos change a video's outputs.
    per_video = []
    for b in range(len(lengths)):
        alone = VideoBatch.from_videos([batch.x[batch.video == b]], [batch.pos[batch.video == b]])
        per_video.append(model.run(task, alone, task_inputs(task, alone, labels=False)))
    first = outputs[0]
    torch.testing.assert_close(first, torch.cat([o[0] for o in per_video]), atol=1e-5, rtol=0)
    decoded = model.decode(task, outputs, task_inputs(task, batch, labels=False))
    assert decoded is not None


def test_attention_shares_are_a_distribution_over_the_source_tasks() -> None:
    model = translation("oscc").eval()
    batch = clip_batch((10, 7), seed=5)
    result, views = model.translate(batch, report=True)
    assert result.attention is not None and result.attention.shape == (2, len(SOURCE_TASKS))
    torch.testing.assert_close(result.attention.sum(1), torch.ones(2), atol=1e-6, rtol=0)
    assert bool((result.attention > 0).all())
    report = result.attention_report(1)
    assert list(report) == list(SOURCE_TASKS) and math.isclose(sum(report.values()), 1.0, abs_tol=1e-6)
    assert result.tokens.shape == (17, model.config.d_model)


@pytest.mark.parametrize("task", PRIMARY_TASKS)
def test_single_source_with_identity_like_translator(task: str) -> None:
    """K = 1 (the primary task is the only source), every encoder layer's attention output projection and second
    feed-forward layer zeroed (each layer adds nothing before its two LayerNorms), LayerNorm gains 1 and biases 0,
    task embedding 0. Then, exactly as written out here from the definitions: the token of node i is
    ``u_i = LN(W view_i + b) + time(t_newest - t_i)``, each layer maps x -> LN(LN(x)), the primary output is the
    primary head on those tokens, and all attention goes to the single source."""
    model = translation(task, source_tasks=(task,), num_layers=2).eval()
    with torch.no_grad():
        model.translator.tokens.task_embedding.zero_()
        for layer in model.translator.encoder.layers:
            layer.self_attn.out_proj.weight.zero_()
            layer.self_attn.out_proj.bias.zero_()
            layer.linear2.weight.zero_()
            layer.linear2.bias.zero_()
    batch = clip_batch((16,), seed=7)
    inputs = task_inputs(task, batch, labels=False)
    result, views = model.translate(batch, report=True)
    assert result.attention_report(0) == {task: 1.0}
    source_head = model.sources.bundle.head(task)
    with torch.no_grad():
        level0 = model.sources.bundle.graphs(batch, [task])[task]
        view = source_head.project(level0.x[level0.depth == 0])
        projection = model.translator.tokens.projections[task]
        d = model.config.d_model
        ages = batch.pos.max() - batch.pos
        rates = torch.tensor([model.config.time_base_s ** (-2 * i / d) for i in range(d // 2)])
        timing = torch.stack([torch.sin(ages[:, None] * rates), torch.cos(ages[:, None] * rates)], -1).reshape(-1, d)
        expected = F.layer_norm(view @ projection.weight.T + projection.bias, (d,)) + timing
        for _ in model.translator.encoder.layers:
            expected = F.layer_norm(F.layer_norm(expected, (d,)), (d,))
        torch.testing.assert_close(result.tokens, expected, atol=1e-5, rtol=0)
        torch.testing.assert_close(time_encoding(ages, d, model.config.time_base_s), timing, atol=1e-6, rtol=0)
        outputs = model.run(task, batch, inputs)
        direct = model.primary_head(LevelGraphs(expected, views.pos, views.video, torch.zeros_like(views.indices),
                                                torch.ones_like(views.pos), views.indices, 1), inputs)
    torch.testing.assert_close(outputs[0], direct[0], atol=1e-5, rtol=0)


def test_checkpoint_round_trip_records_and_checks_its_sources(tmp_path: Path) -> None:
    source = tmp_path / "multi.pt"
    source_bundle(seed=4).save(source)
    reloaded = ModelBundle.from_checkpoints(source)
    model = translation("ar", sources=reloaded, seed=9)
    model.sources.paths = {task: source for task in SOURCE_TASKS}
    path = model.save(tmp_path / "translation.pt", config={"note": "test"}, step=3)
    assert is_translation_checkpoint(path) and not is_translation_checkpoint(source)
    record = load_checkpoint(path).config["translation"]
    assert record["primary"] == "ar" and record["sources"][0]["path"] == str(source)
    assert record["sources"][0]["tasks"] == list(SOURCE_TASKS)
    loaded = TranslationBundle.from_checkpoints(path)
    batch = clip_batch((16, 9), seed=2)
    inputs = task_inputs("ar", batch, labels=False)
    with torch.no_grad():
        torch.testing.assert_close(loaded.run("ar", batch, inputs).verb_logits,
                                   model.eval().run("ar", batch, inputs).verb_logits, atol=0, rtol=0)
    moved = tmp_path / "moved.pt"
    source.rename(moved)
    with pytest.raises(InputError, match="source checkpoint not found"):
        TranslationBundle.from_checkpoints(path)
    assert TranslationBundle.from_checkpoints(path, sources=[moved]).tasks == ["ar"]
    source_bundle(seed=5).save(moved)
    with pytest.raises(InputError, match="sha256"):
        TranslationBundle.from_checkpoints(path, sources=[moved])


def test_primary_must_be_a_supported_source_task() -> None:
    with pytest.raises(InputError, match="primary task"):
        translation("ar", source_tasks=("oscc", "pnr"))
    with pytest.raises(InputError, match="primary tasks"):
        translation("mq")
    model = translation("oscc")
    with pytest.raises(InputError, match="predicts 'oscc' only"):
        model.head("ar")


def test_single_task_sources_run_one_backbone_each(tmp_path: Path) -> None:
    """Sources (b): K single-task checkpoints give K backbone passes, each task's view from its own model; the same
    weights twice run once."""
    paths = {}
    for seed, task in enumerate(("oscc", "pnr")):
        paths[task] = tmp_path / f"{task}.pt"
        replace(tiny_model(), tasks=(task,)).build(seed=seed).save(paths[task])
    sources = FrozenSources.from_checkpoints([paths["oscc"], paths["pnr"]], ["oscc", "pnr"])
    assert len(sources.bundle.backbones) == 2 and sources.tasks == ["oscc", "pnr"]
    batch = clip_batch((16, 5), seed=6)
    views = sources.views(batch)
    for seed, task in enumerate(("oscc", "pnr")):
        own = ModelBundle.from_checkpoints(paths[task])
        graphs = own.graphs(batch, [task])[task]
        with torch.no_grad():
            expected = own.head(task).project(graphs.x[graphs.depth == 0])
        torch.testing.assert_close(views.features[task], expected, atol=1e-6, rtol=0)
    assert torch.equal(views.pos, batch.pos) and torch.equal(views.indices, batch.indices)
    both = tmp_path / "both.pt"
    source_bundle(seed=3).save(both)
    shared = FrozenSources.from_checkpoints([both], ["oscc", "pnr"])
    assert len(shared.bundle.backbones) == 1


def test_forward_graphs_of_the_source_backbone_equals_run(tmp_path: Path) -> None:
    model = translation("lta").eval()
    batch = clip_batch((16, 11), seed=4)
    inputs = task_inputs("lta", batch, labels=False)
    with torch.no_grad():
        graphs = model.graphs(batch)["lta"]
        torch.testing.assert_close(model.forward_graphs("lta", graphs, inputs).verb_logits,
                                   model.run("lta", batch, inputs).verb_logits, atol=0, rtol=0)
    assert model.backbone("lta") is model.sources.bundle.backbones[0]
    paths = []
    for seed, task in enumerate(("oscc", "pnr")):
        paths.append(tmp_path / f"{task}.pt")
        replace(tiny_model(), tasks=(task,)).build(seed=seed).save(paths[-1])
    two = translation("oscc", sources=FrozenSources.from_checkpoints(paths).bundle, source_tasks=("oscc", "pnr"))
    with pytest.raises(InputError, match="2 backbones"):
        two.backbone("oscc")
