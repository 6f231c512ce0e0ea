"""The small shared checks of :mod:`treelstm.checks`."""
import pytest
import torch

from treelstm.checks import all_finite


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.complex64])
def test_all_finite_sees_every_nan_and_infinity(dtype):
    tensor = torch.ones(50, 7, dtype=dtype)
    assert all_finite(tensor)
    for bad in (float("nan"), float("inf"), float("-inf")):
        for index in [(0, 0), (49, 6), (17, 3)]:
            broken = tensor.clone()
            broken[index] = bad
            assert not all_finite(broken), (bad, index)


def test_all_finite_when_the_sum_overflows():
    huge = torch.full((10,), 3e38)  # finite entries whose float32 sum is infinite
    assert not torch.isfinite(huge.sum())
    assert all_finite(huge)
    huge[3] = float("inf")
    assert not all_finite(huge)
    mixed = torch.tensor([float("inf"), float("-inf")])  # the sum is NaN
    assert not all_finite(mixed)


def test_all_finite_of_integers_bools_and_empty_tensors():
    assert all_finite(torch.arange(5))
    assert all_finite(torch.tensor([True, False]))
    assert all_finite(torch.empty(0))
