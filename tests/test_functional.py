"""functional: the fast tanh, the in-place gates, and the backward factors against autograd."""
import pytest
import torch

from treelstm import functional


@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-15), (torch.float32, 1e-6)])
def test_tanh_matches_torch_tanh(dtype, atol):
    x = torch.linspace(-30, 30, 10001, dtype=dtype)
    torch.testing.assert_close(functional.tanh(x), torch.tanh(x), rtol=0, atol=atol)
    x.requires_grad_(True)
    (grad,) = torch.autograd.grad(functional.tanh(x).sum(), x)
    torch.testing.assert_close(grad, 1 - torch.tanh(x.detach()) ** 2, rtol=0, atol=10 * atol)


@pytest.mark.parametrize("num_forget", [0, 1, 3])
def test_gates_in_place_and_with_padding_columns(num_forget):
    torch.manual_seed(0)
    hidden_size = 5
    preactivation = torch.randn(4, (num_forget + 3) * hidden_size, dtype=torch.float64)
    expected = functional.gates(preactivation, num_forget)
    padded = torch.cat([preactivation, torch.randn(4, 3, dtype=torch.float64)], 1)
    for ours, theirs in zip(functional.gates(padded.clone(), num_forget, hidden_size), expected):
        torch.testing.assert_close(ours, theirs)
    for ours, theirs in zip(functional.gates(padded, num_forget, hidden_size, inplace=True),
                            expected):
        torch.testing.assert_close(ours, theirs)
    i, forget, g, o = expected
    torch.testing.assert_close(i, torch.sigmoid(preactivation[:, :hidden_size]))
    torch.testing.assert_close(g, torch.tanh(preactivation[:, (num_forget + 1) * hidden_size:
                                                           (num_forget + 2) * hidden_size]))
    assert forget.shape == (4, num_forget, hidden_size)


def test_backward_factors_match_autograd():
    """grad_c_total = grad_c + grad_h * through; pre-activation grads = factor * grad_c_total
    (i, f_k, g) or factor * grad_h (o); children's c get grad_c_total * f_k."""
    torch.manual_seed(0)
    n, arity, hidden_size = 3, 2, 4
    preactivation = torch.randn(n, (arity + 3) * hidden_size, dtype=torch.float64,
                                requires_grad=True)
    child_c = torch.randn(n, arity, hidden_size, dtype=torch.float64, requires_grad=True)
    i, forget, g, o = functional.gates(preactivation, arity)
    h, c = functional.state(i, g, o, functional.forget_sum(forget, child_c))
    grad_h, grad_c = torch.randn_like(h), torch.randn_like(c)
    grad_pre, grad_child_c = torch.autograd.grad((h, c), (preactivation, child_c),
                                                 (grad_h, grad_c))
    with torch.no_grad():
        through, d_i, d_g, d_o = functional.state_backward_factors(i, g, o, c)
        d_forget = functional.forget_backward_factor(forget, child_c)
        grad_c_total = grad_c + grad_h * through
        blocks = [d_i * grad_c_total] + [d_forget[:, k] * grad_c_total for k in range(arity)] + \
            [d_g * grad_c_total, d_o * grad_h]
    torch.testing.assert_close(torch.cat(blocks, 1), grad_pre)
    torch.testing.assert_close(grad_c_total.unsqueeze(1) * forget.detach(), grad_child_c)


@pytest.mark.parametrize("arity", [0, 1, 2, 3])
def test_fused_nary_state_matches_nary_state(arity):
    """The engine's fused inference update (tanh of g first, then one σ over the whole block,
    children's c as one [n, N*H] block) against nary_state, with padding columns; with arity 0
    (the leaves' i | g | o) against leaf_state."""
    torch.manual_seed(0)
    n, hidden_size, padding = 6, 4, 5
    width = (arity + 3) * hidden_size
    weight = torch.randn(width + padding, max(arity, 1) * hidden_size, dtype=torch.float64)
    weight[width:] = 0
    child_h = torch.randn(n, max(arity, 1) * hidden_size, dtype=torch.float64)
    child_c = torch.randn(n, arity, hidden_size, dtype=torch.float64)
    preactivation = child_h.mm(weight[:width].t())
    expected = (functional.nary_state(preactivation, child_c, arity) if arity
                else functional.leaf_state(preactivation))
    out = (torch.empty(n, hidden_size, dtype=torch.float64),
           torch.empty(n, hidden_size, dtype=torch.float64))
    h, c = functional.nary_state_fused(child_h.mm(weight.t()),
                                       child_c.view(n, -1) if arity else None, arity,
                                       hidden_size, out)
    assert h is out[0] and c is out[1]
    torch.testing.assert_close(h, expected[0], rtol=0, atol=1e-14)
    torch.testing.assert_close(c, expected[1], rtol=0, atol=1e-14)


