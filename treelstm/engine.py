"""Native executor: level-scheduled, bottom-up, in plain torch (CPU and CUDA).

Each level of :attr:`TreeBatch.levels` is one fused step over all its nodes in all trees: one
gather of the children's states, one matrix product for the children's ``U h``, the gate math of
:mod:`treelstm.functional`, and an in-place write of the new states into two preallocated
``[num_nodes, H]`` buffers (so activations stay O(num_nodes * H), not O(levels * num_nodes * H)).
"""
from __future__ import annotations

from typing import Optional

from torch import Tensor

from . import functional
from .batch import TreeBatch


def run_layer(batch: TreeBatch, x_gates: Tensor, weight_hh: Tensor, bias_hh: Optional[Tensor],
              cell: str, arity: Optional[int] = None) -> tuple[Tensor, Tensor]:
    """Run one Tree-LSTM layer over ``batch``.

    Args:
        x_gates: ``[num_nodes, 4H]``, each node's ``W_ih x + b_ih``.
        cell: ``"childsum"`` or ``"nary"`` (with ``arity``).

    Returns:
        ``h, c``: ``[num_nodes, H]`` each, rows in batch node order.
    """
    hidden_size = x_gates.shape[1] // 4
    h_all = c_all = None
    for level in batch.levels:
        level_x_gates = x_gates.index_select(0, level.nodes)
        if level.child.numel() == 0:  # leaves
            if cell == "childsum":
                h, c = functional.childsum_update(level_x_gates, None, None, bias_hh)
            else:
                h, c = functional.nary_cell(level_x_gates, None, None, weight_hh, bias_hh, arity)
        elif cell == "childsum":
            hh, fc = functional.childsum_message(
                h_all.index_select(0, level.child), c_all.index_select(0, level.child),
                level_x_gates.index_select(0, level.child_parent), weight_hh, bias_hh)
            num_level_nodes = level.nodes.shape[0]
            hh_sum = hh.new_zeros(num_level_nodes, hh.shape[1]).index_add_(0, level.child_parent, hh)
            fc_sum = fc.new_zeros(num_level_nodes, hidden_size).index_add_(0, level.child_parent, fc)
            h, c = functional.childsum_update(level_x_gates, hh_sum, fc_sum, bias_hh)
        else:
            slot = level.child_parent * arity + level.child_position
            num_slots = level.nodes.shape[0] * arity
            child_h = h_all.new_zeros(num_slots, hidden_size).index_copy_(
                0, slot, h_all.index_select(0, level.child))
            child_c = c_all.new_zeros(num_slots, hidden_size).index_copy_(
                0, slot, c_all.index_select(0, level.child))
            h, c = functional.nary_cell(level_x_gates, child_h.view(-1, arity, hidden_size),
                                        child_c.view(-1, arity, hidden_size), weight_hh, bias_hh,
                                        arity)
        if h_all is None:  # level 0; under autocast the state dtype is known only now
            h_all = h.new_zeros(batch.num_nodes, hidden_size)
            c_all = c.new_zeros(batch.num_nodes, hidden_size)
        h_all.index_copy_(0, level.nodes, h)
        c_all.index_copy_(0, level.nodes, c)
    return h_all, c_all
