"""TreeBatch from and to other graph libraries: networkx arborescences (edges parent -> child)
and DGL graphs (edges child -> parent, DGL's tree-LSTM convention).

The readers give the parent and position lists that :meth:`TreeBatch.from_parents
<treelstm.TreeBatch.from_parents>` checks, after the checks that only the graph can make (two
parents, a cycle named by the graph's own node labels, edges across trees); the writers take a
batch's arrays. :class:`~treelstm.TreeBatch` calls them (``from_networkx``, ``to_dgl``, ...).
"""
from __future__ import annotations

from typing import Any, Iterable, Optional, Union

import numpy as np
import torch

from .node_lists import MAX_REPORTED, default_positions, is_sequence, type_name

__all__ = ["networkx_trees", "networkx_cycle_error", "dgl_trees", "to_networkx", "to_dgl"]


# ------------------------------------------------------------------ networkx
def networkx_trees(graphs: Union[Any, Iterable[Any]]
                   ) -> tuple[list, list[list[int]], Optional[list]]:
    """``(graphs, parents, positions)``: the graphs as a list, and one parent list and one
    position list (``None`` when no edge has a ``"position"``) per graph, in the graph's node
    order; see :meth:`TreeBatch.from_networkx <treelstm.TreeBatch.from_networkx>`."""
    import networkx as nx

    if isinstance(graphs, nx.Graph):
        graphs = [graphs]
    elif not is_sequence(graphs):
        raise TypeError(f"TreeBatch.from_networkx: expected a networkx.DiGraph or a list of "
                        f"them; got {type_name(graphs)}")
    graphs = list(graphs)
    if not graphs:
        raise ValueError("TreeBatch.from_networkx: expected at least one graph; got none")
    parents, positions, any_position = [], [], False
    for t, graph in enumerate(graphs):
        if not isinstance(graph, nx.DiGraph) or graph.is_multigraph():
            raise TypeError(f"TreeBatch.from_networkx: graph {t} is a {type(graph).__name__}; "
                            "expected a networkx.DiGraph with edges parent -> child")
        index = {node: i for i, node in enumerate(graph.nodes)}
        parent = [-1] * len(index)
        position = [-1] * len(index)
        with_position = 0
        for u, v, data in graph.edges(data=True):
            if parent[index[v]] != -1:
                raise _two_parents(graph, t, v, list(graph.nodes)[parent[index[v]]], u)
            parent[index[v]] = index[u]
            if "position" in data:
                position[index[v]] = data["position"]
                with_position += 1
        if with_position not in (0, graph.number_of_edges()):
            raise ValueError(f"TreeBatch.from_networkx: graph {t} has a 'position' on "
                             f"{with_position} of {graph.number_of_edges()} edges; expected "
                             "all or none")
        if index and parent.count(-1) != 1:
            raise _not_one_root(graph, t, parent)
        any_position |= with_position > 0
        parents.append(parent)
        positions.append(position if with_position else None)
    if not any_position:
        return graphs, parents, None
    return graphs, parents, [default_positions(np.asarray(p, dtype=np.int64)) if q is None else q
                             for p, q in zip(parents, positions)]


def networkx_cycle_error(graphs: list) -> Optional[ValueError]:
    """The error naming the first cycle among ``graphs`` by its nodes' labels, or ``None``
    (for a graph with one root and a cycle apart from it, which ``from_parents`` finds by ids)."""
    for t, graph in enumerate(graphs):
        cycle = _cycle(graph)
        if cycle is not None:
            return ValueError(f"TreeBatch.from_networkx: graph {t} has a cycle ({cycle}); "
                              "expected a tree")
    return None


def _cycle(graph: Any) -> Optional[str]:
    """``"a -> b -> a"`` for a cycle of ``graph``, or None."""
    import networkx as nx

    try:
        edges = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return None
    return " -> ".join(repr(node) for node in [u for u, _ in edges] + [edges[0][0]])


def _two_parents(graph: Any, t: int, node: Any, first: Any, second: Any) -> ValueError:
    import networkx as nx

    text = (f"TreeBatch.from_networkx: graph {t}, node {node!r} has two parents ({first!r} "
            f"and {second!r}); expected a tree with edges parent -> child")
    if nx.is_arborescence(graph.reverse(copy=False)):
        text += "; the edges look child -> parent (DGL's direction): pass graph.reverse()"
    else:
        cycle = _cycle(graph)
        if cycle is not None:
            text += f"; it has a cycle ({cycle})"
    return ValueError(text)


