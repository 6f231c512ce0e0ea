"""TreeLSTM, one-way and bidirectional, against independent references: the float64 recursion,
nn.LSTM, gradcheck, the other executor, one tree at a time. What only the bidirectional model has
(its top-down pass against nn.LSTM, its parameters) is in test_bidirectional.py."""
import copy
import io
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from cases import CASES, chain
from conftest import BACKENDS, DEVICES, needs_dgl
from helpers import KINDS, assert_matches_reference, make_model, weighted_loss
from treelstm import TreeBatch, TreeLSTM

# Small batches run fastest on one thread, and much slower with two on a busy machine.
pytestmark = pytest.mark.usefixtures("one_thread")

CELL_CASES = [("childsum", name) for name in CASES] + [("nary", name) for name in CASES]
DIRECTIONS = [pytest.param(False, id="uni"), pytest.param(True, id="bi")]
# A one-layer one-way model, and a two-layer bidirectional one: layer 1 reads [h_up, h_down].
DIRECTIONS_AND_LAYERS = [pytest.param(False, 1, id="uni"), pytest.param(True, 2, id="bi")]


def parameter_names(num_layers, bidirectional):
    """Every parameter name, bias included, in nn.LSTM's order."""
    directions = ("", "_reverse") if bidirectional else ("",)
    return [f"{kind}_l{k}{direction}" for k in range(num_layers) for direction in directions
            for kind in KINDS]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bidirectional,num_layers,bias", [
    pytest.param(False, 1, True, id="uni-1-True"),
    pytest.param(False, 2, True, id="uni-2-True"),
    pytest.param(False, 1, False, id="uni-1-False"),
    pytest.param(True, 1, True, id="bi-1-True"),
    pytest.param(True, 2, True, id="bi-2-True"),
    pytest.param(True, 2, False, id="bi-2-False"),
])
@pytest.mark.parametrize("cell,case_name", CELL_CASES)
def test_matches_reference_outputs_and_gradients(cell, case_name, bidirectional, num_layers, bias,
                                                 backend):
    case = CASES[case_name]
    model = make_model(case, cell, backend, num_layers, bias, bidirectional=bidirectional)
    x = torch.randn(case.num_nodes, 5, dtype=torch.float64, requires_grad=True)
    output, h_n, c_n = assert_matches_reference(model, case, x)
    D = 2 if bidirectional else 1
    assert output.shape == (case.num_nodes, D * 4)
    assert h_n.shape == c_n.shape == (D * num_layers, len(case.parents), 4)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bidirectional,num_layers", DIRECTIONS_AND_LAYERS)
@pytest.mark.parametrize("cell", ["childsum", "nary"])
def test_input_index_equals_zero_input_elsewhere(cell, bidirectional, num_layers, backend):
    """input_index feeds layer 0's bottom-up pass only; the top-down pass reads h_up everywhere."""
    case = CASES["mixed forest"]
    model = make_model(case, cell, backend, num_layers, bidirectional=bidirectional)
    batch = TreeBatch.from_parents(case.parents, case.positions)
    leaves = torch.nonzero(batch.num_children == 0).flatten()
    x_leaves = torch.randn(len(leaves), 5, dtype=torch.float64, requires_grad=True)
    assert_matches_reference(model, case, x_leaves, input_index=leaves)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("num_layers", [1, 2])
def test_chain_equals_nn_lstm(num_layers, backend):
    torch.manual_seed(0)
    lstm = nn.LSTM(7, 6, num_layers=num_layers, dtype=torch.float64)
    model = TreeLSTM(7, 6, num_layers=num_layers, backend=backend, dtype=torch.float64)
    model.load_state_dict(lstm.state_dict())
    lengths = [9, 1, 4]
    batch = TreeBatch.from_parents([chain(n) for n in lengths])
    x = torch.randn(sum(lengths), 7, dtype=torch.float64)
    output, (h_n, c_n) = model(x, batch)
    start = 0
    for t, n in enumerate(lengths):
        lstm_out, (lstm_h, lstm_c) = lstm(x[start:start + n].unsqueeze(1))
        torch.testing.assert_close(output[start:start + n], lstm_out[:, 0], rtol=0, atol=1e-12)
        torch.testing.assert_close(h_n[:, t], lstm_h[:, 0], rtol=0, atol=1e-12)
        torch.testing.assert_close(c_n[:, t], lstm_c[:, 0], rtol=0, atol=1e-12)
        start += n


