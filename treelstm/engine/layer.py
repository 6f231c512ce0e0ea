"""One bottom-up layer of the native engine: :func:`layer` plans it, projects the input once and
runs the kernel of the cell (:mod:`.nary`, :mod:`.childsum`), as one
:class:`torch.autograd.Function` whose backward is the kernel's."""
from __future__ import annotations

from typing import Optional, cast

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .. import functional
from ..batch import TreeBatch
from .cache import ProjectionCache
from .childsum import childsum_backward, childsum_forward
from .nary import nary_backward, nary_forward
from .steps import FEW_ROWS, PAD_FROM, Plan, Project, gradient_product, project_leaves


def layer(batch: TreeBatch, input: Tensor, weight_ih: Tensor, weight_hh: Tensor,
          bias_ih: Optional[Tensor], bias_hh: Optional[Tensor], cell: str,
          arity: Optional[int] = None, input_index: Optional[Tensor] = None,
          input_rows: Optional[Tensor] = None, cache: Optional["ProjectionCache"] = None,
          roots_only: bool = False, cell_roots_only: bool = False) -> tuple[Tensor, Tensor]:
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

        roots_only: return the states of the trees' roots only (what a sentence classifier
            reads), sparing the reordering of every node's.
        cell_roots_only: every node's ``h``, but only the roots' ``c`` (what a model reads of
            ``c``).

    Returns:
        ``h, c``: ``[num_nodes, H]`` each, rows in batch node order; ``[num_trees, H]`` (the
        roots, tree by tree) with ``roots_only`` (``c`` alone with ``cell_roots_only``).
    """
    _check_shapes(cell, arity, input, weight_ih, weight_hh, bias_ih, bias_hh)
    # any integer dtype (TreeLSTM accepts them): int64 for the gathers and the C steps
    input_index, input_rows = (t if t is None or t.dtype == torch.long else t.long()
                               for t in (input_index, input_rows))
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
    num_forget = 1 if cell == "childsum" else cast(int, arity)  # cell="nary" comes with arity
    # with a cache: the table and the weights it is kept for
    plan = Plan(batch, cell, weight_ih.shape[0] // 4, num_forget, rows,
                 leaves_only, rows.shape[0] == num_rows and _is_identity(rows), input_rows,
                 None if cache is None else input, cache,
                 () if cache is None else (weight_ih, weight_hh, bias_ih, bias_hh))
    return _run(plan, input, weight_ih, weight_hh, bias_ih, bias_hh, roots_only,
                cell_roots_only)


def _check_shapes(cell: str, arity: Optional[int], input: Tensor, weight_ih: Tensor,
                  weight_hh: Tensor, bias_ih: Optional[Tensor], bias_hh: Optional[Tensor]
                  ) -> None:
    """ValueError unless the parameters have the cell's shapes for ``input``'s width and the
    hidden size ``H`` that ``weight_ih`` (``[4H, X]``) gives: the C steps read them by pointer,
    so a parameter replaced with one of another shape must not reach them."""
    if input.dim() != 2 or weight_ih.dim() != 2 or weight_ih.shape[0] % 4 or \
            weight_ih.shape[0] == 0:
        raise ValueError(f"Tree-LSTM layer: expected input [N, X] and weight_ih [4H, X] with "
                         f"H > 0; got {list(input.shape)} and {list(weight_ih.shape)}")
    hidden, width = weight_ih.shape[0] // 4, input.shape[1]
    blocks = 4 if cell == "childsum" else cast(int, arity) + 3
    expected = {"weight_ih": (weight_ih, [4 * hidden, width]),
                "weight_hh": (weight_hh, [blocks * hidden,
                                          hidden if cell == "childsum" else
                                          cast(int, arity) * hidden]),
                "bias_ih": (bias_ih, [4 * hidden]), "bias_hh": (bias_hh, [blocks * hidden])}
    for name, (tensor, shape) in expected.items():
        if tensor is not None and list(tensor.shape) != shape:
            kind = "Child-Sum" if cell == "childsum" else f"{arity}-ary"
            raise ValueError(f"Tree-LSTM layer: expected {name} of shape {shape} ({kind} cell, "
                             f"hidden size {hidden}, input size {width}); got "
                             f"{list(tensor.shape)}")


def _needs_grad(*tensors: Optional[Tensor]) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _is_identity(rows: Tensor) -> bool:
    return bool(torch.equal(rows, torch.arange(rows.shape[0], device=rows.device)))


def _compute_dtype(input: Tensor) -> torch.dtype:
    """The states' dtype: autocast's for float32 input (autocast would run the projection so),
    else the input's."""
    device_type = input.device.type
    if input.dtype == torch.float32 and torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return input.dtype


def _cast(dtype: torch.dtype, *tensors: Optional[Tensor]) -> list[Optional[Tensor]]:
    return [None if t is None else t.to(dtype) for t in tensors]


def _forward(plan: Plan, input: Tensor, weight_ih: Tensor, weight_hh: Tensor,
             bias_ih: Optional[Tensor], bias_hh: Optional[Tensor], keep: bool):
    """The forward: projection, then the levels. Returns level-order ``h_rows``, ``c_rows`` and,
    with ``keep``, the activations the backward needs (else each level's are dropped after use).

    The kernel asks for the projection ``x_proj`` when it needs it; it is always a new tensor
    (a product, or rows gathered from the kept one), so the levels add the biases into it in
    place. With ``plan.cache`` (see :func:`layer`) the projection comes from the kept one.
    """
    dtype = _compute_dtype(input)
    if torch.is_autocast_enabled(input.device.type):
        with torch.autocast(input.device.type, enabled=False):  # the dtype is chosen here, once
            return _cast_forward(plan, dtype, input, weight_ih, weight_hh, bias_ih, bias_hh,
                                 keep)
    return _cast_forward(plan, dtype, input, weight_ih, weight_hh, bias_ih, bias_hh, keep)


