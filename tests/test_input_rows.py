"""TreeLSTM(input, batch, input_index, input_rows): node ``input_index[j]`` reads row
``input_rows[j]`` of a table. Checked against the same model fed the gathered rows
(``input[input_rows]``), with and without autograd, both backends; the native backend's kept
projection (``cache_projections()``, a ProjectionCache) against a fresh computation after every
kind of change to the table or weights; gradcheck; bad inputs."""
import copy

import pytest
import torch
from torch import nn

from cases import CASES
from conftest import BACKENDS, needs_dgl
from treelstm import TreeBatch, TreeLSTM
from treelstm.engine import ProjectionCache

# Small batches run fastest on one thread, and much slower with two on a busy machine.
pytestmark = pytest.mark.usefixtures("one_thread")

INPUT_SIZE, HIDDEN_SIZE, TABLE_ROWS = 5, 4, 9
USED_ROWS = [1, 4, 5, 8]  # 8 is the last row of the table
UNUSED_ROWS = [row for row in range(TABLE_ROWS) if row not in USED_ROWS]  # never read
SCHEMES = ["leaves", "leaves in level order", "some leaves", "internal too", "all nodes", "none"]


def make_model(case, cell, backend="native", num_layers=1, bidirectional=False,
               dtype=torch.float64, seed=0, bias=True):
    torch.manual_seed(seed)
    arity = case.arity if cell == "nary" else None
    return TreeLSTM(INPUT_SIZE, HIDDEN_SIZE, num_layers=num_layers, cell=cell, arity=arity,
                    backend=backend, dtype=dtype, bidirectional=bidirectional, bias=bias)


def make_table(dtype=torch.float64, seed=2):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(TABLE_ROWS, INPUT_SIZE, generator=g, dtype=dtype)


def input_nodes(batch, scheme, seed=3):
    """The nodes that read a row (``input_index``), in a shuffled order, or (``"leaves in level
    order"``) all leaves as ``collate_trees`` gives them: the N-ary inference path that keeps
    each word's leaf state."""
    g = torch.Generator().manual_seed(seed)
    num_nodes = batch.num_nodes
    leaves = torch.nonzero(batch.num_children == 0).flatten()
    if scheme == "leaves in level order":
        order = batch.level_order
        return order.nodes[:order.bounds[1]]
    if scheme == "leaves":
        nodes = leaves
    elif scheme == "some leaves":  # input_index does not cover all leaves
        nodes = leaves[::2]
    elif scheme == "internal too":  # every third node left out, internal nodes and roots read
        nodes = torch.arange(num_nodes)[torch.arange(num_nodes) % 3 != 1]
    elif scheme == "all nodes":
        nodes = torch.arange(num_nodes)
    else:
        nodes = torch.zeros(0, dtype=torch.long)
    return nodes[torch.randperm(nodes.shape[0], generator=g)]


def table_rows(num, seed=4):
    """``[num]`` rows of the table, drawn from USED_ROWS: each read many times, most rows never."""
    g = torch.Generator().manual_seed(seed)
    return torch.tensor(USED_ROWS)[torch.randint(len(USED_ROWS), (num,), generator=g)]


def batch_and_input(case_name, scheme):
    case = CASES[case_name]
    batch = TreeBatch.from_parents(case.parents, case.positions)
    index = input_nodes(batch, scheme)
    return case, batch, index, table_rows(index.shape[0])


def weighted_loss(output, h_n, c_n, seed=1):
    """A loss that weighs every output element differently, so gradients see every value."""
    g = torch.Generator().manual_seed(seed)
    return sum((t * torch.randn(t.shape, generator=g, dtype=t.dtype)).sum()
               for t in (output, h_n, c_n))


