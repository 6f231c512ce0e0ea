"""TreeLSTM(bidirectional=True) against independent references: the float64 recursion, nn.LSTM on
chains, gradcheck, the other executor, one tree at a time."""
import copy

import pytest
import torch
from torch import nn

import reference
from cases import CASES, chain
from conftest import BACKENDS, DEVICES, needs_dgl
from treelstm import TreeBatch, TreeLSTM

CELL_CASES = [("childsum", name) for name in CASES] + [("nary", name) for name in CASES]
KINDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
DIRECTIONS = ("", "_reverse")

# Small batches run fastest on one thread, and much slower with two on a busy machine.
pytestmark = pytest.mark.usefixtures("one_thread")


def make_model(case, cell, backend, num_layers=1, bias=True, input_size=5, hidden_size=4, seed=0):
    torch.manual_seed(seed)
    arity = case.arity if cell == "nary" else None
    return TreeLSTM(input_size, hidden_size, num_layers=num_layers, cell=cell, arity=arity,
                    bias=bias, backend=backend, dtype=torch.float64, bidirectional=True)


def parameter_names(num_layers):
    """Every parameter name of a bidirectional model, bias included, in nn.LSTM's order."""
    return [f"{kind}_l{k}{direction}" for k in range(num_layers) for direction in DIRECTIONS
            for kind in KINDS]


def reference_params(model):
    """Per layer ``(up, down)``: detached float64 copies that the reference differentiates."""
    def leaf(name):
        param = getattr(model, name)
        return None if param is None else param.detach().clone().requires_grad_(True)

    return [tuple(tuple(leaf(f"{kind}_l{k}{direction}") for kind in KINDS)
                  for direction in DIRECTIONS) for k in range(model.num_layers)]


def named_reference_params(params):
    """``{name: tensor}`` of :func:`reference_params`' result, to pair with the model's names."""
    return {f"{kind}_l{k}{direction}": tensor
            for k, layer in enumerate(params) for direction, group in zip(DIRECTIONS, layer)
            for kind, tensor in zip(KINDS, group)}


def grad_or_zero(param):
    """An unused weight (a lone leaf's weight_hh) gets no grad: that is a zero gradient."""
    return torch.zeros_like(param) if param.grad is None else param.grad


def weighted_loss(output, h_n, c_n, seed=1):
    """A loss that weighs every output element differently, so gradients see every value."""
    g = torch.Generator().manual_seed(seed)
    return sum((t * torch.randn(t.shape, generator=g, dtype=t.dtype)).sum()
               for t in (output, h_n, c_n))


def assert_gradients_match(model, params):
    theirs = named_reference_params(params)
    checked = 0
    for name, ours in model.named_parameters():
        torch.testing.assert_close(grad_or_zero(ours), grad_or_zero(theirs[name]),
                                   msg=lambda text: f"gradient of {name}: {text}")
        checked += 1
    assert checked == sum(p is not None for p in theirs.values())


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


# ---------------------------------------------------------------- against the reference
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("num_layers,bias", [(1, True), (2, True), (2, False)])
@pytest.mark.parametrize("cell,case_name", CELL_CASES)
def test_matches_reference_outputs_and_gradients(cell, case_name, num_layers, bias, backend):
    case = CASES[case_name]
    model = make_model(case, cell, backend, num_layers, bias, input_size=3, hidden_size=3)
    batch = TreeBatch.from_parents(case.parents, case.positions)
    x = torch.randn(case.num_nodes, 3, dtype=torch.float64, requires_grad=True)

    output, (h_n, c_n) = model(x, batch)
    assert output.shape == (case.num_nodes, 6)
    assert h_n.shape == c_n.shape == (2 * num_layers, len(case.parents), 3)
    weighted_loss(output, h_n, c_n).backward()

    params = reference_params(model)
    x_ref = x.detach().clone().requires_grad_(True)
    ref_output, (ref_h, ref_c) = reference.bidirectional_tree_lstm(
        params, cell, case.parents, x_ref, case.positions, model.arity)
    weighted_loss(ref_output, ref_h, ref_c).backward()

    torch.testing.assert_close(output, ref_output)
    torch.testing.assert_close(h_n, ref_h)
    torch.testing.assert_close(c_n, ref_c)
    torch.testing.assert_close(x.grad, x_ref.grad)
    assert_gradients_match(model, params)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", ["childsum", "nary"])
def test_input_index_equals_zero_input_elsewhere(cell, backend):
    """input_index feeds layer 0's bottom-up pass only; the top-down pass reads h_up everywhere."""
    case = CASES["mixed forest"]
    model = make_model(case, cell, backend, num_layers=2)
    batch = TreeBatch.from_parents(case.parents, case.positions)
    leaves = torch.nonzero(batch.num_children == 0).flatten()
    x_leaves = torch.randn(len(leaves), 5, dtype=torch.float64, requires_grad=True)
    output, (h_n, c_n) = model(x_leaves, batch, input_index=leaves)
    weighted_loss(output, h_n, c_n).backward()

    x_full = torch.zeros(case.num_nodes, 5, dtype=torch.float64)
    x_full[leaves] = x_leaves.detach()
    x_full.requires_grad_(True)
    params = reference_params(model)
    ref_output, (ref_h, ref_c) = reference.bidirectional_tree_lstm(
        params, cell, case.parents, x_full, case.positions, model.arity)
    weighted_loss(ref_output, ref_h, ref_c).backward()

    torch.testing.assert_close(output, ref_output)
    torch.testing.assert_close(h_n, ref_h)
    torch.testing.assert_close(c_n, ref_c)
    torch.testing.assert_close(x_leaves.grad, x_full.grad[leaves])
    assert_gradients_match(model, params)


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


