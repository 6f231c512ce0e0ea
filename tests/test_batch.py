"""TreeBatch: attributes, schedule, validation errors, conversions, 50,000 trees in one batch."""
import pickle
import time

import networkx as nx
import numpy as np
import pytest
import torch

from cases import CASES, chain, random_tree
from conftest import DEVICES, needs_dgl
from treelstm import TreeBatch, TreeLSTM, TreeLSTMClassifier
from treelstm.data import Vocab, collate_trees, parse_ptb_line


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
    order = batch.level_order
    assert len(order.bounds) == len(order.edge_bounds) == batch.num_levels + 1
    assert order.bounds[0] == order.edge_bounds[0] == 0
    done = set()
    for k in range(batch.num_levels):
        nodes = order.nodes[order.bounds[k]:order.bounds[k + 1]].tolist()
        assert batch.height[nodes].tolist() == [k] * len(nodes)
        # every child edge of this level points at a finished node and at a parent in this level
        edges = slice(order.edge_bounds[k], order.edge_bounds[k + 1])
        children = order.nodes[order.child_row[edges]].tolist()
        for child, local in zip(children, order.child_parent[edges].tolist()):
            assert child in done
            assert batch.parent[child].item() == nodes[local]
        assert not done.intersection(nodes)
        done.update(nodes)
    assert done == set(range(batch.num_nodes))
    assert order.edge_bounds[-1] == order.child_row.numel() == batch.num_nodes - batch.num_trees


@pytest.mark.parametrize("case_name", list(CASES))
def test_level_order_is_the_schedule_as_rows(case_name):
    case = CASES[case_name]
    batch = TreeBatch.from_parents(case.parents, case.positions)
    order = batch.level_order
    assert order.nodes.tolist() == sorted(range(batch.num_nodes),
                                          key=lambda v: batch.height[v].item())  # stable
    assert order.row[order.nodes].tolist() == list(range(batch.num_nodes))
    assert order.bounds == tuple(np.cumsum([0] + np.bincount(
        batch.height.numpy(), minlength=batch.num_levels).tolist()))
    # level 0 is exactly the leaves
    assert sorted(order.nodes[:order.bounds[1]].tolist()) == \
        torch.nonzero(batch.num_children == 0).flatten().tolist()
    # each edge into level k: its child's row, and its parent's row as an offset into level k
    for k in range(batch.num_levels):
        edges = slice(order.edge_bounds[k], order.edge_bounds[k + 1])
        children = order.nodes[order.child_row[edges]]
        assert (order.row[batch.parent[children]] - order.bounds[k]).tolist() == \
            order.child_parent[edges].tolist()
    assert batch.level_order is order  # built once


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


@pytest.mark.parametrize("case_name", ["unary nodes", "mixed forest", "full binary", "chain"])
def test_level_children_are_each_levels_child_slots(case_name):
    case = CASES[case_name]
    batch = TreeBatch.from_parents(case.parents, case.positions)
    order, arity = batch.level_order, case.arity + 1
    slots, num_leaves = batch.child_slots(arity), order.bounds[1]
    levels = batch.level_children(arity)
    assert len(levels) == batch.num_levels - 1
    for k, children in enumerate(levels, 1):
        rows = slice(order.bounds[k] - num_leaves, order.bounds[k + 1] - num_leaves)
        assert children.tolist() == slots[rows].flatten().tolist()
    assert batch.level_children(arity) is levels  # split once


def test_check_arity_remembers_only_what_passed():
    batch = TreeBatch.from_parents([[-1, 0, 0, 1, 1]])  # binary
    batch.check_arity(2)
    batch.check_arity(2)
    with pytest.raises(ValueError, match="expected at most arity=1"):
        batch.check_arity(1)  # still checked after arity 2 passed
    with pytest.raises(ValueError, match="expected at most arity=1"):
        batch.check_arity(1)  # and again: a failure is not remembered as a pass


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
    ([[-1, 5, 0]], None, ValueError,
     r"tree 0, node 1 has parent 5; expected -1 \(root\) or a node id in \[0, 3\)"),
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


INT64_RANGE = r"expected -1 \(root\) or a node id in \[0, 2\)"