def forward_and_grads(model, table, batch, index, rows=None):
    """Outputs, and the gradients of the table and of every parameter (zero when unused), of
    ``model(table, batch, index, rows)``, or with ``rows=None`` of ``model(table, batch, index)``
    (the caller passes the gathered rows)."""
    model.zero_grad(set_to_none=True)
    table = table.detach().clone().requires_grad_(True)
    if rows is None:
        output, (h_n, c_n) = model(table, batch, index)
    else:
        output, (h_n, c_n) = model(table, batch, index, rows)
    weighted_loss(output, h_n, c_n).backward()
    grads = {name: torch.zeros_like(p) if p.grad is None else p.grad.clone()
             for name, p in model.named_parameters()}
    grads["table"] = table.grad.clone()
    return (output.detach(), h_n.detach(), c_n.detach()), grads


def assert_same(ours, theirs, atol=1e-12):
    """Equal up to float64 rounding (the two paths multiply different row sets)."""
    torch.testing.assert_close(ours, theirs, rtol=0, atol=atol)


def gathered(table, rows):
    """What node j reads, written plainly: a copy of row rows[j] of the table."""
    return torch.stack([table[r] for r in rows.tolist()]) if rows.numel() else \
        table.new_zeros(0, table.shape[1])


def fresh(model, table, batch, index, rows):
    """``(output, h_n, c_n)`` from the gathered rows with autograd on: the path training takes,
    not the inference one (which keeps nothing either, but has its own N-ary level loop)."""
    with torch.enable_grad():
        output, (h_n, c_n) = model(gathered(table.detach(), rows), batch, index)
    assert output.requires_grad
    return output.detach(), h_n.detach(), c_n.detach()


def cached_and_fresh(model, table, batch, index, rows):
    """``(output, h_n, c_n)`` without autograd through input_rows (the kept projection), and
    :func:`fresh`."""
    with torch.no_grad():
        ours = model(table, batch, index, rows)
    return (ours[0], *ours[1]), fresh(model, table, batch, index, rows)


class ProjectionSpy:
    """Wraps ``model.projection_cache.kept_rows``: how often the projection (``calls``) and the
    N-ary per-word terms (``leaf_calls``, kept instead of the projection when all input rows
    are leaves in level order) were asked for, how often either (``computed``) or the terms
    (``leaf_computed``) were started anew (another object than the last time), and how many
    rows were computed in all (``rows_computed``, ``leaf_rows_computed``)."""

    _COUNTERS = {"projection": ("calls", "computed", "rows_computed"),
                 "leaf_terms": ("leaf_calls", "leaf_computed", "leaf_rows_computed")}

    def __init__(self, cache: ProjectionCache) -> None:
        self.calls = self.computed = self.leaf_calls = self.leaf_computed = 0
        self.rows_computed = self.leaf_rows_computed = 0
        self._last = {}
        original = cache.kept_rows

        def kept_rows(name, key_tensors, extra, num_rows, rows, compute, **kwargs):
            calls, computed, rows_computed = self._COUNTERS[name]

            def counted(missing):
                setattr(self, rows_computed, getattr(self, rows_computed) + len(missing))
                return compute(missing)

            result = original(name, key_tensors, extra, num_rows, rows, counted, **kwargs)
            setattr(self, calls, getattr(self, calls) + 1)
            tensors, _ = result
            started = tensors is not self._last.get(name)
            setattr(self, computed, getattr(self, computed) + started)
            if name == "leaf_terms":  # what is kept in place of the projection
                self.computed += started
            self._last[name] = tensors
            return result

        cache.kept_rows = kept_rows


