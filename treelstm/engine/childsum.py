"""The Child-Sum kernel of the native engine: the levels forward (a node's ``U_{iog}`` times the
sum of its children's ``h`` once, ``U_f`` per child edge) and the hand-written backward."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from .. import functional
from . import kernels
from .steps import Plan, Project, bias_hh_grad, leaf_backward, leaf_states, product, x_rows_grad


def childsum_forward(plan: Plan, project: Project, weight_hh: Tensor,
                     bias_ih: Optional[Tensor], bias_hh: Optional[Tensor], keep: bool
                     ) -> tuple[Tensor, Tensor, Optional[tuple]]:
    """The levels, from ``project()``: the input rows' projection (a new tensor)."""
    if not keep:
        return _childsum_inference(plan, project, weight_hh, bias_ih, bias_hh)
    order, hidden_size = plan.batch.level_order, plan.hidden_size
    bounds, num_leaves = order.bounds, order.bounds[1]
    h_rows, c_rows, x_rows, leaf_activations = leaf_states(plan, project(), bias_ih, bias_hh)
    num_internal = plan.batch.num_nodes - num_leaves
    activations = h_rows.new_empty(num_internal, 3 * hidden_size)  # i | g | o per internal row
    forget = h_rows.new_empty(order.child_row.shape[0], hidden_size)  # f_k per child edge
    h_sums = h_rows.new_zeros(num_internal, hidden_size)  # sum_k h_k, for the weight gradient
    forget_rows = slice(hidden_size, 2 * hidden_size)
    lib = kernels.for_call(h_rows) if x_rows is None else None
    if x_rows is None:  # no input above the leaves: the levels' weights and biases, once
        no_input = bias_ih if bias_ih is not None else h_rows.new_zeros(4 * hidden_size)
        node_bias = functional.leaf_preactivation(no_input, bias_hh)  # [3H]
        forget_bias = no_input[forget_rows] if bias_hh is None else \
            no_input[forget_rows] + bias_hh[forget_rows]
        if lib is not None and kernels.childsum_forward(
                lib, bounds, order.edge_bounds, order.child_row, order.child_parent, weight_hh,
                forget_bias, node_bias, h_rows, c_rows, activations, h_sums, forget):
            return h_rows, c_rows, (leaf_activations, activations, forget, h_sums)  # one C call
        weight_iog_t = functional.iog(weight_hh, hidden_size, dim=0).t()  # (a copy: not above)
        weight_forget_t = weight_hh[forget_rows].t()
    for k in range(1, len(bounds) - 1):
        start, stop = bounds[k], bounds[k + 1]
        level = slice(start - num_leaves, stop - num_leaves)
        edges = slice(order.edge_bounds[k], order.edge_bounds[k + 1])
        children, parent = order.child_row[edges], order.child_parent[edges]
        if lib is not None and kernels.fits(children.shape[0], 4 * hidden_size):  # kernels.c
            child_h = kernels.gather_rows(lib, h_rows, children)
            h_sum = kernels.sum_rows(lib, child_h, parent, stop - start, out=h_sums[level])
            torch.addmm(forget_bias, child_h, weight_forget_t, out=forget[edges])
            torch.addmm(node_bias, h_sum, weight_iog_t, out=activations[level])
            kernels.childsum_update(lib, activations[level], hidden_size, 2 * hidden_size,
                                    forget[edges], c_rows, children, parent,
                                    out=(h_rows[start:stop], c_rows[start:stop]),
                                    keep_activations=True)
            continue
        child_h = h_rows.index_select(0, children)
        h_sum = h_sums[level].index_add_(0, parent, child_h)
        if x_rows is None:
            torch.addmm(forget_bias, child_h, weight_forget_t, out=forget[edges]).sigmoid_()
            level_activations = torch.addmm(node_bias, h_sum, weight_iog_t,
                                            out=activations[level])
        else:
            x_gates = x_rows[start:stop]
            functional.childsum_forget(child_h, x_gates[:, forget_rows].index_select(0, parent),
                                       weight_hh, bias_hh, out=forget[edges])
            level_activations = functional.childsum_preactivation(
                x_gates, h_sum, weight_hh, bias_hh, out=activations[level])
        forget_sum = functional.edge_forget_sum(forget[edges], c_rows.index_select(0, children),
                                                parent, stop - start)
        functional.childsum_state(level_activations, forget_sum, hidden_size,
                                  out=(h_rows[start:stop], c_rows[start:stop]))
    return h_rows, c_rows, (leaf_activations, activations, forget, h_sums) if keep else None


