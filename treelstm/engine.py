"""Native executor: level-scheduled, bottom-up, in plain torch (CPU and CUDA).

Node states live in two ``[N + 1, H]`` buffers whose rows are the nodes level by level
(:attr:`TreeBatch.level_order <treelstm.batch.LevelOrder>`), so each level is one contiguous block
of rows, written once, in place; the extra row is the zero state of an empty N-ary slot. Each
level is one step over all its nodes in all trees: one gather of the children's states, one
matrix product for their ``U h`` written into a preallocated buffer of activations, and the node
update of :mod:`treelstm.functional`, in place. This module only schedules: every formula is a
function of :mod:`treelstm.functional`.

A layer is one :class:`torch.autograd.Function` (:func:`layer`). Its backward walks the levels
top-down by hand instead of letting autograd record and replay a dozen ops per level: the factors
of the derivatives that do not depend on the incoming gradients
(:func:`~treelstm.functional.backward_factors`) are computed for all nodes at once, then each
level is a few multiplications (:func:`~treelstm.functional.preactivation_grads`), one matrix
product and two ``index_add_`` into the children's gradient buffers. The weight gradients are one
matrix product each over all levels. Activations stay O(num_nodes * H).

Work skipped: leaves have no children, so no forget gate and no ``U h``; :func:`layer` projects
only the ``i | g | o`` rows of ``W_ih`` when every input row is a leaf (constituency trees), and
nodes without input get ``b_ih`` folded into the bias of their ``U h`` product. A Child-Sum node
multiplies ``U_{iog}`` with the *sum* of its children's ``h`` once, and only ``U_f`` per child.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from . import functional
from .batch import TreeBatch


@dataclass(frozen=True, eq=False)
class _Plan:
    """A layer's non-tensor arguments: the schedule and where each projected input row goes."""

    batch: TreeBatch
    cell: str
    hidden_size: int
    num_forget: int  # forget row blocks of weight_hh: the arity (N-ary), 1 (Child-Sum)
    input_rows: Tensor  # [M] the level-order row of each input row (distinct)
    leaves_only: bool  # every input row is a leaf: project i | g | o only (3H + padding)
    identity_rows: bool  # input_rows == 0..M-1, M all rows of the input buffer
    gather: Optional[Tensor] = None  # [M] the row of `input` each input node reads (else j)
    # inference with a cached table: the table and cache, for the leaves' per-word terms
    table: Optional[Tensor] = None
    cache: Optional["ProjectionCache"] = None
    weights: tuple = ()  # the layer's weight_ih, weight_hh, bias_ih, bias_hh as given

    @property
    def num_leaves(self) -> int:
        return self.batch.level_order.bounds[1]


def layer(batch: TreeBatch, input: Tensor, weight_ih: Tensor, weight_hh: Tensor,
          bias_ih: Optional[Tensor], bias_hh: Optional[Tensor], cell: str,
          arity: Optional[int] = None, input_index: Optional[Tensor] = None,
          input_rows: Optional[Tensor] = None, cache: Optional["ProjectionCache"] = None
          ) -> tuple[Tensor, Tensor]:
    """Run one Tree-LSTM layer over ``batch`` from the layer's input.

    ``W_ih x`` is computed once per input row -- only its ``i | g | o`` rows when every input row
    is a leaf -- and nowhere else: nodes without input get ``b_ih``.

    Args:
        input: ``[N, X]``, one row per node in batch node order; or ``[M, X]`` with
            ``input_index`` ``[M]``, distinct node ids (checked by the caller); or ``[V, X]``, a
            table (e.g. of word vectors), with ``input_index`` ``[M]`` and ``input_rows`` ``[M]``:
            node ``input_index[j]`` reads row ``input_rows[j]``.
        cell: ``"childsum"`` or ``"nary"`` (with ``arity``).
        cache: with ``input_rows`` and without autograd, keeps the projection of the whole
            table for the next calls (see :class:`ProjectionCache`).

    Returns:
        ``h, c``: ``[num_nodes, H]`` each, rows in batch node order.
    """
    if input_rows is None:
        cache = None  # only a table read through input_rows is kept
    else:
        if _needs_grad(input, weight_ih, weight_hh, bias_ih, bias_hh) or cache is None or \
                not cache.fits(input, weight_ih):
            cache = None  # project the distinct rows only, each once
            distinct, input_rows = torch.unique(input_rows, return_inverse=True)
            input = input.index_select(0, distinct)
    order = batch.level_order
    rows = order.row if input_index is None else order.row.index_select(0, input_index)
    leaves_only = rows.numel() == 0 or int(rows.max()) < order.bounds[1]
    num_rows = order.bounds[1] if leaves_only else batch.num_nodes  # rows of the input buffer
    plan = _Plan(batch, cell, weight_ih.shape[0] // 4, 1 if cell == "childsum" else arity, rows,
                 leaves_only, rows.shape[0] == num_rows and _is_identity(rows), input_rows)
    return _run(plan, input, weight_ih, weight_hh, bias_ih, bias_hh, cache)