# ---------------------------------------------------------------- input_rows == gathered input
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell", ["childsum", "nary"])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_rows_equal_gathered_input_with_gradients(scheme, cell, num_layers, bidirectional,
                                                  backend):
    case, batch, index, rows = batch_and_input("mixed forest", scheme)
    model = make_model(case, cell, backend, num_layers, bidirectional)
    table = make_table()

    ours, our_grads = forward_and_grads(model, table, batch, index, rows)
    theirs, their_grads = forward_and_grads(model, gathered(table, rows), batch, index)

    for a, b in zip(ours, theirs):
        assert_same(a, b)
    for name, grad in our_grads.items():
        if name == "table":  # rows read several times add up; unused rows get zero
            expected = torch.zeros_like(grad).index_add_(0, rows, their_grads["table"])
            assert torch.count_nonzero(grad[UNUSED_ROWS]) == 0
        else:
            expected = their_grads[name]
        assert_same(grad, expected)
    if scheme != "none":  # the comparison sees every output and every used row
        assert torch.count_nonzero(our_grads["table"][USED_ROWS].abs().sum(1)) == len(
            set(rows.tolist()))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", ["childsum", "nary"])
@pytest.mark.parametrize("case_name", list(CASES))
def test_rows_equal_gathered_input_on_every_case(case_name, cell, backend):
    case, batch, index, rows = batch_and_input(case_name, "internal too")
    model = make_model(case, cell, backend)
    table = make_table()
    ours, our_grads = forward_and_grads(model, table, batch, index, rows)
    theirs, their_grads = forward_and_grads(model, gathered(table, rows), batch, index)
    for a, b in zip(ours, theirs):
        assert_same(a, b)
    assert_same(our_grads.pop("table"),
                torch.zeros(TABLE_ROWS, INPUT_SIZE, dtype=torch.float64).index_add_(
                    0, rows, their_grads.pop("table")))
    for name, grad in our_grads.items():
        assert_same(grad, their_grads[name])


CACHE_SETTINGS = {"off": (False, None), "kept": (True, None), "kept, max_bytes=0": (True, 0)}


@pytest.mark.parametrize("backend,cache", [("native", name) for name in CACHE_SETTINGS] + [
    pytest.param("dgl", "kept", marks=needs_dgl)])  # DGL keeps nothing, even when asked
@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (2, True)])
@pytest.mark.parametrize("cell", ["childsum", "nary"])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_rows_equal_gathered_input_without_autograd(scheme, cell, num_layers, bidirectional,
                                                    backend, cache):
    case, batch, index, rows = batch_and_input("mixed forest", scheme)
    model = make_model(case, cell, backend, num_layers, bidirectional)
    enabled, max_bytes = CACHE_SETTINGS[cache]
    model.cache_projections(enabled)
    if max_bytes is not None:
        model.projection_cache.max_bytes = max_bytes
    spy = ProjectionSpy(model.projection_cache)
    table = nn.Parameter(make_table())  # requires grad, as an embedding's weight does
    for _ in range(2):  # the second call reads the kept projection
        ours, theirs = cached_and_fresh(model, table, batch, index, rows)
        for a, b in zip(ours, theirs):
            assert_same(a, b)
    # only the native backend keeps a projection, only when on and within max_bytes, one per
    # table
    kept = backend == "native" and cache == "kept"
    # N-ary, all leaves in level order: each word's leaf state and terms are kept instead
    word_states = kept and cell == "nary" and scheme == "leaves in level order"
    projected = kept and not word_states
    assert (spy.calls >= 2) if projected else (spy.calls == 0)
    assert spy.computed == (1 if kept else 0)
    assert (spy.leaf_calls, spy.leaf_computed) == ((2, 1) if word_states else (0, 0))
    # rows are computed for the words the batch uses, once each
    used = len(set(rows.tolist()))
    assert (spy.rows_computed, spy.leaf_rows_computed) == (
        used if projected else 0, used if word_states else 0)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("cell", ["childsum", "nary"])
@pytest.mark.parametrize("case_name", list(CASES))
@pytest.mark.parametrize("scheme", ["leaves in level order", "internal too"])
def test_kept_projection_on_every_case(scheme, case_name, cell, bias):
    case, batch, index, rows = batch_and_input(case_name, scheme)
    model = make_model(case, cell, bias=bias).cache_projections()
    table = make_table()
    for _ in range(2):
        ours, theirs = cached_and_fresh(model, table, batch, index, rows)
        for a, b in zip(ours, theirs):
            assert_same(a, b)