@pytest.mark.parametrize("backend", BACKENDS)
def test_nary_arity_one_equals_nn_lstm(backend):
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 5, num_layers=2, dtype=torch.float64)
    model = TreeLSTM(3, 5, num_layers=2, cell="nary", arity=1, backend=backend,
                     dtype=torch.float64)
    model.load_state_dict(lstm.state_dict())
    x = torch.randn(8, 3, dtype=torch.float64)
    output, (h_n, _) = model(x, TreeBatch.from_parents([chain(8)]))
    lstm_out, (lstm_h, _) = lstm(x.unsqueeze(1))
    torch.testing.assert_close(output, lstm_out[:, 0], rtol=0, atol=1e-12)
    torch.testing.assert_close(h_n[:, 0], lstm_h[:, 0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bidirectional", DIRECTIONS)
@pytest.mark.parametrize("cell", ["childsum", "nary"])
def test_gradcheck(cell, bidirectional, backend):
    case = CASES["unary nodes"]
    model = make_model(case, cell, backend, num_layers=2, input_size=3, hidden_size=2,
                       bidirectional=bidirectional)
    batch = TreeBatch.from_parents(case.parents, case.positions)
    x = torch.randn(case.num_nodes, 3, dtype=torch.float64, requires_grad=True)
    names = [name for name, _ in model.named_parameters()]
    assert set(names) == set(parameter_names(2, bidirectional))

    def run(x, *params):
        state = dict(zip(names, params))
        output, (h_n, c_n) = torch.func.functional_call(model, state, (x, batch))
        return output, h_n, c_n

    # DGL's per-call overhead (graph reversal, topological frontiers) makes the element-by-element
    # check of the bidirectional model take ten seconds; its fast mode checks a random projection
    # of the same Jacobian.
    fast_mode = bidirectional and backend == "dgl"
    assert torch.autograd.gradcheck(run, (x, *model.parameters()), fast_mode=fast_mode)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bidirectional", DIRECTIONS)
@pytest.mark.parametrize("cell", ["childsum", "nary"])
def test_batched_equals_one_tree_at_a_time(cell, bidirectional, backend):
    case = CASES["mixed forest"]
    model = make_model(case, cell, backend, num_layers=2, bidirectional=bidirectional)
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


@pytest.mark.parametrize("bidirectional,num_layers", DIRECTIONS_AND_LAYERS)
@pytest.mark.parametrize("cell", ["childsum", "nary"])
def test_permuting_trees_permutes_h_n(cell, bidirectional, num_layers):
    case = CASES["mixed forest"]
    model = make_model(case, cell, "native", num_layers, bidirectional=bidirectional)
    trees = [torch.randn(len(p), 5, dtype=torch.float64) for p in case.parents]
    _, (h_n, c_n) = model(torch.cat(trees), TreeBatch.from_parents(case.parents))
    perm = [3, 0, 4, 2, 1]
    _, (h_perm, c_perm) = model(torch.cat([trees[t] for t in perm]),
                                TreeBatch.from_parents([case.parents[t] for t in perm]))
    torch.testing.assert_close(h_perm, h_n[:, perm])
    torch.testing.assert_close(c_perm, c_n[:, perm])


@needs_dgl
@pytest.mark.parametrize("bidirectional", DIRECTIONS)
@pytest.mark.parametrize("cell", ["childsum", "nary"])
def test_native_and_dgl_agree_on_random_forest(cell, bidirectional):
    from cases import random_tree

    parents = [random_tree(n, seed=n, max_children=2 if cell == "nary" else None)
               for n in (1, 3, 17, 30, 8)]
    torch.manual_seed(3)
    model = TreeLSTM(6, 5, num_layers=2, cell=cell, arity=2 if cell == "nary" else None,
                     bidirectional=bidirectional)
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
@pytest.mark.parametrize("bidirectional,cell,num_layers", [
    pytest.param(False, "nary", 1, id="uni"), pytest.param(True, "childsum", 2, id="bi")])
def test_accepts_dgl_graph_directly(bidirectional, cell, num_layers):
    from treelstm.dgl import import_dgl

    dgl = import_dgl()
    case = CASES["mixed forest"]
    batch = TreeBatch.from_parents(case.parents)
    model = make_model(case, cell, "native", num_layers, bidirectional=bidirectional)
    x = torch.randn(case.num_nodes, 5, dtype=torch.float64)
    expected, (expected_h, _) = model(x, batch)
    output, (h_n, _) = model(x, batch.to_dgl())
    torch.testing.assert_close(output, expected)
    torch.testing.assert_close(h_n, expected_h)
    # an unbatched graph is one tree
    single = dgl.graph((torch.tensor([1, 2]), torch.tensor([0, 0])))
    output, (h_n, _) = model(torch.randn(3, 5, dtype=torch.float64), single)
    D = 2 if bidirectional else 1
    assert output.shape == (3, D * 4) and h_n.shape == (D * num_layers, 1, 4)


def test_twenty_thousand_node_chain_runs_without_recursion():
    model = TreeLSTM(2, 3)
    batch = TreeBatch.from_parents([chain(20_000)])
    assert batch.num_levels == 20_000
    with torch.no_grad():
        output, (h_n, _) = model(torch.randn(20_000, 2), batch)
    assert output.shape == (20_000, 3)
    torch.testing.assert_close(h_n[0, 0], output[-1])


@pytest.mark.parametrize("bidirectional", DIRECTIONS)
def test_dropout_between_layers_only_in_training(bidirectional):
    """Dropout on layer 1's input (a bidirectional model's whole [h_up, h_down]), in training only:
    a fresh mask each call, and dropout=1 cuts layers 1 and up off from x."""
    case = CASES["full binary"]
    batch = TreeBatch.from_parents(case.parents)
    model = make_model(case, "childsum", "native", num_layers=2, bidirectional=bidirectional)
    model.dropout = 0.5
    x, other = torch.randn(2, case.num_nodes, 5, dtype=torch.float64)
    model.eval()
    torch.testing.assert_close(model(x, batch)[0], model(x, batch)[0])
    model.train()
    torch.manual_seed(0)
    first = model(x, batch)[0]
    torch.manual_seed(1)
    assert not torch.allclose(first, model(x, batch)[0])

    model.dropout = 1.0
    model.eval()
    assert not torch.allclose(model(x, batch)[0], model(other, batch)[0])
    model.train()
    output, (h_n, _) = model(x, batch)
    other_output, (other_h, _) = model(other, batch)
    D = 2 if bidirectional else 1  # rows [:D] of h_n are layer 0's
    torch.testing.assert_close(output, other_output)
    torch.testing.assert_close(h_n[D:], other_h[D:])
    assert not torch.allclose(h_n[:D], other_h[:D])


def test_state_dict_round_trip_repr_pickle_and_dtype():
    torch.manual_seed(0)
    model = TreeLSTM(4, 3, num_layers=2, cell="nary", arity=2, dropout=0.1)
    assert repr(model) == "TreeLSTM(4, 3, num_layers=2, cell='nary', arity=2, dropout=0.1)"
    assert [name for name, _ in model.named_parameters()] == [
        f"{kind}_l{k}" for k in range(2) for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    assert model.weight_hh_l0.shape == (5 * 3, 2 * 3) and model.bias_hh_l1.shape == (15,)
    bound = 1 / 3 ** 0.5
    assert all(p.abs().max() <= bound for p in model.parameters())

    batch = TreeBatch.from_parents([[-1, 0, 0, 1]])
    x = torch.randn(4, 4)
    model.eval()
    expected = model(x, batch)[0]

    clone = TreeLSTM(4, 3, num_layers=2, cell="nary", arity=2, dropout=0.1).eval()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    clone.load_state_dict(torch.load(buffer, weights_only=True))
    torch.testing.assert_close(clone(x, batch)[0], expected)

    unpickled = pickle.loads(pickle.dumps(model))
    torch.testing.assert_close(unpickled(x, batch)[0], expected)
    torch.testing.assert_close(copy.deepcopy(model)(x, batch)[0], expected)

    double = model.to(torch.float64)
    assert double.weight_ih_l0.dtype == torch.float64
    assert double(x.double(), batch)[0].dtype == torch.float64


def test_autocast_bfloat16_close_to_float32():
    case = CASES["mixed forest"]
    torch.manual_seed(0)
    model = TreeLSTM(5, 8, num_layers=2, cell="nary", arity=2)
    batch = TreeBatch.from_parents(case.parents)
    x = torch.randn(case.num_nodes, 5)
    expected = model(x, batch)[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = model(x, batch)[0]
    assert output.dtype in (torch.bfloat16, torch.float32)
    torch.testing.assert_close(output.float(), expected, rtol=0.05, atol=0.03)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("bidirectional", DIRECTIONS)
@pytest.mark.parametrize("cell", ["childsum", "nary"])
def test_device_matches_cpu_float64(device, bidirectional, cell):
    case = CASES["mixed forest"]
    model = make_model(case, cell, "native", num_layers=2, bidirectional=bidirectional)
    batch = TreeBatch.from_parents(case.parents)
    x = torch.randn(case.num_nodes, 5, dtype=torch.float64)
    expected, (expected_h, expected_c) = model(x, batch)
    moved = copy.deepcopy(model).to(device)
    output, (h_n, c_n) = moved(x.to(device), batch.to(device))
    assert output.device.type == device
    torch.testing.assert_close(output.cpu(), expected)
    torch.testing.assert_close(h_n.cpu(), expected_h)
    torch.testing.assert_close(c_n.cpu(), expected_c)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs,match", [
    (dict(cell="binary"), "cell must be one of"),
    (dict(cell="nary"), "cell='nary' needs arity"),
    (dict(cell="nary", arity=0), "positive integer"),
    (dict(cell="childsum", arity=2), "arity is for cell='nary' only"),
    (dict(backend="cudnn"), "backend must be one of"),
    (dict(dropout=1.5), "dropout should be a number in range"),
    (dict(num_layers=0), "num_layers must be a positive integer"),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TreeLSTM(3, 2, **kwargs)


def test_bad_forward_input():
    model = TreeLSTM(3, 2, cell="nary", arity=2)
    batch = TreeBatch.from_parents([[-1, 0, 0], [-1]])
    with pytest.raises(ValueError, match=r"one row per node \(4 rows\), got 5 rows"):
        model(torch.randn(5, 3), batch)
    with pytest.raises(ValueError, match="Expected input with 3 features, got 4"):
        model(torch.randn(4, 4), batch)
    with pytest.raises(ValueError, match="Expected input to be 2D"):
        model(torch.randn(4), batch)
    with pytest.raises(ValueError, match=r"input_index holds node 4; expected node ids in \[0, 4\)"):
        model(torch.randn(2, 3), batch, input_index=[1, 4])
    with pytest.raises(ValueError, match="input_index holds node -1"):
        model(torch.randn(2, 3), batch, input_index=[-1, 2])
    with pytest.raises(ValueError, match=r"Expected input_index of shape \[2\]"):
        model(torch.randn(2, 3), batch, input_index=[1, 2, 3])
    with pytest.raises(ValueError, match="more than once"):
        model(torch.randn(2, 3), batch, input_index=[1, 1])
    with pytest.raises(TypeError, match="integer node ids"):
        model(torch.randn(2, 3), batch, input_index=[1.0, 2.0])
    with pytest.raises(TypeError, match="TreeBatch or a DGL graph"):
        model(torch.randn(4, 3), [[-1, 0, 0], [-1]])
    star = TreeBatch.from_parents([[-1, 0, 0, 0]])
    with pytest.raises(ValueError, match="tree 0, node 0 has 3 children; expected at most arity=2"):
        model(torch.randn(4, 3), star)
    wide_slot = TreeBatch.from_parents([[-1, 0]], positions=[[-1, 2]])
    with pytest.raises(ValueError, match=r"node 1 is in slot 2; expected a slot in \[0, 2\)"):
        model(torch.randn(2, 3), wide_slot)


# Like nn.LSTM (a ValueError "input must have the type torch.float64, got type torch.float32"),
# a floating-point input of another dtype than the parameters' is a ValueError, except under
# autocast, which picks the compute dtype; non-floating input is a TypeError, autocast or not.
@pytest.mark.parametrize("backend", BACKENDS)
def test_input_dtype_must_match_the_parameters(backend):
    model = TreeLSTM(3, 2, backend=backend, dtype=torch.float64)
    batch = TreeBatch.from_parents([[-1, 0, 0]])
    expected = r"Expected input of the parameters' dtype torch.float64, got torch.float32"
    with pytest.raises(ValueError, match=expected):
        model(torch.randn(3, 3), batch)  # computed silently in float32 before
    with pytest.raises(ValueError, match=expected):  # the input_rows table is the input too
        model(torch.randn(7, 3), batch, [1, 2], [6, 0])
    with torch.no_grad(), pytest.raises(ValueError, match=expected):
        model.cache_projections()(torch.randn(7, 3), batch, [1, 2], [6, 0])
    with pytest.raises(ValueError, match="parameters' dtype torch.float32, got torch.bfloat16"):
        TreeLSTM(3, 2, backend=backend)(torch.randn(3, 3, dtype=torch.bfloat16), batch)


@pytest.mark.parametrize("dtype", [torch.complex64, torch.int64, torch.bool])
def test_non_floating_input_is_a_type_error(dtype):
    model = TreeLSTM(3, 2)
    batch = TreeBatch.from_parents([[-1, 0, 0]])
    x = torch.ones(3, 3, dtype=dtype)
    match = (r"Expected floating-point input \(the parameters are torch.float32\), got dtype "
             rf"{dtype}")
    with pytest.raises(TypeError, match=match):
        model(x, batch)
    with torch.autocast("cpu", dtype=torch.bfloat16), pytest.raises(TypeError, match=match):
        model(x, batch)


def test_autocast_skips_the_dtype_check():
    """Predictor(dtype="bf16") runs float32 weights under autocast: float32 and bfloat16 input,
    whole-node input and an input_rows table, all work."""
    torch.manual_seed(0)
    model = TreeLSTM(3, 4, cell="nary", arity=2)
    batch = TreeBatch.from_parents([[-1, 0, 0], [1, -1]])
    x, table = torch.randn(5, 3), torch.randn(9, 3)
    expected = model(x, batch)[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for given in (x, x.bfloat16()):
            torch.testing.assert_close(model(given, batch)[0].float(), expected, rtol=0.05,
                                       atol=0.03)
        with torch.no_grad():
            model.cache_projections()(table, batch, [1, 2, 3], [8, 0, 4])
            model(table.bfloat16(), batch, [1, 2, 3], [8, 0, 4])


def test_input_on_another_device_than_the_parameters():
    model = TreeLSTM(3, 2, device="meta")
    with pytest.raises(ValueError, match="Expected input on the parameters' device meta, got cpu"):
        model(torch.randn(3, 3), TreeBatch.from_parents([[-1, 0, 0]]))


@pytest.mark.parametrize("empty", [[], (), range(0), np.array([])],
                         ids=["list", "tuple", "range", "float64 ndarray"])
def test_empty_input_index_is_no_input(empty):
    model = make_model(CASES["mixed forest"], "childsum", "native")
    batch = TreeBatch.from_parents(CASES["mixed forest"].parents)
    x = torch.zeros(batch.num_nodes, 5, dtype=torch.float64)
    expected = model(x, batch)[0]
    torch.testing.assert_close(model(x[:0], batch, input_index=empty)[0], expected)
    table = torch.randn(3, 5, dtype=torch.float64)
    torch.testing.assert_close(model(table, batch, empty, empty)[0], expected)


def test_initial_state_as_third_argument_says_there_is_none():
    """nn.LSTM's habit, model(x, batch, (h_0, c_0)): TreeLSTM has no initial state."""
    model = TreeLSTM(3, 2)
    batch = TreeBatch.from_parents([[-1, 0, 0]])
    x, h_0 = torch.randn(3, 3), torch.zeros(1, 1, 2)
    no_state = (r"TreeLSTM: takes no initial state \(h_0, c_0\), unlike nn.LSTM: states start "
                "at zero")
    with pytest.raises(TypeError, match=rf"{no_state}.*the third argument is input_index \(the "
                                        r"node ids that receive input rows\), got a tuple of 2 "
                                        "tensors"):
        model(x, batch, (h_0, h_0))
    with pytest.raises(TypeError, match=rf"{no_state}.* got a list of 2 tensors"):
        model(x, batch, [h_0, h_0])
    with pytest.raises(TypeError, match=rf"{no_state}.* got a torch.float32 tensor of shape"):
        model(x, batch, h_0)
    with pytest.raises(TypeError, match=rf"{no_state}.*the fourth argument is input_rows"):
        model(x, batch, [0, 1], (h_0, h_0))


@pytest.mark.parametrize("index,error,match", [
    ([2**70, 0], ValueError, rf"input_index holds node {2**70}; expected node ids in \[0, 3\)"),
    ([-2**70, 0], ValueError, rf"input_index holds node {-2**70}; expected node ids in \[0, 3\)"),
    (torch.tensor([2**64 - 1, 0], dtype=torch.uint64), ValueError,  # not wrapped to -1
     rf"input_index holds node {2**64 - 1}; expected node ids in \[0, 3\)"),
    (np.array([2**64 - 1, 0], dtype=np.uint64), ValueError, rf"holds node {2**64 - 1};"),
    ([1, True], TypeError, r"input_index must hold integer node ids; got True \(bool\)"),
    ([np.True_, 0], TypeError, r"got np.True_ \(bool\)"),
    (np.array([1.0, 0.0]), TypeError, "input_index must hold integer node ids; got dtype "
                                      "torch.float64"),
    ("ab", TypeError, "input_index must be a 1-D tensor or list of integer node ids; got str"),
    ([[0], [1, 2]], TypeError, "input_index must be a 1-D tensor or list of integer node ids; "
                               "got list"),
    (np.array([object(), 1]), TypeError, "got an array of dtype object"),
])
def test_bad_input_index_values(index, error, match):
    model = TreeLSTM(3, 2)
    batch = TreeBatch.from_parents([[-1, 0, 0]])
    with pytest.raises(error, match=match):
        model(torch.randn(2, 3), batch, index)


def test_input_index_of_any_integer_dtype():
    torch.manual_seed(0)
    model = TreeLSTM(3, 2)
    batch = TreeBatch.from_parents([[-1, 0, 0]])
    x = torch.randn(2, 3)
    expected = model(x, batch, [2, 0])[0]
    for index in (np.array([2, 0], dtype=np.uint64), torch.tensor([2, 0], dtype=torch.uint8),
                  (np.int32(2), 0), [torch.tensor(2), torch.tensor(0)], range(2, -1, -2)):
        torch.testing.assert_close(model(x, batch, index)[0], expected)
    with pytest.raises(ValueError, match=rf"input_rows holds row {2**70}; expected rows of input, "
                                         r"in \[0, 2\)"):
        model(x, batch, [2, 0], [2**70, 0])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (2, False), (2, True)])
@pytest.mark.parametrize("cell", ["childsum", "nary"])
@pytest.mark.parametrize("grad", [False, True])
def test_final_states_equal_forwards_h_n_and_c_n(grad, cell, num_layers, bidirectional, backend):
    case = CASES["mixed forest"]
    torch.manual_seed(0)
    model = TreeLSTM(5, 4, num_layers=num_layers, cell=cell,
                     arity=case.arity if cell == "nary" else None, backend=backend,
                     bidirectional=bidirectional, dtype=torch.float64)
    batch = TreeBatch.from_parents(case.parents, case.positions)
    x = torch.randn(case.num_nodes, 5, dtype=torch.float64, requires_grad=grad)
    with torch.set_grad_enabled(grad):
        _, (h_n, c_n) = model(x, batch)
        h_alone, c_alone = model.final_states(x, batch)
    torch.testing.assert_close(h_alone, h_n, rtol=0, atol=1e-12)
    torch.testing.assert_close(c_alone, c_n, rtol=0, atol=1e-12)
    if grad:  # and the gradients through them are forward's
        (grad_alone,) = torch.autograd.grad((h_alone.sum() + 2 * c_alone.sum()), x)
        (grad_forward,) = torch.autograd.grad((h_n.sum() + 2 * c_n.sum()), x)
        torch.testing.assert_close(grad_alone, grad_forward, rtol=0, atol=1e-12)
