r"""The Tree-LSTM cell math as pure functions, shared by the cells and both executors.

Gate order is ``nn.LSTM``'s: input ``i``, forget ``f``, cell candidate ``g`` (Tai et al.'s ``u``),
output ``o``. ``x_gates`` always means the input projection ``W_ih x + b_ih`` of a node, shape
``[n, 4H]``; a node without input has ``x_gates = b_ih`` (or zeros without bias).

A step is split the same way for every caller -- the dense cells, the native engine (level by
level), DGL (message / reduce / apply): pre-activations (:func:`leaf_preactivation`,
:func:`nary_preactivation`, :func:`childsum_preactivation` and :func:`childsum_forget`, with the
biases of :func:`leaf_bias` and :func:`nary_bias_without_input`), then the node update from
pre-activations to the new ``h, c`` (:func:`leaf_state`, :func:`childsum_state`,
:func:`nary_state`), which is the gate nonlinearities (:func:`gates`), the forget terms
(:func:`forget_sum`, :func:`edge_forget_sum`) and the new state (:func:`state`). The native
engine's inference path fuses the node update into fewer ops (:func:`nary_state_fused`). Its
hand-written backward uses :func:`state_backward_factors` and :func:`forget_backward_factor`,
the derivatives of the same functions, laid out by :func:`backward_factors` and applied by
:func:`preactivation_grads`. Some functions take
``out=`` (or ``inplace=True``) so that the engine writes into preallocated buffers; those paths
are for code that runs without autograd.

Child-Sum (Tai, Socher & Manning 2015, eqs. 2-7), children ``k`` of a node:

.. math::
    \begin{array}{ll}
    f_k = \sigma(W_f x + U_f h_k + b_f) & \text{(per child)} \\
    (i, g, o) = (\sigma, \tanh, \sigma)\big(W_{iog} x + U_{iog} \textstyle\sum_k h_k + b_{iog}\big) \\
    c = i \odot g + \textstyle\sum_k f_k \odot c_k, \qquad h = o \odot \tanh(c)
    \end{array}

N-ary (eqs. 9-14): the children's hidden states are concatenated in slot order (zeros for empty
slots), ``weight_hh`` has row blocks ``i | f_1..f_N | g | o``, and ``W_f x`` is shared by the ``N``
forget gates.

A leaf has no children: no forget gate and no ``U h``, so only the ``i | g | o`` blocks of its
``x_gates`` are used.
"""
from __future__ import annotations

from typing import Optional, cast

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


def iog(gates_or_rows: Tensor, hidden_size: int, num_forget: int = 1, dim: int = -1) -> Tensor:
    """The ``i | g | o`` blocks of a tensor laid out ``i | f_1..f_K | g | o`` along ``dim``
    (``K = num_forget``): ``x_gates`` columns, ``weight_ih`` / ``weight_hh`` rows, biases."""
    return torch.cat([gates_or_rows.narrow(dim, 0, hidden_size),
                      gates_or_rows.narrow(dim, (num_forget + 1) * hidden_size, 2 * hidden_size)],
                     dim)


def expand_iog(iog_rows: Tensor) -> Tensor:
    """``[..., 3H]`` ``i | g | o`` -> ``[..., 4H]`` ``i | f | g | o`` with zeros in ``f``: the
    inverse of :func:`iog` where the ``f`` columns have no part (e.g. the gradients of a
    projection whose ``f`` columns no leaf uses)."""
    hidden_size = iog_rows.shape[-1] // 3
    return torch.cat([iog_rows[..., :hidden_size],
                      iog_rows.new_zeros(*iog_rows.shape[:-1], hidden_size),
                      iog_rows[..., hidden_size:]], -1)


def tanh(x: Tensor) -> Tensor:
    """``torch.tanh``. (This was ``2 σ(2x) - 1`` while torch's CPU ``tanh`` was slower than its
    ``sigmoid``; with torch 2.13 on an AVX-512 CPU, ``torch.tanh`` of ``[n, 150]`` float32 is
    3-8x as fast as that formula -- one vectorised kernel, no temporaries.)"""
    return torch.tanh(x)


