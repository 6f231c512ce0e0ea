"""DGL executor: message passing over a DGL graph batch (edges child -> parent).

``dgl`` is an optional dependency (``pip install 'treelstm[dgl]'``), imported on first use. Each
topological frontier after the leaves is one ``graph.pull`` with a message function (the per-child
terms of :mod:`treelstm.functional`), a reduce function (sum over the mailbox, or the N-ary slot
scatter) and a node-apply function (the node update) -- the same math the native engine runs.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Optional, cast

from torch import Tensor

from . import functional


def import_dgl() -> Any:
    """Import ``dgl`` with the PyTorch backend, or raise an ImportError that says how to get it."""
    os.environ.setdefault("DGLBACKEND", "pytorch")
    try:
        import dgl
    except ImportError as error:
        raise ImportError(
            "treelstm: backend='dgl' and DGL conversions need the optional package 'dgl' "
            f"({error}). Install it with `pip install 'treelstm[dgl]'` (dgl==1.1.3 works with "
            "torch 2.x on Python 3.11, CPU only), or use backend='native', which needs no DGL "
            "and also runs on CUDA.") from error
    return dgl


def run_layer(graph: Any, x_gates: Tensor, weight_hh: Tensor, bias_hh: Optional[Tensor],
              cell: str, arity: Optional[int] = None) -> tuple[Tensor, Tensor]:
    """Run one Tree-LSTM layer by DGL message passing.

    Args:
        graph: a DGL graph with edges child -> parent and, for ``cell="nary"``,
            ``edata["position"]`` (see :meth:`TreeBatch.to_dgl`).
        x_gates: ``[num_nodes, 4H]``, each node's ``W_ih x + b_ih``.

    Returns:
        ``h, c``: ``[num_nodes, H]`` each.
    """
    dgl = import_dgl()
    graph = graph.local_var()
    hidden_size = x_gates.shape[1] // 4
    frontiers = [f.to(graph.device) for f in dgl.topological_nodes_generator(graph)]

    leaves = frontiers[0]
    # Leaves alone (single-node trees): their zero children go through U all the same, so that
    # weight_hh gets a zero gradient, not none (DDP expects one for every parameter).
    zero = None if len(frontiers) > 1 else x_gates.new_zeros(
        len(leaves), 1 if cell == "childsum" else cast(int, arity), hidden_size)
    if cell == "childsum":
        leaf_h, leaf_c = functional.childsum_cell(x_gates[leaves], zero, zero, weight_hh, bias_hh)
    else:  # cell="nary" comes with its arity
        leaf_h, leaf_c = functional.nary_cell(x_gates[leaves], zero, zero, weight_hh, bias_hh,
                                              cast(int, arity))
    graph.ndata["x_gates"] = x_gates
    graph.ndata["h"] = leaf_h.new_zeros(graph.num_nodes(), hidden_size).index_copy(0, leaves, leaf_h)
    graph.ndata["c"] = leaf_c.new_zeros(graph.num_nodes(), hidden_size).index_copy(0, leaves, leaf_c)

    make_functions = _childsum_functions if cell == "childsum" else _nary_functions
    message, reduce, apply = make_functions(hidden_size, weight_hh, bias_hh, arity)
    for frontier in frontiers[1:]:
        graph.pull(frontier, message, reduce, apply)
    return graph.ndata["h"], graph.ndata["c"]


def _childsum_functions(hidden_size: int, weight_hh: Tensor, bias_hh: Optional[Tensor],
                        arity: Optional[int] = None) -> tuple[Callable, Callable, Callable]:
    """DGL's message, reduce and apply functions of a Child-Sum layer (``arity`` unused)."""

    def message(edges):
        forget = functional.childsum_forget(
            edges.src["h"], edges.dst["x_gates"][:, hidden_size:2 * hidden_size], weight_hh,
            bias_hh)
        return {"h": edges.src["h"], "fc": forget * edges.src["c"]}

    def reduce(nodes):
        return {"h_sum": nodes.mailbox["h"].sum(1), "fc_sum": nodes.mailbox["fc"].sum(1)}

    def apply(nodes):
        preactivation = functional.childsum_preactivation(
            nodes.data["x_gates"], nodes.data["h_sum"], weight_hh, bias_hh)
        h, c = functional.childsum_state(preactivation, nodes.data["fc_sum"])
        return {"h": h, "c": c}

    return message, reduce, apply


