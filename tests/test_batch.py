"""TreeBatch: attributes, schedule, validation errors, conversions."""
import pickle

import networkx as nx
import numpy as np
import pytest
import torch

from cases import CASES, chain, random_tree
from conftest import DEVICES, needs_dgl
from treelstm import TreeBatch


def test_issue_example_attributes():
    batch = TreeBatch.from_parents([[-1, 0, 0], [2, 2, -1]])
    assert (batch.num_nodes, batch.num_trees, len(batch)) == (6, 2, 2)
    assert batch.roots.tolist() == [0, 5]
    assert batch.parent.tolist() == [-1, 0, 0, 5, 5, -1]
    assert batch.tree_index.tolist() == [0, 0, 0, 1, 1, 1]
    assert batch.depth.tolist() == [0, 1, 1, 1, 1, 0]
    assert batch.height.tolist() == [1, 0, 0, 0, 0, 1]
    assert batch.position.tolist() == [-1, 0, 1, 0, 1, -1]
    assert batch.num_children.tolist() == [2, 0, 0, 0, 0, 2]
    assert repr(batch) == "TreeBatch(num_trees=2, num_nodes=6, num_levels=2, device=cpu)"


@pytest.mark.parametrize("case_name", list(CASES))
def test_schedule_covers_every_node_once_children_first(case_name):
    case = CASES[case_name]
    batch = TreeBatch.from_parents(case.parents, case.positions)
    done = set()
    for level in batch.levels:
        nodes = level.nodes.tolist()
        # every child edge of this level points at a finished node and at a parent in this level
        for child, local in zip(level.child.tolist(), level.child_parent.tolist()):
            assert child in done
            assert batch.parent[child].item() == nodes[local]
        assert not done.intersection(nodes)
        done.update(nodes)
    assert done == set(range(batch.num_nodes))
    edges = sum(level.child.numel() for level in batch.levels)
    assert edges == batch.num_nodes - batch.num_trees


@pytest.mark.parametrize("case_name", list(CASES))
def test_level_order_is_the_schedule_as_rows(case_name):
    case = CASES[case_name]
    batch = TreeBatch.from_parents(case.parents, case.positions)
    order = batch.level_order
    assert order.nodes.tolist() == [v for level in batch.levels for v in level.nodes.tolist()]
    assert order.row[order.nodes].tolist() == list(range(batch.num_nodes))
    assert order.bounds == tuple(np.cumsum([0] + [len(lv.nodes) for lv in batch.levels]))
    # level 0 is exactly the leaves
    assert sorted(order.nodes[:order.bounds[1]].tolist()) == \
        torch.nonzero(batch.num_children == 0).flatten().tolist()
    for k, level in enumerate(batch.levels):
        edges = slice(order.edge_bounds[k], order.edge_bounds[k + 1])
        assert order.child_row[edges].tolist() == order.row[level.child].tolist()


@pytest.mark.parametrize("case_name", ["unary nodes", "mixed forest", "full binary", "chain"])
def test_child_slots_hold_each_child_row_in_its_slot(case_name):
    case = CASES[case_name]
    batch = TreeBatch.from_parents(case.parents, case.positions)
    order, arity = batch.level_order, case.arity + 1  # one more slot than needed: always empty
    slots = batch.child_slots(arity)
    num_leaves = order.bounds[1]
    assert slots.shape == (batch.num_nodes - num_leaves, arity)
    expected = torch.full_like(slots, batch.num_nodes)
    for child in range(batch.num_nodes):
        parent = batch.parent[child].item()
        if parent >= 0:
            expected[order.row[parent] - num_leaves, batch.position[child]] = order.row[child]
    assert slots.tolist() == expected.tolist()
    assert batch.child_slots(arity) is slots  # cached