def _cast_forward(plan: Plan, dtype: torch.dtype, input: Tensor, weight_ih: Tensor,
                  weight_hh: Tensor, bias_ih: Optional[Tensor], bias_hh: Optional[Tensor],
                  keep: bool):
    """:func:`_forward` with the weights cast to ``dtype``, autocast off."""
    project: Project = _Product(plan, input.to(dtype), weight_ih.to(dtype)) \
        if plan.cache is None else _Kept(plan, input, weight_ih, dtype)
    # _cast keeps a None bias None and a tensor a tensor
    weight_hh, bias_ih, bias_hh = cast("tuple[Tensor, Optional[Tensor], Optional[Tensor]]",
                                       _cast(dtype, weight_hh, bias_ih, bias_hh))
    return _FORWARD[plan.cell](plan, project, weight_hh, bias_ih, bias_hh, keep)


class _Product:
    """The input rows' projection, a product (see :class:`~.steps.Project`)."""

    def __init__(self, plan: Plan, rows: Tensor, weight_ih: Tensor):
        self.plan, self.rows, self.weight_ih = plan, rows, weight_ih

    @property
    def operands(self) -> tuple[Tensor, Tensor]:
        return self.rows, self.weight_ih

    def __call__(self, distinct: bool = False) -> Tensor:
        """With ``distinct``, the projection of the distinct rows (the rows of ``input``, not
        yet gathered by ``plan.gather``)."""
        rows, weight, plan = self.rows, self.weight_ih, self.plan
        if plan.leaves_only and rows.shape[0] <= FEW_ROWS:  # cut the product, not W_ih
            x_proj = functional.iog(rows.mm(weight.t()), plan.hidden_size)
        elif plan.leaves_only:
            x_proj = project_leaves(rows, weight, plan.hidden_size,
                                    pad=rows.shape[0] >= PAD_FROM)
        else:
            x_proj = rows.mm(weight.t())
        return x_proj if plan.gather is None or distinct else \
            x_proj.index_select(0, plan.gather)


class _Kept:
    """The input rows' projection from the kept one (``plan.cache``, see :func:`layer`)."""

    def __init__(self, plan: Plan, table: Tensor, weight_ih: Tensor, dtype: torch.dtype):
        self.plan, self.table, self.weight_ih, self.dtype = plan, table, weight_ih, dtype

    @property
    def operands(self) -> None:
        return None

    def __call__(self, distinct: bool = False) -> Tensor:  # (distinct: not asked with a cache)
        plan = self.plan
        return cast("ProjectionCache", plan.cache).projection(
            self.table, self.weight_ih, self.dtype, plan.leaves_only, cast(Tensor, plan.gather))


def _run(plan: Plan, input: Tensor, weight_ih: Tensor, weight_hh: Tensor,
         bias_ih: Optional[Tensor], bias_hh: Optional[Tensor], roots_only: bool = False,
         cell_roots_only: bool = False) -> tuple[Tensor, Tensor]:
    tensors = (input, weight_ih, weight_hh, bias_ih, bias_hh)
    order = plan.batch.level_order
    if _needs_grad(*tensors):
        h, c = _Layer.apply(plan, *tensors)
        roots = plan.batch.roots
        return (h.index_select(0, roots) if roots_only else h,
                c.index_select(0, roots) if roots_only or cell_roots_only else c)
    h_rows, c_rows, _ = _forward(plan, *tensors, keep=False)
    return (h_rows.index_select(0, order.root_row if roots_only else order.row),
            c_rows.index_select(0, order.root_row if roots_only or cell_roots_only
                                else order.row))


class _Layer(torch.autograd.Function):
    """One layer: forward level by level, backward level by level over the saved activations."""

    @staticmethod
    def forward(ctx, plan: Plan, input: Tensor, weight_ih: Tensor, weight_hh: Tensor,
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
                plan, ctx.activations, h_rows, ctx.c_rows,
                *cast("tuple[Tensor, Tensor]", grad_rows),  # h's and c's
                weight_hh.to(dtype))
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


def _projection_backward(plan: Plan, grad_x_proj: Tensor, input: Tensor, weight_ih: Tensor
                         ) -> tuple[Tensor, Tensor]:
    """Gradients of ``input`` and ``weight_ih`` from those of the projected rows (``i | g | o``
    only, or ``i | f | g | o``)."""
    few_rows = plan.leaves_only and grad_x_proj.shape[0] <= FEW_ROWS
    if few_rows:  # zero f columns rather than weight-sized copies (steps.FEW_ROWS)
        grad_x_proj = functional.expand_iog(grad_x_proj)
    grad_weight = gradient_product(grad_x_proj, input)
    if plan.leaves_only and not few_rows:
        hidden_size = plan.hidden_size
        weight_ih = functional.iog(weight_ih, hidden_size, dim=0)
        grad_weight = torch.cat([grad_weight[:hidden_size],
                                 grad_weight.new_zeros(hidden_size, grad_weight.shape[1]),
                                 grad_weight[hidden_size:]])
    # (W^T G^T)^T: rows as long as the batch, not X (300 floats are not 64-byte aligned; slow)
    return weight_ih.t().mm(grad_x_proj.t()).t(), grad_weight


_FORWARD = {"nary": nary_forward, "childsum": childsum_forward}
_BACKWARD = {"nary": nary_backward, "childsum": childsum_backward}
