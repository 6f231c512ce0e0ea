"""The cells: reference equations, nn.LSTMCell equivalence, gradcheck, conventions, errors."""
import pytest
import torch
from torch import nn

import reference
from treelstm import ChildSumTreeLSTMCell, NaryTreeLSTMCell


def params(cell):
    return cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh


def test_parameter_shapes_and_init():
    cell = ChildSumTreeLSTMCell(7, 5)
    assert [tuple(p.shape) for p in params(cell)] == [(20, 7), (20, 5), (20,), (20,)]
    nary = NaryTreeLSTMCell(7, 5, arity=3)
    assert [tuple(p.shape) for p in params(nary)] == [(20, 7), (30, 15), (20,), (30,)]
    bound = 1 / 5 ** 0.5
    for p in list(cell.parameters()) + list(nary.parameters()):
        assert p.abs().max() <= bound and p.std() > bound / 4
    assert repr(cell) == "ChildSumTreeLSTMCell(7, 5)"
    assert repr(NaryTreeLSTMCell(2, 3, 2, bias=False)) == "NaryTreeLSTMCell(2, 3, arity=2, bias=False)"
    assert NaryTreeLSTMCell(2, 3, 2, bias=False).bias_hh is None


def test_childsum_matches_reference():
    torch.manual_seed(0)
    cell = ChildSumTreeLSTMCell(4, 3, dtype=torch.float64)
    x = torch.randn(2, 4, dtype=torch.float64)
    child_h = torch.randn(2, 3, 3, dtype=torch.float64)
    child_c = torch.randn(2, 3, 3, dtype=torch.float64)
    h, c = cell(x, (child_h, child_c))
    for n in range(2):
        ref_h, ref_c = reference.childsum_node(params(cell), x[n],
                                               list(zip(child_h[n], child_c[n])))
        torch.testing.assert_close(h[n], ref_h)
        torch.testing.assert_close(c[n], ref_c)


def test_nary_matches_reference():
    torch.manual_seed(0)
    cell = NaryTreeLSTMCell(4, 3, arity=3, dtype=torch.float64)
    x = torch.randn(2, 4, dtype=torch.float64)
    child_h = torch.randn(2, 3, 3, dtype=torch.float64)
    child_c = torch.randn(2, 3, 3, dtype=torch.float64)
    h, c = cell(x, (child_h, child_c))
    for n in range(2):
        ref_h, ref_c = reference.nary_node(params(cell), x[n],
                                           {k: (child_h[n, k], child_c[n, k]) for k in range(3)}, 3)
        torch.testing.assert_close(h[n], ref_h)
        torch.testing.assert_close(c[n], ref_c)


def test_childsum_zero_children_are_neutral():
    torch.manual_seed(0)
    cell = ChildSumTreeLSTMCell(4, 3, dtype=torch.float64)
    x = torch.randn(2, 4, dtype=torch.float64)
    child_h = torch.randn(2, 2, 3, dtype=torch.float64)
    child_c = torch.randn(2, 2, 3, dtype=torch.float64)
    zeros = torch.zeros(2, 3, 3, dtype=torch.float64)
    padded = (torch.cat([child_h, zeros], 1), torch.cat([child_c, zeros], 1))
    for ours, theirs in zip(cell(x, padded), cell(x, (child_h, child_c))):
        torch.testing.assert_close(ours, theirs)
    leaf = cell(x)
    for ours, theirs in zip(leaf, cell(x, (zeros, zeros))):
        torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("make", [lambda: ChildSumTreeLSTMCell(4, 3, dtype=torch.float64),
                                  lambda: NaryTreeLSTMCell(4, 3, arity=1, dtype=torch.float64)])
def test_one_child_is_an_lstm_cell_step(make):
    torch.manual_seed(0)
    cell = make()
    lstm_cell = nn.LSTMCell(4, 3, dtype=torch.float64)
    lstm_cell.load_state_dict(cell.state_dict())
    x = torch.randn(5, 4, dtype=torch.float64)
    h0, c0 = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    for ours, theirs in zip(cell(x, (h0.unsqueeze(1), c0.unsqueeze(1))), lstm_cell(x, (h0, c0))):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-14)
    for ours, theirs in zip(cell(x), lstm_cell(x)):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-14)


