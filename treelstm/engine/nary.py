"""The N-ary kernel of the native engine: the levels forward (for training, and a leaner path
for inference that can take the leaves' terms from a :class:`~.cache.ProjectionCache`) and the
hand-written backward."""
from __future__ import annotations

import ctypes
from typing import NamedTuple, Optional, cast

import torch
from torch import Tensor

from .. import functional
from . import kernels, layouts
from .steps import (FEW_ROWS, PAD_FROM, TRANSPOSE_FROM, Plan, Project, bias_hh_grad,
                    gradient_product, leaf_backward, leaf_states, leaf_update, leaf_word_states,
                    pad_column_blocks, pad_rows, product, project_leaves, state_buffers,
                    x_rows_grad)


def nary_forward(plan: Plan, project: Project, weight_hh: Tensor,
                 bias_ih: Optional[Tensor], bias_hh: Optional[Tensor], keep: bool
                 ) -> tuple[Tensor, Tensor, Optional[tuple[Tensor, Tensor]]]:
    """The levels, from ``project()``: the input rows' projection (a new tensor; asked only
    when needed: inference from kept per-word terms does without)."""
    arity, hidden_size, bounds = plan.num_forget, plan.hidden_size, plan.batch.level_order.bounds
    num_leaves = bounds[1]
    if not keep and plan.leaves_only:
        return _nary_inference(plan, project, weight_hh, bias_ih, bias_hh)
    h_rows, c_rows, x_rows, leaf_activations = leaf_states(plan, project(), bias_ih, bias_hh)
    if x_rows is None:  # no W_ih x above the leaves: b_ih joins b_hh
        bias_hh = functional.nary_bias_without_input(bias_ih, bias_hh, arity)
    if plan.batch.num_nodes - num_leaves >= PAD_FROM:  # aligned rows (and the backward's)
        weight_hh = pad_rows(weight_hh)
        bias_hh = None if bias_hh is None else pad_rows(bias_hh)
    # Every internal row's activations i | f_1..f_N | g | o (+ padding), written level by level
    # (kept for the backward, or one level at a time); the rows of every level cut at once
    # (split_with_sizes: a native op, where Tensor.split is Python, ~10 us a call).
    num_internal = plan.batch.num_nodes - num_leaves
    activations = h_rows.new_empty(num_internal if keep else 0, weight_hh.shape[0])
    lib = kernels.for_call(h_rows)
    if keep and x_rows is None and lib is not None and kernels.nary_levels(
            lib, 1, bounds, plan.batch.child_slots(arity), arity, hidden_size,
            _weight_t(weight_hh, num_internal), bias_hh, h_rows, c_rows, activations):
        return h_rows, c_rows, (leaf_activations, activations)  # every level in one C call
    sizes = [bounds[k + 1] - bounds[k] for k in range(len(bounds) - 1)]
    state_sizes = sizes + [1]  # the buffers' last row: an empty slot's zero state
    no_rows = [None] * len(sizes[1:])
    levels = zip(plan.batch.level_children(arity), h_rows.split_with_sizes(state_sizes)[1:-1],
                 c_rows.split_with_sizes(state_sizes)[1:-1],
                 activations.split_with_sizes(sizes[1:]) if keep else no_rows,
                 no_rows if x_rows is None else x_rows.split_with_sizes(sizes)[1:])
    for children, h_level, c_level, level_out, x_level in levels:
        fused = lib if lib is not None and kernels.fits(h_level.shape[0], weight_hh.shape[0]) \
            else None
        child_h = h_rows.index_select(0, children) if fused is None else \
            kernels.gather_rows(fused, h_rows, children)
        level_activations = functional.nary_preactivation(
            x_level, child_h.view(-1, arity * hidden_size), weight_hh, bias_hh, arity,
            out=level_out)
        if fused is not None and level_activations.is_contiguous():  # kernels.c
            kernels.nary_update(fused, level_activations, c_rows, children, arity, hidden_size,
                                out=(h_level, c_level), keep_activations=True)
            continue
        child_c = c_rows.index_select(0, children).view(-1, arity * hidden_size)
        functional.nary_state_fused(level_activations, child_c, arity, hidden_size,
                                    out=(h_level, c_level), keep_activations=True)
    return h_rows, c_rows, (leaf_activations, activations) if keep else None