@pytest.mark.parametrize("parents,positions,error,match", [
    # integers beyond int64: np.asarray makes objects or floats of them (no bare StopIteration)
    ([[2**70, -1]], None, ValueError, rf"tree 0, node 0 has parent {2**70}; {INT64_RANGE}"),
    ([[-1], [2**63, -1]], None, ValueError, rf"tree 1, node 0 has parent {2**63}; {INT64_RANGE}"),
    ([[-1, -2**64]], None, ValueError, rf"tree 0, node 1 has parent {-2**64}; {INT64_RANGE}"),
    ([[-1, np.uint64(2**64 - 1)]], None, ValueError, rf"node 1 has parent {2**64 - 1}"),
    ([[-1, 0]], [[-1, 2**64]], ValueError,
     rf"tree 0, node 1 has position {2**64}; expected a slot in \[0, 2\*\*63\)"),
    # unsigned values that int64 would wrap to negatives (2**64 - 1 would become the root -1)
    ([np.array([2**64 - 1, 0], dtype=np.uint64)], None, ValueError,
     rf"tree 0, node 0 has parent {2**64 - 1}; {INT64_RANGE}"),
    ([torch.tensor([2**64 - 1, 0], dtype=torch.uint64)], None, ValueError,
     rf"tree 0, node 0 has parent {2**64 - 1}; {INT64_RANGE}"),
    ([[-1, 0]], [np.array([0, 2**64 - 1], dtype=np.uint64)], ValueError,
     rf"tree 0, node 1 has position {2**64 - 1}"),
    # bools are not node ids: np.asarray([True, -1]) would be [1, -1]
    ([[True, -1]], None, TypeError,
     r"parents\[0\] must hold integers; got True \(bool\) at node 0"),
    ([[-1, 0], (1, -1, np.True_)], None, TypeError, r"parents\[1\] must hold integers; got "
                                                     r"np.True_ \(bool\) at node 2"),
    ([torch.tensor([False, True])], None, TypeError,
     r"parents\[0\] must hold integers; got a tensor of dtype torch.bool"),
    ([np.array([-1, True], dtype=object)], None, TypeError, r"got True \(bool\) at node 1"),
    ([[-1, 0]], [[-1, True]], TypeError, r"positions\[0\] must hold integers; got True \(bool\)"),
    ([[-1, 0]], [torch.tensor([False, True])], TypeError, "positions.0. .* dtype torch.bool"),
    # floats in arrays and tensors: named by dtype
    ([[-1, 0]], [np.array([-1.0, 0.0])], TypeError,
     r"positions\[0\] must hold integers; got an array of dtype float64"),
    ([torch.tensor([-1.0, 0.0])], None, TypeError, "got a tensor of dtype torch.float32"),
    ([[-1, float("nan")]], None, TypeError, r"got nan \(float\) at node 1"),
    # shapes: a flat list of anything, non-sequences, nested lists
    ([-1.0, 0.0], None, TypeError, r"one parent list per tree .* got a flat list of floats"),
    ([[-1, 0, 0]], [-1, 0, 1], TypeError,
     r"one position list per tree .* For one tree pass \[positions\]"),
    (5, None, TypeError, "one parent list per tree .*; got int"),
    (torch.tensor(3), None, TypeError, "one parent list per tree .*; got a 0-d Tensor"),
    ([[-1], "ab"], None, TypeError, r"parents\[1\] must be a flat list of integers; got str"),
    ([[-1, [0]]], None, TypeError, r"flat list of integers; got \[0\] \(list\) at node 1"),
    (np.zeros((0, 3), dtype=np.int64), None, ValueError, "at least one tree"),
])
def test_bad_values_and_dtypes(parents, positions, error, match):
    with pytest.raises(error, match=match):
        TreeBatch.from_parents(parents, positions)


@pytest.mark.parametrize("parents,positions", [
    ([np.array([-1, 0, 0], dtype=np.int8), np.array([1, -1], dtype=np.int16)],
     [np.array([0, 1, 0], dtype=np.uint8), np.array([0, 0], dtype=np.uint64)]),
    ([torch.tensor([-1, 0, 0], dtype=torch.int32), torch.tensor([1, -1], dtype=torch.int8)],
     [torch.tensor([0, 1, 0], dtype=torch.uint8), torch.tensor([0, 0], dtype=torch.uint64)]),
    ([np.array([-1, 0, 0], dtype=object), range(1, -2, -2)], [(0, 1, 0), range(2)]),
    (torch.tensor([[-1, 0, 0], [1, 2, -1]]), None),
])
def test_accepts_every_integer_dtype(parents, positions):
    batch = TreeBatch.from_parents(parents, positions)
    assert batch.parent.tolist()[:4] == [-1, 0, 0, 4] and batch.parent.dtype == torch.long
    if positions is not None:
        assert batch.position.tolist() == [-1, 1, 0, 0, -1]


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