def test_cache_projections_switches_and_returns_the_model():
    case, batch, index, rows = batch_and_input("mixed forest", "leaves in level order")
    model, table = make_model(case, "nary"), make_table()
    spy = ProjectionSpy(model.projection_cache)
    assert model.cache_projections() is model
    cached_and_fresh(model, table, batch, index, rows)
    assert spy.leaf_computed == 1  # (N-ary leaves in level order: the per-word terms)
    model.cache_projections(False)  # off: nothing kept, nothing read
    ours, theirs = cached_and_fresh(model, table, batch, index, rows)
    for a, b in zip(ours, theirs):
        assert_same(a, b)
    assert spy.leaf_calls == 1
    model.cache_projections(True)
    cached_and_fresh(model, table, batch, index, rows)
    assert spy.leaf_computed == 2  # computed anew: switching off dropped the kept ones
    with pytest.raises(TypeError, match="enabled must be a bool"):
        model.cache_projections("yes")


@pytest.mark.parametrize("cell", ["childsum", "nary"])
def test_any_max_bytes_gives_the_same_results(cell):
    """From nothing kept, through the projection kept but not the N-ary word states, to all."""
    case, batch, index, rows = batch_and_input("mixed forest", "leaves in level order")
    model, table = make_model(case, cell).cache_projections(), make_table()
    _, theirs = cached_and_fresh(model, table, batch, index, rows)
    for max_bytes in [0, 500, 1000, 1500, 2000, 3000, 5000, 8000, 2 ** 20]:
        model.projection_cache.clear()
        model.projection_cache.max_bytes = max_bytes
        for _ in range(2):
            with torch.no_grad():
                output, (h_n, c_n) = model(table, batch, index, rows)
            for a, b in zip((output, h_n, c_n), theirs):
                assert_same(a, b)


def test_rows_as_a_list_or_int32_equal_a_long_tensor():
    case, batch, index, rows = batch_and_input("mixed forest", "internal too")
    model, table = make_model(case, "childsum"), make_table()
    expected, _ = model(table, batch, index, rows)
    assert_same(model(table, batch, index.tolist(), rows.tolist())[0], expected)
    assert_same(model(table, batch, index, rows.to(torch.int32))[0], expected)
    with torch.no_grad():
        assert_same(model(table, batch, index, rows.tolist())[0], expected.detach())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", ["childsum", "nary"])
def test_gradcheck_with_respect_to_the_table(cell, backend):
    batch = TreeBatch.from_parents([[-1, 0, 0, 1, 1], [2, 2, -1]])
    torch.manual_seed(0)
    model = TreeLSTM(3, 2, cell=cell, arity=2 if cell == "nary" else None, backend=backend,
                     dtype=torch.float64)
    table = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    index = torch.tensor([0, 2, 3, 4, 5, 7])  # leaves 2..5 and the two roots
    rows = torch.tensor([1, 1, 3, 1, 0, 3])  # row 1 read three times, row 2 never

    def run(table):
        output, (h_n, c_n) = model(table, batch, index, rows)
        return output, h_n, c_n

    assert torch.autograd.gradcheck(run, (table,))


# ---------------------------------------------------------------- the kept projection (native)
def _sgd_step(parameters):
    """A real optimizer step on ``parameters(model, table)``."""
    def step(model, table, batch, index, rows):
        optimizer = torch.optim.SGD(parameters(model, table), lr=0.5)
        output, (h_n, c_n) = model(table, batch, index, rows)
        weighted_loss(output, h_n, c_n).backward()
        optimizer.step()
    return step


def _load_other_state(model, table, batch, index, rows):
    model.load_state_dict(make_model(CASES["mixed forest"], model.cell, seed=5).state_dict())