def gates(preactivation: Tensor, num_forget: int, hidden_size: Optional[int] = None,
          inplace: bool = False) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The gate nonlinearities: ``preactivation`` ``[n, (K+3)H]`` with blocks
    ``i | f_1..f_K | g | o`` (``K = num_forget``; ``K = 0`` for ``i | g | o``); returns
    ``i = σ(.)`` ``[n, H]``, ``f = σ(.)`` ``[n, K, H]``, ``g = tanh(.)`` ``[n, H]``, ``o = σ(.)``
    ``[n, H]``, views of one ``[n, (K+3)H]`` tensor (``g`` too with ``inplace``).

    With ``hidden_size`` given, columns after the ``(K+3)H`` are ignored (padding).
    ``inplace=True`` (no autograd) overwrites ``preactivation`` with the activations.
    """
    if hidden_size is None:
        hidden_size = preactivation.shape[-1] // (num_forget + 3)
    cell_block = preactivation[..., (num_forget + 1) * hidden_size:(num_forget + 2) * hidden_size]
    # One σ over the whole contiguous block (g's columns too) beats three on strided column slices.
    if inplace:
        cell = torch.tanh(cell_block)
        sigmoid = preactivation.sigmoid_()
        cell = cell_block.copy_(cell)
    else:
        sigmoid = torch.sigmoid(preactivation)
        cell = tanh(cell_block)
    i, forget, _, o = gates_views(sigmoid, num_forget, hidden_size)
    return i, forget, cell, o


def gates_views(activations: Tensor, num_forget: int, hidden_size: int
                ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``i``, ``f`` ``[n, K, H]``, ``g``, ``o``: views of the blocks of ``[n, (K+3)H]`` activations
    (or pre-activations)."""
    block = (num_forget + 1) * hidden_size
    forget = activations[..., hidden_size:block].unflatten(-1, (num_forget, hidden_size))
    return (activations[..., :hidden_size], forget, activations[..., block:block + hidden_size],
            activations[..., block + hidden_size:block + 2 * hidden_size])


def state(input_gate: Tensor, cell_gate: Tensor, output_gate: Tensor,
          forget_sum: Optional[Tensor], out: Optional[tuple[Tensor, Tensor]] = None
          ) -> tuple[Tensor, Tensor]:
    """``c = i * g + sum_k f_k * c_k``, ``h = o * tanh(c)``, from the activated gates and
    ``forget_sum = sum_k f_k * c_k`` (``None`` for a leaf); all ``[n, H]``. Returns ``h, c``,
    written into ``out = (h, c)`` if given (no autograd)."""
    h_out, c_out = (None, None) if out is None else out
    if forget_sum is None:
        c = torch.mul(input_gate, cell_gate, out=c_out)
    else:
        c = torch.addcmul(forget_sum, input_gate, cell_gate, out=c_out)
    return torch.mul(output_gate, tanh(c), out=h_out), c


def forget_sum(forget: Tensor, child_c: Tensor) -> Tensor:
    """``sum_k f_k * c_k`` over the slots of ``forget`` and ``child_c`` ``[n, K, H]``: ``[n, H]``."""
    total = forget[..., 0, :] * child_c[..., 0, :]
    for k in range(1, forget.shape[-2]):
        total = total.addcmul_(forget[..., k, :], child_c[..., k, :])
    return total


def edge_forget_sum(forget: Tensor, child_c: Tensor, parent: Tensor, num_parents: int) -> Tensor:
    """``sum_k f_k * c_k`` with the children given as edges: ``forget``, ``child_c`` ``[E, H]``,
    ``parent`` ``[E]`` each edge's parent in ``0..num_parents-1``. Returns ``[num_parents, H]``."""
    return forget.new_zeros(num_parents, forget.shape[-1]).index_add_(0, parent, forget * child_c)


def childsum_state(preactivation: Tensor, forget_sum: Optional[Tensor],
                   hidden_size: Optional[int] = None, out: Optional[tuple[Tensor, Tensor]] = None
                   ) -> tuple[Tensor, Tensor]:
    """The new ``h, c`` ``[n, H]`` of Child-Sum nodes from their ``i | g | o`` pre-activations
    ``[n, 3H]`` (more columns, ignored, with ``hidden_size`` given) and
    ``forget_sum = sum_k f_k * c_k`` ``[n, H]`` (``None`` for leaves). With ``out = (h, c)`` (no
    autograd) the state is written there and the pre-activations become the activations."""
    i, _, g, o = gates(preactivation, 0, hidden_size, inplace=out is not None)
    return state(i, g, o, forget_sum, out=out)


