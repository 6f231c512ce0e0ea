r"""The Tree-LSTM cell math as pure functions, shared by the cells and both executors.

Gate order is ``nn.LSTM``'s: input ``i``, forget ``f``, cell candidate ``g`` (Tai et al.'s ``u``),
output ``o``. ``x_gates`` always means the input projection ``W_ih x + b_ih`` of a node, shape
``[n, 4H]``; a node without input has ``x_gates = b_ih`` (or zeros without bias).

Child-Sum (Tai, Socher & Manning 2015, eqs. 2-7) is split into a per-child *message* and a per-node
*update*, so that the dense cell (children ``[n, K, H]``), the native engine (one row per child
edge, summed with ``index_add``) and DGL (message / sum-reduce / apply) run the same code:

.. math::
    \begin{array}{ll}
    m_k = U h_k, \qquad f_k = \sigma(W_f x + U_f h_k + b_f), \qquad s_k = f_k \odot c_k
        & \text{(message of child } k\text{)} \\
    (i, g, o) = (\sigma, \tanh, \sigma)\big(W_{iog} x + \textstyle\sum_k (m_k)_{iog} + b_{iog}\big) \\
    c = i \odot g + \textstyle\sum_k s_k, \qquad h = o \odot \tanh(c) & \text{(node update)}
    \end{array}

N-ary (eqs. 9-14): the children's hidden states are concatenated in slot order (zeros for empty
slots), ``weight_hh`` has row blocks ``i | f_1..f_N | g | o``.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor


def input_gates(x: Tensor, weight_ih: Tensor, bias_ih: Optional[Tensor]) -> Tensor:
    """``W_ih x + b_ih``: ``[n, X] -> [n, 4H]``."""
    return F.linear(x, weight_ih, bias_ih)


def constant_input_gates(num_nodes: int, weight_ih: Tensor, bias_ih: Optional[Tensor]) -> Tensor:
    """The input gates of nodes that get no input: ``b_ih`` (or zeros), ``[num_nodes, 4H]``."""
    if bias_ih is None:
        return weight_ih.new_zeros(num_nodes, weight_ih.shape[0])
    return bias_ih.expand(num_nodes, -1)


def childsum_message(child_h: Tensor, child_c: Tensor, parent_x_gates: Tensor,
                     weight_hh: Tensor, bias_hh: Optional[Tensor]) -> tuple[Tensor, Tensor]:
    """Per-child terms of a Child-Sum node.

    Shapes (``*`` is ``[E]`` for one row per child edge, or ``[n, K]`` for dense children):
        child_h, child_c: ``[*, H]``; parent_x_gates: ``[*, 4H]`` (the parent's ``W_ih x + b_ih``,
        broadcastable); returns ``hh = U h_k`` ``[*, 4H]`` (its i, g, o blocks are summed at the
        parent) and ``f_k * c_k`` ``[*, H]``.

    A zero child (``h_k = c_k = 0``) contributes zero to both sums, so padding rows are neutral.
    """
    hidden_size = child_h.shape[-1]
    hh = F.linear(child_h, weight_hh)
    forget = parent_x_gates[..., hidden_size:2 * hidden_size] + hh[..., hidden_size:2 * hidden_size]
    if bias_hh is not None:
        forget = forget + bias_hh[hidden_size:2 * hidden_size]
    return hh, torch.sigmoid(forget) * child_c


def childsum_update(x_gates: Tensor, hh_sum: Optional[Tensor], fc_sum: Optional[Tensor],
                    bias_hh: Optional[Tensor]) -> tuple[Tensor, Tensor]:
    """Node update of a Child-Sum cell from the summed child messages (``None`` for a leaf).

    Shapes: x_gates ``[n, 4H]``, hh_sum ``[n, 4H]``, fc_sum ``[n, H]``; returns ``h, c`` ``[n, H]``.
    """
    gates = x_gates
    if hh_sum is not None:
        gates = gates + hh_sum
    if bias_hh is not None:
        gates = gates + bias_hh
    i, _, g, o = gates.chunk(4, dim=-1)
    c = torch.sigmoid(i) * torch.tanh(g)
    if fc_sum is not None:
        c = c + fc_sum
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, c


def childsum_cell(x_gates: Tensor, child_h: Optional[Tensor], child_c: Optional[Tensor],
                  weight_hh: Tensor, bias_hh: Optional[Tensor]) -> tuple[Tensor, Tensor]:
    """A Child-Sum step with dense children ``[n, K, H]`` (``None`` for leaves)."""
    if child_h is None:
        return childsum_update(x_gates, None, None, bias_hh)
    hh, fc = childsum_message(child_h, child_c, x_gates.unsqueeze(-2), weight_hh, bias_hh)
    return childsum_update(x_gates, hh.sum(dim=-2), fc.sum(dim=-2), bias_hh)


def nary_cell(x_gates: Tensor, child_h: Optional[Tensor], child_c: Optional[Tensor],
              weight_hh: Tensor, bias_hh: Optional[Tensor], arity: int) -> tuple[Tensor, Tensor]:
    """An N-ary step. Shapes: x_gates ``[n, 4H]``, child_h / child_c ``[n, N, H]`` in slot order
    (zeros for empty slots; ``None`` for leaves); returns ``h, c`` ``[n, H]``."""
    hidden_size = weight_hh.shape[1] // arity
    x_i, x_f, x_g, x_o = x_gates.chunk(4, dim=-1)
    if child_h is None:
        if bias_hh is None:
            h_i = h_g = h_o = 0.0
        else:
            h_i = bias_hh[:hidden_size]
            h_g = bias_hh[(arity + 1) * hidden_size:(arity + 2) * hidden_size]
            h_o = bias_hh[(arity + 2) * hidden_size:]
        c = torch.sigmoid(x_i + h_i) * torch.tanh(x_g + h_g)
        return torch.sigmoid(x_o + h_o) * torch.tanh(c), c
    hh = F.linear(child_h.flatten(-2), weight_hh, bias_hh)
    h_i, h_f, h_g, h_o = hh.split([hidden_size, arity * hidden_size, hidden_size, hidden_size], dim=-1)
    forget = torch.sigmoid(x_f.unsqueeze(-2) + h_f.unflatten(-1, (arity, hidden_size)))
    c = torch.sigmoid(x_i + h_i) * torch.tanh(x_g + h_g) + (forget * child_c).sum(dim=-2)
    h = torch.sigmoid(x_o + h_o) * torch.tanh(c)
    return h, c