def _needs_grad(*tensors: Optional[Tensor]) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _is_identity(rows: Tensor) -> bool:
    return bool(torch.equal(rows, torch.arange(rows.shape[0], device=rows.device)))


def _pad_rows(tensor: Tensor, multiple: int = 16) -> Tensor:
    """``tensor`` with zero rows appended up to a multiple of 16 rows. A product with it has rows
    of a multiple of 64 bytes, which MKL's float32 GEMM writes up to 1.7x as fast when it has many
    rows (450 or 750 columns are slow, 464 or 752 are not)."""
    return F.pad(tensor, [0, 0] * (tensor.dim() - 1) + [0, -tensor.shape[0] % multiple])


def _pad_column_blocks(weight: Tensor, num_blocks: int, multiple: int = 8) -> Tensor:
    """``weight`` ``[R, num_blocks * H]`` with each block of ``H`` columns padded with zero
    columns to a multiple of 8, for aligned rows in ``grad @ weight`` (see :func:`_pad_rows`)."""
    rows, width = weight.shape
    block = weight.view(rows, num_blocks, width // num_blocks)
    return F.pad(block, (0, -block.shape[2] % multiple)).view(rows, -1)


def _compute_dtype(input: Tensor) -> torch.dtype:
    """The states' dtype: autocast's for float32 input (autocast would run the projection so),
    else the input's."""
    device_type = input.device.type
    if input.dtype == torch.float32 and torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return input.dtype


def _cast(dtype: torch.dtype, *tensors: Optional[Tensor]) -> list[Optional[Tensor]]:
    return [None if t is None else t.to(dtype) for t in tensors]


def _projection_weight(leaves_only: bool, hidden_size: int, weight_ih: Tensor) -> Tensor:
    """The rows of ``weight_ih`` that are used: ``i | g | o`` (padded) when only leaves have input."""
    if leaves_only:
        return _pad_rows(functional.iog(weight_ih, hidden_size, dim=0))
    return weight_ih


class ProjectionCache:
    """The projection ``W_ih x`` of every row of an input table (e.g. an embedding's weight),
    kept between calls without autograd -- at inference each vocabulary word is projected once,
    not once per occurrence. Off unless ``enabled`` (:meth:`TreeLSTM.cache_projections`): turn
    it on for inference with fixed weights. It is recomputed when the table or a weight is
    another tensor, another dtype, or changed in place through autograd-tracked ops (an
    ordinary optimizer step, ``load_state_dict``); writes that bypass tensor version counters
    -- in-place writes through ``.data``, fused optimizer kernels -- cannot be seen:
    call :meth:`clear` after those. A table whose projection would take more than
    ``max_bytes`` is not cached (the distinct rows of each batch are projected instead).

    The N-ary engine also keeps, per word, what a leaf with that word adds to its parent's
    pre-activations in each child slot (``U_k h_leaf``), so that nodes whose children are all
    leaves need no matrix product (when that fits in ``max_bytes`` too).
    """

    def __init__(self, max_bytes: int = 256 * 2 ** 20, enabled: bool = False) -> None:
        self.max_bytes = max_bytes
        self.enabled = enabled
        self._kept: dict[str, tuple[tuple, Any]] = {}  # name -> (key, value)

    def fits(self, table: Tensor, weight_ih: Tensor) -> bool:
        """Whether ``table``'s projection may be cached (inference tensors have no version
        counter to tell a change by, so they are not)."""
        if not self.enabled or table.is_inference() or weight_ih.is_inference():
            return False
        return table.shape[0] * weight_ih.shape[0] * table.element_size() <= self.max_bytes

    def projection(self, table: Tensor, weight_ih: Tensor, dtype: torch.dtype,
                   leaves_only: bool) -> Tensor:
        """``table @ W.t()`` in ``dtype``, ``W`` the rows of ``weight_ih`` in use (see
        :func:`_projection_weight`), from the cache when all are unchanged."""
        def compute() -> Tensor:
            weight = _projection_weight(leaves_only, weight_ih.shape[0] // 4,
                                        weight_ih.to(dtype))
            return table.to(dtype).mm(weight.t())
        return self._kept_value("projection", (table, weight_ih), (dtype, leaves_only), compute)

    def leaf_terms(self, key_tensors: tuple[Optional[Tensor], ...], extra: tuple,
                   compute: Callable[[], Any]) -> Any:
        """``compute()``, kept while the tensors of ``key_tensors`` and ``extra`` are
        unchanged."""
        return self._kept_value("leaf_terms", key_tensors, extra, compute)

    def _kept_value(self, name: str, key_tensors: tuple[Optional[Tensor], ...], extra: tuple,
                    compute: Callable[[], Any]) -> Any:
        """The value kept under ``name`` if its key still holds, else ``compute()`` kept anew.
        A tensor's part of the key is its identity, version counter and storage address."""
        key = tuple((t, None if t is None else (t._version, t.data_ptr()))
                    for t in key_tensors) + extra
        kept = self._kept.get(name)
        if kept is None or len(kept[0]) != len(key) or any(
                _changed(a, b) for a, b in zip(key, kept[0])):
            self._kept.pop(name, None)  # free the old value first
            self._kept[name] = (key, compute())
        return self._kept[name][1]

    def clear(self) -> None:
        self._kept.clear()


def _changed(a: Any, b: Any) -> bool:
    """Whether two parts of a :class:`ProjectionCache` key differ (tensors by identity)."""
    if isinstance(a, tuple):
        return a[0] is not b[0] or a[1] != b[1]
    return a != b


def _forward(plan: _Plan, input: Tensor, weight_ih: Tensor, weight_hh: Tensor,
             bias_ih: Optional[Tensor], bias_hh: Optional[Tensor], keep: bool,
             cache: Optional[ProjectionCache] = None):
    """The forward: projection, then the levels. Returns level-order ``h_rows``, ``c_rows`` and,
    with ``keep``, the activations the backward needs (else each level's are dropped after use).

    The projection ``x_proj`` is always a new tensor (a product, or rows gathered from the
    cached one), so the levels add the biases into it in place.
    """
    dtype = _compute_dtype(input)
    table, weights = input, (weight_ih, weight_hh, bias_ih, bias_hh)
    with torch.autocast(input.device.type, enabled=False):  # the dtype is chosen here, once
        weight_ih, weight_hh, bias_ih, bias_hh = _cast(dtype, weight_ih, weight_hh, bias_ih,
                                                       bias_hh)
        if cache is not None and cache.fits(table, weight_ih):
            projection = cache.projection(table, weights[0], dtype, plan.leaves_only)
            x_proj = projection.index_select(0, plan.gather)
            plan = dataclasses.replace(plan, table=table, cache=cache, weights=weights)
        else:
            weight = _projection_weight(plan.leaves_only, plan.hidden_size, weight_ih)
            x_proj = input.to(dtype).mm(weight.t())
            if plan.gather is not None:
                x_proj = x_proj.index_select(0, plan.gather)
        return _FORWARD[plan.cell](plan, x_proj, weight_hh, bias_ih, bias_hh, keep)


def _run(plan: _Plan, input: Tensor, weight_ih: Tensor, weight_hh: Tensor,
         bias_ih: Optional[Tensor], bias_hh: Optional[Tensor],
         cache: Optional[ProjectionCache] = None) -> tuple[Tensor, Tensor]:
    tensors = (input, weight_ih, weight_hh, bias_ih, bias_hh)
    if _needs_grad(*tensors):
        return _Layer.apply(plan, *tensors)
    h_rows, c_rows, _ = _forward(plan, *tensors, keep=False, cache=cache)
    row = plan.batch.level_order.row
    return h_rows.index_select(0, row), c_rows.index_select(0, row)


class _Layer(torch.autograd.Function):
    """One layer: forward level by level, backward level by level over the saved activations."""

    @staticmethod
    def forward(ctx, plan: _Plan, input: Tensor, weight_ih: Tensor, weight_hh: Tensor,
                bias_ih: Optional[Tensor], bias_hh: Optional[Tensor]) -> tuple[Tensor, Tensor]:
        h_rows, c_rows, activations = _forward(plan, input, weight_ih, weight_hh, bias_ih,
                                               bias_hh, keep=True)
        ctx.plan, ctx.activations, ctx.h_rows, ctx.c_rows = plan, activations, h_rows, c_rows
        ctx.save_for_backward(input, weight_ih, weight_hh, bias_ih, bias_hh)
        row = plan.batch.level_order.row
        return h_rows.index_select(0, row), c_rows.index_select(0, row)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_h: Tensor, grad_c: Tensor):
        plan, h_rows = ctx.plan, ctx.h_rows
        input, weight_ih, weight_hh, bias_ih, bias_hh = ctx.saved_tensors
        dtype, nodes = h_rows.dtype, plan.batch.level_order.nodes
        # Gradients of h and c in level order (one more row: empty slots); the children's parts
        # are added level by level.
        grad_rows = []
        for grad in (grad_h, grad_c):
            rows = h_rows.new_empty(h_rows.shape)
            rows[-1] = 0
            torch.index_select(grad.to(dtype), 0, nodes, out=rows[:-1])
            grad_rows.append(rows)
        with torch.autocast(h_rows.device.type, enabled=False):
            grad_x_rows, grad_weight_hh, grad_bias_hh = _BACKWARD[plan.cell](
                plan, ctx.activations, h_rows, ctx.c_rows, *grad_rows, weight_hh.to(dtype))
            grad_x_proj = grad_x_rows if plan.identity_rows else grad_x_rows.index_select(
                0, plan.input_rows)
            if plan.gather is not None:  # rows read by several nodes add up
                grad_x_proj = grad_x_proj.new_zeros(input.shape[0], grad_x_proj.shape[1]) \
                    .index_add_(0, plan.gather, grad_x_proj)
            grad_input, grad_weight_ih = _projection_backward(
                plan, grad_x_proj, input.to(dtype), weight_ih.to(dtype))
        grad_bias_ih = None
        if bias_ih is not None:  # b_ih is added wherever b_hh is, once per forget gate
            grad_bias_ih = functional.expand_forget_backward(grad_bias_hh, plan.num_forget)
        grads = (grad_input, grad_weight_ih, grad_weight_hh, grad_bias_ih, grad_bias_hh)
        return (None,) + tuple(None if t is None or grad is None else grad.to(t.dtype)
                               for t, grad in zip(ctx.saved_tensors, grads))