def _weight_t(weight_hh: Tensor, num_internal: int) -> Tensor:
    """``U^T`` for the levels' products: contiguous (:func:`.kernels.transposed`) for a layer
    with at least :data:`TRANSPOSE_FROM` rows above the leaves, else the transposed view."""
    rows = weight_hh.shape[0]
    weight_t = None if num_internal < TRANSPOSE_FROM else \
        kernels.transposed(weight_hh, ((0, rows),), rows)
    return weight_hh.t() if weight_t is None else weight_t


class _LeafWordTerms(NamedTuple):
    """What the N-ary inference path takes from a cached table's words instead of computing it
    per leaf (see :func:`_leaf_word_terms`); ``V`` words, ``width`` the padded ``(N+3)H``."""

    slot_terms: Tensor  # [arity, 1 + V, width] U_k h_leaf(word); row 0: empty slot
    term_of_row: Tensor  # [num_nodes + 1] the terms' row of each leaf row's word (0 elsewhere)
    h_leaf: Tensor  # [1 + V, H] the state of a leaf with each word (rows as the terms')
    c_leaf: Tensor  # [1 + V, H]
    leaf_rows: Tensor  # [L] the terms' row of each leaf's word


def _nary_inference(plan: Plan, project: Project, weight_hh: Tensor,
                    bias_ih: Optional[Tensor], bias_hh: Optional[Tensor]
                    ) -> tuple[Tensor, Tensor, None]:
    """The N-ary levels without autograd and without input above the leaves (constituency
    trees at inference), in a dozen fewer ops per level than :func:`nary_forward`: the levels'
    child rows and state rows are split once, and each level is two gathers, one matrix product
    and the fused update :func:`~treelstm.functional.nary_state_fused`. ``U^T`` is contiguous (a
    product of a few rows with it runs up to twice as fast as with the transposed view, which
    MKL's small-matrix path handles poorly) when kept, and, without a cache, in C for a batch
    of at least :data:`~.steps.TRANSPOSE_FROM` rows above its leaves (MKL's transposing copy,
    ~30-150 us for 750 x 300, once per call); otherwise nothing is prepared from the weights but
    their transposed view and the biases, so a single tree's call pays no per-call copies.

    With a cached table (:class:`~.cache.ProjectionCache`) whose rows are all the leaves' input, the
    first level (nodes whose children are all leaves: a quarter to a third of SST's inner nodes)
    takes ``U_k h_leaf`` per slot from the per-word terms instead of a matrix product. Without
    one, a table's leaves get their states once per distinct word (more than FEW_ROWS leaves).
    On the CPU in float32 the levels run in C (:mod:`.kernels`): all in one call where torch
    exports its ``sgemm``, else the update of each level; without kept projections, where the
    input rows are the leaves' (or a table's distinct rows), that one call also makes the
    biases and the leaves' projection and states (:func:`.kernels.nary_inference`), and a
    parameter's contiguous ``U^T`` is kept between calls (:mod:`.layouts`).
    """
    arity, hidden_size, bounds = plan.num_forget, plan.hidden_size, plan.batch.level_order.bounds
    num_leaves, num_nodes = bounds[1], plan.batch.num_nodes
    pad = plan.cache is not None or num_nodes - num_leaves >= PAD_FROM

    lib = kernels.for_call(weight_hh)

    def layout() -> Tensor:
        """``U^T`` for the levels' products, its columns padded with ``pad``: contiguous where
        MKL's transposing copy makes it (:func:`.layouts.transposed`; products with few rows
        run up to 2x as fast as with the view) and a batch's call pays for it
        (TRANSPOSE_FROM), or kept."""
        rows = weight_hh.shape[0]
        small = plan.cache is None and num_nodes - num_leaves < TRANSPOSE_FROM
        weight_t = None if lib is None or small else \
            layouts.transposed(weight_hh, rows + -rows % 16)
        if weight_t is None:
            weight_t = pad_rows(weight_hh).t() if pad else weight_hh.t()
            if plan.cache is not None:  # kept: worth torch's slower transposing copy
                weight_t = weight_t.contiguous()
        return weight_t

    def prepare(weight_t: Tensor) -> tuple[Tensor, Optional[Tensor], Optional[Tensor]]:
        """``weight_t``, the inner nodes' bias (as wide) and, where the C steps make both in
        one call, the leaves' bias."""
        biases = None if lib is None else kernels.nary_biases(
            lib, bias_ih, bias_hh, arity, hidden_size, 3 * hidden_size, weight_t.shape[1])
        if biases is not None:
            return weight_t, biases[1], biases[0]
        bias = functional.nary_bias_without_input(bias_ih, bias_hh, arity)
        if bias is not None and bias.shape[0] < weight_t.shape[1]:
            bias = pad_rows(bias)
        return weight_t, bias, None

    # a table's leaves: each distinct word's leaf state once, then gathered (fewer rows than
    # leaves; a single tree has about as many words as leaves)
    by_word = plan.cache is None and plan.gather is not None and plan.identity_rows and \
        num_leaves > FEW_ROWS
    word_terms = None
    if plan.cache is None:
        weight_t = layout()
        states = None if lib is None or project.operands is None or \
            not plan.identity_rows else \
            kernels.nary_inference(lib, bounds, plan.batch.child_slots(arity), arity,
                                   hidden_size, weight_t, bias_ih, bias_hh, *project.operands,
                                   plan.gather)
        if states is not None:  # the whole layer in one C call
            return states[0], states[1], None
        weight_t, bias, leaf_bias = prepare(weight_t)
    else:  # kept with the weights they come from: a single tree's call is mostly overhead
        weight_t, bias, leaf_bias = plan.cache.kept_value(
            "inference_weights", plan.weights[1:], (weight_hh.dtype, arity),
            lambda: prepare(layout()))
        word_terms = _leaf_word_terms(plan, weight_t, bias_ih, bias_hh)
    if by_word:
        h_rows, c_rows = leaf_word_states(plan, project(True), bias_ih, bias_hh, leaf_bias)
    elif word_terms is None:
        h_rows, c_rows, _, _ = leaf_states(plan, project(), bias_ih, bias_hh, keep=False)
    else:  # the leaves' states are their words'
        h_rows, c_rows = state_buffers(weight_t, num_nodes, hidden_size)
        torch.index_select(word_terms.h_leaf, 0, word_terms.leaf_rows, out=h_rows[:num_leaves])
        torch.index_select(word_terms.c_leaf, 0, word_terms.leaf_rows, out=c_rows[:num_leaves])

    def in_c(first: int) -> bool:
        """Levels ``first..`` done in one C call (where it can run)."""
        return lib is not None and kernels.nary_levels(
            lib, first, bounds, plan.batch.child_slots(arity), arity, hidden_size, weight_t,
            bias, h_rows, c_rows)

    if word_terms is None and in_c(1):
        return h_rows, c_rows, None
    sizes = [bounds[k + 1] - bounds[k] for k in range(len(bounds) - 1)] + [1]
    levels = zip(plan.batch.level_children(arity), h_rows.split_with_sizes(sizes)[1:-1],
                 c_rows.split_with_sizes(sizes)[1:-1])
    for k, (children, h_level, c_level) in enumerate(levels, 1):
        if k == 2 and word_terms is not None and in_c(2):  # level 1 from the words' terms
            break
        fused = lib if lib is not None and kernels.fits(h_level.shape[0], weight_t.shape[1]) \
            else None
        if k == 1 and word_terms is not None:  # every child a leaf (or an empty slot)
            words = word_terms.term_of_row.index_select(0, children).view(-1, arity)
            activations = word_terms.slot_terms[0].index_select(0, words[:, 0])
            for slot in range(1, arity):
                activations += word_terms.slot_terms[slot].index_select(0, words[:, slot])
            if bias is not None:
                activations += bias
        else:
            child_h = h_rows.index_select(0, children) if fused is None else \
                kernels.gather_rows(fused, h_rows, children)
            activations = product(child_h.view(-1, arity * hidden_size), weight_t, bias)
        if fused is not None:  # the children's c read in place (kernels.c)
            kernels.nary_update(fused, activations, c_rows, children, arity, hidden_size,
                                out=(h_level, c_level))
        else:
            child_c = c_rows.index_select(0, children).view(-1, arity * hidden_size)
            functional.nary_state_fused(activations, child_c, arity, hidden_size,
                                        out=(h_level, c_level))
    return h_rows, c_rows, None


