"""TDGC against a per-node loop written straight from the formula in the fixture README §9.2."""
from __future__ import annotations

import torch

from egostream.backbone.tdgc import DistanceGatedConv
from egostream.kernels.temporal_edges import radius_edges


def reference_tdgc(conv: DistanceGatedConv, x: torch.Tensor, edge_index: torch.Tensor, pos: torch.Tensor):
    """out_i = lin_root x_i + bias + mean_{j->i} sign(p_j-p_i) tanh(MLP(|p_j-p_i|)) * LeakyReLU_0.2(lin_rel x_j)."""
    w1, b1 = conv.lin_pos[0].weight[:, 0], conv.lin_pos[0].bias
    w2, b2 = conv.lin_pos[2].weight, conv.lin_pos[2].bias
    rows = []
    for i in range(len(x)):
        total = torch.zeros(conv.out_channels, dtype=torch.float64)
        sources = edge_index[0][edge_index[1] == i].tolist()
        for j in sources:
            d = float(pos[j] - pos[i])
            hidden = torch.nn.functional.leaky_relu(w1.double() * abs(d) + b1.double(), 0.01)
            gate = torch.tanh(w2.double() @ hidden + b2.double())
            neighbour = torch.nn.functional.leaky_relu(conv.lin_rel.weight.double() @ x[j].double()
                                                       + conv.lin_rel.bias.double(), 0.2)
            total += (1.0 if d > 0 else -1.0 if d < 0 else 0.0) * gate * neighbour
        mean = total / max(len(sources), 1)
        rows.append(mean + conv.lin_root.weight.double() @ x[i].double() + conv.bias[0].double())
    return torch.stack(rows)


def randomised_conv(seed: int, width: int = 5, hidden: int = 7) -> DistanceGatedConv:
    torch.manual_seed(seed)
    conv = DistanceGatedConv(width, width, pos_hidden_channels=hidden)
    with torch.no_grad():
        for parameter in conv.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.3)
    return conv


def test_matches_per_node_formula_with_two_videos_and_a_lone_node() -> None:
    conv = randomised_conv(0)
    pos = torch.tensor([0.3, 0.8, 1.9, 2.0, 5.0, 0.1, 0.1, 9.0])
    video = torch.tensor([0, 0, 0, 0, 0, 1, 1, 2])
    edge_index = radius_edges(pos, video, 2.0)
    x = torch.randn(8, 5)
    with torch.no_grad():
        out = conv(x, edge_index, pos)
        expected = reference_tdgc(conv, x, edge_index, pos)
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=0)
    # The lone node (video 2) and the isolated node at 5.0 s get only the root term and the bias.
    with torch.no_grad():
        root_only = conv.lin_root(x[[4, 7]]) + conv.bias
    torch.testing.assert_close(out[[4, 7]], root_only)


def test_equal_times_carry_no_message_but_count_in_the_mean() -> None:
    conv = randomised_conv(1)
    pos = torch.tensor([1.0, 1.0, 1.5])
    x = torch.randn(3, 5)
    edge_index = radius_edges(pos, torch.zeros(3, dtype=torch.long), 2.0)
    with torch.no_grad():
        out = conv(x, edge_index, pos)
    torch.testing.assert_close(out.double(), reference_tdgc(conv, x, edge_index, pos), atol=1e-5, rtol=0)


def test_fresh_layer_is_identity_on_neighbours_and_zero_bias() -> None:
    conv = DistanceGatedConv(4, 4)
    assert torch.equal(conv.lin_rel.weight, torch.eye(4))
    assert not conv.lin_rel.bias.any() and not conv.bias.any()


def test_state_dict_keys_are_the_authors() -> None:
    conv = DistanceGatedConv(48, 48, pos_hidden_channels=256)
    shapes = {key: tuple(value.shape) for key, value in conv.state_dict().items()}
    # fixture README §6: the keys of one authors' DistanceGatedConv.
    assert shapes == {"bias": (1, 48), "lin_rel.weight": (48, 48), "lin_rel.bias": (48,), "lin_root.weight": (48, 48),
                      "lin_pos.0.weight": (256, 1), "lin_pos.0.bias": (256,), "lin_pos.2.weight": (48, 256),
                      "lin_pos.2.bias": (48,)}
