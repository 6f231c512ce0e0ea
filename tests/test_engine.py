"""The native engine's own entry point (engine.layer) and its hand-written backward, against the
float64 reference, gradcheck and autograd through functional; a 20,000-node chain and a
5,000-child star forward and backward through TreeLSTM, against nn.LSTM and the reference."""
import sys

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import reference
from cases import CASES, caterpillar, full_binary, random_tree
from conftest import BACKENDS
from treelstm import TreeBatch, TreeLSTM, engine, functional
from treelstm.engine import kernels

CELLS = ["childsum", "nary"]


def make_params(case, cell, bias=True, input_size=5, hidden_size=4, num_layers=1, seed=0):
    torch.manual_seed(seed)
    model = TreeLSTM(input_size, hidden_size, num_layers=num_layers, cell=cell,
                     arity=case.arity if cell == "nary" else None, bias=bias,
                     dtype=torch.float64)
    return model, [tuple(None if p is None else p.detach().clone().requires_grad_(True)
                         for p in model.layer_parameters(k)) for k in range(num_layers)]


def run_layers(batch, x, params, cell, arity, input_index=None):
    """Stacked engine.layer calls, the way TreeLSTM stacks layers (no dropout)."""
    h_n, c_n = [], []
    for k, (weight_ih, weight_hh, bias_ih, bias_hh) in enumerate(params):
        x, c = engine.layer(batch, x, weight_ih, weight_hh, bias_ih, bias_hh, cell, arity,
                            input_index if k == 0 else None)
        h_n.append(x[batch.roots])
        c_n.append(c[batch.roots])
    return x, torch.stack(h_n), torch.stack(c_n)


def input_nodes(batch, which):
    if which == "leaves":
        return torch.nonzero(batch.num_children == 0).flatten()
    if which == "leaves and some internal":  # the 4H path with rows that get no input
        internal = torch.nonzero(batch.num_children > 0).flatten()
        return torch.cat([torch.nonzero(batch.num_children == 0).flatten(), internal[::2]])
    if which == "some leaves":
        return torch.nonzero(batch.num_children == 0).flatten()[1::2]
    return None  # every node


def weighted_sum(*tensors, seed=1):
    g = torch.Generator().manual_seed(seed)
    return sum((t * torch.randn(t.shape, generator=g, dtype=t.dtype)).sum() for t in tensors)


@pytest.mark.parametrize("which", ["leaves", "leaves and some internal", "some leaves", "all"])
@pytest.mark.parametrize("num_layers,bias", [(1, True), (2, True), (1, False)])
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("case_name", ["mixed forest", "unary nodes", "random", "single node"])
def test_layer_matches_reference(case_name, cell, num_layers, bias, which):
    case = CASES[case_name]
    model, params = make_params(case, cell, bias, num_layers=num_layers)
    batch = TreeBatch.from_parents(case.parents, case.positions)
    nodes = input_nodes(batch, which)
    num_rows = batch.num_nodes if nodes is None else len(nodes)
    x = torch.randn(num_rows, 5, dtype=torch.float64, requires_grad=True)
    output, h_n, c_n = run_layers(batch, x, params, cell, model.arity, nodes)
    weighted_sum(output, h_n, c_n).backward()

    ref_params = [tuple(None if p is None else p.detach().clone().requires_grad_(True)
                        for p in layer) for layer in params]
    x_full = torch.zeros(batch.num_nodes, 5, dtype=torch.float64)
    x_full[slice(None) if nodes is None else nodes] = x.detach()
    x_full.requires_grad_(True)
    ref_output, (ref_h, ref_c) = reference.tree_lstm(ref_params, cell, case.parents, x_full,
                                                     case.positions, model.arity)
    weighted_sum(ref_output, ref_h, ref_c).backward()

    torch.testing.assert_close(output, ref_output)
    torch.testing.assert_close(h_n, ref_h)
    torch.testing.assert_close(c_n, ref_c)
    torch.testing.assert_close(x.grad, x_full.grad[slice(None) if nodes is None else nodes])
    for ours, theirs in zip(params, ref_params):
        for p, q in zip(ours, theirs):
            if p is not None:
                expected = torch.zeros_like(q) if q.grad is None else q.grad
                torch.testing.assert_close(p.grad, expected)