def leaf_state(preactivation: Tensor, hidden_size: Optional[int] = None,
               out: Optional[tuple[Tensor, Tensor]] = None) -> tuple[Tensor, Tensor]:
    """The ``h, c`` of leaves (of either cell) from their ``i | g | o`` pre-activations:
    ``c = i * g``, ``h = o * tanh(c)``. Arguments as :func:`childsum_state`'s."""
    return childsum_state(preactivation, None, hidden_size, out)


def nary_state(preactivation: Tensor, child_c: Tensor, arity: int,
               hidden_size: Optional[int] = None, out: Optional[tuple[Tensor, Tensor]] = None
               ) -> tuple[Tensor, Tensor]:
    """The new ``h, c`` ``[n, H]`` of N-ary nodes from their pre-activations ``[n, (N+3)H]``
    (blocks ``i | f_1..f_N | g | o``; more columns, ignored, with ``hidden_size`` given) and their
    children's ``child_c`` ``[n, N, H]`` in slot order. With ``out = (h, c)`` (no autograd) the
    state is written there and the pre-activations become the activations."""
    i, forget, g, o = gates(preactivation, arity, hidden_size, inplace=out is not None)
    return state(i, g, o, forget_sum(forget, child_c), out=out)


def nary_state_fused(preactivation: Tensor, child_c: Optional[Tensor], arity: int,
                     hidden_size: int, out: tuple[Tensor, Tensor],
                     keep_activations: bool = False) -> tuple[Tensor, Tensor]:
    """:func:`nary_state` with ``out`` (no autograd), in fewer ops: ``child_c`` ``[n, N*H]``
    (slots concatenated), ``preactivation`` ``[n, W]`` with ``W >= (N+3)H`` (columns after
    ``(N+3)H`` are padding, and it is overwritten). ``g = tanh(u)`` is taken first, then one
    ``σ`` over the whole contiguous block gives ``i``, ``f_k`` and ``o``::

        c = i g + sum_k f_k c_k
        h = o tanh(c)

    With ``arity=0`` (and ``child_c=None``) the blocks are ``i | g | o``: :func:`leaf_state`.
    With ``keep_activations`` the pre-activations become the activations ``i | f_k | g | o``
    (``tanh`` in the ``g`` block: what a backward needs, as :func:`nary_state` leaves them);
    else the ``g`` block holds ``σ(u)``, of no use.

    Why: in small batches much of a level's time is per op, not per element: a ``σ`` on strided
    column slices is 2-3x as slow as one over the contiguous block, and the blocks are cut by
    one ``split`` each rather than a slice per block. Same values as :func:`nary_state` up to
    rounding."""
    h_out, c_out = out
    blocks = preactivation.split_with_sizes(
        [hidden_size] * (arity + 3) + [preactivation.shape[1] - (arity + 3) * hidden_size], 1)
    g = torch.tanh(blocks[arity + 1])
    preactivation.sigmoid_()  # the blocks are views: i, f_k, o are now gates
    if keep_activations:
        g = blocks[arity + 1].copy_(g)
    c = torch.mul(blocks[0], g, out=c_out)
    if arity:  # unbind: a native op (Tensor.split is Python, ~4 us a call in small levels)
        child_c = cast(Tensor, child_c)
        slots = child_c.view(child_c.shape[0], arity, hidden_size).unbind(1)
        for k, c_k in enumerate(slots):
            c.addcmul_(blocks[k + 1], c_k)
    torch.tanh(c, out=h_out).mul_(blocks[arity + 2])
    return h_out, c