def _in_place(change):
    def run(model, table, batch, index, rows):
        with torch.no_grad():
            change(model, table)
    return run


# (change, whether the table's projection must be computed anew); the table is a Parameter
CHANGES = {
    "nothing": (_in_place(lambda model, table: None), False),
    "table add_": (_in_place(lambda model, table: table.add_(1)), True),
    "table row assigned": (_in_place(lambda model, table: table.__setitem__(USED_ROWS[1], 0.5)),
                           True),
    "weight_ih mul_": (_in_place(lambda model, table: model.weight_ih_l0.mul_(1.5)), True),
    "weight_ih one element": (_in_place(lambda model, table: model.weight_ih_l0[0, 0].add_(1)),
                              True),
    # the table left alone (frozen word vectors): only weight_ih's change can tell
    "sgd step": (_sgd_step(lambda model, table: model.parameters()), True),
    "sgd step, table too": (_sgd_step(lambda model, table: [*model.parameters(), table]), True),
    "load_state_dict": (_load_other_state, True),
    "load_state_dict assign": (lambda model, *args: model.load_state_dict(
        make_model(CASES["mixed forest"], model.cell, seed=5).state_dict(), assign=True), True),
    "reset_parameters": (lambda model, *args: model.reset_parameters(), True),
    # the projection is W_ih x alone: the biases and U are read afresh by every call
    "bias_ih add_": (_in_place(lambda model, table: model.bias_ih_l0.add_(1)), False),
    "weight_hh mul_": (_in_place(lambda model, table: model.weight_hh_l0.mul_(-1)), False),
}


@pytest.mark.parametrize("scheme", ["leaves", "leaves in level order", "internal too"])
@pytest.mark.parametrize("cell", ["childsum", "nary"])
@pytest.mark.parametrize("change", list(CHANGES))
def test_kept_projection_follows_changes(change, cell, scheme):
    case, batch, index, rows = batch_and_input("mixed forest", scheme)
    model = make_model(case, cell).cache_projections()
    spy = ProjectionSpy(model.projection_cache)
    table = nn.Parameter(make_table())
    before, _ = cached_and_fresh(model, table, batch, index, rows)
    assert spy.computed == 1

    apply_change, recompute = CHANGES[change]
    apply_change(model, table, batch, index, rows)
    ours, theirs = cached_and_fresh(model, table, batch, index, rows)
    for a, b in zip(ours, theirs):
        assert_same(a, b)
    # the per-word terms are kept by all the weights, not W_ih alone
    word_terms = cell == "nary" and scheme == "leaves in level order"
    assert spy.computed == 1 + (recompute or (word_terms and change != "nothing"))
    if change == "nothing":
        assert spy.leaf_computed == (cell == "nary" and scheme == "leaves in level order")
    else:
        assert not torch.allclose(ours[0], before[0])  # the change did change the result


@pytest.mark.parametrize("scheme", ["leaves in level order", "internal too"])
def test_a_new_table_or_a_changed_base_is_projected_anew(scheme):
    case, batch, index, rows = batch_and_input("mixed forest", scheme)
    model = make_model(case, "nary").cache_projections()
    spy = ProjectionSpy(model.projection_cache)
    first = make_table()
    # two views of one buffer: the same data_ptr and version counter, not the same rows
    base = torch.randn(TABLE_ROWS, 2 * INPUT_SIZE, dtype=torch.float64)
    left, even = base[:, :INPUT_SIZE], base[:, ::2]
    # back to the first table: not the kept one any more; each view twice: kept
    for table in [first, make_table() + 1, first, left, left, even, even]:
        ours, theirs = cached_and_fresh(model, table, batch, index, rows)
        for a, b in zip(ours, theirs):
            assert_same(a, b)
    assert spy.computed == 5
    with torch.no_grad():
        base.mul_(-2)  # the view's version counter is the base's
    ours, theirs = cached_and_fresh(model, even, batch, index, rows)
    for a, b in zip(ours, theirs):
        assert_same(a, b)
    assert spy.computed == 6