@pytest.mark.parametrize("num_forget", [0, 2])
def test_backward_factors_and_preactivation_grads_match_autograd(num_forget):
    """The engine's layout: backward_factors for all nodes, then preactivation_grads per level,
    give the pre-activation gradients (padding columns zero) and grad_c_total."""
    torch.manual_seed(0)
    n, hidden_size, padding = 3, 4, 3
    width = (num_forget + 3) * hidden_size
    preactivation = torch.randn(n, width, dtype=torch.float64, requires_grad=True)
    child_c = torch.randn(n, num_forget, hidden_size, dtype=torch.float64, requires_grad=True)
    i, forget, g, o = functional.gates(preactivation, num_forget)
    h, c = functional.state(i, g, o, functional.forget_sum(forget, child_c) if num_forget
                            else None)
    grad_h, grad_c = torch.randn_like(h), torch.randn_like(c)
    grad_pre, grad_child_c = torch.autograd.grad((h, c), (preactivation, child_c),
                                                 (grad_h, grad_c), allow_unused=True)
    with torch.no_grad():
        activations = torch.cat([torch.cat([i, forget.flatten(1), g, o], 1),
                                 torch.randn(n, padding, dtype=torch.float64)], 1)
        through, factors = functional.backward_factors(activations, num_forget, hidden_size, c,
                                                       child_c if num_forget else None)
        grad_c_total = functional.preactivation_grads(factors, through, grad_h, grad_c,
                                                      num_forget, hidden_size)
    torch.testing.assert_close(factors[:, :width], grad_pre)
    assert factors[:, width:].eq(0).all()
    if num_forget:
        torch.testing.assert_close(grad_c_total.unsqueeze(1) * forget.detach(), grad_child_c)


def test_biases_folded_once_match_the_per_node_forms():
    """leaf_bias is a leaf's pre-activation from x_gates = b_ih; nary_bias_without_input is the
    N-ary pre-activation bias of a node whose x_gates are b_ih; expand_forget_backward is the
    adjoint of expand_forget."""
    torch.manual_seed(0)
    arity, hidden_size = 3, 4
    bias_ih = torch.randn(4 * hidden_size, dtype=torch.float64)
    bias_hh = torch.randn((arity + 3) * hidden_size, dtype=torch.float64)
    weight_hh = torch.randn((arity + 3) * hidden_size, arity * hidden_size, dtype=torch.float64)
    child_h = torch.randn(5, arity * hidden_size, dtype=torch.float64)
    torch.testing.assert_close(functional.leaf_bias(bias_ih, bias_hh, arity),
                               functional.leaf_preactivation(bias_ih, bias_hh, arity))
    torch.testing.assert_close(functional.leaf_bias(bias_ih, None, arity),
                               functional.iog(bias_ih, hidden_size))
    assert functional.leaf_bias(None, None, arity) is None
    torch.testing.assert_close(
        functional.nary_preactivation(
            None, child_h, weight_hh,
            functional.nary_bias_without_input(bias_ih, bias_hh, arity), arity),
        functional.nary_preactivation(bias_ih.expand(5, -1), child_h, weight_hh, bias_hh, arity))
    assert functional.nary_bias_without_input(None, None, arity) is None

    x_gates = torch.randn(5, 4 * hidden_size, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(5, (arity + 3) * hidden_size, dtype=torch.float64)
    (expected,) = torch.autograd.grad(functional.expand_forget(x_gates, arity), x_gates, grad)
    torch.testing.assert_close(functional.expand_forget_backward(grad, arity), expected)