def _childsum_inference(plan: Plan, project: Project, weight_hh: Tensor,
                        bias_ih: Optional[Tensor], bias_hh: Optional[Tensor]
                        ) -> tuple[Tensor, Tensor, None]:
    """The Child-Sum levels without autograd, in about half the ops per level of
    :func:`childsum_forward`: what the levels share (the weights' views, the biases) is prepared
    once per call, not once per level, and each level updates its states in place::

        f_k = σ(U_f h_k + W_f x + b_f)         per child edge
        c   = i g + sum_k f_k c_k              (the sum written into c first, by index_add_)
        h   = o tanh(c)

    With input at the leaves only (constituency trees) the nodes above get ``b_ih``, folded
    into the biases, and their gates come from the ``i | g | o`` rows of ``U`` alone; with input
    above the leaves (dependency trees: a word at every node) each level adds its rows' ``W x``
    (``b_hh`` added once for all rows) through a product with all of ``U``, whose ``f`` columns
    are not used.
    """
    order, hidden_size = plan.batch.level_order, plan.hidden_size
    bounds, num_leaves = order.bounds, order.bounds[1]
    h_rows, c_rows, x_rows, _ = leaf_states(plan, project(), bias_ih, bias_hh, keep=False)
    forget_rows = slice(hidden_size, 2 * hidden_size)
    weight_forget_t = weight_hh[forget_rows].t()
    lib = kernels.for_call(h_rows)
    if x_rows is None:
        bias = functional.nary_bias_without_input(bias_ih, bias_hh, 1)  # b_hh + b_ih
        bias_forget = None if bias is None else bias[forget_rows]
        bias_gates = None if bias is None else functional.iog(bias, hidden_size)
        if lib is not None and len(bounds) > 2 and kernels.childsum_inference(
                lib, bounds, order.edge_bounds, order.child_row, order.child_parent, weight_hh,
                bias_forget, bias_gates, h_rows, c_rows):
            return h_rows, c_rows, None  # every level in one C call
        weight_gates_t = functional.iog(weight_hh, hidden_size, dim=0).t()
    else:  # x_rows is this call's own buffer; its leaf rows are used up
        weight_gates_t = weight_hh.t()
        if bias_hh is not None:
            x_rows[num_leaves:] += bias_hh
    for k in range(1, len(bounds) - 1):
        start, stop = bounds[k], bounds[k + 1]
        edges = slice(order.edge_bounds[k], order.edge_bounds[k + 1])
        children, parent = order.child_row[edges], order.child_parent[edges]
        fused = lib if lib is not None and kernels.fits(children.shape[0], 4 * hidden_size) \
            else None
        child_h = h_rows.index_select(0, children) if fused is None else \
            kernels.gather_rows(fused, h_rows, children)
        if x_rows is None:
            forget = product(child_h, weight_forget_t, bias_forget)
        else:
            bias_gates = x_rows[start:stop]
            forget = torch.addmm(bias_gates[:, forget_rows].index_select(0, parent), child_h,
                                 weight_forget_t)
        if fused is not None:  # kernels.c: the forget terms, gates and state in one pass
            h_sum = kernels.sum_rows(fused, child_h, parent, stop - start)
            preactivation = product(h_sum, weight_gates_t, bias_gates)
            width = preactivation.shape[1]  # i | g | o, or i | f | g | o: g and o last
            kernels.childsum_update(fused, preactivation, width - 2 * hidden_size,
                                    width - hidden_size, forget, c_rows, children, parent,
                                    out=(h_rows[start:stop], c_rows[start:stop]))
            continue
        c = c_rows[start:stop].zero_().index_add_(
            0, parent, forget.sigmoid_().mul_(c_rows.index_select(0, children)))
        h_sum = child_h.new_zeros(stop - start, hidden_size).index_add_(0, parent, child_h)
        preactivation = product(h_sum, weight_gates_t, bias_gates)
        gates = preactivation.view(stop - start, -1, hidden_size).unbind(1)  # i|g|o, i|f|g|o
        cell_gate = torch.tanh(gates[-2])
        preactivation.sigmoid_()  # i and o (views) are now gates
        c.addcmul_(gates[0], cell_gate)
        torch.tanh(c, out=h_rows[start:stop]).mul_(gates[-1])
    return h_rows, c_rows, None