def _not_one_root(graph: Any, t: int, parent: list[int]) -> ValueError:
    """Each node has at most one parent here: no root means a cycle."""
    labels = list(graph.nodes)
    roots = [labels[v] for v, p in enumerate(parent) if p == -1]
    if not roots:
        return ValueError(f"TreeBatch.from_networkx: graph {t} has a cycle "
                          f"({_cycle(graph)}) and no root; expected a tree with edges "
                          "parent -> child")
    shown = ", ".join(repr(node) for node in roots[:MAX_REPORTED])
    more = ", ..." if len(roots) > MAX_REPORTED else ""
    return ValueError(f"TreeBatch.from_networkx: graph {t} has {len(roots)} roots (nodes "
                      f"{shown}{more}); expected exactly one (one tree per graph)")


def to_networkx(parents: list[list[int]], positions: list[list[int]]) -> list:
    """One ``networkx.DiGraph`` per tree, nodes ``0..n-1``, edges parent -> child with
    attribute ``"position"``."""
    import networkx as nx

    graphs = []
    for parent, position in zip(parents, positions):
        graph = nx.DiGraph()
        graph.add_nodes_from(range(len(parent)))
        graph.add_edges_from((p, v, {"position": position[v]})
                             for v, p in enumerate(parent) if p >= 0)
        graphs.append(graph)
    return graphs


# ------------------------------------------------------------------ DGL
def dgl_trees(graph: Any) -> tuple[list[np.ndarray], Optional[list[np.ndarray]]]:
    """``(parents, positions)`` per tree of a DGL graph with edges child -> parent; see
    :meth:`TreeBatch.from_dgl <treelstm.TreeBatch.from_dgl>`."""
    if not (hasattr(graph, "batch_num_nodes") and hasattr(graph, "edges")):
        raise TypeError(f"TreeBatch.from_dgl: expected a DGL graph; got {type(graph).__name__}")
    sizes = graph.batch_num_nodes().cpu().numpy().astype(np.int64)
    src, dst = (e.cpu().numpy().astype(np.int64) for e in graph.edges())
    num_nodes = int(sizes.sum())
    offsets = np.r_[0, np.cumsum(sizes)[:-1]]
    tree_of = np.repeat(np.arange(len(sizes)), sizes)
    crossing = np.flatnonzero(tree_of[src] != tree_of[dst])
    if len(crossing):
        e = crossing[0]
        raise ValueError(f"TreeBatch.from_dgl: edge {src[e]} -> {dst[e]} joins trees "
                         f"{tree_of[src[e]]} and {tree_of[dst[e]]}; expected edges inside a tree")
    counts = np.bincount(src, minlength=num_nodes)
    if counts.max(initial=0) > 1:
        v = int(np.argmax(counts))
        raise ValueError(f"TreeBatch.from_dgl: node {v} has {counts[v]} outgoing edges; "
                         "expected edges child -> parent, one parent per node")
    local_parent = np.full(num_nodes, -1, dtype=np.int64)
    local_parent[src] = dst - offsets[tree_of[dst]]
    parents = np.split(local_parent, np.cumsum(sizes)[:-1])
    positions = None
    if "position" in graph.edata:
        edge_position = graph.edata["position"]
        if (edge_position.dtype == torch.bool or edge_position.is_floating_point()
                or edge_position.is_complex()):
            raise TypeError(f"TreeBatch.from_dgl: edata['position'] must hold integer slots; "
                            f"got dtype {edge_position.dtype}")
        if tuple(edge_position.shape) != (len(src),):
            raise ValueError(f"TreeBatch.from_dgl: edata['position'] has shape "
                             f"{list(edge_position.shape)}; expected [{len(src)}], one slot "
                             "per edge")
        edge_position = edge_position.cpu().numpy()
        # in the edges' own dtype, so that from_parents sees (and rejects) uint64 values that
        # int64 cannot hold; a root's entry is ignored
        position = np.zeros(num_nodes, dtype=edge_position.dtype)
        position[src] = edge_position
        positions = np.split(position, np.cumsum(sizes)[:-1])
    return parents, positions


def to_dgl(parent: np.ndarray, position: np.ndarray, tree_sizes: np.ndarray,
           device: torch.device):
    """A batched DGL graph with edges child -> parent and ``edata["position"]``, on ``device``,
    from a batch's global ``parent`` and ``position`` ``[N]`` and ``tree_sizes`` ``[T]``."""
    from .dgl import import_dgl

    dgl = import_dgl()
    child = np.flatnonzero(parent >= 0)
    graph = dgl.graph((torch.from_numpy(child), torch.from_numpy(parent[child])),
                      num_nodes=parent.shape[0])
    graph.edata["position"] = torch.from_numpy(position[child])
    graph.set_batch_num_nodes(torch.from_numpy(tree_sizes))
    graph.set_batch_num_edges(torch.from_numpy(tree_sizes - 1))
    return graph.to(device)