def test_unbatched_input():
    torch.manual_seed(0)
    cell = NaryTreeLSTMCell(4, 3, arity=2)
    x, child_h, child_c = torch.randn(4), torch.randn(2, 3), torch.randn(2, 3)
    h, c = cell(x, (child_h, child_c))
    batched_h, batched_c = cell(x[None], (child_h[None], child_c[None]))
    assert h.shape == (3,)
    torch.testing.assert_close(h, batched_h[0])
    torch.testing.assert_close(c, batched_c[0])


@pytest.mark.parametrize("make,k", [(lambda: ChildSumTreeLSTMCell(3, 2, dtype=torch.float64), 3),
                                    (lambda: NaryTreeLSTMCell(3, 2, 2, dtype=torch.float64), 2)])
def test_cell_gradcheck(make, k):
    torch.manual_seed(0)
    cell = make()
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    child_h = torch.randn(2, k, 2, dtype=torch.float64, requires_grad=True)
    child_c = torch.randn(2, k, 2, dtype=torch.float64, requires_grad=True)
    names = [name for name, _ in cell.named_parameters()]

    def run(x, child_h, child_c, *weights):
        return torch.func.functional_call(cell, dict(zip(names, weights)), (x, (child_h, child_c)))

    assert torch.autograd.gradcheck(run, (x, child_h, child_c, *cell.parameters()))


def test_cell_errors():
    cell = ChildSumTreeLSTMCell(4, 3)
    nary = NaryTreeLSTMCell(4, 3, arity=2)
    with pytest.raises(ValueError, match="Expected input to be 1D or 2D, got 3D instead"):
        cell(torch.randn(1, 2, 4))
    with pytest.raises(ValueError, match="Expected input with 4 features"):
        cell(torch.randn(2, 5))
    with pytest.raises(ValueError, match=r"Expected child states of shape \[2, K, 3\], got \[2, 1, 4\]"):
        cell(torch.randn(2, 4), (torch.randn(2, 1, 4), torch.randn(2, 1, 4)))
    with pytest.raises(ValueError, match="Expected child_h to be 3D"):
        cell(torch.randn(2, 4), (torch.randn(2, 3), torch.randn(2, 3)))
    with pytest.raises(ValueError, match="same shape"):
        cell(torch.randn(2, 4), (torch.randn(2, 1, 3), torch.randn(2, 2, 3)))
    with pytest.raises(TypeError, match="tuple"):
        cell(torch.randn(2, 4), torch.randn(2, 1, 3))
    with pytest.raises(ValueError, match=r"Expected 2 child slots \(arity\), got 3"):
        nary(torch.randn(2, 4), (torch.randn(2, 3, 3), torch.randn(2, 3, 3)))
    with pytest.raises(ValueError, match="arity must be a positive integer"):
        NaryTreeLSTMCell(4, 3, arity=0)
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        ChildSumTreeLSTMCell(4, 0)


@pytest.mark.parametrize("make_cell", [lambda: ChildSumTreeLSTMCell(3, 4),
                                       lambda: NaryTreeLSTMCell(3, 4, arity=2)])
def test_cell_input_types_and_dtypes_are_checked(make_cell):
    cell = make_cell()
    slots = 1 if isinstance(cell, ChildSumTreeLSTMCell) else 2
    state = (torch.zeros(2, slots, 4), torch.zeros(2, slots, 4))
    with pytest.raises(TypeError, match=r"Expected input to be a Tensor; got list"):
        cell([[0.0, 1.0, 2.0]])
    with pytest.raises(TypeError, match=r"Expected floating-point input .* got dtype torch\.int64"):
        cell(torch.ones(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"Expected input of the parameters' dtype torch\.float32, "
                                         r"got torch\.float64"):
        cell(torch.ones(2, 3, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"Expected child_h to be a Tensor; got list"):
        cell(torch.ones(2, 3), ([0.0], state[1]))
    with pytest.raises(ValueError, match=r"Expected child_c of the parameters' dtype"):
        cell(torch.ones(2, 3), (state[0], state[1].double()))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast picks the dtype itself
        h, c = cell(torch.ones(2, 3), state)
    assert h.shape == (2, 4)