@pytest.mark.parametrize("graphs,error,match", [
    (nx.DiGraph([(0, 1), (1, 2), (2, 0)]), ValueError,
     r"graph 0 has a cycle \(0 -> 1 -> 2 -> 0\) and no root; expected a tree with edges parent "
     "-> child"),
    ([nx.DiGraph([(0, 1)]), nx.DiGraph([("r", "a"), ("b", "c"), ("c", "b")])], ValueError,
     r"graph 1 has a cycle \('b' -> 'c' -> 'b'\); expected a tree"),
    (nx.DiGraph([(0, 1), (1, 2), (2, 1)]), ValueError,
     r"node 1 has two parents \(0 and 2\); .*; it has a cycle \(1 -> 2 -> 1\)"),
    # child -> parent edges, DGL's direction: reported with the direction expected
    (nx.DiGraph([("a", "root"), ("b", "root")]), ValueError,
     r"node 'root' has two parents \('a' and 'b'\); expected a tree with edges parent -> child; "
     r"the edges look child -> parent \(DGL's direction\): pass graph.reverse\(\)"),
    (nx.DiGraph([("r", "a"), ("s", "b")]), ValueError,
     r"graph 0 has 2 roots \(nodes 'r', 's'\); expected exactly one"),
    ([], ValueError, "from_networkx: expected at least one graph; got none"),
    (3, TypeError, "expected a networkx.DiGraph or a list of them; got int"),
])
def test_from_networkx_names_cycles_roots_and_direction(graphs, error, match):
    with pytest.raises(error, match=match):
        TreeBatch.from_networkx(graphs)


@pytest.mark.parametrize("position,match", [(True, r"got True \(bool\)"),
                                            (0.5, r"got 0.5 \(float\)")])
def test_from_networkx_rejects_non_integer_positions(position, match):
    graph = nx.DiGraph([(0, 1), (0, 2)])
    graph.edges[0, 1]["position"] = 0
    graph.edges[0, 2]["position"] = position
    with pytest.raises(TypeError, match=rf"positions\[0\] must hold integers; {match}"):
        TreeBatch.from_networkx(graph)


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


@needs_dgl
@pytest.mark.parametrize("position,error,match", [
    (torch.tensor([0.7, 1.2]), TypeError,  # would be truncated to slots 0 and 1
     r"edata\['position'\] must hold integer slots; got dtype torch.float32"),
    (torch.tensor([True, False]), TypeError, "integer slots; got dtype torch.bool"),
    (torch.tensor([[1], [0]]), ValueError,
     r"edata\['position'\] has shape \[2, 1\]; expected \[2\], one slot per edge"),
    (torch.tensor([2**64 - 1, 0], dtype=torch.uint64), ValueError,
     rf"tree 0, node 1 has position {2**64 - 1}; expected a slot in \[0, 2\*\*63\)"),
])
def test_from_dgl_rejects_bad_positions(position, error, match):
    from treelstm.dgl import import_dgl

    graph = import_dgl().graph((torch.tensor([1, 2]), torch.tensor([0, 0])))
    graph.edata["position"] = position
    with pytest.raises(error, match=match):
        TreeBatch.from_dgl(graph)


@needs_dgl
def test_from_dgl_takes_any_integer_positions_and_rejects_non_graphs():
    from treelstm.dgl import import_dgl

    graph = import_dgl().graph((torch.tensor([1, 2]), torch.tensor([0, 0])))
    graph.edata["position"] = torch.tensor([1, 0], dtype=torch.int32)
    assert TreeBatch.from_dgl(graph).position.tolist() == [-1, 1, 0]
    with pytest.raises(TypeError, match="from_dgl: expected a DGL graph; got list"):
        TreeBatch.from_dgl([[-1, 0]])


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
    order = moved.level_order
    assert all(t.device.type == device
               for t in (order.nodes, order.row, order.child_row, order.child_parent))
    assert batch.to(device) is moved
    assert moved.to("cpu").parent.tolist() == batch.parent.tolist()


