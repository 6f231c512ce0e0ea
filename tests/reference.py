"""A plain float64 per-node recursion of both cells: the textbook equations, written plainly.

Independent of treelstm's own code: no functional, no batching, no schedule -- one node at a time,
children first, by recursion on the tree.
"""
from __future__ import annotations

import torch


def _gate(weight_ih, bias_ih, weight_hh, bias_hh, x, child_h, rows_ih, rows_hh, hidden_size):
    """``W x + b_i + sum_l U_l h_l + b_h`` for one gate, from explicit row and column blocks."""
    H = hidden_size
    total = weight_ih[rows_ih * H:(rows_ih + 1) * H] @ x
    if bias_ih is not None:
        total = total + bias_ih[rows_ih * H:(rows_ih + 1) * H] + bias_hh[rows_hh * H:(rows_hh + 1) * H]
    for slot, h in child_h:
        total = total + weight_hh[rows_hh * H:(rows_hh + 1) * H, slot * H:(slot + 1) * H] @ h
    return total


def childsum_node(params, x, children):
    """One Child-Sum node. children: list of (h_k, c_k)."""
    weight_ih, weight_hh, bias_ih, bias_hh = params
    H = weight_hh.shape[1]
    h_tilde = torch.zeros(H, dtype=x.dtype)
    for h_k, _ in children:
        h_tilde = h_tilde + h_k
    summed = [(0, h_tilde)]
    i = torch.sigmoid(_gate(weight_ih, bias_ih, weight_hh, bias_hh, x, summed, 0, 0, H))
    g = torch.tanh(_gate(weight_ih, bias_ih, weight_hh, bias_hh, x, summed, 2, 2, H))
    o = torch.sigmoid(_gate(weight_ih, bias_ih, weight_hh, bias_hh, x, summed, 3, 3, H))
    c = i * g
    for h_k, c_k in children:
        f_k = torch.sigmoid(_gate(weight_ih, bias_ih, weight_hh, bias_hh, x, [(0, h_k)], 1, 1, H))
        c = c + f_k * c_k
    return o * torch.tanh(c), c


def nary_node(params, x, children, arity):
    """One N-ary node. children: dict slot -> (h, c); empty slots are absent (zero states)."""
    weight_ih, weight_hh, bias_ih, bias_hh = params
    H = weight_hh.shape[1] // arity
    slots = [(slot, h) for slot, (h, _) in sorted(children.items())]
    i = torch.sigmoid(_gate(weight_ih, bias_ih, weight_hh, bias_hh, x, slots, 0, 0, H))
    g = torch.tanh(_gate(weight_ih, bias_ih, weight_hh, bias_hh, x, slots, 2, arity + 1, H))
    o = torch.sigmoid(_gate(weight_ih, bias_ih, weight_hh, bias_hh, x, slots, 3, arity + 2, H))
    c = i * g
    for k, (_, c_k) in sorted(children.items()):
        f_k = torch.sigmoid(_gate(weight_ih, bias_ih, weight_hh, bias_hh, x, slots, 1, 1 + k, H))
        c = c + f_k * c_k
    return o * torch.tanh(c), c


def tree_lstm(layer_params, cell, parents, x, positions=None, arity=None):
    """Reference TreeLSTM over a list of trees.

    Args:
        layer_params: per layer ``(weight_ih, weight_hh, bias_ih, bias_hh)``.
        parents: list of parent lists; positions: same shape or None (rank among siblings by id).
        x: ``[num_nodes, X]``, rows tree by tree (zero rows for nodes without input).

    Returns:
        output ``[num_nodes, H]`` and ``(h_n, c_n)`` ``[num_layers, num_trees, H]``.
    """
    offsets, total = [], 0
    for p in parents:
        offsets.append(total)
        total += len(p)
    layer_input = [x[v] for v in range(total)]
    h_n, c_n = [], []
    for params in layer_params:
        states = {}

        def visit(t, v):
            key = offsets[t] + v
            if key in states:
                return states[key]
            kids = [u for u, p in enumerate(parents[t]) if p == v]
            if cell == "childsum":
                result = childsum_node(params, layer_input[key], [visit(t, u) for u in kids])
            else:
                slot_of = {u: (positions[t][u] if positions is not None else rank)
                           for rank, u in enumerate(kids)}
                result = nary_node(params, layer_input[key],
                                   {slot_of[u]: visit(t, u) for u in kids}, arity)
            states[key] = result
            return result

        roots = []
        for t, p in enumerate(parents):
            for v in range(len(p)):
                visit(t, v)
            roots.append(states[offsets[t] + p.index(-1)])
        layer_input = [states[v][0] for v in range(total)]
        h_n.append(torch.stack([h for h, _ in roots]))
        c_n.append(torch.stack([c for _, c in roots]))
    return torch.stack(layer_input), (torch.stack(h_n), torch.stack(c_n))