def test_depth_and_height_match_a_plain_walk():
    parents = [random_tree(40, seed=s) for s in range(5)]
    batch = TreeBatch.from_parents(parents)
    depth, height = [], []
    for parent in parents:
        for v in range(len(parent)):
            d, u = 0, v
            while parent[u] != -1:
                u, d = parent[u], d + 1
            depth.append(d)
        h = [0] * len(parent)
        for v in sorted(range(len(parent)), key=lambda v: -depth[len(height) + v]):
            if parent[v] >= 0:
                h[parent[v]] = max(h[parent[v]], h[v] + 1)
        height.extend(h)
    assert batch.depth.tolist() == depth
    assert batch.height.tolist() == height


def test_default_positions_rank_siblings_by_node_id():
    batch = TreeBatch.from_parents([[3, 3, 3, -1, 0, 0]])
    assert batch.position.tolist() == [0, 1, 2, -1, 0, 1]


def test_explicit_positions():
    batch = TreeBatch.from_parents([[-1, 0, 0]], positions=[[7, 1, 0]])
    assert batch.position.tolist() == [-1, 1, 0]


def test_accepts_arrays_and_tensors():
    batch = TreeBatch.from_parents([np.array([-1, 0]), torch.tensor([1, -1])])
    assert batch.parent.tolist() == [-1, 0, 3, -1]


def test_deep_chain_builds_fast_and_right():
    batch = TreeBatch.from_parents([chain(20_000)])
    assert batch.num_levels == 20_000
    assert batch.depth[0].item() == 19_999 and batch.height[-1].item() == 19_999


@pytest.mark.parametrize("parents,positions,error,match", [
    ([[-1, 0], []], None, ValueError, "tree 1 is empty"),
    ([], None, ValueError, "at least one tree"),
    ([[-1, 5, 0]], None, ValueError, r"tree 0, node 1 has parent 5; expected -1 \(root\) or a node id in \[0, 3\)"),
    ([[-1], [-2, 0]], None, ValueError, "tree 1, node 0 has parent -2"),
    ([[-1, 0], [1, 0]], None, ValueError, r"tree 1 has no root"),
    ([[-1, -1, 0]], None, ValueError, r"tree 0 has 2 roots \(nodes \[0, 1\]\); expected exactly one"),
    ([[-1, 2, 3, 1]], None, ValueError, r"tree 0 has a cycle: nodes \[1, 2, 3\] never reach the root"),
    ([[-1], [1, -1, 3, 2]], None, ValueError, r"tree 1 has a cycle: nodes \[2, 3\]"),
    ([[-1, 0.0]], None, TypeError, r"parents\[0\] must hold integers; got 0.0 \(float\)"),
    ([[-1, "0"]], None, TypeError, "must hold integers"),
    ([[-1, None]], None, TypeError, "must hold integers; got None"),
    ([[-1, [0]]], None, TypeError, "flat list of integers"),
    ([-1, 0, 0], None, TypeError, r"one parent list per tree .* For one tree pass \[parents\]"),
    ([[-1, 0, 0]], [[-1, 0, 0]], ValueError, "nodes 1 and 2 both use slot 0 under parent 0"),
    ([[-1, 0, 0]], [[-1, 0, -3]], ValueError, "node 2 has position -3; expected a slot >= 0"),
    ([[-1, 0, 0]], [[-1, 0]], ValueError, "tree 0 has 3 nodes but 2 positions"),
    ([[-1, 0, 0]], [[-1, 0, 1], [0]], ValueError, "1 parent lists but 2 position lists"),
    ([[-1, 0]], [[-1, 0.5]], TypeError, "positions.0. must hold integers"),
])
def test_bad_trees(parents, positions, error, match):
    with pytest.raises(error, match=match):
        TreeBatch.from_parents(parents, positions)


def test_networkx_round_trip():
    case = CASES["unary nodes"]
    batch = TreeBatch.from_parents(case.parents, case.positions)
    graphs = batch.to_networkx()
    again = TreeBatch.from_networkx(graphs)
    assert again.parent.tolist() == batch.parent.tolist()
    assert again.position.tolist() == batch.position.tolist()


