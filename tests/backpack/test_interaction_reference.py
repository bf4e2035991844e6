"""The standalone EgoPack interaction cases (``egopack_interact_*``) against the authors' outputs."""
from __future__ import annotations

import copy

import pytest
import torch

from tests.backpack.backpack_reference_cases import (ATOL, assert_interaction_matches, case, case_names, checkpoint_config,
                                      interaction_from_config, load_tensors)
from egostream.backpack import EgoPackInteraction, authors_interaction_keys
from egostream.errors import InputError

CASES = case_names("egopack_interact_*")


@pytest.mark.parametrize("name", CASES)
def test_interaction_reference(name: str) -> None:
    entry = case(name)
    expected = load_tensors(entry["expected_file"])
    module = interaction_from_config(load_tensors(entry["checkpoint"]), checkpoint_config(name)["egopack"])
    queries = {task: expected[f"input.features.{task}"] for task in module.support_tasks}
    with torch.no_grad():
        result = module(queries)
    assert assert_interaction_matches(result, expected, module) > 0
    # Later stages start from the previous stage's output, matched again against the ORIGINAL prototypes.
    for key in (k for k in expected if k.startswith("aux.egopack.stage_input.")):
        task, stage = key.removeprefix("aux.egopack.stage_input.").rsplit(".stage", 1)
        with torch.no_grad():
            partial = copy.deepcopy(module)
            partial.stages[task] = partial.stages[task][: int(stage)]
            stage_input = partial({task: queries[task]}).features[task]
        torch.testing.assert_close(stage_input, expected[key], atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", CASES)
def test_authors_state_dict_round_trip(name: str) -> None:
    config = checkpoint_config(name)["egopack"]
    authors = load_tensors(case(name)["checkpoint"])
    module = EgoPackInteraction.from_authors_state_dict(authors, k=config["k"])
    assert len(module.stages[module.support_tasks[0]]) == config["depth"]
    assert module.features_size == config["features_size"]
    back = authors_interaction_keys(module.state_dict(), config["conv_depth"], to_authors=True)
    assert back.keys() == authors.keys() and all(torch.equal(back[key], authors[key]) for key in authors)


def test_prototypes_stay_frozen_and_queries_get_gradients() -> None:
    torch.manual_seed(0)
    module = EgoPackInteraction({"a": torch.randn(6, 8)}, features_size=8, hidden_size=4, k=3, depth=2)
    queries = torch.randn(5, 8, requires_grad=True)
    module({"a": queries}).features["a"].sum().backward()
    assert queries.grad is not None and queries.grad.abs().sum() > 0
    assert not module.prototypes("a").requires_grad
    assert module.stages["a"][0].convs[0].lin_l.weight.grad is not None


def test_prototype_receives_no_message() -> None:
    """With one stage of one SAGE layer, a prototype row is lin_r(p) + lin_l.bias; queries see the mean of matches."""
    torch.manual_seed(1)
    prototypes = torch.randn(4, 6)
    module = EgoPackInteraction({"a": prototypes}, features_size=6, hidden_size=5, k=2, depth=1, conv_depth=1).eval()
    stage = module.stages["a"][0]
    sage = stage.convs[0]
    queries = prototypes[[0, 3]] * torch.tensor([[2.0], [0.5]]) + 1e-3  # nearest prototypes: 0 and 3
    with torch.no_grad():
        result = module({"a": queries})
        neighbours = result.neighbours["a"][0]
        mean_neighbours = prototypes[neighbours].mean(dim=1)
        hand = stage.output(sage.lin_l(mean_neighbours) + sage.lin_r(queries))
    assert neighbours[:, 0].tolist() == [0, 3]
    torch.testing.assert_close(result.features["a"], hand, atol=1e-6, rtol=0)


def test_unknown_support_task_is_rejected() -> None:
    module = EgoPackInteraction({"ego4d/lta": torch.randn(5, 8)}, features_size=8, hidden_size=4, k=2, depth=1)
    with pytest.raises(InputError, match="unknown support task 'ego4d/oscc'"):
        module({"ego4d/oscc": torch.randn(3, 8)})


def test_query_width_mismatch_is_rejected() -> None:
    module = EgoPackInteraction({"ego4d/lta": torch.randn(5, 8)}, features_size=8, hidden_size=4, k=2, depth=1)
    with pytest.raises(InputError, match=r"task_features\[ego4d/lta\]"):
        module({"ego4d/lta": torch.randn(3, 7)})


def test_prototype_width_mismatch_is_rejected() -> None:
    with pytest.raises(InputError, match=r"expected \[P, 8\] prototypes"):
        EgoPackInteraction({"ego4d/lta": torch.randn(5, 8), "ego4d/pnr": torch.randn(5, 9)}, features_size=8, k=2)