def lstm_cell_step(params, x, state):
    """One ``nn.LSTMCell`` step; ``state`` is the previous ``(h, c)``, or None for zeros."""
    weight_ih, weight_hh, bias_ih, bias_hh = params
    H = weight_hh.shape[1]

    def gate(k):
        total = weight_ih[k * H:(k + 1) * H] @ x
        if bias_ih is not None:
            total = total + bias_ih[k * H:(k + 1) * H] + bias_hh[k * H:(k + 1) * H]
        if state is not None:
            total = total + weight_hh[k * H:(k + 1) * H] @ state[0]
        return total

    i, f, g, o = torch.sigmoid(gate(0)), torch.sigmoid(gate(1)), torch.tanh(gate(2)), \
        torch.sigmoid(gate(3))
    c = i * g
    if state is not None:
        c = c + f * state[1]
    return o * torch.tanh(c), c


def top_down_order(parent):
    """The nodes of one tree, root first, every parent before its children."""
    order = [parent.index(-1)]
    for v in order:  # grows while we walk it: a breadth-first walk
        order.extend(u for u, p in enumerate(parent) if p == v)
    return order


def bidirectional_tree_lstm(layer_params, cell, parents, x, positions=None, arity=None):
    """Reference bidirectional TreeLSTM over a list of trees.

    Each layer runs the bottom-up pass (:func:`tree_lstm`, one layer), then a top-down pass, root
    first: an ``nn.LSTMCell`` step at every node whose input is the node's bottom-up ``h`` and whose
    previous state is its parent's top-down state (zeros at a root). The layer's output is
    ``[h_up, h_down]``.

    Args:
        layer_params: per layer ``(up, down)``, each ``(weight_ih, weight_hh, bias_ih, bias_hh)``.
        parents, x, positions, arity: as in :func:`tree_lstm`.

    Returns:
        output ``[num_nodes, 2H]`` and ``(h_n, c_n)`` ``[2 * num_layers, num_trees, H]``: row
        ``2k`` the bottom-up state of layer ``k`` at each root, row ``2k + 1`` the top-down one.
    """
    offsets, total = [], 0
    for p in parents:
        offsets.append(total)
        total += len(p)
    layer_input = x
    h_n, c_n = [], []
    for up_params, down_params in layer_params:
        h_up, (h_up_n, c_up_n) = tree_lstm([up_params], cell, parents, layer_input, positions,
                                           arity)
        down = {}
        for t, parent in enumerate(parents):
            for v in top_down_order(parent):
                above = None if parent[v] < 0 else down[offsets[t] + parent[v]]
                down[offsets[t] + v] = lstm_cell_step(down_params, h_up[offsets[t] + v], above)
        h_down = torch.stack([down[v][0] for v in range(total)])
        roots = [offsets[t] + parent.index(-1) for t, parent in enumerate(parents)]
        h_n += [h_up_n[0], torch.stack([down[r][0] for r in roots])]
        c_n += [c_up_n[0], torch.stack([down[r][1] for r in roots])]
        layer_input = torch.cat([h_up, h_down], dim=1)
    return layer_input, (torch.stack(h_n), torch.stack(c_n))