def _projection_backward(plan: _Plan, grad_x_proj: Tensor, input: Tensor, weight_ih: Tensor
                         ) -> tuple[Tensor, Tensor]:
    """Gradients of ``input`` and ``weight_ih`` from those of the projected rows (``i | g | o``
    only, or ``i | f | g | o``)."""
    grad_weight = grad_x_proj.t().mm(input)
    if plan.leaves_only:
        hidden_size = plan.hidden_size
        weight_ih = functional.iog(weight_ih, hidden_size, dim=0)
        grad_weight = torch.cat([grad_weight[:hidden_size],
                                 grad_weight.new_zeros(hidden_size, grad_weight.shape[1]),
                                 grad_weight[hidden_size:]])
    # (W^T G^T)^T: rows as long as the batch, not X (300 floats are not 64-byte aligned; slow)
    return weight_ih.t().mm(grad_x_proj.t()).t(), grad_weight


# ----------------------------------------------------------------------------- shared steps
def _input_buffer(plan: _Plan, x_proj: Tensor, bias: Optional[Tensor], num_rows: int) -> Tensor:
    """``[num_rows, width]``: ``x_proj + bias`` in the level-order rows of the input nodes,
    ``bias`` in the others; ``x_proj`` itself (a new tensor, see :func:`_forward`) when it is
    already in that order."""
    if plan.identity_rows:
        return x_proj if bias is None else x_proj.add_(bias)
    if x_proj.shape[0] == num_rows:  # every row has input: no fill
        buffer = x_proj.new_empty(num_rows, x_proj.shape[1]).index_copy_(0, plan.input_rows,
                                                                          x_proj)
        return buffer if bias is None else buffer.add_(bias)
    buffer = x_proj.new_zeros(num_rows, x_proj.shape[1])
    if bias is not None:
        buffer += bias
    return buffer.index_add_(0, plan.input_rows, x_proj)


