"""Checks shared by the test files (like PyG's ``testing/asserts.py``)."""
import copy
import importlib.util
import sys
from pathlib import Path

import torch

import reference
from treelstm import TreeBatch, TreeLSTM

REPO = Path(__file__).resolve().parents[1]


def load_script(relative_path: str):
    """The module of a script of the repository that is not part of the package (e.g.
    ``benchmarks/bench.py``), loaded once under its file name."""
    path = REPO / relative_path
    name = f"script_{path.stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules[name]


def root_logits(model, trees, vocab, batch_size=7):
    """An independent path to a classifier's root logits ``[len(trees), C]``: a copy of the model
    in eval mode, no projection cache, fixed-size chunks, ``model.collate`` and one forward each
    under ``no_grad``."""
    reference = copy.deepcopy(model).cpu().eval()
    if hasattr(reference, "tree_lstm"):
        reference.tree_lstm.cache_projections(False)
    rows = []
    with torch.no_grad():
        for start in range(0, len(trees), batch_size):
            inputs = reference.collate(trees[start:start + batch_size], vocab)
            rows.append(reference(inputs).root_logits)
    return torch.cat(rows)


# ---------------------------------------------------------------- TreeLSTM against reference.py
KINDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def make_model(case, cell, backend, num_layers=1, bias=True, input_size=5, hidden_size=4, seed=0,
               bidirectional=False):
    """A float64 ``TreeLSTM`` for ``case`` (an N-ary cell gets the case's arity), seeded."""
    torch.manual_seed(seed)
    arity = case.arity if cell == "nary" else None
    return TreeLSTM(input_size, hidden_size, num_layers=num_layers, cell=cell, arity=arity,
                    bias=bias, backend=backend, dtype=torch.float64, bidirectional=bidirectional)


def weighted_loss(output, h_n, c_n, seed=1):
    """A loss that weighs every output element differently, so gradients see every value."""
    g = torch.Generator().manual_seed(seed)
    return sum((t * torch.randn(t.shape, generator=g, dtype=t.dtype)).sum()
               for t in (output, h_n, c_n))


def grad_or_zero(param):
    """An unused weight (a lone leaf's weight_hh) gets no grad: that is a zero gradient."""
    return torch.zeros_like(param) if param.grad is None else param.grad


def reference_params(model):
    """Detached CPU copies of ``model``'s parameters that the reference differentiates, in the
    layout of :mod:`reference`: per layer ``(weight_ih, weight_hh, bias_ih, bias_hh)`` (``None``
    for a missing bias), or ``(up, down)`` of those for a bidirectional model."""
    def leaves(k, reverse):
        return tuple(None if p is None else p.detach().to("cpu", copy=True).requires_grad_(True)
                     for p in model.layer_parameters(k, reverse))

    if model.bidirectional:
        return [(leaves(k, False), leaves(k, True)) for k in range(model.num_layers)]
    return [leaves(k, False) for k in range(model.num_layers)]


def named_reference_params(model, params):
    """``{name: tensor}`` of :func:`reference_params`' result, named as ``model``'s parameters."""
    directions = ("", "_reverse") if model.bidirectional else ("",)
    named = {}
    for k, layer in enumerate(params):
        for direction, group in zip(directions, layer if model.bidirectional else (layer,)):
            named.update({f"{kind}_l{k}{direction}": p for kind, p in zip(KINDS, group)})
    return named


def assert_gradients_match(model, params):
    """Every parameter of ``model`` has the gradient of its copy in ``params`` (a missing grad
    counts as zero), and no copy that should have one is left unchecked."""
    theirs = named_reference_params(model, params)
    checked = 0
    for name, ours in model.named_parameters():
        torch.testing.assert_close(grad_or_zero(ours).cpu(), grad_or_zero(theirs[name]),
                                   msg=lambda text: f"gradient of {name}: {text}")
        checked += 1
    assert checked == sum(p is not None for p in theirs.values())


def assert_matches_reference(model, case, x, input_index=None, device=None):
    """``model`` on ``case``'s trees agrees with the float64 per-node recursion of
    :mod:`reference` (``tree_lstm``, or ``bidirectional_tree_lstm`` for a bidirectional model)
    run on CPU copies of its weights: ``output``, ``h_n``, ``c_n``, and the gradients of
    :func:`weighted_loss` with respect to ``x`` and to every parameter.

    Args:
        model: a float64 ``TreeLSTM``; its parameters' ``.grad`` must be unset.
        case: a ``cases.Case`` (parents and positions).
        x: the input, a CPU leaf that requires grad: one row per node, or with ``input_index``
            one row per listed node (the reference then gets zero rows for the other nodes).
        device: run a copy of ``model`` there (and the batch, ``x``, ``input_index``), the
            same steps for ``"cpu"``; ``None``: ``model`` itself, on the CPU.

    Returns:
        the model's ``(output, h_n, c_n)``, for further checks (shapes), on its device.
    """
    batch = TreeBatch.from_parents(case.parents, case.positions)
    x_in, index_in = x, input_index
    if device is not None:
        model = copy.deepcopy(model).to(device)
        batch = batch.to(device)
        x_in = x.to(device)  # differentiable: x.grad is the CPU gradient
        index_in = None if input_index is None else input_index.to(device)
    output, (h_n, c_n) = model(x_in, batch, input_index=index_in)
    weighted_loss(output.cpu(), h_n.cpu(), c_n.cpu()).backward()

    params = reference_params(model)
    if input_index is None:
        x_ref = x.detach().clone()
    else:
        x_ref = torch.zeros(case.num_nodes, x.shape[1], dtype=x.dtype)
        x_ref[input_index] = x.detach()
    x_ref.requires_grad_(True)
    run_reference = reference.bidirectional_tree_lstm if model.bidirectional else reference.tree_lstm
    ref_output, (ref_h, ref_c) = run_reference(params, model.cell, case.parents, x_ref,
                                               case.positions, model.arity)
    weighted_loss(ref_output, ref_h, ref_c).backward()

    torch.testing.assert_close(output.cpu(), ref_output)
    torch.testing.assert_close(h_n.cpu(), ref_h)
    torch.testing.assert_close(c_n.cpu(), ref_c)
    x_ref_grad = x_ref.grad if input_index is None else x_ref.grad[input_index]
    torch.testing.assert_close(x.grad, x_ref_grad)
    assert_gradients_match(model, params)
    return output, h_n, c_n
