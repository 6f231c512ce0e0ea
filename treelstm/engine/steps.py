"""What both kernels (:mod:`.nary`, :mod:`.childsum`) share: a layer's :class:`Plan`, the state and
input buffers in level order, the leaves' forward and backward, the padding that keeps products
aligned, and the gradient rows of the input gates."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Protocol, cast

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import functional
from . import kernels
from ..batch import TreeBatch

if TYPE_CHECKING:
    from .cache import ProjectionCache


class Project(Protocol):
    """What a kernel calls for the input rows' projection (a new tensor, asked only when
    needed); ``distinct=True``: that of the distinct rows of a table, not gathered (without a
    cache only). ``operands``: the rows and ``W_ih`` (in the compute dtype) whose product the
    projection is, for a kernel that computes it itself; ``None`` with kept projections."""

    @property
    def operands(self) -> Optional[tuple[Tensor, Tensor]]: ...

    def __call__(self, distinct: bool = False) -> Tensor: ...


@dataclass(frozen=True, eq=False)
class Plan:
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


def pad_rows(tensor: Tensor, multiple: int = 16) -> Tensor:
    """``tensor`` with zero rows appended up to a multiple of 16 rows. A product with it has rows
    of a multiple of 64 bytes, which MKL's float32 GEMM writes up to 1.7x as fast when it has many
    rows (450 or 750 columns are slow, 464 or 752 are not)."""
    return F.pad(tensor, [0, 0] * (tensor.dim() - 1) + [0, -tensor.shape[0] % multiple])


def pad_column_blocks(weight: Tensor, num_blocks: int, multiple: int = 8) -> Tensor:
    """``weight`` ``[R, num_blocks * H]`` with each block of ``H`` columns padded with zero
    columns to a multiple of 8, for aligned rows in ``grad @ weight`` (see :func:`pad_rows`)."""
    rows, width = weight.shape
    block = weight.view(rows, num_blocks, width // num_blocks)
    return F.pad(block, (0, -block.shape[2] % multiple)).view(rows, -1)


#: Products with more rows than this get weights padded to aligned rows (:func:`pad_rows`);
#: in smaller ones the copy costs more than the alignment saves.
PAD_FROM = 256

#: In C, the levels' products of a layer with at least this many rows above the leaves read a
#: contiguous ``U^T``, copied once per call (:func:`.kernels.transposed`): each level's product
#: with few rows then runs up to twice as fast, which pays for the copy from about a hundred
#: rows on (a single tree's call is ~20% slower with the copy, 25 trees' ~10% faster).
TRANSPOSE_FROM = 128

#: An input of at most this many rows, all leaves, is projected by all of ``W_ih`` and the
#: ``i | g | o`` columns cut from the product (and its gradient padded with zero ``f`` columns),
#: rather than by a copy of the ``i | g | o`` rows of ``W_ih``: for a single tree, a product a
#: third wider costs less than copying weight-sized matrices forward and backward.
FEW_ROWS = 64


def product(rows: Tensor, weight_t: Tensor, bias: Optional[Tensor]) -> Tensor:
    """``rows @ weight_t (+ bias)``: one ``mm``, or one ``addmm`` with a bias."""
    return rows.mm(weight_t) if bias is None else torch.addmm(bias, rows, weight_t)


def gradient_product(grad: Tensor, rows: Tensor, transposed: bool = False) -> Tensor:
    """``grad^T rows`` (``[n, W]``, ``[n, X]`` -> ``[W, X]``): a weight's gradient from the
    gradients of its products and their input rows. With few rows (a single tree's,
    :data:`FEW_ROWS`) ``grad^T`` is copied first: MKL's product with a transposed first factor
    allocates, and page-faults, weight-sized buffers on every call (~10% of a single tree's
    training step); with many rows the copy costs more than it saves, and ``transposed=True``
    computes ``(rows^T grad)^T`` instead (its rows ``W`` long: aligned when ``W`` is padded)."""
    if grad.shape[0] <= FEW_ROWS:
        return grad.t().contiguous().mm(rows)
    return rows.t().mm(grad).t() if transposed else grad.t().mm(rows)


def projection_weight(leaves_only: bool, hidden_size: int, weight_ih: Tensor, pad: bool = True
                      ) -> Tensor:
    """The rows of ``weight_ih`` that are used: ``i | g | o`` (padded with ``pad``) when only
    leaves have input."""
    if leaves_only:
        weight = functional.iog(weight_ih, hidden_size, dim=0)
        return pad_rows(weight) if pad else weight
    return weight_ih


def project_leaves(rows: Tensor, weight_ih: Tensor, hidden_size: int, pad: bool) -> Tensor:
    """``rows`` (leaves' input) times the ``i | g | o`` rows of ``weight_ih``, transposed (with
    ``pad``, zero columns up to a multiple of 16): where the C steps run, by torch's ``sgemm``
    on ``weight_ih`` as it is (:func:`.kernels.project_rows`: no copy of its rows), else a
    product with the copied rows (:func:`projection_weight`)."""
    lib = kernels.for_call(rows)
    width = 3 * hidden_size + (-3 * hidden_size % 16 if pad else 0)
    x_proj = None if lib is None else kernels.project_rows(
        lib, rows, weight_ih, ((0, hidden_size), (2 * hidden_size, 4 * hidden_size)), width)
    if x_proj is None:
        x_proj = rows.mm(projection_weight(True, hidden_size, weight_ih, pad).t())
    return x_proj


def input_buffer(plan: Plan, x_proj: Tensor, bias: Optional[Tensor], num_rows: int) -> Tensor:
    """``[num_rows, width]``: ``x_proj + bias`` in the level-order rows of the input nodes,
    ``bias`` in the others; ``x_proj`` itself (a new tensor, see :func:`.layer._forward`) when it is
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