@pytest.mark.parametrize("which", ["leaves", "leaves and some internal", "all"])
@pytest.mark.parametrize("cell", CELLS)
def test_layer_gradcheck(cell, which):
    """The hand-written backward, on a tree with empty N-ary slots (unary nodes)."""
    case = CASES["unary nodes"]
    model, params = make_params(case, cell, input_size=3, hidden_size=2, num_layers=2)
    batch = TreeBatch.from_parents(case.parents, case.positions)
    nodes = input_nodes(batch, which)
    x = torch.randn(batch.num_nodes if nodes is None else len(nodes), 3, dtype=torch.float64,
                    requires_grad=True)
    flat = [p for layer in params for p in layer]

    def run(x, *flat):
        layers = [tuple(flat[4 * k:4 * k + 4]) for k in range(2)]
        return run_layers(batch, x, layers, cell, model.arity, nodes)

    assert torch.autograd.gradcheck(run, (x, *flat))


@pytest.mark.parametrize("cell", CELLS)
def test_layer_with_input_everywhere_gradcheck_and_autograd_through_functional(cell):
    """engine.layer with input at every node (the 4H input rows; ``input_size = 4H`` and a
    random ``W_ih``, so the input gates are any) against the same math recorded by autograd,
    one level at a time through the dense cells of functional."""
    case = CASES["mixed forest"]
    model, (params,) = make_params(case, cell, input_size=12, hidden_size=3)
    arity = model.arity
    batch = TreeBatch.from_parents(case.parents, case.positions)
    x = torch.randn(batch.num_nodes, 12, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda *args: engine.layer(batch, *args, cell=cell, arity=arity), (x, *params))

    h, c = engine.layer(batch, x, *params, cell, arity)
    weight_ih, weight_hh, bias_ih, bias_hh = params
    x_gates = functional.input_gates(x, weight_ih, bias_ih)
    parent, position = batch.parent.tolist(), batch.position.tolist()
    children = {v: [u for u, p in enumerate(parent) if p == v] for v in range(batch.num_nodes)}
    width = arity if cell == "nary" else batch.max_children
    zero = torch.zeros(3, dtype=torch.float64)
    h_all, c_all = [None] * batch.num_nodes, [None] * batch.num_nodes

    def padded(states, v):  # N-ary: by slot; Child-Sum: any order, zero padding
        row = [zero] * width
        for rank, u in enumerate(children[v]):
            row[position[u] if cell == "nary" else rank] = states[u]
        return torch.stack(row)

    order = batch.level_order
    for k in range(batch.num_levels):
        level_nodes = order.nodes[order.bounds[k]:order.bounds[k + 1]]
        nodes = level_nodes.tolist()
        child_h = child_c = None
        if k > 0:
            child_h = torch.stack([padded(h_all, v) for v in nodes])
            child_c = torch.stack([padded(c_all, v) for v in nodes])
        if cell == "nary":
            level_h, level_c = functional.nary_cell(x_gates[level_nodes], child_h, child_c,
                                                    weight_hh, bias_hh, arity)
        else:
            level_h, level_c = functional.childsum_cell(x_gates[level_nodes], child_h, child_c,
                                                        weight_hh, bias_hh)
        for row, v in enumerate(nodes):
            h_all[v], c_all[v] = level_h[row], level_c[row]
    expected_h, expected_c = torch.stack(h_all), torch.stack(c_all)
    torch.testing.assert_close(h, expected_h)
    torch.testing.assert_close(c, expected_c)
    grads = torch.autograd.grad(weighted_sum(h, c), (x, *params))
    expected = torch.autograd.grad(weighted_sum(expected_h, expected_c), (x, *params))
    for ours, theirs in zip(grads, expected):
        torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("cell", CELLS)
def test_no_grad_and_grad_paths_agree(cell):
    case = CASES["mixed forest"]
    model, params = make_params(case, cell, num_layers=2)
    batch = TreeBatch.from_parents(case.parents, case.positions)
    leaves = input_nodes(batch, "leaves")
    x = torch.randn(len(leaves), 5, dtype=torch.float64)
    with torch.no_grad():
        expected = run_layers(batch, x, params, cell, model.arity, leaves)
    for ours, theirs in zip(run_layers(batch, x, params, cell, model.arity, leaves), expected):
        assert ours.requires_grad
        torch.testing.assert_close(ours.detach(), theirs)


