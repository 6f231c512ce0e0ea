"""What only TreeLSTM(bidirectional=True) has: the reference's top-down pass and the model's
against nn.LSTM on chains, its parameters, repr and state dict. The checks both directions share
(the float64 recursion, gradcheck, the other executor, one tree at a time) are test_models.py's,
parametrised over ``bidirectional``."""
import copy

import pytest
import torch
from torch import nn

import reference
from cases import chain
from conftest import BACKENDS
from helpers import KINDS
from treelstm import TreeBatch, TreeLSTM

# Small batches run fastest on one thread, and much slower with two on a busy machine.
pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------- the reference itself
def test_reference_top_down_pass_on_a_chain_is_nn_lstm_over_the_reversed_sequence():
    """The reference's top-down half, checked once against nn.LSTM, independent of treelstm."""
    torch.manual_seed(0)
    up, down = nn.LSTM(3, 4, dtype=torch.float64), nn.LSTM(4, 4, dtype=torch.float64)
    params = [(tuple(getattr(up, f"{kind}_l0") for kind in KINDS),
               tuple(getattr(down, f"{kind}_l0") for kind in KINDS))]
    x = torch.randn(7, 3, dtype=torch.float64)
    output, (h_n, c_n) = reference.bidirectional_tree_lstm(params, "childsum", [chain(7)], x)
    up_out, (up_h, up_c) = up(x.unsqueeze(1))
    down_out, _ = down(up_out.flip(0))
    _, (root_h, root_c) = down(up_out[-1:])
    torch.testing.assert_close(output, torch.cat([up_out[:, 0], down_out.flip(0)[:, 0]], dim=1))
    torch.testing.assert_close(h_n, torch.cat([up_h, root_h]))
    torch.testing.assert_close(c_n, torch.cat([up_c, root_c]))


# ---------------------------------------------------------------- against nn.LSTM on chains
def _lstm_with(model, k, direction):
    """An nn.LSTM holding layer k's bottom-up (direction "") or top-down ("_reverse") weights."""
    weight_ih = getattr(model, f"weight_ih_l{k}{direction}")
    lstm = nn.LSTM(weight_ih.shape[1], model.hidden_size, bias=model.bias, dtype=torch.float64)
    with torch.no_grad():
        for kind in KINDS if model.bias else KINDS[:2]:
            getattr(lstm, f"{kind}_l0").copy_(getattr(model, f"{kind}_l{k}{direction}"))
    return lstm


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("num_layers,bias", [(1, True), (2, True), (2, False)])
@pytest.mark.parametrize("cell,arity", [("childsum", None), ("nary", 1)])
def test_chain_equals_nn_lstm_up_then_reversed_down(cell, arity, num_layers, bias, backend):
    """On a chain (node t's parent is t + 1) the top-down half is nn.LSTM(H, H) run over the
    reversed bottom-up outputs, flipped back; the bottom-up half is nn.LSTM over the input."""
    torch.manual_seed(0)
    model = TreeLSTM(3, 4, num_layers=num_layers, cell=cell, arity=arity, bias=bias,
                     backend=backend, dtype=torch.float64, bidirectional=True)
    lengths = [9, 1, 4]
    batch = TreeBatch.from_parents([chain(n) for n in lengths])
    x = torch.randn(sum(lengths), 3, dtype=torch.float64)
    output, (h_n, c_n) = model(x, batch)

    start = 0
    for t, n in enumerate(lengths):
        layer_input = x[start:start + n].unsqueeze(1)
        for k in range(num_layers):
            up, down = _lstm_with(model, k, ""), _lstm_with(model, k, "_reverse")
            up_out, (up_h, up_c) = up(layer_input)
            down_out = down(up_out.flip(0))[0].flip(0)
            _, (root_h, root_c) = down(up_out[-1:])  # the root is the last node
            torch.testing.assert_close(h_n[2 * k, t], up_h[0, 0], rtol=0, atol=1e-12)
            torch.testing.assert_close(c_n[2 * k, t], up_c[0, 0], rtol=0, atol=1e-12)
            torch.testing.assert_close(h_n[2 * k + 1, t], root_h[0, 0], rtol=0, atol=1e-12)
            torch.testing.assert_close(c_n[2 * k + 1, t], root_c[0, 0], rtol=0, atol=1e-12)
            layer_input = torch.cat([up_out, down_out], dim=2)
        torch.testing.assert_close(output[start:start + n], layer_input[:, 0], rtol=0, atol=1e-12)
        start += n