def test_batches_with_and_without_internal_input_share_a_table():
    """Leaves-only batches project i | g | o only; the kept projection must not mix the two."""
    case = CASES["mixed forest"]
    batch = TreeBatch.from_parents(case.parents, case.positions)
    model, table = make_model(case, "nary").cache_projections(), make_table()
    for scheme in ["leaves in level order", "internal too", "leaves", "some leaves", "all nodes",
                   "leaves in level order", "none", "leaves in level order"]:
        index = input_nodes(batch, scheme)
        ours, theirs = cached_and_fresh(model, table, batch, index, table_rows(index.shape[0]))
        for a, b in zip(ours, theirs):
            assert_same(a, b)


def test_dtype_change_of_model_and_table_is_projected_anew():
    """``.double()`` keeps the Parameter objects and their versions; the dtype tells."""
    case, batch, index, rows = batch_and_input("mixed forest", "leaves in level order")
    model = make_model(case, "nary", dtype=torch.float32).cache_projections()
    embedding = nn.Embedding(TABLE_ROWS, INPUT_SIZE)
    both = nn.ModuleList([embedding, model])
    spy = ProjectionSpy(model.projection_cache)
    for convert, dtype, atol in [(None, torch.float32, 1e-6), (both.double, torch.float64, 1e-12),
                                 (both.float, torch.float32, 1e-6)]:
        if convert is not None:
            convert()
        ours, theirs = cached_and_fresh(model, embedding.weight, batch, index, rows)
        assert ours[0].dtype == dtype
        for a, b in zip(ours, theirs):
            assert_same(a, b, atol=atol)
    assert spy.computed == 3


@pytest.mark.parametrize("cell,scheme", [("childsum", "internal too"),
                                         ("nary", "leaves in level order")])
def test_autocast_and_back(cell, scheme):
    case, batch, index, rows = batch_and_input("mixed forest", scheme)
    model = make_model(case, cell, dtype=torch.float32).cache_projections()
    table = nn.Parameter(make_table(torch.float32))
    spy = ProjectionSpy(model.projection_cache)
    plain, _ = cached_and_fresh(model, table, batch, index, rows)
    for _ in range(2):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            ours, theirs = cached_and_fresh(model, table, batch, index, rows)
        assert ours[0].dtype == torch.bfloat16
        for a, b in zip(ours, theirs):  # both ~4e-3 off float64's at most, apart by as much
            torch.testing.assert_close(a, b, rtol=0, atol=1e-2)
        ours, theirs = cached_and_fresh(model, table, batch, index, rows)
        assert ours[0].dtype == torch.float32
        for a, b in zip(ours, theirs):
            assert_same(a, b, atol=1e-6)  # a bfloat16 projection would be off by ~1e-2
        assert_same(ours[0], plain[0], atol=1e-6)
    assert spy.computed == 5  # plain, then bf16 / float32 twice: each switch is a new one

    with torch.autocast("cpu", dtype=torch.bfloat16):  # and with autograd, which never keeps it
        ours, our_grads = forward_and_grads(model, table, batch, index, rows)
        theirs, their_grads = forward_and_grads(model, gathered(table, rows), batch, index)
    assert ours[0].dtype == torch.bfloat16
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b)
    their_grads["table"] = torch.zeros_like(table).index_add_(0, rows, their_grads["table"])
    for name, grad in our_grads.items():  # bfloat16 sums: both paths are ~1% off float64's
        scale = their_grads[name].abs().max().item()
        torch.testing.assert_close(grad, their_grads[name], rtol=0, atol=0.02 * scale)
    assert spy.computed == 5


@pytest.mark.parametrize("cell,scheme", [("childsum", "internal too"), ("nary", "leaves"),
                                         ("nary", "leaves in level order")])