@pytest.mark.parametrize("num_trees", [1, 40])
def test_nary_inference_small_and_padded_batches_match_the_autograd_path(num_trees):
    """The N-ary inference path pads U only from PAD_FROM inner nodes on (40 random trees of 39
    nodes, at most two children each: > 256 inner nodes); both sizes against the autograd path,
    which always pads, with leaves reading rows of a table (input_rows) as a classifier's do."""
    parents = [random_tree(39, seed=s, max_children=2) for s in range(num_trees)]
    batch = TreeBatch.from_parents(parents)
    inner = int((batch.num_children > 0).sum())
    assert (inner >= engine.steps.PAD_FROM) == (num_trees > 1)
    model = TreeLSTM(6, 5, cell="nary", arity=2, dtype=torch.float64)
    leaves = torch.nonzero(batch.num_children == 0).flatten()
    table = torch.randn(30, 6, dtype=torch.float64)
    rows = torch.randint(0, 30, (len(leaves),), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        inferred = model(table, batch, input_index=leaves, input_rows=rows)
    trained = model(table, batch, input_index=leaves, input_rows=rows)
    torch.testing.assert_close(inferred[0], trained[0].detach())
    torch.testing.assert_close(inferred[1][1], trained[1][1].detach())


@pytest.mark.parametrize("which", ["leaves", "leaves and some internal", "every node"])
@pytest.mark.parametrize("bias", [True, False])
def test_childsum_inference_matches_the_recursion(bias, which):
    """The Child-Sum inference loop (no autograd) against the float64 per-node recursion: wide
    nodes (up to 6 children), a chain, a single node, a full binary tree, with and without
    biases; input at the leaves only (read from a table through input_rows, as a classifier's),
    at some internal nodes too, or at every node (dependency trees)."""
    parents = [random_tree(30, seed=s, max_children=6) for s in range(5)]
    parents += [[1, 2, 3, -1], [-1], full_binary(3)]
    batch = TreeBatch.from_parents(parents)
    torch.manual_seed(0)
    model = TreeLSTM(6, 5, cell="childsum", bias=bias, dtype=torch.float64)
    nodes = input_nodes(batch, which)
    x = torch.zeros(batch.num_nodes, 6, dtype=torch.float64)
    with torch.no_grad():
        if which == "leaves":
            table = torch.randn(30, 6, dtype=torch.float64)
            rows = torch.randint(0, 30, (len(nodes),), generator=torch.Generator().manual_seed(1))
            output, (h_n, c_n) = model(table, batch, input_index=nodes, input_rows=rows)
            x[nodes] = table[rows]
        else:
            x[nodes if nodes is not None else slice(None)] = torch.randn(
                batch.num_nodes if nodes is None else len(nodes), 6, dtype=torch.float64)
            given = x if nodes is None else x[nodes]
            output, (h_n, c_n) = model(given, batch, input_index=nodes)
    params = [tuple(model.layer_parameters(0))]
    expected, (expected_h, expected_c) = reference.tree_lstm(params, "childsum", parents, x)
    torch.testing.assert_close(output, expected)
    torch.testing.assert_close(h_n, expected_h)
    torch.testing.assert_close(c_n, expected_c)


@pytest.mark.parametrize("cell", CELLS)
def test_few_input_rows_projected_through_all_of_w_ih_agree(cell, monkeypatch):
    """Up to FEW_ROWS leaf-only input rows are projected by all of W_ih and the i | g | o
    columns cut (their gradients padded with zero f columns), and weight gradients of up to
    FEW_ROWS rows take their product with a copied transpose: the same outputs and gradients
    as the paths for many rows, forward and backward."""
    parents = [random_tree(15, seed=s, max_children=2) for s in range(4)]
    batch = TreeBatch.from_parents(parents)
    leaves = torch.nonzero(batch.num_children == 0).flatten()
    assert 0 < len(leaves) <= engine.steps.FEW_ROWS
    model = TreeLSTM(6, 5, cell=cell, arity=2 if cell == "nary" else None, dtype=torch.float64)
    x = torch.randn(len(leaves), 6, dtype=torch.float64)

    def run():
        x.grad = None
        model.zero_grad(set_to_none=True)
        output, (h_n, c_n) = model(x.requires_grad_(), batch, input_index=leaves)
        weighted_sum(output, h_n, c_n).backward()
        return [output.detach(), x.grad, *(p.grad for p in model.parameters())]

    few = run()
    for module in ("layer", "steps"):
        monkeypatch.setattr(sys.modules[f"treelstm.engine.{module}"], "FEW_ROWS", 0)
    for ours, theirs in zip(few, run(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)

def test_nary_training_padded_and_unpadded_agree(monkeypatch):
    """Training pads U (forward and backward) only from PAD_FROM inner nodes on: a batch over
    that size, run both ways (PAD_FROM raised past it), gives the same outputs and gradients."""
    parents = [random_tree(39, seed=s, max_children=2) for s in range(40)]
    batch = TreeBatch.from_parents(parents)
    model = TreeLSTM(6, 5, cell="nary", arity=2, dtype=torch.float64)
    leaves = torch.nonzero(batch.num_children == 0).flatten()
    table = torch.randn(30, 6, dtype=torch.float64, requires_grad=True)
    rows = torch.randint(0, 30, (len(leaves),), generator=torch.Generator().manual_seed(0))

    def run():
        output, (h, c) = model(table, batch, input_index=leaves, input_rows=rows)
        loss = weighted_sum(output, h, c)
        return [output, h, c, *torch.autograd.grad(loss, [table, *model.parameters()])]

    padded = run()
    monkeypatch.setattr(engine.nary, "PAD_FROM", 10 ** 9)
    for ours, theirs in zip(run(), padded):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
def test_layer_autocast_bfloat16(cell):
    case = CASES["mixed forest"]
    model, params = make_params(case, cell, hidden_size=8, num_layers=2)
    params = [tuple(p.detach().float().requires_grad_(True) for p in layer) for layer in params]
    batch = TreeBatch.from_parents(case.parents, case.positions)
    leaves = input_nodes(batch, "leaves")
    x = torch.randn(len(leaves), 5)
    expected = run_layers(batch, x, params, cell, model.arity, leaves)[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = run_layers(batch, x, params, cell, model.arity, leaves)[0]
    assert output.dtype == torch.bfloat16
    torch.testing.assert_close(output.float(), expected, rtol=0.05, atol=0.03)
    output.float().sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 and p.grad.isfinite().all()
               for layer in params for p in layer)


# ---------------------------------------- extreme shapes: a 20,000-node chain, a 5,000-child star
@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_deep_chain_forward_backward_equals_nn_lstm():
    """A 20,000-node chain (deeper than any recursion limit): no RecursionError, and the
    result is nn.LSTM's over the 20,000 steps, gradients included."""
    n = 20_000
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(4, 6)
    model = TreeLSTM(4, 6, cell="childsum")
    model.load_state_dict({f"{k}": v for k, v in lstm.state_dict().items()})
    batch = TreeBatch.from_parents([list(range(1, n)) + [-1]])  # node t's parent is t + 1
    x = torch.randn(n, 4, requires_grad=True)
    output, (h_n, c_n) = model(x, batch)
    (h_n.sum() + c_n.sum()).backward()
    x_lstm = x.detach().clone().requires_grad_(True)
    expected, (h_lstm, c_lstm) = lstm(x_lstm.unsqueeze(1))
    (h_lstm.sum() + c_lstm.sum()).backward()
    torch.testing.assert_close(output, expected.squeeze(1), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(h_n, h_lstm, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(x.grad, x_lstm.grad, atol=1e-6, rtol=1e-4)
    assert x.grad[-1].abs().sum() > 0


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("backend", BACKENDS)
def test_wide_star_forward_backward_equals_reference(backend):
    """One root with 5,000 children (Child-Sum): forward and backward, against the float64
    per-node reference."""
    width = 5_000
    torch.manual_seed(1)
    model = TreeLSTM(3, 4, cell="childsum", backend=backend, dtype=torch.float64)
    batch = TreeBatch.from_parents([[-1] + [0] * width])
    x = torch.randn(width + 1, 3, dtype=torch.float64, requires_grad=True)
    _, (h_n, c_n) = model(x, batch)
    (h_n.sum() + c_n.sum()).backward()

    params = tuple(p.detach() for p in model.layer_parameters(0))
    x_ref = x.detach().clone().requires_grad_(True)
    leaves = [reference.childsum_node(params, x_ref[v], []) for v in range(1, width + 1)]
    h_root, c_root = reference.childsum_node(params, x_ref[0], leaves)
    (h_root.sum() + c_root.sum()).backward()
    torch.testing.assert_close(h_n[0, 0], h_root)
    torch.testing.assert_close(c_n[0, 0], c_root)
    torch.testing.assert_close(x.grad, x_ref.grad)


# ------------------------------------------------------------------ no host syncs per level
class _SyncRecorder(TorchDispatchMode):
    """Records the ops that make a CUDA stream wait for the host (or the host for the device):
    reading a value back (``item``, ``int()``, ``bool()``), ops whose output size depends on the
    data (``nonzero``, ``unique``, boolean masks), ``equal``; and, patched in, the Python calls
    ``tolist``/``numpy``/``cpu``. On CPU they cost nothing, so this is how a CPU machine checks
    that the CUDA path keeps them out of the level loops."""

    SYNCING = ("_local_scalar_dense", "nonzero", "equal", "_unique", "unique_", "masked_select",
               "is_nonzero", "repeat_interleave")

    def __init__(self, monkeypatch) -> None:
        super().__init__()
        self.events: list[str] = []
        for name in ("tolist", "numpy", "cpu", "item"):
            original = getattr(torch.Tensor, name)

            def recorded(tensor, *args, _name=name, _original=original, **kwargs):
                self.events.append(f"Tensor.{_name}")
                return _original(tensor, *args, **kwargs)
            monkeypatch.setattr(torch.Tensor, name, recorded)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        if any(op in name for op in self.SYNCING) or (
                "index.Tensor" in name and any(isinstance(i, torch.Tensor) and i.dtype == torch.bool
                                               for i in args[1] if i is not None)):
            self.events.append(name)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("mode", ["inference", "kept projections", "training"])
@pytest.mark.parametrize("cell", CELLS)
def test_host_syncs_do_not_grow_with_the_number_of_levels(cell, mode, bidirectional,
                                                          monkeypatch):
    """A balanced tree (5 levels) and a caterpillar (16 levels) of 16 leaves each, through a
    classifier-style call (a table read through input_rows): the same, small number of sync
    points for both, so none is inside a level loop (forward, backward, top-down). The torch
    ops run (kernels.use(False)): they are the CUDA path; the C steps are CPU-only."""
    def syncs(parent):
        torch.manual_seed(0)
        model = TreeLSTM(6, 5, cell=cell, arity=2 if cell == "nary" else None,
                         bidirectional=bidirectional)
        model.cache_projections(mode == "kept projections")
        batch = TreeBatch.from_parents([parent])
        batch.level_order, batch.depth_order  # the schedule is built with the batch, once
        leaves = torch.nonzero(batch.num_children == 0).flatten()
        table = torch.randn(20, 6, requires_grad=mode == "training")
        rows = torch.arange(len(leaves)) % 20
        with _SyncRecorder(monkeypatch) as recorder, kernels.use(False):
            with torch.set_grad_enabled(mode == "training"):
                output, (h, c) = model(table, batch, input_index=leaves, input_rows=rows)
                if mode == "training":
                    (output.sum() + h.sum() + c.sum()).backward()
        monkeypatch.undo()
        return recorder.events

    shallow, deep = syncs(full_binary(4)), syncs(caterpillar(16))
    assert TreeBatch.from_parents([caterpillar(16)]).num_levels == 16
    assert shallow == deep, f"syncs: balanced {shallow}, caterpillar {deep}"
    assert len(deep) <= 12, deep


@pytest.mark.parametrize("arity,bias", [(2, True), (3, False)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_inference_leaf_states_per_distinct_word_match_the_autograd_path(arity, bias, dtype):
    """Without autograd, an N-ary layer reading a table computes each distinct word's leaf state
    once and gathers it (more leaves than FEW_ROWS); with autograd every leaf's is computed:
    the same outputs and final states, one layer and two (the second reads every node)."""
    parents = [random_tree(17, seed=s, max_children=arity) for s in range(12)]
    batch = TreeBatch.from_parents(parents)
    leaves = torch.nonzero(batch.num_children == 0).flatten()
    assert len(leaves) > engine.steps.FEW_ROWS
    torch.manual_seed(0)
    model = TreeLSTM(6, 5, num_layers=2, cell="nary", arity=arity, bias=bias, dtype=dtype)
    table = torch.randn(9, 6, dtype=dtype)  # few words: most leaves share one
    rows = torch.randint(0, 9, (len(leaves),), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        inferred = model(table, batch, input_index=leaves, input_rows=rows)
    trained = model(table, batch, input_index=leaves, input_rows=rows)
    torch.testing.assert_close(inferred[0], trained[0].detach())
    for ours, theirs in zip(inferred[1], trained[1]):
        torch.testing.assert_close(ours, theirs.detach())


@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_roots_only_and_cell_roots_only(cell, grad):
    """engine.layer's roots_only (both states at the roots) and cell_roots_only (every h, the
    roots' c) are the full outputs' rows, with and without autograd, and gradients flow."""
    case = CASES["mixed forest"]
    model, params = make_params(case, cell)
    batch = TreeBatch.from_parents(case.parents, case.positions)
    x = torch.randn(batch.num_nodes, 5, dtype=torch.float64)
    with torch.set_grad_enabled(grad):
        h, c = engine.layer(batch, x, *params[0], cell, case.arity)
        h_roots, c_roots = engine.layer(batch, x, *params[0], cell, case.arity, roots_only=True)
        h_all, c_only_roots = engine.layer(batch, x, *params[0], cell, case.arity,
                                           cell_roots_only=True)
    assert torch.equal(h_roots, h[batch.roots]) and torch.equal(c_roots, c[batch.roots])
    assert torch.equal(h_all, h) and torch.equal(c_only_roots, c[batch.roots])
    if grad:
        (h_all.sum() + c_only_roots.sum()).backward()
        assert all(p.grad is not None for p in params[0] if p is not None)


@pytest.mark.parametrize("cell", CELLS)
def test_parameters_of_the_wrong_shape_are_a_value_error(cell):
    """A parameter replaced (through .data) with one of another shape is a ValueError naming it,
    on every path: the C steps read parameters by pointer and must never see one (with them it
    corrupted memory or read past the end)."""
    arity = 2 if cell == "nary" else None
    batch = TreeBatch.from_parents([[2, 2, -1]] * 100)
    x = torch.randn(batch.num_nodes, 8)
    table, rows = torch.randn(300, 8), torch.randint(0, 300, (200,))
    leaves = torch.nonzero(batch.num_children == 0).flatten()
    blocks = 5 if cell == "nary" else 4
    wrong = {"weight_hh_l0": (blocks * 16 - 16, 32 if cell == "nary" else 16),
             "bias_hh_l0": (blocks * 16 - 16,), "bias_ih_l0": (60,), "weight_ih_l0": (64, 9)}
    for name, shape in wrong.items():
        model = TreeLSTM(8, 16, cell=cell, arity=arity)
        getattr(model, name).data = torch.randn(shape)
        for enabled in (True, False):
            with kernels.use(enabled), pytest.raises(ValueError, match=name.split("_l")[0]):
                with torch.no_grad():
                    model(table, batch, input_index=leaves, input_rows=rows)
            with kernels.use(enabled), pytest.raises(ValueError, match=name.split("_l")[0]):
                model(x, batch)[0].sum().backward()


def binary_leaf_case(num_trees, width, num_words):
    """Binary trees of 2 leaves, a 2-ary layer's parameters (H=5) for input width ``width``, a
    table of ``num_words`` rows and each leaf's row (``num_words`` distinct at most)."""
    batch = TreeBatch.from_parents([[2, 2, -1]] * num_trees)
    leaves = torch.nonzero(batch.num_children == 0).flatten()
    torch.manual_seed(0)
    params = (torch.randn(20, width), torch.randn(25, 10), torch.randn(20), torch.randn(25))
    return batch, leaves, params, torch.randn(num_words, width), \
        torch.arange(2 * num_trees) % num_words


def test_a_zero_width_input_with_many_distinct_rows():
    """engine.layer with input rows of no columns (X = 0; a TreeLSTM refuses input_size=0) and
    more than FEW_ROWS distinct rows: the same with and without the C steps (sgemm refuses a
    leading dimension of 0, so the leaves' projection stays with torch)."""
    batch, leaves, params, table, rows = binary_leaf_case(100, 0, 150)
    with torch.no_grad():
        outputs = []
        for enabled in (True, False):
            with kernels.use(enabled):
                outputs.append(engine.layer(batch, table, *params, "nary", 2, leaves, rows))
    for ours, torch_ops in zip(*outputs):
        torch.testing.assert_close(ours, torch_ops, rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int16, torch.int32])
def test_engine_layer_takes_indices_of_any_integer_dtype(dtype):
    """engine.layer's input_index and input_rows in a small integer dtype give what int64 ones
    give (TreeLSTM accepts them; engine.layer used to fail in index_select)."""
    batch, leaves, params, table, rows = binary_leaf_case(40, 6, 100)
    with torch.no_grad():
        expected = engine.layer(batch, table, *params, "nary", 2, leaves, rows)
        got = engine.layer(batch, table, *params, "nary", 2, leaves.to(dtype), rows.to(dtype))
    for ours, int64_rows in zip(got, expected):
        assert torch.equal(ours, int64_rows)