def _state_buffers(like: Tensor, num_nodes: int, hidden_size: int) -> tuple[Tensor, Tensor]:
    """``h_rows``, ``c_rows``: ``[N + 1, H]`` each, by level-order row, to be written level by
    level; the last row is zero, the state of an empty N-ary slot."""
    h_rows = like.new_empty(num_nodes + 1, hidden_size)
    c_rows = torch.empty_like(h_rows)
    h_rows[num_nodes] = 0
    c_rows[num_nodes] = 0
    return h_rows, c_rows


def _leaf_states(plan: _Plan, x_proj: Tensor, bias_ih: Optional[Tensor],
                 bias_hh: Optional[Tensor]) -> tuple[Tensor, Tensor, Optional[Tensor], Tensor]:
    """State buffers ``[N + 1, H]`` with the leaves (rows ``0..L-1``) done; the ``[N, 4H]`` input
    rows (``None`` when only leaves have input); the leaves' activations ``i | g | o``."""
    num_nodes, num_leaves, hidden_size = plan.batch.num_nodes, plan.num_leaves, plan.hidden_size
    if plan.leaves_only:  # x_proj holds i | g | o (+ padding): the leaves' pre-activations
        bias = functional.leaf_bias(bias_ih, bias_hh, plan.num_forget)
        x_rows = None
        activations = _input_buffer(plan, x_proj, None if bias is None else _pad_rows(bias),
                                    num_leaves)
    else:
        x_rows = _input_buffer(plan, x_proj, bias_ih, num_nodes)
        activations = functional.leaf_preactivation(x_rows[:num_leaves], bias_hh,
                                                    plan.num_forget)
    h_rows, c_rows = _state_buffers(activations, num_nodes, hidden_size)
    functional.leaf_state(activations, hidden_size, out=(h_rows[:num_leaves], c_rows[:num_leaves]))
    return h_rows, c_rows, x_rows, activations