# ---------------------------------------------------------------- gradcheck, batching, backends
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", ["childsum", "nary"])
def test_gradcheck(cell, backend):
    case = CASES["unary nodes"]
    model = make_model(case, cell, backend, num_layers=2, input_size=3, hidden_size=2)
    batch = TreeBatch.from_parents(case.parents, case.positions)
    x = torch.randn(case.num_nodes, 3, dtype=torch.float64, requires_grad=True)
    names = [name for name, _ in model.named_parameters()]
    assert set(names) == set(parameter_names(2))

    def run(x, *params):
        state = dict(zip(names, params))
        output, (h_n, c_n) = torch.func.functional_call(model, state, (x, batch))
        return output, h_n, c_n

    # DGL's per-call overhead (graph reversal, topological frontiers) makes the element-by-element
    # check take ten seconds; its fast mode checks a random projection of the same Jacobian.
    assert torch.autograd.gradcheck(run, (x, *model.parameters()), fast_mode=backend == "dgl")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", ["childsum", "nary"])
def test_batched_equals_one_tree_at_a_time(cell, backend):
    case = CASES["mixed forest"]
    model = make_model(case, cell, backend, num_layers=2)
    x = torch.randn(case.num_nodes, 5, dtype=torch.float64)
    output, (h_n, c_n) = model(x, TreeBatch.from_parents(case.parents))
    start = 0
    for t, parent in enumerate(case.parents):
        one_out, (one_h, one_c) = model(x[start:start + len(parent)],
                                        TreeBatch.from_parents([parent]))
        torch.testing.assert_close(output[start:start + len(parent)], one_out)
        torch.testing.assert_close(h_n[:, t], one_h[:, 0])
        torch.testing.assert_close(c_n[:, t], one_c[:, 0])
        start += len(parent)


def test_permuting_trees_permutes_h_n():
    case = CASES["mixed forest"]
    model = make_model(case, "nary", "native", num_layers=2)
    trees = [torch.randn(len(p), 5, dtype=torch.float64) for p in case.parents]
    _, (h_n, c_n) = model(torch.cat(trees), TreeBatch.from_parents(case.parents))
    perm = [3, 0, 4, 2, 1]
    _, (h_perm, c_perm) = model(torch.cat([trees[t] for t in perm]),
                                TreeBatch.from_parents([case.parents[t] for t in perm]))
    torch.testing.assert_close(h_perm, h_n[:, perm])
    torch.testing.assert_close(c_perm, c_n[:, perm])


@needs_dgl
@pytest.mark.parametrize("cell", ["childsum", "nary"])
def test_native_and_dgl_agree_on_random_forest(cell):
    from cases import random_tree

    parents = [random_tree(n, seed=n, max_children=2 if cell == "nary" else None)
               for n in (1, 3, 17, 30, 8)]
    torch.manual_seed(3)
    model = TreeLSTM(6, 5, num_layers=2, cell=cell, arity=2 if cell == "nary" else None,
                     bidirectional=True)
    batch = TreeBatch.from_parents(parents)
    x = torch.randn(batch.num_nodes, 6, requires_grad=True)
    results = {}
    for backend in ("native", "dgl"):
        model.backend = backend
        model.zero_grad()
        x.grad = None
        output, (h_n, c_n) = model(x, batch)
        weighted_loss(output, h_n, c_n).backward()
        results[backend] = [output, h_n, c_n, x.grad] + [p.grad.clone() for p in model.parameters()]
    for ours, theirs in zip(results["native"], results["dgl"]):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


@needs_dgl
def test_accepts_dgl_graph_directly():
    case = CASES["mixed forest"]
    batch = TreeBatch.from_parents(case.parents)
    model = make_model(case, "childsum", "native", num_layers=2)
    x = torch.randn(case.num_nodes, 5, dtype=torch.float64)
    expected, (expected_h, _) = model(x, batch)
    output, (h_n, _) = model(x, batch.to_dgl())
    torch.testing.assert_close(output, expected)
    torch.testing.assert_close(h_n, expected_h)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("cell", ["childsum", "nary"])
def test_device_matches_cpu_float64(device, cell):
    case = CASES["mixed forest"]
    model = make_model(case, cell, "native", num_layers=2)
    batch = TreeBatch.from_parents(case.parents)
    x = torch.randn(case.num_nodes, 5, dtype=torch.float64)
    expected, (expected_h, expected_c) = model(x, batch)
    moved = copy.deepcopy(model).to(device)
    output, (h_n, c_n) = moved(x.to(device), batch.to(device))
    assert output.device.type == device
    torch.testing.assert_close(output.cpu(), expected)
    torch.testing.assert_close(h_n.cpu(), expected_h)
    torch.testing.assert_close(c_n.cpu(), expected_c)


def test_dropout_between_layers_only_in_training():
    """dropout=1 zeroes layer 1's whole [h_up, h_down] input: layer 1 no longer sees x."""
    case = CASES["full binary"]
    batch = TreeBatch.from_parents(case.parents)
    model = make_model(case, "childsum", "native", num_layers=2)
    model.dropout = 1.0
    x, other = torch.randn(2, case.num_nodes, 5, dtype=torch.float64)
    model.eval()
    assert not torch.allclose(model(x, batch)[0], model(other, batch)[0])
    model.train()
    output, (h_n, _) = model(x, batch)
    other_output, (other_h, _) = model(other, batch)
    torch.testing.assert_close(output, other_output)
    torch.testing.assert_close(h_n[2:], other_h[2:])
    assert not torch.allclose(h_n[:2], other_h[:2])


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