def state_buffers(like: Tensor, num_nodes: int, hidden_size: int) -> tuple[Tensor, Tensor]:
    """``h_rows``, ``c_rows``: ``[N + 1, H]`` each, by level-order row, to be written level by
    level; the last row is zero, the state of an empty N-ary slot."""
    both = like.new_empty(2, num_nodes + 1, hidden_size)
    both[:, num_nodes] = 0
    return both[0], both[1]


def leaf_states(plan: Plan, x_proj: Tensor, bias_ih: Optional[Tensor],
                 bias_hh: Optional[Tensor], keep: bool = True
                 ) -> tuple[Tensor, Tensor, Optional[Tensor], Tensor]:
    """State buffers ``[N + 1, H]`` with the leaves (rows ``0..L-1``) done; the ``[N, 4H]`` input
    rows (``None`` when only leaves have input); the leaves' activations ``i | g | o`` (with
    ``keep``; else what is left of the pre-activations: inference in fewer ops)."""
    num_nodes, num_leaves, hidden_size = plan.batch.num_nodes, plan.num_leaves, plan.hidden_size
    if plan.leaves_only:  # x_proj holds i | g | o (+ padding): the leaves' pre-activations
        x_rows = None
        activations = input_buffer(plan, x_proj, _leaf_bias(plan, bias_ih, bias_hh, x_proj),
                                   num_leaves)
    else:
        x_rows = input_buffer(plan, x_proj, bias_ih, num_nodes)
        activations = functional.leaf_preactivation(x_rows[:num_leaves], bias_hh,
                                                    plan.num_forget)
    h_rows, c_rows = state_buffers(activations, num_nodes, hidden_size)
    leaf_update(activations, hidden_size, (h_rows[:num_leaves], c_rows[:num_leaves]), keep)
    return h_rows, c_rows, x_rows, activations


def _leaf_bias(plan: Plan, bias_ih: Optional[Tensor], bias_hh: Optional[Tensor],
               x_proj: Tensor) -> Optional[Tensor]:
    """The leaves' ``i | g | o`` bias, padded like ``x_proj``'s columns."""
    bias = functional.leaf_bias(bias_ih, bias_hh, plan.num_forget)
    if bias is not None and bias.shape[0] != x_proj.shape[1]:  # x_proj's padding
        bias = F.pad(bias, [0, x_proj.shape[1] - bias.shape[0]])
    return bias


