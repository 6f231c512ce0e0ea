"""The top-down pass of a bidirectional layer: an LSTM step per node from its parent's state,
depth by depth, with plain autograd."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from .. import functional
from ..batch import TreeBatch


def top_down_layer(batch: TreeBatch, input: Tensor, weight_ih: Tensor, weight_hh: Tensor,
                   bias_ih: Optional[Tensor], bias_hh: Optional[Tensor]) -> tuple[Tensor, Tensor]:
    """Run the top-down pass of a bidirectional layer: an LSTM step at every node whose previous
    state is its parent's (zero at roots), depth by depth
    (:attr:`~treelstm.TreeBatch.depth_order`), with plain autograd.

    Args:
        input: ``[num_nodes, H_in]``, rows in batch node order (the bottom-up ``h``).
        weight_ih: ``[4H, H_in]``; ``weight_hh`` ``[4H, H]``; biases ``[4H]`` or ``None``.

    Returns:
        ``h, c``: ``[num_nodes, H]`` each, rows in batch node order.
    """
    order = batch.depth_order
    bounds, num_roots = order.bounds, order.bounds[1]
    x_gates = functional.input_gates(input.index_select(0, order.nodes), weight_ih, bias_ih)
    # An arity-1 N-ary cell is an LSTMCell; the roots' previous state is zero (a leaf step).
    # When the roots are all there is, the zero state goes through U all the same: weight_hh
    # then gets a zero gradient, not none (DDP expects a gradient for every parameter).
    zero = None if len(bounds) > 2 else x_gates.new_zeros(num_roots, 1, weight_hh.shape[1])
    h, c = functional.nary_cell(x_gates[:num_roots], zero, zero, weight_hh, bias_hh, 1)
    h_depths, c_depths = [h], [c]
    for d in range(1, len(bounds) - 1):
        start, stop = bounds[d], bounds[d + 1]
        parent = order.parent_offset[start - num_roots:stop - num_roots]
        h, c = functional.nary_cell(x_gates[start:stop], h.index_select(0, parent).unsqueeze(1),
                                    c.index_select(0, parent).unsqueeze(1), weight_hh, bias_hh, 1)
        h_depths.append(h)
        c_depths.append(c)
    return (torch.cat(h_depths).index_select(0, order.row),
            torch.cat(c_depths).index_select(0, order.row))
