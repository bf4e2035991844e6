"""Discovery and comparison helpers shared by the backpack's reference tests.

Cases are found through ``manifest.json`` of :func:`egostream.testing.reference_dir` (so the same tests run on any
folder of the same layout), never by hard-coded file names.
"""
from __future__ import annotations

import fnmatch
from typing import Any

import torch
from torch import Tensor

from egostream.backpack import EgoPackInteraction, InteractionResult, authors_interaction_keys
from egostream.testing import reference_dir
from tests.reference_fixtures import authors_config, reference_manifest

ATOL = 1e-5


def case_names(pattern: str) -> list[str]:
    """Names of the manifest's cases matching the glob ``pattern``, sorted."""
    return sorted(name for name in reference_manifest()["cases"] if fnmatch.fnmatch(name, pattern))


def case(name: str) -> dict[str, Any]:
    return reference_manifest()["cases"][name]


def load_tensors(relative: str) -> dict[str, Tensor]:
    return torch.load(reference_dir() / relative, map_location="cpu", weights_only=True)


def checkpoint_config(name: str) -> dict[str, Any]:
    """``configs/<checkpoint stem>.json`` of a case."""
    return authors_config(case(name)["checkpoint"])


def interaction_from_config(state_dict: dict[str, Tensor], config: dict[str, Any]) -> EgoPackInteraction:
    """Build the interaction module from an authors' ``EgoPack`` config and load ``state_dict`` strictly."""
    prefix = "task_prototypes."
    prototypes = {key[len(prefix):-len(".weight")]: value for key, value in state_dict.items()
                  if key.startswith(prefix)}
    module = EgoPackInteraction(prototypes, config["features_size"], config["hidden_size"], k=config["k"],
                                depth=config["depth"], conv_depth=config["conv_depth"], dropout=config["dropout"],
                                conv=config["conv"], distance_func=config["distance_func"])
    module.load_state_dict(authors_interaction_keys(state_dict, config["conv_depth"]), strict=True)
    return module.eval()


def assert_interaction_matches(result: InteractionResult, expected: dict[str, Tensor], module: EgoPackInteraction) -> int:
    """Compare every ``expected.egopack.*`` entry of a case with ``result``; returns how many tensors were compared.

    kNN edges: per query, the SET of source prototypes; matches: exactly; edge weights relu(1 - d): per query, sorted,
    at ATOL; stage inputs and outputs: at ATOL.
    """
    compared = 0
    for task in module.support_tasks:
        num_prototypes = module.prototypes(task).shape[0]
        for stage, (neighbours, similarities) in enumerate(zip(result.neighbours[task], result.similarities[task])):
            key = f"{task}.stage{stage}"
            edges = expected[f"expected.egopack.knn_edges.{key}"]
            num_queries, k = neighbours.shape
            assert edges.shape == (2, num_queries * k)
            for query in range(num_queries):
                sources = edges[0, edges[1] == num_prototypes + query]
                assert set(sources.tolist()) == set(neighbours[query].tolist()), f"{key} query {query}"
            assert torch.equal(result.matches[task][stage], expected[f"expected.egopack.matches.{key}"]), key
            weights = expected[f"expected.egopack.knn_weights.{key}"].reshape(num_queries, k)
            torch.testing.assert_close(similarities.relu().sort(dim=1).values, weights.sort(dim=1).values,
                                       atol=ATOL, rtol=0)
            compared += 3
        torch.testing.assert_close(result.features[task], expected[f"expected.egopack.interact_out.{task}"],
                                   atol=ATOL, rtol=0)
        compared += 1
    return compared


def state_with_prefix(state_dict: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """The entries under ``prefix`` with the prefix removed."""
    return {key[len(prefix):]: value for key, value in state_dict.items() if key.startswith(prefix)}