def test_from_networkx_uses_graph_node_order_and_labels():
    graph = nx.DiGraph()
    graph.add_nodes_from(["leaf", "root", "other"])
    graph.add_edge("root", "leaf", position=1)
    graph.add_edge("root", "other", position=0)
    batch = TreeBatch.from_networkx(graph)
    assert batch.parent.tolist() == [1, -1, 1]
    assert batch.position.tolist() == [1, -1, 0]
    plain = nx.DiGraph([(0, 1), (0, 2)])
    assert TreeBatch.from_networkx([plain, graph]).position.tolist() == [-1, 0, 1, 1, -1, 0]


def test_from_networkx_errors():
    with pytest.raises(ValueError, match="node 2 has two parents"):
        TreeBatch.from_networkx(nx.DiGraph([(0, 2), (1, 2)]))
    with pytest.raises(TypeError, match="expected a networkx.DiGraph"):
        TreeBatch.from_networkx(nx.Graph([(0, 1)]))
    graph = nx.DiGraph([(0, 1), (0, 2)])
    graph.edges[0, 1]["position"] = 0
    with pytest.raises(ValueError, match="'position' on 1 of 2 edges"):
        TreeBatch.from_networkx(graph)
    with pytest.raises(ValueError, match="has a cycle|no root"):
        TreeBatch.from_networkx(nx.DiGraph([(0, 0), (1, 2), (2, 1)]))


@needs_dgl
def test_dgl_round_trip_and_convention():
    case = CASES["mixed forest"]
    batch = TreeBatch.from_parents(case.parents)
    graph = batch.to_dgl()
    assert graph.batch_size == batch.num_trees
    assert graph.batch_num_nodes().tolist() == [len(p) for p in case.parents]
    src, dst = graph.edges()
    assert (batch.parent[src] == dst).all()  # edges child -> parent
    again = TreeBatch.from_dgl(graph)
    assert again.parent.tolist() == batch.parent.tolist()
    assert again.position.tolist() == batch.position.tolist()
    assert batch.dgl_graph() is batch.dgl_graph()


@needs_dgl
def test_from_dgl_errors():
    from treelstm.dgl import import_dgl

    dgl = import_dgl()
    with pytest.raises(ValueError, match="node 0 has 2 outgoing edges"):
        TreeBatch.from_dgl(dgl.graph((torch.tensor([0, 0]), torch.tensor([1, 2]))))
    joined = dgl.batch([dgl.graph(([1], [0])), dgl.graph(([1], [0]))])
    joined = dgl.add_edges(joined, torch.tensor([0]), torch.tensor([2]))
    joined.set_batch_num_nodes(torch.tensor([2, 2]))
    joined.set_batch_num_edges(torch.tensor([2, 1]))
    with pytest.raises(ValueError, match="joins trees 0 and 1"):
        TreeBatch.from_dgl(joined)


def test_dgl_missing_gives_clear_import_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "dgl", None)  # makes `import dgl` fail
    batch = TreeBatch.from_parents([[-1]])
    with pytest.raises(ImportError, match=r"pip install 'treelstm\[dgl\]'"):
        batch.to_dgl()


@pytest.mark.parametrize("device", DEVICES)
def test_to_device_moves_schedule_once(device):
    batch = TreeBatch.from_parents([[-1, 0, 0], [1, -1]])
    moved = batch.to(device)
    assert moved.parent.device.type == device
    assert all(level.nodes.device.type == device for level in moved.levels)
    assert batch.to(device) is moved
    assert moved.to("cpu").parent.tolist() == batch.parent.tolist()


def test_pickle_round_trip():
    batch = TreeBatch.from_parents(CASES["mixed forest"].parents)
    _ = batch.levels
    again = pickle.loads(pickle.dumps(batch))
    assert again.parent.tolist() == batch.parent.tolist()
    assert [lv.nodes.tolist() for lv in again.levels] == [lv.nodes.tolist() for lv in batch.levels]