def _leaf_backward(activations: Tensor, c_rows: Tensor, grad_h_rows: Tensor,
                   grad_c_rows: Tensor, num_leaves: int, hidden_size: int) -> Tensor:
    """``[L, 3H]`` gradients of the leaves' ``i | g | o`` pre-activations."""
    through, factors = functional.backward_factors(activations, 0, hidden_size,
                                                   c_rows[:num_leaves])
    functional.preactivation_grads(factors, through, grad_h_rows[:num_leaves],
                                   grad_c_rows[:num_leaves], 0, hidden_size)
    return factors[:, :3 * hidden_size]


def _grad_bias_hh(grad_igo_sum: Tensor, grad_forget_sum: Tensor) -> Tensor:
    """``b_hh``'s gradient, ``i | f_1..f_K | g | o``, from the summed gradients of the ``i | g | o``
    pre-activations (``[3H]``) and of the forget pre-activations (``[K*H]``)."""
    hidden_size = grad_igo_sum.shape[0] // 3
    return torch.cat([grad_igo_sum[:hidden_size], grad_forget_sum, grad_igo_sum[hidden_size:]])


def _grad_x_rows(plan: _Plan, grad_leaf: Tensor, grad_igo: Tensor, grad_forget: Tensor) -> Tensor:
    """``[N, 4H]`` gradients of all rows' input gates ``i | f | g | o`` (a leaf's ``f`` gets none)
    from the leaves' ``[L, 3H]`` and the internal rows' ``grad_igo`` ``[N - L, 3H]`` and
    ``grad_forget`` ``[N - L, H]``. (When only leaves have input, the leaves' alone serve.)"""
    num_leaves, hidden_size = plan.num_leaves, plan.hidden_size
    grad = grad_leaf.new_zeros(plan.batch.num_nodes, 4 * hidden_size)
    grad[:num_leaves, :hidden_size] = grad_leaf[:, :hidden_size]
    grad[:num_leaves, 2 * hidden_size:] = grad_leaf[:, hidden_size:]
    grad[num_leaves:, :hidden_size] = grad_igo[:, :hidden_size]
    grad[num_leaves:, hidden_size:2 * hidden_size] = grad_forget
    grad[num_leaves:, 2 * hidden_size:] = grad_igo[:, hidden_size:]
    return grad


# ----------------------------------------------------------------------------- N-ary
def _nary_forward(plan: _Plan, x_proj: Tensor, weight_hh: Tensor, bias_ih: Optional[Tensor],
                  bias_hh: Optional[Tensor], keep: bool
                  ) -> tuple[Tensor, Tensor, Optional[tuple[Tensor, Tensor]]]:
    arity, hidden_size, bounds = plan.num_forget, plan.hidden_size, plan.batch.level_order.bounds
    num_leaves = bounds[1]
    if not keep and plan.leaves_only:
        return _nary_inference(plan, x_proj, weight_hh, bias_ih, bias_hh)
    h_rows, c_rows, x_rows, leaf_activations = _leaf_states(plan, x_proj, bias_ih, bias_hh)
    if x_rows is None:  # no W_ih x above the leaves: b_ih joins b_hh
        bias_hh = functional.nary_bias_without_input(bias_ih, bias_hh, arity)
    weight_hh = _pad_rows(weight_hh)
    bias_hh = None if bias_hh is None else _pad_rows(bias_hh)
    slots = plan.batch.child_slots(arity)
    # Every internal row's activations i | f_1..f_N | g | o (+ padding), written level by level
    # (kept for the backward, or one level at a time).
    activations = h_rows.new_empty(plan.batch.num_nodes - num_leaves if keep else 0,
                                   weight_hh.shape[0])
    for k in range(1, len(bounds) - 1):
        start, stop = bounds[k], bounds[k + 1]
        level = slice(start - num_leaves, stop - num_leaves)
        children = slots[level].view(-1)
        child_h = h_rows.index_select(0, children).view(-1, arity * hidden_size)
        level_activations = functional.nary_preactivation(
            None if x_rows is None else x_rows[start:stop], child_h, weight_hh, bias_hh, arity,
            out=activations[level] if keep else None)
        child_c = c_rows.index_select(0, children).view(-1, arity, hidden_size)
        functional.nary_state(level_activations, child_c, arity, hidden_size,
                              out=(h_rows[start:stop], c_rows[start:stop]))
    return h_rows, c_rows, (leaf_activations, activations) if keep else None


class _LeafWordTerms(NamedTuple):
    """What the N-ary inference path takes from a cached table's words instead of computing it
    per leaf (see :func:`_leaf_word_terms`); ``V`` words, ``width`` the padded ``(N+3)H``."""

    slot_terms: Tensor  # [arity, V + 1, width] U_k h_leaf(v), g rows prescaled; row V: empty slot
    word_of_row: Tensor  # [num_nodes + 1] the word of each leaf row (V elsewhere)
    h_leaf: Tensor  # [V, H] the state of a leaf with each word
    c_leaf: Tensor  # [V, H]