def test_inference_tensors_work_and_are_not_kept(cell, scheme):
    case, batch, index, rows = batch_and_input("mixed forest", scheme)
    model = make_model(case, cell).cache_projections()
    spy = ProjectionSpy(model.projection_cache)
    with torch.inference_mode():
        table = make_table()
        first = model(table, batch, index, rows)
    assert table.is_inference()
    with torch.no_grad():
        second = model(table, batch, index, rows)
    expected = fresh(model, table, batch, index, rows)
    for ours in (first, second):
        for a, b in zip((ours[0], *ours[1]), expected):
            assert_same(a, b)
    assert spy.calls == spy.leaf_calls == 0  # no version counter: nothing to tell a change by

    # a normal table read in inference mode is kept, and right afterwards outside it
    normal = make_table()
    with torch.inference_mode():
        ours = model(normal, batch, index, rows)[0]
    with torch.no_grad():
        again = model(normal, batch, index, rows)[0]
    assert_same(ours, fresh(model, normal, batch, index, rows)[0])
    assert_same(again, ours)
    with torch.inference_mode():
        normal.add_(1)  # a normal tensor's version counts in inference mode too
        changed = model(normal, batch, index, rows)[0]
    assert_same(changed, fresh(model, normal, batch, index, rows)[0])
    assert spy.computed == 2


@pytest.mark.parametrize("cell,scheme", [("childsum", "internal too"), ("nary", "leaves"),
                                         ("nary", "leaves in level order")])
def test_training_after_kept_projection_is_right(cell, scheme):
    """Calls with autograd never read the kept projection: outputs and gradients as without it,
    and the kept one follows each step."""
    case, batch, index, rows = batch_and_input("mixed forest", scheme)
    model = make_model(case, cell, num_layers=2).cache_projections()
    table = nn.Parameter(make_table())
    fresh_model = copy.deepcopy(model).cache_projections(False)
    with torch.no_grad():
        model(table, batch, index, rows)
        model(table, batch, index, rows)
    for _ in range(2):  # a step changes all weights in place; then the same again
        ours, our_grads = forward_and_grads(model, table, batch, index, rows)
        theirs, their_grads = forward_and_grads(fresh_model, table, batch, index, rows)
        for a, b in zip(ours, theirs):
            assert_same(a, b)
        for name, grad in our_grads.items():
            assert_same(grad, their_grads[name])
        for m, grads in ((model, our_grads), (fresh_model, their_grads)):
            with torch.no_grad():
                for name, p in m.named_parameters():
                    p.sub_(0.3 * grads[name])
        with torch.no_grad():
            table.sub_(0.3 * our_grads["table"])
            ours, theirs = cached_and_fresh(model, table, batch, index, rows)
        for a, b in zip(ours, theirs):
            assert_same(a, b)


# Changes that replace a tensor's storage (``.data = ...``) without bumping its version: what
# ``vector_to_parameters`` and ``Module.half()/.to()`` do.
def _vector_to_parameters(model, table):
    vector = nn.utils.parameters_to_vector(model.parameters())
    nn.utils.vector_to_parameters(vector * 1.5, model.parameters())


def _module_half(model, table):
    kept = [p.data for p in model.parameters()]  # alive: the new storage lies elsewhere
    model.half().double()  # new storage (twice): weights rounded to float16, float64 again
    del kept


def _assign_data(model, table):
    table.data = table.data * 2
    model.weight_hh_l0.data = model.weight_hh_l0.data * 2


# Writes that no version counter or storage tells: documented as unseen; clear() is the remedy.
def _data_add_(model, table):
    table.data.add_(1)
    model.weight_ih_l0.data.add_(0.5)
    model.weight_hh_l0.data.mul_(-1)