def _nary_functions(hidden_size: int, weight_hh: Tensor, bias_hh: Optional[Tensor],
                    arity: Optional[int]) -> tuple[Callable, Callable, Callable]:
    """DGL's message, reduce and apply functions of an N-ary layer: children in their slots."""

    def message(edges):
        return {"h": edges.src["h"], "c": edges.src["c"], "position": edges.data["position"]}

    def reduce(nodes):
        # Mailboxes come in arrival order; put each child's state in its slot.
        slot = nodes.mailbox["position"].unsqueeze(-1).expand(-1, -1, hidden_size)
        shape = (slot.shape[0], arity, hidden_size)
        child_h = nodes.mailbox["h"].new_zeros(shape).scatter(1, slot, nodes.mailbox["h"])
        child_c = nodes.mailbox["c"].new_zeros(shape).scatter(1, slot, nodes.mailbox["c"])
        return {"child_h": child_h, "child_c": child_c}

    def apply(nodes):
        h, c = functional.nary_cell(nodes.data["x_gates"], nodes.data["child_h"],
                                    nodes.data["child_c"], weight_hh, bias_hh, cast(int, arity))
        return {"h": h, "c": c}

    return message, reduce, apply


def run_top_down(graph: Any, x_gates: Tensor, weight_hh: Tensor, bias_hh: Optional[Tensor]
                 ) -> tuple[Tensor, Tensor]:
    """Run the top-down pass of a bidirectional layer by DGL message passing on the reversed
    graph (edges parent -> child): each node's message is its parent's state, the node update an
    LSTM step (an arity-1 N-ary cell); roots start from the zero state.

    Args:
        graph: a DGL graph with edges child -> parent.
        x_gates: ``[num_nodes, 4H]``, each node's ``W_ih u + b_ih`` (``u`` its bottom-up ``h``).

    Returns:
        ``h, c``: ``[num_nodes, H]`` each.
    """
    dgl = import_dgl()
    graph = dgl.reverse(graph)
    hidden_size = x_gates.shape[1] // 4
    frontiers = [f.to(graph.device) for f in dgl.topological_nodes_generator(graph)]

    roots = frontiers[0]
    zero = None if len(frontiers) > 1 else x_gates.new_zeros(len(roots), 1, hidden_size)
    root_h, root_c = functional.nary_cell(x_gates[roots], zero, zero, weight_hh, bias_hh, 1)
    graph.ndata["x_gates"] = x_gates
    graph.ndata["h"] = root_h.new_zeros(graph.num_nodes(), hidden_size).index_copy(0, roots, root_h)
    graph.ndata["c"] = root_c.new_zeros(graph.num_nodes(), hidden_size).index_copy(0, roots, root_c)

    def message(edges):
        return {"h": edges.src["h"], "c": edges.src["c"]}

    def reduce(nodes):  # one parent: the mailbox is [n, 1, H], the N-ary cell's slot layout
        return {"parent_h": nodes.mailbox["h"], "parent_c": nodes.mailbox["c"]}

    def apply(nodes):
        h, c = functional.nary_cell(nodes.data["x_gates"], nodes.data["parent_h"],
                                    nodes.data["parent_c"], weight_hh, bias_hh, 1)
        return {"h": h, "c": c}

    for frontier in frontiers[1:]:
        graph.pull(frontier, message, reduce, apply)
    return graph.ndata["h"], graph.ndata["c"]
