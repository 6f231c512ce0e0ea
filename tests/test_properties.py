"""Property-based tests (hypothesis): random forests in any node order, random slots."""
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reference
from conftest import HAS_DGL
from treelstm import TreeBatch, TreeLSTM


@st.composite
def trees(draw, max_nodes=12, max_children=None):
    """A parent list with shuffled node ids; every node attaches to an earlier one."""
    n = draw(st.integers(1, max_nodes))
    parent, counts = [-1], [0]
    for v in range(1, n):
        allowed = [u for u in range(v) if max_children is None or counts[u] < max_children]
        p = draw(st.sampled_from(allowed))
        parent.append(p)
        counts[p] += 1
        counts.append(0)
    perm = draw(st.permutations(range(n)))
    shuffled = [0] * n
    for v, p in enumerate(parent):
        shuffled[perm[v]] = -1 if p < 0 else perm[p]
    return shuffled


@st.composite
def slotted_trees(draw, arity):
    """A tree with at most ``arity`` children per node, each child in a random free slot."""
    parent = draw(trees(max_children=arity))
    position = [-1] * len(parent)
    for p in set(parent) - {-1}:
        kids = [v for v, q in enumerate(parent) if q == p]
        slots = draw(st.permutations(range(arity)))
        for kid, slot in zip(kids, slots):
            position[kid] = slot
    return parent, position


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(forest=st.lists(slotted_trees(arity=3), min_size=1, max_size=4),
       cell=st.sampled_from(["childsum", "nary"]), seed=st.integers(0, 2 ** 16))
def test_random_forests_match_reference_and_dgl(forest, cell, seed):
    parents = [p for p, _ in forest]
    positions = [q for _, q in forest]
    torch.manual_seed(seed)
    model = TreeLSTM(3, 2, cell=cell, arity=3 if cell == "nary" else None, dtype=torch.float64)
    batch = TreeBatch.from_parents(parents, positions)
    x = torch.randn(batch.num_nodes, 3, dtype=torch.float64)
    output, (h_n, _) = model(x, batch)
    params = [tuple(p.detach() for p in model.layer_parameters(0))]
    ref_output, (ref_h, _) = reference.tree_lstm(params, cell, parents, x, positions, model.arity)
    torch.testing.assert_close(output, ref_output)
    torch.testing.assert_close(h_n, ref_h)
    if HAS_DGL:
        model.backend = "dgl"
        torch.testing.assert_close(model(x, batch)[0], output)


@settings(max_examples=150, deadline=None)
@given(parent=st.lists(st.integers(-3, 12), min_size=0, max_size=10))
def test_any_parent_list_builds_or_raises_value_error(parent):
    """Random lists are either valid trees or a ValueError: never a hang or another error."""
    try:
        batch = TreeBatch.from_parents([parent])
    except ValueError:
        return
    # it was valid: exactly one root, everything reaches it
    assert parent.count(-1) == 1
    assert batch.num_nodes == len(parent)
    assert sorted(batch.depth.tolist())[0] == 0
    assert sorted(batch.level_order.nodes.tolist()) == list(range(len(parent)))


@settings(max_examples=60, deadline=None)
@given(forest=st.lists(trees(max_nodes=15), min_size=1, max_size=5))
def test_networkx_round_trip(forest):
    batch = TreeBatch.from_parents(forest)
    again = TreeBatch.from_networkx(batch.to_networkx())
    assert again.local_parents() == forest
    assert again.position.tolist() == batch.position.tolist()


@pytest.mark.skipif(not HAS_DGL, reason="dgl is not installed; DGL round trip cannot be tested")
@settings(max_examples=40, deadline=None)
@given(forest=st.lists(slotted_trees(arity=2), min_size=1, max_size=5))
def test_dgl_round_trip(forest):
    batch = TreeBatch.from_parents([p for p, _ in forest], [q for _, q in forest])
    again = TreeBatch.from_dgl(batch.to_dgl())
    assert again.parent.tolist() == batch.parent.tolist()
    assert again.position.tolist() == batch.position.tolist()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(forest=st.lists(slotted_trees(arity=2), min_size=2, max_size=5),
       cell=st.sampled_from(["childsum", "nary"]), seed=st.integers(0, 2 ** 16))
def test_batched_equals_per_tree(forest, cell, seed):
    parents = [p for p, _ in forest]
    positions = [q for _, q in forest]
    torch.manual_seed(seed)
    model = TreeLSTM(3, 2, num_layers=2, cell=cell, arity=2 if cell == "nary" else None,
                     dtype=torch.float64)
    batch = TreeBatch.from_parents(parents, positions)
    x = torch.randn(batch.num_nodes, 3, dtype=torch.float64)
    output, (h_n, c_n) = model(x, batch)
    start = 0
    for t, (parent, position) in enumerate(forest):
        rows = slice(start, start + len(parent))
        one_out, (one_h, one_c) = model(x[rows], TreeBatch.from_parents([parent], [position]))
        torch.testing.assert_close(output[rows], one_out)
        torch.testing.assert_close(h_n[:, t], one_h[:, 0])
        torch.testing.assert_close(c_n[:, t], one_c[:, 0])
        start += len(parent)