# ---------------------------------------------------------------- parameters, repr, bad input
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("cell,arity", [("childsum", None), ("nary", 3)])
def test_parameter_names_and_shapes(cell, arity, bias):
    H = 4
    model = TreeLSTM(5, H, num_layers=2, cell=cell, arity=arity, bias=bias, bidirectional=True)
    num_slots = 1 if cell == "childsum" else arity
    hh_rows = 4 * H if cell == "childsum" else (arity + 3) * H
    expected = {}
    for k in range(2):
        expected[f"weight_ih_l{k}"] = (4 * H, 5 if k == 0 else 2 * H)
        expected[f"weight_hh_l{k}"] = (hh_rows, num_slots * H)
        expected[f"weight_ih_l{k}_reverse"] = (4 * H, H)
        expected[f"weight_hh_l{k}_reverse"] = (4 * H, H)
        if bias:
            expected[f"bias_ih_l{k}"] = (4 * H,)
            expected[f"bias_hh_l{k}"] = (hh_rows,)
            expected[f"bias_ih_l{k}_reverse"] = (4 * H,)
            expected[f"bias_hh_l{k}_reverse"] = (4 * H,)
        else:
            assert getattr(model, f"bias_ih_l{k}_reverse") is None
            assert getattr(model, f"bias_hh_l{k}_reverse") is None
    assert {name: tuple(p.shape) for name, p in model.named_parameters()} == expected
    bound = 1 / H ** 0.5
    assert all(p.abs().max() <= bound for p in model.parameters())


@pytest.mark.parametrize("cell,arity", [("childsum", None), ("nary", 2)])
def test_unidirectional_model_is_unchanged(cell, arity):
    torch.manual_seed(0)
    default = TreeLSTM(5, 4, num_layers=2, cell=cell, arity=arity)
    torch.manual_seed(0)
    explicit = TreeLSTM(5, 4, num_layers=2, cell=cell, arity=arity, bidirectional=False)
    names = [name for name, _ in explicit.named_parameters()]
    assert names == [name for name, _ in default.named_parameters()]
    assert not any("reverse" in name for name in names)
    assert explicit.weight_ih_l1.shape == (16, 4)
    assert "bidirectional" not in repr(explicit)
    batch = TreeBatch.from_parents([[-1, 0, 0, 1], [-1]])
    x = torch.randn(5, 5)
    output, (h_n, c_n) = explicit(x, batch)
    expected, (expected_h, expected_c) = default(x, batch)
    assert output.shape == (5, 4) and h_n.shape == c_n.shape == (2, 2, 4)
    torch.testing.assert_close(output, expected, rtol=0, atol=0)
    torch.testing.assert_close(h_n, expected_h, rtol=0, atol=0)
    torch.testing.assert_close(c_n, expected_c, rtol=0, atol=0)


def test_repr_and_state_dict_round_trip():
    torch.manual_seed(0)
    model = TreeLSTM(4, 3, num_layers=2, cell="nary", arity=2, bidirectional=True)
    assert "bidirectional=True" in repr(model)
    batch = TreeBatch.from_parents([[-1, 0, 0, 1]])
    x = torch.randn(4, 4)
    expected = model(x, batch)
    clone = TreeLSTM(4, 3, num_layers=2, cell="nary", arity=2, bidirectional=True)
    clone.load_state_dict(model.state_dict())
    torch.testing.assert_close(clone(x, batch), expected)
    torch.testing.assert_close(copy.deepcopy(model)(x, batch), expected)
    with pytest.raises(RuntimeError, match="reverse"):  # a unidirectional state dict lacks them
        clone.load_state_dict(TreeLSTM(4, 3, num_layers=2, cell="nary", arity=2).state_dict())


@pytest.mark.parametrize("value", [1, 0, "True", None, 1.0, torch.tensor(True)])
def test_bidirectional_must_be_a_bool(value):
    with pytest.raises(TypeError, match="bidirectional"):
        TreeLSTM(3, 2, bidirectional=value)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", ["nary", "childsum"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_single_node_trees_give_every_weight_a_gradient(backend, cell, bidirectional):
    """A batch of one-word sentences (every tree a single node) runs no U h product, yet every
    parameter gets a gradient -- zeros for the recurrent weights, whose state is zero -- as
    DistributedDataParallel expects of every parameter (without find_unused_parameters)."""
    torch.manual_seed(0)
    model = TreeLSTM(4, 3, num_layers=2, cell=cell, arity=2 if cell == "nary" else None,
                     bidirectional=bidirectional, backend=backend, dtype=torch.float64)
    output, (h_n, c_n) = model(torch.randn(3, 4, dtype=torch.float64),
                               TreeBatch.from_parents([[-1]] * 3))
    (output.sum() + h_n.sum() + c_n.sum()).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        if name.startswith("weight_hh"):
            assert not parameter.grad.any(), name


@pytest.mark.parametrize("cell", ["nary", "childsum"])
def test_autocast_gives_one_dtype_in_both_directions(cell):
    """Under CPU autocast the native engine's states are in autocast's dtype; the top-down
    pass's follow, so a bidirectional model's output, h_n and c_n have the dtype of a
    unidirectional one's (the top-down ops left float32 and promoted the concatenation)."""
    batch = TreeBatch.from_parents([[2, 2, -1], [-1]])
    dtypes = []
    for bidirectional in (False, True):
        torch.manual_seed(0)
        model = TreeLSTM(4, 3, num_layers=2, cell=cell, arity=2 if cell == "nary" else None,
                         bidirectional=bidirectional)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            output, (h_n, c_n) = model(torch.randn(4, 4), batch)
        (output.float().sum() + h_n.float().sum() + c_n.float().sum()).backward()
        dtypes.append({output.dtype, h_n.dtype, c_n.dtype})
    assert dtypes == [{torch.bfloat16}, {torch.bfloat16}]