def test_pickle_round_trip():
    batch = TreeBatch.from_parents(CASES["mixed forest"].parents)
    _ = batch.level_order
    again = pickle.loads(pickle.dumps(batch))
    assert again.parent.tolist() == batch.parent.tolist()
    assert again.level_order.nodes.tolist() == batch.level_order.nodes.tolist()
    assert again.level_order.bounds == batch.level_order.bounds


def test_zero_dim_bool_tensor_is_not_a_parent():
    with pytest.raises(TypeError, match=r"parents\[0\] must hold integers; got tensor\(False\) "
                                        r"\(bool\) at node 1"):
        TreeBatch.from_parents([[-1, torch.tensor(False)]])
    assert TreeBatch.from_parents([[-1, torch.tensor(0)]]).num_nodes == 2


def test_first_descendant_order_puts_children_left_to_right():
    # leaves 0..3 in sentence order, internal nodes in post-order: node 5 = (0 (1 2)) has its
    # leaf child 0 left of internal child 4 although 4 > 0; node 6 = (5 3)
    parents = [[5, 4, 4, 6, 5, 6, -1]]
    batch = TreeBatch.from_parents(parents, child_order="first_descendant")
    assert batch.position.tolist() == [0, 0, 1, 1, 1, 0, -1]
    assert TreeBatch.from_parents(parents).position.tolist() == [0, 0, 1, 0, 1, 1, -1]  # by id
    parents = [[4, 3, 3, 4, -1]]  # (0 (1 2))
    assert TreeBatch.from_parents(parents, child_order="first_descendant").position.tolist() == [
        0, 0, 1, 1, -1]
    parents = [[3, 4, 4, 4, -1]]  # ((0) 1 2): node 3's subtree is leaf 0, so it goes first
    assert TreeBatch.from_parents(parents, child_order="first_descendant").position.tolist() == [
        0, 1, 2, 0, -1]
    assert TreeBatch.from_parents(parents).position.tolist() == [0, 0, 1, 2, -1]
    with pytest.raises(ValueError, match=r"child_order must be one of \('id', 'first_descendant'\); "
                                         r"got 'left'"):
        TreeBatch.from_parents(parents, child_order="left")


@pytest.mark.parametrize("seed", range(20))
def test_first_descendant_order_equals_a_plain_sort_by_subtree_minimum(seed):
    parents = [random_tree(1 + (seed * 7 + k * 5) % 30, seed * 4 + k) for k in range(4)]
    batch = TreeBatch.from_parents(parents, child_order="first_descendant")
    expected = []
    for parent in parents:
        children = [[] for _ in parent]
        for node, p in enumerate(parent):
            if p >= 0:
                children[p].append(node)

        def smallest(node):
            return min([node] + [smallest(c) for c in children[node]])

        position = [-1] * len(parent)
        for siblings in children:
            for slot, node in enumerate(sorted(siblings, key=lambda c: (smallest(c), c))):
                position[node] = slot
        expected += position
    assert batch.position.tolist() == expected


# ------------------------------------------------------------------------ extreme sizes
@pytest.mark.usefixtures("one_thread")
def test_fifty_thousand_tiny_trees_in_one_batch(one_word_lines):
    shapes = [[-1], [-1, 0], [-1, 0, 0], [1, 2, -1]]
    parents = [shapes[t % 4] for t in range(50_000)]
    start = time.perf_counter()
    batch = TreeBatch.from_parents(parents)
    built = time.perf_counter() - start
    assert batch.num_trees == 50_000 and batch.num_nodes == 112_500
    assert built < 20, f"TreeBatch of 50,000 trees took {built:.1f} s"
    model = TreeLSTM(3, 4, cell="nary", arity=2)
    output, (h_n, _) = model(torch.randn(batch.num_nodes, 3), batch)
    assert output.shape == (112_500, 4) and h_n.shape == (1, 50_000, 4)
    # the same through the sentiment pipeline: 50,000 one-word sentences
    trees = [parse_ptb_line(one_word_lines[t % 5]) for t in range(50_000)]
    vocab = Vocab.build(t.tokens for t in trees)
    classifier = TreeLSTMClassifier(len(vocab), 5, embed_dim=4, hidden_size=4)
    with torch.no_grad():
        root_logits = classifier.eval()(collate_trees(trees, vocab)).root_logits
    assert root_logits.shape == (50_000, 5)
    torch.testing.assert_close(root_logits[5], root_logits[0])  # same word, same logits