def _nary_inference(plan: _Plan, x_proj: Tensor, weight_hh: Tensor, bias_ih: Optional[Tensor],
                    bias_hh: Optional[Tensor]) -> tuple[Tensor, Tensor, None]:
    """The N-ary levels without autograd and without input above the leaves (constituency
    trees at inference), in a dozen fewer ops per level than :func:`_nary_forward`: the ``g``
    rows of ``U`` and ``b`` are doubled once (:func:`~treelstm.functional.prescale_cell_gate`)
    for the fused update :func:`~treelstm.functional.nary_state_prescaled`.

    With a cached table (:class:`ProjectionCache`) whose rows are all the leaves' input, the
    first level (nodes whose children are all leaves: a quarter to a third of SST's inner nodes)
    takes ``U_k h_leaf`` per slot from the per-word terms instead of a matrix product.
    """
    arity, hidden_size, bounds = plan.num_forget, plan.hidden_size, plan.batch.level_order.bounds
    num_leaves, num_nodes = bounds[1], plan.batch.num_nodes
    weight_t = functional.prescale_cell_gate(_pad_rows(weight_hh), arity, hidden_size).t()
    bias = functional.nary_bias_without_input(bias_ih, bias_hh, arity)
    if bias is not None:
        bias = functional.prescale_cell_gate(_pad_rows(bias), arity, hidden_size)
    slots = plan.batch.child_slots(arity)
    word_terms = _leaf_word_terms(plan, weight_t,
                                  functional.leaf_bias(bias_ih, bias_hh, arity))
    if word_terms is None:
        h_rows, c_rows, _, _ = _leaf_states(plan, x_proj, bias_ih, bias_hh)
    else:  # the leaves' states are their words'
        h_rows, c_rows = _state_buffers(weight_t, num_nodes, hidden_size)
        torch.index_select(word_terms.h_leaf, 0, plan.gather, out=h_rows[:num_leaves])
        torch.index_select(word_terms.c_leaf, 0, plan.gather, out=c_rows[:num_leaves])
    for k in range(1, len(bounds) - 1):
        start, stop = bounds[k], bounds[k + 1]
        children = slots[start - num_leaves:stop - num_leaves].view(-1)
        if k == 1 and word_terms is not None:  # every child a leaf (or an empty slot)
            words = word_terms.word_of_row.index_select(0, children).view(-1, arity)
            activations = word_terms.slot_terms[0].index_select(0, words[:, 0])
            for slot in range(1, arity):
                activations += word_terms.slot_terms[slot].index_select(0, words[:, slot])
            if bias is not None:
                activations += bias
        else:
            child_h = h_rows.index_select(0, children).view(-1, arity * hidden_size)
            activations = child_h.mm(weight_t) if bias is None else torch.addmm(bias, child_h,
                                                                                weight_t)
        child_c = c_rows.index_select(0, children).view(-1, arity, hidden_size)
        functional.nary_state_prescaled(activations, child_c, arity, hidden_size,
                                        out=(h_rows[start:stop], c_rows[start:stop]))
    return h_rows, c_rows, None


def _leaf_word_terms(plan: _Plan, weight_t: Tensor, leaf_bias: Optional[Tensor]
                     ) -> Optional[_LeafWordTerms]:
    """The per-word terms of the cached table (see :class:`_LeafWordTerms`) for ``weight_t``
    the prescaled, padded ``U^T``; ``None`` when there is no cached table, when some leaf has no
    input, or when the terms would not fit the cache."""
    cache, table = plan.cache, plan.table
    num_leaves, hidden_size, arity = plan.num_leaves, plan.hidden_size, plan.num_forget
    if cache is None or not (plan.leaves_only and plan.identity_rows) or \
            plan.batch.num_levels < 2:
        return None
    num_words, width = table.shape[0], weight_t.shape[1]
    if arity * (num_words + 1) * width * weight_t.element_size() > cache.max_bytes:
        return None

    def compute() -> tuple[Tensor, Tensor, Tensor]:
        leaf = cache.projection(table, weight_ih, weight_t.dtype, True)
        if leaf_bias is not None:
            leaf = leaf + _pad_rows(leaf_bias)
        h_leaf, c_leaf = functional.leaf_state(leaf, hidden_size)
        terms = torch.stack([h_leaf.mm(weight_t[slot * hidden_size:(slot + 1) * hidden_size])
                             for slot in range(arity)])
        return F.pad(terms, (0, 0, 0, 1)), h_leaf, c_leaf

    weight_ih = plan.weights[0]
    terms, h_leaf, c_leaf = cache.leaf_terms((table, *plan.weights), (weight_t.dtype, arity),
                                             compute)
    word_of_row = plan.gather.new_full((plan.batch.num_nodes + 1,), num_words)
    word_of_row[:num_leaves] = plan.gather
    return _LeafWordTerms(terms, word_of_row, h_leaf, c_leaf)