def _fused_adam_step(model, table):
    optimizer = torch.optim.Adam(list(model.parameters()) + [table], lr=0.1, fused=True)
    output, _ = model(table, TreeBatch.from_parents([[-1, 0, 0]]), [1, 2], [1, 4])
    output.sum().backward()
    optimizer.step()


@pytest.mark.parametrize("scheme", ["leaves in level order", "internal too"])
@pytest.mark.parametrize("change,clear", [
    (_vector_to_parameters, False), (_module_half, False), (_assign_data, False),
    (_data_add_, True), (_fused_adam_step, True),
], ids=["vector_to_parameters", "Module.half", ".data =", ".data add_, clear()",
        "fused Adam step, clear()"])
def test_kept_projection_after_untracked_changes(change, clear, scheme):
    case, batch, index, rows = batch_and_input("mixed forest", scheme)
    model = make_model(case, "nary").cache_projections()
    table = nn.Parameter(make_table())
    before, _ = cached_and_fresh(model, table, batch, index, rows)
    change(model, table)
    if clear:
        model.projection_cache.clear()
    ours, theirs = cached_and_fresh(model, table, batch, index, rows)
    assert not torch.allclose(theirs[0], before[0])
    for a, b in zip(ours, theirs):
        assert_same(a, b)


# ---------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_input_rows_raise(backend):
    case, batch, index, rows = batch_and_input("mixed forest", "leaves")
    model, table = make_model(case, "nary", backend), make_table()
    with pytest.raises(ValueError, match="input_rows needs input_index"):
        model(table, batch, input_rows=rows)
    with pytest.raises(ValueError,
                       match=r"input_index and input_rows of one shape.*\[14\] and \[13\]"):
        model(table, batch, index, rows[:-1])
    with pytest.raises(ValueError, match="input_index and input_rows of one shape"):
        model(table, batch, index, rows.view(-1, 1))
    with pytest.raises(ValueError, match="input_index and input_rows of one shape"):
        model(table, batch, index.view(-1, 1), rows.view(-1, 1))
    for bad_row in (-1, TABLE_ROWS, TABLE_ROWS + 40):
        bad = rows.clone()
        bad[3] = bad_row
        with pytest.raises(ValueError, match=rf"input_rows holds row {bad_row};.*\[0, 9\)"):
            model(table, batch, index, bad)
        with torch.no_grad(), pytest.raises(ValueError, match=rf"holds row {bad_row};"):
            model(table, batch, index, bad)
    with pytest.raises(TypeError, match="input_rows must hold integer row numbers.*float"):
        model(table, batch, index, rows.to(torch.float32))
    with pytest.raises(TypeError, match="input_rows must hold integer row numbers.*bool"):
        model(table, batch, index, rows > 3)
    with pytest.raises(TypeError, match="input_rows must hold integer"):
        model(table, batch, index, [0.0] * index.shape[0])
    with pytest.raises(ValueError, match="Expected input with 5 features"):
        model(table[:, :3], batch, index, rows)


@pytest.mark.parametrize("cell,scheme", [("childsum", "internal too"),
                                         ("nary", "leaves in level order")])
def test_kept_rows_are_computed_once_each_as_batches_meet_them(cell, scheme):
    """The kept values grow with the words the calls meet: a row is computed the first time a
    call reads it, never again, and the results are those of a fresh computation."""
    case, batch, index, rows = batch_and_input("mixed forest", scheme)
    model, table = make_model(case, cell).cache_projections(), make_table()
    spy = ProjectionSpy(model.projection_cache)
    seen = set()
    for offset in (0, 0, 2, 5, 1):  # overlapping sets of rows
        shifted = (rows % 4 + offset) % TABLE_ROWS
        ours, theirs = cached_and_fresh(model, table, batch, index, shifted)
        for a, b in zip(ours, theirs):
            assert_same(a, b)
        seen |= set(shifted.tolist())
        assert spy.rows_computed + spy.leaf_rows_computed == len(seen)
    assert spy.computed == 1
