"""LTA head parity with the authors' code on every ``task_lta_*`` reference case: the per-video graph (default) and
the authors' batched cross-video graph (``authors_batched_graph=True``), plus the offsets quirk and sampling."""
from __future__ import annotations

import pytest
import torch

from egostream.tasks import TaskInputs
from egostream.tasks.lta import LTATask, future_graph, sample_future_actions, torch_cluster_offsets
from tests.reference_fixtures import edge_set
from tests.tasks.reference_cases import (assert_close, assert_expected, build_task, case_ids, expected, expected_graphs,
                                         run_backbone, task_cases, task_inputs, video_graphs, verb_noun_results)

CASES = task_cases("lta")


def lta_results(task: LTATask, graphs, inputs: TaskInputs) -> dict[str, torch.Tensor]:
    return verb_noun_results(task, graphs, inputs, "lta", "step")


def per_video_results(task: LTATask, graphs, values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    computed = {}
    for video in range(graphs.num_videos):
        with torch.no_grad():
            out = task(video_graphs(graphs, video))
        computed[f"expected.per_video.{video}.lta.verb_logits"] = out.verb_logits
        computed[f"expected.per_video.{video}.lta.noun_logits"] = out.noun_logits
    return computed


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_lta_reference_authors_batched_graph(case) -> None:
    values = expected(case)
    task, graphs = build_task(case, authors_batched_graph=True), expected_graphs(values)
    assert_expected(values, lta_results(task, graphs, task_inputs(case)), "expected.lta.")
    with torch.no_grad():
        pooled = task.pooled(graphs)
    assert_close(pooled, values["aux.lta.pooled"], "aux.lta.pooled")
    graph = future_graph(pooled, task.config.num_future, task.config.future_radius, authors_batched=True)
    assert_close(graph.pos, values["aux.lta.head_pos"], "aux.lta.head_pos")
    assert edge_set(graph.edge_index) == edge_set(values["aux.lta.head_edge_index"])


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_lta_reference_per_video_default(case) -> None:
    values = expected(case)
    task, graphs = build_task(case), expected_graphs(values)
    assert not task.config.authors_batched_graph
    if any(name.startswith("expected.per_video.") for name in values):
        assert_expected(values, per_video_results(task, graphs, values), "expected.per_video.")
    # The default batched result equals running each video alone (no cross-video edges).
    with torch.no_grad():
        batched = task(graphs).verb_logits.reshape(graphs.num_videos, task.config.num_future, -1)
    alone = per_video_results(task, graphs, values)
    for video in range(graphs.num_videos):
        assert_close(batched[video], alone[f"expected.per_video.{video}.lta.verb_logits"], f"video {video}")


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_lta_reference_end_to_end(case) -> None:
    values = expected(case)
    task = build_task(case, authors_batched_graph=True)
    assert_expected(values, lta_results(task, run_backbone(case), task_inputs(case)), "expected.lta.")


@pytest.mark.parametrize("num_groups", [1, 2, 3, 4, 7])
def test_torch_cluster_offsets_match_bucketize_lower_bound(num_groups: int) -> None:
    unsorted = torch.arange(num_groups).repeat(20)
    offsets = torch_cluster_offsets(unsorted, num_groups)
    assert torch.equal(offsets, torch.bucketize(torch.arange(num_groups + 1), unsorted))
    # on a sorted vector they are the true group offsets
    sorted_batch = torch.arange(num_groups).repeat_interleave(5)
    assert torch_cluster_offsets(sorted_batch, num_groups).tolist() == list(range(0, 5 * num_groups + 1, 5))


def test_torch_cluster_offsets_of_the_fixture_batch() -> None:
    # fixture README §9.6: B = 3, Z = 20 gives [0, 46, 53, 60]
    assert torch_cluster_offsets(torch.arange(3).repeat(20), 3).tolist() == [0, 46, 53, 60]


def test_per_video_future_graph_is_a_path_of_radius_two() -> None:
    graph = future_graph(torch.randn(2, 3), num_future=4, radius=2.5)
    wanted = {(b * 4 + j, b * 4 + i) for b in range(2) for i in range(4) for j in range(4) if 0 < abs(i - j) <= 2}
    assert edge_set(graph.edge_index) == wanted
    assert torch.equal(graph.x[:4], graph.x[:1].expand(4, 3))


def test_sampling_reproduces_categorical_draws() -> None:
    generator = torch.Generator().manual_seed(0)
    verb_logits = torch.randn(2 * 3, 5, generator=generator)
    noun_logits = torch.randn(2 * 3, 7, generator=generator)
    torch.manual_seed(1234)
    verbs = [torch.distributions.Categorical(logits=verb_logits).sample() for _ in range(4)]
    nouns = [torch.distributions.Categorical(logits=noun_logits).sample() for _ in range(4)]
    torch.manual_seed(1234)
    pred = sample_future_actions(verb_logits, noun_logits, num_future=3, num_sequences=4)
    assert pred.verbs.shape == (2, 4, 3)
    for k in range(4):  # sequence k of video b is draw k at rows b * Z .. b * Z + Z - 1
        assert torch.equal(pred.verbs[:, k, :].reshape(-1), verbs[k])
        assert torch.equal(pred.nouns[:, k, :].reshape(-1), nouns[k])
    again = sample_future_actions(verb_logits, noun_logits, 3, 4, torch.Generator().manual_seed(7))
    assert torch.equal(again.verbs, sample_future_actions(verb_logits, noun_logits, 3, 4,
                                                          torch.Generator().manual_seed(7)).verbs)