def childsum_backward(plan: Plan, saved: tuple, h_rows: Tensor, c_rows: Tensor,
                       grad_h_rows: Tensor, grad_c_rows: Tensor, weight_hh: Tensor
                       ) -> tuple[Tensor, Tensor, Tensor]:
    order, hidden_size = plan.batch.level_order, plan.hidden_size
    bounds, num_leaves, num_nodes = order.bounds, order.bounds[1], plan.batch.num_nodes
    leaf_activations, activations, forget, h_sums = saved
    # All that does not depend on the incoming gradients, at once; `grad_igo` (per internal row)
    # and `grad_forget` (per edge) then become pre-activation gradients, level by level.
    through, grad_igo = functional.backward_factors(activations, 0, hidden_size,
                                                    c_rows[num_leaves:num_nodes])
    grad_forget = functional.forget_backward_factor(forget,
                                                    c_rows.index_select(0, order.child_row))
    lib = kernels.for_call(grad_h_rows)
    in_c = lib is not None and kernels.childsum_backward(  # every level in one C call
        lib, bounds, order.edge_bounds, order.child_row, order.child_parent, weight_hh,
        grad_igo, through, grad_forget, forget, grad_h_rows, grad_c_rows)
    if not in_c:  # level by level (weight_iog: a copy the C call does without)
        weight_iog = functional.iog(weight_hh, hidden_size, dim=0)
        weight_forget = weight_hh[hidden_size:2 * hidden_size]
    for k in ([] if in_c else range(len(bounds) - 2, 0, -1)):
        start, stop = bounds[k], bounds[k + 1]
        level = slice(start - num_leaves, stop - num_leaves)
        edges = slice(order.edge_bounds[k], order.edge_bounds[k + 1])
        children, parent = order.child_row[edges], order.child_parent[edges]
        if lib is not None and kernels.fits(children.shape[0], 4 * hidden_size):  # kernels.c
            kernels.childsum_backward_level(
                lib, grad_igo[level], through[level], grad_h_rows[start:stop],
                grad_c_rows[start:stop], grad_forget[edges], forget[edges], children, parent,
                grad_c_rows)
            grad_child_h = torch.addmm(
                kernels.gather_rows(lib, grad_igo[level].mm(weight_iog), parent),
                grad_forget[edges], weight_forget)
            kernels.scatter_add_rows(lib, grad_h_rows, children, grad_child_h)
            continue
        grad_c_total = functional.preactivation_grads(
            grad_igo[level], through[level], grad_h_rows[start:stop], grad_c_rows[start:stop], 0,
            hidden_size)
        edge_grad_c = grad_c_total.index_select(0, parent)
        grad_forget[edges] *= edge_grad_c
        grad_child_h = torch.addmm(grad_igo[level].mm(weight_iog).index_select(0, parent),
                                   grad_forget[edges], weight_forget)
        grad_h_rows.index_add_(0, children, grad_child_h)
        grad_c_rows.index_add_(0, children, edge_grad_c * forget[edges])
    grad_leaf = leaf_backward(leaf_activations, c_rows, grad_h_rows, grad_c_rows, num_leaves,
                               hidden_size)

    grad_weight_iog = grad_igo.t().mm(h_sums)
    grad_weight_hh = torch.cat([grad_weight_iog[:hidden_size],
                                grad_forget.t().mm(h_rows.index_select(0, order.child_row)),
                                grad_weight_iog[hidden_size:]])
    grad_bias_hh = bias_hh_grad(grad_igo.sum(0) + grad_leaf.sum(0), grad_forget.sum(0))
    if plan.leaves_only:
        return grad_leaf, grad_weight_hh, grad_bias_hh
    forget_per_row = grad_igo.new_zeros(grad_igo.shape[0], hidden_size).index_add_(
        0, _edge_parent_rows(plan) - num_leaves, grad_forget)
    return x_rows_grad(plan, grad_leaf, grad_igo, forget_per_row), grad_weight_hh, grad_bias_hh


def _edge_parent_rows(plan: Plan) -> Tensor:
    """``[E]`` the level-order row of each edge's parent (edges as in ``child_row``)."""
    order, parent = plan.batch.level_order, plan.batch.parent
    return order.row.index_select(0, parent.index_select(0, order.nodes.index_select(
        0, order.child_row)))