def state_backward_factors(input_gate: Tensor, cell_gate: Tensor, output_gate: Tensor, c: Tensor,
                           out: Optional[tuple[Tensor, Tensor, Tensor]] = None
                           ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The parts of the backward of :func:`gates` (``i, g, o``) and :func:`state` that do not
    depend on the incoming gradients, so that a hand-written backward computes them for all
    nodes at once and only multiplies level by level. With ``grad_h``, ``grad_c`` the gradients
    of ``h`` and ``c``:

    - ``grad_c_total = grad_c + grad_h * through`` is the whole gradient of ``c`` (the forget
      terms get it: see :func:`forget_backward_factor`);
    - the pre-activations of ``i``, ``g``, ``o`` get ``grad_c_total * d_i``,
      ``grad_c_total * d_g``, ``grad_h * d_o``.

    Returns ``through, d_i, d_g, d_o``, all ``[n, H]`` (the last three written into ``out`` if
    given; no autograd).
    """
    d_i, d_g, d_o = (None, None, None) if out is None else out
    tanh_c = tanh(c)
    # s (1 - s) as s - s * s: one pass (addcmul) instead of two
    through = torch.addcmul(output_gate, output_gate, tanh_c * tanh_c, value=-1)
    d_i = torch.mul(torch.addcmul(input_gate, input_gate, input_gate, value=-1), cell_gate,
                    out=d_i)
    d_g = torch.addcmul(input_gate, input_gate * cell_gate, cell_gate, value=-1, out=d_g)
    d_o = torch.mul(torch.addcmul(output_gate, output_gate, output_gate, value=-1), tanh_c,
                    out=d_o)
    return through, d_i, d_g, d_o


def forget_backward_factor(forget: Tensor, child_c: Tensor, out: Optional[Tensor] = None) -> Tensor:
    """The forget terms ``f_k * c_k`` (``f_k = σ(.)``) in the backward: the forget gate's
    pre-activation gets ``grad_c_total * factor`` with ``factor = c_k * f_k * (1 - f_k)``
    returned here, and the child's ``c_k`` gets ``grad_c_total * f_k`` (``grad_c_total`` the
    parent's, see :func:`state_backward_factors`)."""
    return torch.mul(torch.addcmul(forget, forget, forget, value=-1), child_c, out=out)


def backward_factors(activations: Tensor, num_forget: int, hidden_size: int, c: Tensor,
                     child_c: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    """:func:`state_backward_factors` and :func:`forget_backward_factor` for nodes with
    activations ``i | f_1..f_K | g | o`` ``[n, (K+3)H]`` (more columns: padding, whose factors
    are zero), their ``c`` ``[n, H]`` and ``child_c`` ``[n, K, H]`` (``K = 0``: none). Returns
    ``through`` ``[n, H]`` and ``factors`` laid out like ``activations``, to be turned into the
    pre-activation gradients by :func:`preactivation_grads` (no autograd)."""
    n, block = activations.shape[0], (num_forget + 1) * hidden_size
    i, forget, g, o = gates_views(activations, num_forget, hidden_size)
    factors = activations.new_empty(activations.shape)
    factors[:, (num_forget + 3) * hidden_size:] = 0
    through, *_ = state_backward_factors(
        i, g, o, c, out=(factors[:, :hidden_size], factors[:, block:block + hidden_size],
                         factors[:, block + hidden_size:block + 2 * hidden_size]))
    if num_forget:  # nodes with children: child_c is given
        forget_backward_factor(
            forget, cast(Tensor, child_c),
            out=factors[:, hidden_size:block].view(n, num_forget, hidden_size))
    return through, factors


def preactivation_grads(factors: Tensor, through: Tensor, grad_h: Tensor, grad_c: Tensor,
                        num_forget: int, hidden_size: int) -> Tensor:
    """In place, the :func:`backward_factors` ``factors`` become the gradients of the
    pre-activations, given those of ``h`` and ``c`` ``[n, H]``: ``factors * grad_c_total`` in
    the blocks ``i | f_1..f_K | g``, ``factors * grad_h`` in ``o``. Returns
    ``grad_c_total = grad_c + grad_h * through``, whose ``f_k`` share goes to child ``k``'s
    ``c``."""
    grad_c_total = torch.addcmul(grad_c, grad_h, through)
    output = (num_forget + 2) * hidden_size
    factors[:, :output].view(factors.shape[0], -1, hidden_size).mul_(grad_c_total.unsqueeze(1))
    factors[:, output:output + hidden_size].mul_(grad_h)
    return grad_c_total


def _sum_present(*tensors: Optional[Tensor]) -> Optional[Tensor]:
    present = [t for t in tensors if t is not None]
    return sum(present[1:], present[0]) if present else None


def leaf_bias(bias_ih: Optional[Tensor], bias_hh: Optional[Tensor], num_forget: int = 1
              ) -> Optional[Tensor]:
    """The bias of leaves' ``i | g | o`` pre-activations, ``[3H]``: the ``i | g | o`` blocks of
    ``b_ih`` and of ``b_hh`` (row blocks ``i | f_1..f_K | g | o``), for an input projection
    without bias (``None`` without biases)."""
    hidden_size = (bias_ih.shape[-1] // 4 if bias_ih is not None
                   else None if bias_hh is None else bias_hh.shape[-1] // (num_forget + 3))
    # hidden_size is None only when both biases are, and then neither iog() runs
    return _sum_present(None if bias_ih is None else iog(bias_ih, cast(int, hidden_size)),
                        None if bias_hh is None else iog(bias_hh, cast(int, hidden_size),
                                                         num_forget))


def leaf_preactivation(x_gates: Tensor, bias_hh: Optional[Tensor], num_forget: int = 1) -> Tensor:
    """``i | g | o`` pre-activations of leaves, ``[n, 3H]``: ``x_gates`` ``[n, 4H]`` (or ``[4H]``)
    plus the ``i | g | o`` blocks of ``bias_hh`` (row blocks ``i | f_1..f_K | g | o``,
    ``K = num_forget``: the arity of an N-ary cell, 1 for Child-Sum)."""
    hidden_size = x_gates.shape[-1] // 4
    preactivation = iog(x_gates, hidden_size)
    if bias_hh is not None:
        preactivation = preactivation + iog(bias_hh, hidden_size, num_forget)
    return preactivation


def expand_forget(x_gates: Tensor, arity: int) -> Tensor:
    """``[..., 4H]`` ``i | f | g | o`` -> ``[..., (N+3)H]`` ``i | f..f | g | o``: the input's
    forget term is shared by the ``N`` forget gates of an N-ary node."""
    hidden_size = x_gates.shape[-1] // 4
    forget = x_gates[..., hidden_size:2 * hidden_size]
    return torch.cat([x_gates[..., :hidden_size]] + [forget] * arity
                     + [x_gates[..., 2 * hidden_size:]], -1)


def expand_forget_backward(grad: Tensor, arity: int) -> Tensor:
    """The backward of :func:`expand_forget`: ``[..., (N+3)H]`` -> ``[..., 4H]``, the ``N`` forget
    blocks summed (the input's forget term serves all ``N`` forget gates)."""
    hidden_size = grad.shape[-1] // (arity + 3)
    forget = grad[..., hidden_size:(arity + 1) * hidden_size].unflatten(-1, (arity, hidden_size))
    return torch.cat([grad[..., :hidden_size], forget.sum(-2),
                      grad[..., (arity + 1) * hidden_size:]], -1)


def nary_bias_without_input(bias_ih: Optional[Tensor], bias_hh: Optional[Tensor], arity: int
                            ) -> Optional[Tensor]:
    """The bias of N-ary nodes without input, ``[(N+3)H]``: their ``x_gates`` are ``b_ih``,
    folded into ``b_hh`` once (``b_hh + expand_forget(b_ih)``; ``None`` without biases), for
    :func:`nary_preactivation` with ``x_gates=None``."""
    return _sum_present(bias_hh, None if bias_ih is None else expand_forget(bias_ih, arity))


def nary_preactivation(x_gates: Optional[Tensor], child_h: Tensor, weight_hh: Tensor,
                       bias_hh: Optional[Tensor], arity: int, out: Optional[Tensor] = None
                       ) -> Tensor:
    """``W_ih x + b_ih + U [h_1; ..; h_N] + b_hh`` of N-ary nodes, blocks ``i | f_1..f_N | g | o``.

    ``x_gates`` ``[n, 4H]``, or ``None`` for nodes without input when ``bias_hh`` already holds
    ``b_hh + expand_forget(b_ih)`` (one pass less); ``child_h`` ``[n, N*H]`` (slots concatenated).
    Returns ``[n, (N+3)H]`` (more columns if ``weight_hh`` has padding rows), in ``out`` if given
    (no autograd).
    """
    if bias_hh is None:
        preactivation = torch.mm(child_h, weight_hh.t(), out=out)
    else:
        preactivation = torch.addmm(bias_hh, child_h, weight_hh.t(), out=out)
    if x_gates is not None:
        expanded = expand_forget(x_gates, arity)
        preactivation[..., :expanded.shape[-1]] += expanded
    return preactivation


def childsum_forget(child_h: Tensor, parent_x_forget: Tensor, weight_hh: Tensor,
                    bias_hh: Optional[Tensor], out: Optional[Tensor] = None) -> Tensor:
    """Forget gate of each child of a Child-Sum node, ``σ(W_f x + b_if + U_f h_k + b_hf)``.

    ``child_h`` ``[*, H]``; ``parent_x_forget`` the ``f`` block of the parent's ``x_gates``
    (broadcastable); ``weight_hh`` ``[4H, H]``. Returns ``[*, H]`` (in ``out`` if given, no
    autograd). A zero child (``h_k = c_k = 0``) adds nothing to ``sum_k f_k c_k``, so padding rows
    are neutral.
    """
    hidden_size = child_h.shape[-1]
    rows = slice(hidden_size, 2 * hidden_size)
    preactivation = F.linear(child_h, weight_hh[rows], None if bias_hh is None else bias_hh[rows])
    return torch.sigmoid(preactivation + parent_x_forget, out=out)


def childsum_preactivation(x_gates: Tensor, h_sum: Optional[Tensor], weight_hh: Tensor,
                           bias_hh: Optional[Tensor], out: Optional[Tensor] = None) -> Tensor:
    """``i | g | o`` pre-activations of Child-Sum nodes, ``W x + U sum_k h_k + b``: ``x_gates``
    ``[n, 4H]`` (or ``[4H]``), ``h_sum`` ``[n, H]`` (``None`` for leaves). Returns ``[n, 3H]``, in
    ``out`` if given (no autograd)."""
    preactivation = leaf_preactivation(x_gates, bias_hh)
    if h_sum is None:
        return preactivation
    weight = iog(weight_hh, h_sum.shape[-1], dim=0)
    if preactivation.dim() == 1:  # the same for every node: the bias of one product
        return torch.addmm(preactivation, h_sum, weight.t(), out=out)
    result = torch.mm(h_sum, weight.t(), out=out)
    result += preactivation
    return result


def childsum_cell(x_gates: Tensor, child_h: Optional[Tensor], child_c: Optional[Tensor],
                  weight_hh: Tensor, bias_hh: Optional[Tensor]) -> tuple[Tensor, Tensor]:
    """A Child-Sum step with dense children ``[n, K, H]`` (``None`` for leaves)."""
    if child_h is None:
        return leaf_state(leaf_preactivation(x_gates, bias_hh))
    hidden_size = child_h.shape[-1]
    forget = childsum_forget(child_h, x_gates[..., None, hidden_size:2 * hidden_size],
                             weight_hh, bias_hh)
    preactivation = childsum_preactivation(x_gates, child_h.sum(-2), weight_hh, bias_hh)
    return childsum_state(preactivation, (forget * cast(Tensor, child_c)).sum(-2))  # with child_h


def nary_cell(x_gates: Tensor, child_h: Optional[Tensor], child_c: Optional[Tensor],
              weight_hh: Tensor, bias_hh: Optional[Tensor], arity: int) -> tuple[Tensor, Tensor]:
    """An N-ary step. Shapes: x_gates ``[n, 4H]``, child_h / child_c ``[n, N, H]`` in slot order
    (zeros for empty slots; ``None`` for leaves); returns ``h, c`` ``[n, H]``."""
    if child_h is None:
        return leaf_state(leaf_preactivation(x_gates, bias_hh, arity))
    preactivation = nary_preactivation(x_gates, child_h.flatten(-2), weight_hh, bias_hh, arity)
    return nary_state(preactivation, cast(Tensor, child_c), arity)  # given with child_h
