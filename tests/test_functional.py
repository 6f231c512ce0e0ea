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