def leaf_update(preactivation: Tensor, hidden_size: int, out: tuple[Tensor, Tensor],
                keep: bool = False) -> None:
    """Leaves' ``h, c`` into ``out`` from their ``i | g | o`` pre-activations, without autograd
    (an N-ary layout without forget gates): in C when it can (:mod:`.kernels`). With ``keep``
    the pre-activations become the activations (what :func:`leaf_backward` reads)."""
    lib = kernels.for_call(preactivation)
    if lib is not None and kernels.fits(*preactivation.shape) and preactivation.is_contiguous():
        kernels.nary_update(lib, preactivation, None, None, 0, hidden_size, out=out,
                            keep_activations=keep)
    elif keep:
        functional.leaf_state(preactivation, hidden_size, out=out)
    else:
        functional.nary_state_fused(preactivation, None, 0, hidden_size, out=out)


def leaf_word_states(plan: Plan, x_distinct: Tensor, bias_ih: Optional[Tensor],
                     bias_hh: Optional[Tensor], leaf_bias: Optional[Tensor] = None
                     ) -> tuple[Tensor, Tensor]:
    """Inference with input at the leaves only, read from a table (``plan.gather``: each leaf's
    row of ``x_distinct``, the projections of the distinct rows): the state buffers with the
    leaves' states, computed once per distinct row and gathered (in one C call where it can).
    ``leaf_bias``: the leaves' ``i | g | o`` bias if already made (else made from the biases)."""
    num_nodes, num_leaves, hidden_size = plan.batch.num_nodes, plan.num_leaves, plan.hidden_size
    h_rows, c_rows = state_buffers(x_distinct, num_nodes, hidden_size)
    gather = cast(Tensor, plan.gather)
    lib = kernels.for_call(x_distinct)
    if lib is not None and kernels.fits(*x_distinct.shape) and x_distinct.is_contiguous():
        if leaf_bias is None:
            leaf_bias = functional.leaf_bias(bias_ih, bias_hh, plan.num_forget)
        kernels.leaf_word_states(lib, x_distinct, leaf_bias, gather, hidden_size,
                                 h_rows[:num_leaves], c_rows[:num_leaves])
        return h_rows, c_rows
    bias = _leaf_bias(plan, bias_ih, bias_hh, x_distinct)
    if bias is not None:
        x_distinct += bias
    words = x_distinct.new_empty(2, x_distinct.shape[0], hidden_size)  # h, c per distinct row
    leaf_update(x_distinct, hidden_size, (words[0], words[1]))
    torch.index_select(words[0], 0, gather, out=h_rows[:num_leaves])
    torch.index_select(words[1], 0, gather, out=c_rows[:num_leaves])
    return h_rows, c_rows


def leaf_backward(activations: Tensor, c_rows: Tensor, grad_h_rows: Tensor,
                   grad_c_rows: Tensor, num_leaves: int, hidden_size: int) -> Tensor:
    """``[L, 3H]`` gradients of the leaves' ``i | g | o`` pre-activations (in one C pass where
    it can: :func:`.kernels.leaf_grads`)."""
    lib = kernels.for_call(activations)
    if lib is not None and kernels.fits(*activations.shape) and activations.is_contiguous():
        return kernels.leaf_grads(lib, activations, c_rows[:num_leaves],
                                  grad_h_rows[:num_leaves], grad_c_rows[:num_leaves]
                                  )[:, :3 * hidden_size]
    through, factors = functional.backward_factors(activations, 0, hidden_size,
                                                   c_rows[:num_leaves])
    functional.preactivation_grads(factors, through, grad_h_rows[:num_leaves],
                                   grad_c_rows[:num_leaves], 0, hidden_size)
    return factors[:, :3 * hidden_size]


def bias_hh_grad(grad_igo_sum: Tensor, grad_forget_sum: Tensor) -> Tensor:
    """``b_hh``'s gradient, ``i | f_1..f_K | g | o``, from the summed gradients of the ``i | g | o``
    pre-activations (``[3H]``) and of the forget pre-activations (``[K*H]``)."""
    hidden_size = grad_igo_sum.shape[0] // 3
    return torch.cat([grad_igo_sum[:hidden_size], grad_forget_sum, grad_igo_sum[hidden_size:]])


def x_rows_grad(plan: Plan, grad_leaf: Tensor, grad_igo: Tensor, grad_forget: Tensor) -> Tensor:
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