def _leaf_word_terms(plan: Plan, weight_t: Tensor, bias_ih: Optional[Tensor],
                     bias_hh: Optional[Tensor]) -> Optional[_LeafWordTerms]:
    """The per-word terms of the cached table (see :class:`_LeafWordTerms`) for ``weight_t``
    the padded ``U^T``; ``None`` when there is no cached table, when some leaf has no
    input, or when the terms would not fit the cache."""
    cache, table = plan.cache, plan.table
    num_leaves, hidden_size, arity = plan.num_leaves, plan.hidden_size, plan.num_forget
    if cache is None or not (plan.leaves_only and plan.identity_rows) or \
            plan.batch.num_levels < 2:
        return None
    # a plan with a cache has its table (layer._forward), read through input_rows (its gather)
    table, gather = cast(Tensor, table), cast(Tensor, plan.gather)
    num_words, width = table.shape[0], weight_t.shape[1]
    if arity * (num_words + 1) * width * weight_t.element_size() > cache.max_bytes:
        return None

    def compute(words: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        leaf = project_leaves(table.index_select(0, words).to(weight_t.dtype),
                              plan.weights[0].to(weight_t.dtype), hidden_size, pad=True)
        leaf_bias = functional.leaf_bias(bias_ih, bias_hh, arity)
        if leaf_bias is not None:
            leaf += pad_rows(leaf_bias)
        h_leaf, c_leaf = leaf.new_empty(2, leaf.shape[0], hidden_size)
        leaf_update(leaf, hidden_size, (h_leaf, c_leaf))  # (in C where it can)
        terms = leaf.new_empty(arity, leaf.shape[0], width)
        for slot in range(arity):
            torch.mm(h_leaf, weight_t[slot * hidden_size:(slot + 1) * hidden_size],
                     out=terms[slot])
        return terms, h_leaf, c_leaf

    # one more row (zero, the first): the terms of an empty slot
    (terms, h_leaf, c_leaf), place = cache.kept_rows(
        "leaf_terms", (table, *plan.weights), (weight_t.dtype, arity), num_words, gather,
        compute, pad_rows=1)
    term_of_row = place.new_zeros(plan.batch.num_nodes + 1)
    term_of_row[:num_leaves] = place
    return _LeafWordTerms(terms, term_of_row, h_leaf, c_leaf, place)


def _backward_by_level(plan: Plan, lib: Optional[ctypes.CDLL], activations: Tensor,
                       leaf_activations: Tensor, c_rows: Tensor, grad_h_rows: Tensor,
                       grad_c_rows: Tensor, padded_weight: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`nary_backward`'s levels and leaves where one C call cannot run them: the
    pre-activation gradients of the rows above the leaves and of the leaves ``[L, 3H]``."""
    arity, hidden_size, bounds = plan.num_forget, plan.hidden_size, plan.batch.level_order.bounds
    num_leaves, num_nodes = bounds[1], plan.batch.num_nodes
    slots = plan.batch.child_slots(arity)
    child_c = c_rows.index_select(0, slots.view(-1)).view(-1, arity, hidden_size)
    # All that does not depend on the incoming gradients, at once; `grad_pre` then becomes the
    # internal rows' pre-activation gradients, i | f_1..f_N | g | o (+ zero padding), level by
    # level, walked top-down (the rows of every level cut at once).
    through, grad_pre = functional.backward_factors(activations, arity, hidden_size,
                                                    c_rows[num_leaves:num_nodes], child_c)
    sizes = [bounds[k + 1] - bounds[k] for k in range(len(bounds) - 1)]
    levels = list(zip(
        plan.batch.level_children(arity), grad_pre.split_with_sizes(sizes[1:]),
        through.split_with_sizes(sizes[1:]), activations.split_with_sizes(sizes[1:]),
        grad_h_rows.split_with_sizes(sizes + [1])[1:-1],
        grad_c_rows.split_with_sizes(sizes + [1])[1:-1]))
    for children, level_grad_pre, level_through, level_activations, grad_h, grad_c in reversed(
            levels):
        if lib is not None and kernels.fits(*level_grad_pre.shape):  # kernels.c
            kernels.nary_backward_level(lib, level_grad_pre, level_through, grad_h, grad_c,
                                        level_activations, children, grad_c_rows, arity)
            grad_child_h = level_grad_pre.mm(padded_weight).view(children.shape[0], -1)
            kernels.scatter_add_rows(lib, grad_h_rows, children, grad_child_h)
            continue
        grad_c_total = functional.preactivation_grads(
            level_grad_pre, level_through, grad_h, grad_c, arity, hidden_size)
        grad_child_h = level_grad_pre.mm(padded_weight).view(children.shape[0], -1)
        grad_h_rows.index_add_(0, children, grad_child_h[:, :hidden_size])
        level_forget = level_activations[:, hidden_size:(arity + 1) * hidden_size]
        grad_c_rows.index_add_(0, children, (grad_c_total.unsqueeze(1) * level_forget.view(
            -1, arity, hidden_size)).view(-1, hidden_size))
    return grad_pre, leaf_backward(leaf_activations, c_rows, grad_h_rows, grad_c_rows,
                                   num_leaves, hidden_size)


def nary_backward(plan: Plan, saved: tuple[Tensor, Tensor], h_rows: Tensor, c_rows: Tensor,
                   grad_h_rows: Tensor, grad_c_rows: Tensor, weight_hh: Tensor
                   ) -> tuple[Tensor, Tensor, Tensor]:
    arity, hidden_size, bounds = plan.num_forget, plan.hidden_size, plan.batch.level_order.bounds
    width = (arity + 3) * hidden_size
    leaf_activations, activations = saved
    slots = plan.batch.child_slots(arity)
    # rows padded like the forward's (its activations tell); then columns too, so that
    # grad @ weight has aligned rows
    padded_weight = weight_hh
    if activations.shape[1] > width:
        padded_weight = pad_rows(pad_column_blocks(weight_hh, arity))
    lib = kernels.for_call(grad_h_rows)
    grads = None if lib is None else kernels.nary_backward(  # the whole layer in one C call
        lib, bounds, slots, arity, padded_weight, activations, c_rows, grad_h_rows,
        grad_c_rows, leaf_activations)
    if grads is None:
        grad_pre, grad_leaf = _backward_by_level(plan, lib, activations, leaf_activations,
                                                 c_rows, grad_h_rows, grad_c_rows,
                                                 padded_weight)
    else:
        grad_pre, grad_leaf = grads[0], grads[1][:, :3 * hidden_size]
    child_h = h_rows.index_select(0, slots.view(-1)).view(-1, arity * hidden_size)
    grad_weight_hh = gradient_product(grad_pre, child_h, transposed=True)[:width]
    total = grad_pre.sum(0)
    grad_bias_hh = bias_hh_grad(functional.iog(total, hidden_size, arity) + grad_leaf.sum(0),
                                 total[hidden_size:(arity + 1) * hidden_size])
    if plan.leaves_only:
        return grad_leaf, grad_weight_hh, grad_bias_hh
    # the input's forget term serves all N forget gates
    grad_forget = grad_pre[:, hidden_size:(arity + 1) * hidden_size]
    grad_x_rows = x_rows_grad(plan, grad_leaf, functional.iog(grad_pre, hidden_size, arity),
                               grad_forget.reshape(-1, arity, hidden_size).sum(1))
    return grad_x_rows, grad_weight_hh, grad_bias_hh
