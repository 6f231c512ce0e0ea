"""The weight layouts kept between calls (engine/layouts.py): kept while a parameter's bytes are
unchanged, made again after any change (an optimizer step, a write through ``.data`` or a NumPy
view), never kept for other tensors, freed with the parameter; a model's inference after such a
change matches a fresh model's."""
import copy
import gc
import threading

import pytest
import torch
from torch import nn

from cases import random_tree
from treelstm import TreeBatch, TreeLSTM
from treelstm.engine import kernels, layouts, steps

needs_transpose = pytest.mark.skipif(
    kernels.transposed(torch.zeros(2, 2), ((0, 2),), 2) is None,
    reason="torch exports no MKL transposing copy here (not an x86 MKL build)")


def expected(weight, width):
    padded = torch.zeros(weight.shape[1], width)
    padded[:, :weight.shape[0]] = weight.detach().t()
    return padded


@needs_transpose
def test_a_parameter_layout_is_kept_until_its_bytes_change():
    weight = nn.Parameter(torch.randn(15, 6))
    first = layouts.transposed(weight, 16)
    torch.testing.assert_close(first, expected(weight, 16), rtol=0, atol=0)
    assert layouts.transposed(weight, 16) is first  # kept
    assert layouts.transposed(weight, 32) is not first  # another width: its own
    changes = [lambda: weight.data.__setitem__((3, 4), 7.0),  # no version bump
               lambda: weight.detach().numpy().__setitem__((0, 0), -1.0),
               lambda: torch.optim.SGD([weight], lr=0.1).step()]
    weight.grad = torch.ones_like(weight)
    for change in changes:
        before = layouts.transposed(weight, 16)
        change()
        after = layouts.transposed(weight, 16)
        assert after is not before
        torch.testing.assert_close(after, expected(weight, 16), rtol=0, atol=0)


@needs_transpose
def test_only_parameters_of_bounded_size_are_kept_and_they_are_freed_with_them(monkeypatch):
    plain = torch.randn(15, 6)
    assert layouts.transposed(plain, 16) is not layouts.transposed(plain, 16)
    gc.collect()
    held = layouts.kept_bytes()
    weight = nn.Parameter(torch.randn(15, 6))
    layouts.transposed(weight, 16)
    assert layouts.kept_bytes() == held + 2 * 15 * 6 * 4 + 6 * 16 * 4 - 15 * 6 * 4
    del weight
    gc.collect()
    assert layouts.kept_bytes() == held
    monkeypatch.setattr(layouts, "MAX_ELEMENTS", 15 * 6 - 1)
    large = nn.Parameter(torch.randn(15, 6))
    assert layouts.transposed(large, 16) is not layouts.transposed(large, 16)
    assert layouts.kept_bytes() == held


def sst_like_batch(num_trees):
    return TreeBatch.from_parents([random_tree(23, seed=t, max_children=2)
                                   for t in range(num_trees)])


@needs_transpose
def test_inference_after_a_weight_change_matches_a_fresh_model():
    """A batch large enough for the kept U^T (TRANSPOSE_FROM rows above its leaves): after its
    weights change through .data (which torch's version counter does not see), the model's
    output is that of a fresh copy, not of the old weights."""
    torch.manual_seed(0)
    model = TreeLSTM(6, 5, cell="nary", arity=2)
    batch = sst_like_batch(30)
    assert batch.num_nodes - int((batch.num_children == 0).sum()) >= steps.TRANSPOSE_FROM
    leaves = torch.nonzero(batch.num_children == 0).flatten()
    table = torch.randn(40, 6)
    rows = torch.randint(0, 40, (len(leaves),))

    def outputs(m):
        with torch.no_grad():
            return m(table, batch, input_index=leaves, input_rows=rows)[0]

    first = outputs(model)
    assert layouts.kept_bytes() > 0
    model.weight_hh_l0.data.mul_(-1.5)
    changed = outputs(model)
    assert not torch.equal(changed, first)
    torch.testing.assert_close(changed, outputs(copy.deepcopy(model)), rtol=0, atol=0)


@needs_transpose
def test_threads_calling_one_model_get_its_results():
    """Four threads calling one model (the kept layout shared) get the single-thread output."""
    torch.manual_seed(0)
    model = TreeLSTM(6, 5, cell="nary", arity=2)
    batch = sst_like_batch(30)
    leaves = torch.nonzero(batch.num_children == 0).flatten()
    table = torch.randn(40, 6)
    rows = torch.arange(len(leaves)) % 40

    def outputs():
        with torch.no_grad():
            return model(table, batch, input_index=leaves, input_rows=rows)[0]

    reference = outputs()
    errors = []

    def call():
        for _ in range(20):
            if not torch.equal(outputs(), reference):
                errors.append("differs")

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors


@needs_transpose
def test_a_write_while_the_layout_is_made_does_not_leave_it_stale(monkeypatch):
    """Another thread's write to the weight while its layout is being made (stood in for by a
    write right after the transposing copy): the next calls see the weight as it is, not a
    layout of the old bytes kept against the new ones."""
    weight = nn.Parameter(torch.randn(15, 6))
    real = kernels.transposed

    def then_a_write(source, blocks, width):
        layout = real(source, blocks, width)
        with torch.no_grad():
            weight.mul_(-1.0)
        monkeypatch.setattr(kernels, "transposed", real)  # once
        return layout

    monkeypatch.setattr(kernels, "transposed", then_a_write)
    layouts.transposed(weight, 16)
    torch.testing.assert_close(layouts.transposed(weight, 16), expected(weight, 16), rtol=0,
                               atol=0)