def _nary_backward(plan: _Plan, saved: tuple[Tensor, Tensor], h_rows: Tensor, c_rows: Tensor,
                   grad_h_rows: Tensor, grad_c_rows: Tensor, weight_hh: Tensor
                   ) -> tuple[Tensor, Tensor, Tensor]:
    arity, hidden_size, bounds = plan.num_forget, plan.hidden_size, plan.batch.level_order.bounds
    num_leaves, num_nodes = bounds[1], plan.batch.num_nodes
    width = (arity + 3) * hidden_size
    leaf_activations, activations = saved
    slots = plan.batch.child_slots(arity)
    # (rows padded like the forward's; columns too, so that grad @ weight has aligned rows)
    padded_weight = _pad_rows(_pad_column_blocks(weight_hh, arity))
    forget = activations[:, hidden_size:(arity + 1) * hidden_size].view(-1, arity, hidden_size)
    child_c = c_rows.index_select(0, slots.view(-1)).view(-1, arity, hidden_size)
    # All that does not depend on the incoming gradients, at once; `grad_pre` then becomes the
    # internal rows' pre-activation gradients, i | f_1..f_N | g | o (+ zero padding), level by
    # level.
    through, grad_pre = functional.backward_factors(activations, arity, hidden_size,
                                                    c_rows[num_leaves:num_nodes], child_c)
    for k in range(len(bounds) - 2, 0, -1):
        start, stop = bounds[k], bounds[k + 1]
        level = slice(start - num_leaves, stop - num_leaves)
        children = slots[level].view(-1)
        grad_c_total = functional.preactivation_grads(
            grad_pre[level], through[level], grad_h_rows[start:stop], grad_c_rows[start:stop],
            arity, hidden_size)
        grad_child_h = grad_pre[level].mm(padded_weight).view(children.shape[0], -1)
        grad_h_rows.index_add_(0, children, grad_child_h[:, :hidden_size])
        grad_c_rows.index_add_(0, children, (grad_c_total.unsqueeze(1) * forget[level]).view(
            -1, hidden_size))
    grad_leaf = _leaf_backward(leaf_activations, c_rows, grad_h_rows, grad_c_rows, num_leaves,
                               hidden_size)

    child_h = h_rows.index_select(0, slots.view(-1)).view(-1, arity * hidden_size)
    grad_weight_hh = child_h.t().mm(grad_pre).t()[:width]  # (C^T G)^T: aligned rows
    total = grad_pre.sum(0)
    grad_bias_hh = _grad_bias_hh(functional.iog(total, hidden_size, arity) + grad_leaf.sum(0),
                                 total[hidden_size:(arity + 1) * hidden_size])
    if plan.leaves_only:
        return grad_leaf, grad_weight_hh, grad_bias_hh
    # the input's forget term serves all N forget gates
    grad_forget = grad_pre[:, hidden_size:(arity + 1) * hidden_size]
    grad_x_rows = _grad_x_rows(plan, grad_leaf, functional.iog(grad_pre, hidden_size, arity),
                               grad_forget.reshape(-1, arity, hidden_size).sum(1))
    return grad_x_rows, grad_weight_hh, grad_bias_hh


# ----------------------------------------------------------------------------- Child-Sum
def _childsum_forward(plan: _Plan, x_proj: Tensor, weight_hh: Tensor, bias_ih: Optional[Tensor],
                      bias_hh: Optional[Tensor], keep: bool
                      ) -> tuple[Tensor, Tensor, Optional[tuple]]:
    order, hidden_size = plan.batch.level_order, plan.hidden_size
    bounds, num_leaves = order.bounds, order.bounds[1]
    h_rows, c_rows, x_rows, leaf_activations = _leaf_states(plan, x_proj, bias_ih, bias_hh)
    no_input = bias_ih if bias_ih is not None else h_rows.new_zeros(4 * hidden_size)
    num_internal = plan.batch.num_nodes - num_leaves
    activations = h_rows.new_empty(num_internal, 3 * hidden_size)  # i | g | o per internal row
    forget = h_rows.new_empty(order.child_row.shape[0], hidden_size)  # f_k per child edge
    h_sums = h_rows.new_zeros(num_internal, hidden_size)  # sum_k h_k, for the weight gradient
    for k in range(1, len(bounds) - 1):
        start, stop = bounds[k], bounds[k + 1]
        level = slice(start - num_leaves, stop - num_leaves)
        edges = slice(order.edge_bounds[k], order.edge_bounds[k + 1])
        children, parent = order.child_row[edges], order.child_parent[edges]
        x_gates = no_input if x_rows is None else x_rows[start:stop]
        child_h = h_rows.index_select(0, children)
        h_sum = h_sums[level].index_add_(0, parent, child_h)
        parent_x_forget = x_gates[..., hidden_size:2 * hidden_size]
        if x_rows is not None:
            parent_x_forget = parent_x_forget.index_select(0, parent)
        functional.childsum_forget(child_h, parent_x_forget, weight_hh, bias_hh, out=forget[edges])
        forget_sum = functional.edge_forget_sum(forget[edges], c_rows.index_select(0, children),
                                                parent, stop - start)
        level_activations = functional.childsum_preactivation(
            x_gates, h_sum, weight_hh, bias_hh, out=activations[level])
        functional.childsum_state(level_activations, forget_sum, hidden_size,
                                  out=(h_rows[start:stop], c_rows[start:stop]))
    return h_rows, c_rows, (leaf_activations, activations, forget, h_sums) if keep else None


