"""Shared helpers of the stream engine tests: random tiny backbones, push schedules and the offline truth."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import Tensor

from egostream.backbone.graphs import LevelGraphs, VideoBatch
from egostream.backbone.hierarchy import BackboneConfig, HierarchicalBackbone
from egostream.ego4d.features import FeatureSpec
from egostream.ego4d.protocol.windows import centred_node_positions_s
from egostream.train.seeding import torch_threads

INPUT_SIZE = 6
ATOL = 1e-5


@pytest.fixture(autouse=True)
def single_threaded_torch() -> Iterator[None]:
    """Run the tiny-model tests on one intra-op thread (on a shared 2-core machine, two threads spin and crawl).

    Autouse in every test module that imports it."""
    with torch_threads(1):
        yield


def random_backbone(depth: int, seed: int, *, hidden: int = 8, pool: str = "mean") -> HierarchicalBackbone:
    """A tiny backbone in eval mode with every parameter redrawn (so no layer is near the identity)."""
    torch.manual_seed(seed)
    cfg = BackboneConfig(input_size=INPUT_SIZE, hidden_size=hidden, depth=depth, pos_hidden_channels=4,
                         dropout=0.1, pool=pool)
    backbone = HierarchicalBackbone(cfg).eval()
    with torch.no_grad():
        for parameter in backbone.parameters():
            parameter.normal_(0.0, 0.5)
    return backbone


def push_sizes(total: int, max_push: int, seed: int) -> list[int]:
    """Random push sizes in ``1..max_push`` summing to ``total``."""
    generator = torch.Generator().manual_seed(seed)
    sizes = []
    while sum(sizes) < total:
        sizes.append(min(int(torch.randint(1, max_push + 1, (1,), generator=generator)), total - sum(sizes)))
    return sizes


def offline(backbone: HierarchicalBackbone, rows: Tensor, spec: FeatureSpec = FeatureSpec("stream", dim=INPUT_SIZE)
            ) -> tuple[Tensor, LevelGraphs]:
    """The offline backbone on ``rows`` as one video, node times from the benchmark protocol's own formula."""
    n = len(rows)
    batch = VideoBatch(rows, centred_node_positions_s(n, spec).float().to(rows.dtype), torch.zeros(n, dtype=torch.long),
                       torch.arange(n), 1)
    with torch.no_grad():
        return backbone(batch)


def anchored_at_or_after(graphs: LevelGraphs, first_row: int) -> Tensor:
    """``[N_all]`` bool: nodes whose anchor row ``2**d * k`` is ``>= first_row``."""
    return graphs.indices * (2 ** graphs.depth) >= first_row


def anchored_before(graphs: LevelGraphs, num_rows: int) -> Tensor:
    """``[N_all]`` bool: nodes that exist in a stream of ``num_rows`` rows (anchor row ``2**d * k < num_rows``)."""
    return graphs.indices * (2 ** graphs.depth) < num_rows


def assert_graphs_match(ours: LevelGraphs, expected: LevelGraphs, keep: Tensor | None = None) -> None:
    """``ours`` equals the ``keep`` nodes of ``expected``: same levels, indices and seconds, features to 1e-5."""
    keep = torch.ones(len(expected.x), dtype=torch.bool) if keep is None else keep
    assert torch.equal(ours.depth, expected.depth[keep])
    assert torch.equal(ours.indices, expected.indices[keep])
    assert torch.equal(ours.pos, expected.pos[keep])
    torch.testing.assert_close(ours.x, expected.x[keep], atol=ATOL, rtol=0)