def _childsum_backward(plan: _Plan, saved: tuple, h_rows: Tensor, c_rows: Tensor,
                       grad_h_rows: Tensor, grad_c_rows: Tensor, weight_hh: Tensor
                       ) -> tuple[Tensor, Tensor, Tensor]:
    order, hidden_size = plan.batch.level_order, plan.hidden_size
    bounds, num_leaves, num_nodes = order.bounds, order.bounds[1], plan.batch.num_nodes
    leaf_activations, activations, forget, h_sums = saved
    weight_iog = functional.iog(weight_hh, hidden_size, dim=0)
    weight_forget = weight_hh[hidden_size:2 * hidden_size]
    # All that does not depend on the incoming gradients, at once; `grad_igo` (per internal row)
    # and `grad_forget` (per edge) then become pre-activation gradients, level by level.
    through, grad_igo = functional.backward_factors(activations, 0, hidden_size,
                                                    c_rows[num_leaves:num_nodes])
    grad_forget = functional.forget_backward_factor(forget,
                                                    c_rows.index_select(0, order.child_row))
    for k in range(len(bounds) - 2, 0, -1):
        start, stop = bounds[k], bounds[k + 1]
        level = slice(start - num_leaves, stop - num_leaves)
        edges = slice(order.edge_bounds[k], order.edge_bounds[k + 1])
        children, parent = order.child_row[edges], order.child_parent[edges]
        grad_c_total = functional.preactivation_grads(
            grad_igo[level], through[level], grad_h_rows[start:stop], grad_c_rows[start:stop], 0,
            hidden_size)
        edge_grad_c = grad_c_total.index_select(0, parent)
        grad_forget[edges] *= edge_grad_c
        grad_child_h = torch.addmm(grad_igo[level].mm(weight_iog).index_select(0, parent),
                                   grad_forget[edges], weight_forget)
        grad_h_rows.index_add_(0, children, grad_child_h)
        grad_c_rows.index_add_(0, children, edge_grad_c * forget[edges])
    grad_leaf = _leaf_backward(leaf_activations, c_rows, grad_h_rows, grad_c_rows, num_leaves,
                               hidden_size)

    grad_weight_iog = grad_igo.t().mm(h_sums)
    grad_weight_hh = torch.cat([grad_weight_iog[:hidden_size],
                                grad_forget.t().mm(h_rows.index_select(0, order.child_row)),
                                grad_weight_iog[hidden_size:]])
    grad_bias_hh = _grad_bias_hh(grad_igo.sum(0) + grad_leaf.sum(0), grad_forget.sum(0))
    if plan.leaves_only:
        return grad_leaf, grad_weight_hh, grad_bias_hh
    forget_per_row = grad_igo.new_zeros(grad_igo.shape[0], hidden_size).index_add_(
        0, _edge_parent_rows(plan) - num_leaves, grad_forget)
    return _grad_x_rows(plan, grad_leaf, grad_igo, forget_per_row), grad_weight_hh, grad_bias_hh


def _edge_parent_rows(plan: _Plan) -> Tensor:
    """``[E]`` the level-order row of each edge's parent (edges as in ``child_row``)."""
    order, parent = plan.batch.level_order, plan.batch.parent
    return order.row.index_select(0, parent.index_select(0, order.nodes.index_select(
        0, order.child_row)))


_FORWARD = {"nary": _nary_forward, "childsum": _childsum_forward}
_BACKWARD = {"nary": _nary_backward, "childsum": _childsum_backward}


# ----------------------------------------------------------------------------- top-down
def top_down_layer(batch: TreeBatch, input: Tensor, weight_ih: Tensor, weight_hh: Tensor,
                   bias_ih: Optional[Tensor], bias_hh: Optional[Tensor]) -> tuple[Tensor, Tensor]:
    """Run the top-down pass of a bidirectional layer: an LSTM step at every node whose previous
    state is its parent's (zero at roots), depth by depth (:attr:`TreeBatch.depth_order`), with
    plain autograd.

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
    h, c = functional.nary_cell(x_gates[:num_roots], None, None, weight_hh, bias_hh, 1)
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
