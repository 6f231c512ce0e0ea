"""The native engine on each device against the CPU: the float64 recursion (outputs and every
gradient), a float32 classifier-style batch (a table read through input_rows, kept projections,
training), nn.LSTM on a chain (cuDNN on a GPU), training and bit-exact resume, Predictor, the
predict CLI and bench; on CUDA, no host sync inside a level loop (torch's sync debug mode).

Each test takes ``device`` from ``conftest.DEVICES``: the cpu case runs the same steps (the copies
to the device are no-ops there), so every test checks itself wherever the suite runs; the cuda case
is marked ``cuda`` and skipped without a GPU. ``pytest -m cuda`` runs them all on one
(``benchmarks/gpu_check.sh`` does, with the GPU benchmarks)."""
import copy
import json
import random
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from cases import CASES, caterpillar, chain, full_binary, random_tree
from conftest import DEVICES, needs_cuda
from helpers import REPO, assert_matches_reference, load_script, make_model
from treelstm import TreeBatch, TreeLSTM
from treelstm.__main__ import main
from treelstm.data import read_ptb
from treelstm.predict import Predictor
from treelstm.training import TrainConfig, load_checkpoint, save_checkpoint, train

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread

DATA = REPO / "treelstm" / "datasets" / "sentiment"

CELLS = ["childsum", "nary"]
LAYOUTS = [pytest.param(False, 1, id="uni-1"), pytest.param(True, 2, id="bi-2")]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("bidirectional,num_layers", LAYOUTS)
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("case_name", list(CASES))
def test_matches_the_cpu_float64_recursion(case_name, cell, bidirectional, num_layers, device):
    case = CASES[case_name]
    model = make_model(case, cell, "native", num_layers, bidirectional=bidirectional)
    x = torch.randn(case.num_nodes, 5, dtype=torch.float64, requires_grad=True)
    output, _, _ = assert_matches_reference(model, case, x, device=device)
    assert output.device.type == device


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("cell", CELLS)
def test_input_at_some_nodes_matches_the_recursion(cell, device):
    case = CASES["mixed forest"]
    model = make_model(case, cell, "native", num_layers=2)
    batch = TreeBatch.from_parents(case.parents, case.positions)
    leaves = torch.nonzero(batch.num_children == 0).flatten()
    x = torch.randn(len(leaves), 5, dtype=torch.float64, requires_grad=True)
    assert_matches_reference(model, case, x, input_index=leaves, device=device)


def _forest(num_trees=30, seed=0):
    """Binary trees of 1-40 nodes with shuffled ids (unary nodes and empty slots included)."""
    rng = random.Random(seed)
    return [random_tree(rng.randint(1, 40), seed=seed * 1000 + t, max_children=2)
            for t in range(num_trees)]


def _classifier_call(model, table, batch, index, rows, grad):
    """``(output, h_n, c_n)`` of a call that reads ``table`` through ``input_rows`` at the
    leaves, and with ``grad`` the gradients of the table and every parameter (on the CPU)."""
    model.zero_grad(set_to_none=True)
    table = table.detach().clone().requires_grad_(grad)
    with torch.set_grad_enabled(grad):
        output, (h_n, c_n) = model(table, batch, input_index=index, input_rows=rows)
    results = [output, h_n, c_n]
    if grad:
        g = torch.Generator().manual_seed(5)
        loss = sum((t.cpu().double() * torch.randn(t.shape, generator=g, dtype=torch.float64)).sum()
                   for t in results)
        loss.backward()
        results += [table.grad] + [p.grad for p in model.parameters()]
    return [t.detach().cpu().double() for t in results]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["training", "inference", "kept projections"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_float32_batch_matches_cpu_float64(cell, bidirectional, mode, device):
    """A 30-tree batch read from a 50-word table at its leaves, float32 on ``device`` against a
    float64 copy on the CPU: outputs, and in training the gradients of the table and every
    parameter."""
    torch.manual_seed(0)
    model = TreeLSTM(8, 6, cell=cell, arity=2 if cell == "nary" else None,
                     bidirectional=bidirectional, num_layers=2)
    exact = copy.deepcopy(model).double()
    moved = model.to(device).cache_projections(mode == "kept projections")
    batch = TreeBatch.from_parents(_forest())
    index = torch.nonzero(batch.num_children == 0).flatten()
    rows = torch.randint(0, 50, (len(index),), generator=torch.Generator().manual_seed(1))
    table = torch.randn(50, 8, generator=torch.Generator().manual_seed(2))
    grad = mode == "training"
    expected = _classifier_call(exact, table.double(), batch, index, rows, grad)
    on_device = batch.to(device), index.to(device), rows.to(device)
    for _ in range(2):  # kept projections: the second call reads what the first kept
        ours = _classifier_call(moved, table.to(device), *on_device, grad)
        assert len(ours) == len(expected)
        for a, b in zip(ours, expected):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_chain_equals_nn_lstm_on_the_device(device):
    """On a GPU nn.LSTM is cuDNN's (which takes float64 too, and TF32 never applies to it)."""
    torch.manual_seed(0)
    lstm = nn.LSTM(7, 6, num_layers=2, dtype=torch.float64).to(device)
    model = TreeLSTM(7, 6, num_layers=2, dtype=torch.float64).to(device)
    model.load_state_dict(lstm.state_dict())
    lengths = [9, 1, 4]
    batch = TreeBatch.from_parents([chain(n) for n in lengths]).to(device)
    x = torch.randn(sum(lengths), 7, dtype=torch.float64, device=device, requires_grad=True)
    output, (h_n, _) = model(x, batch)
    (output.sum() + h_n.sum()).backward()
    ours = x.grad.clone()
    x.grad = None
    start, total = 0, 0
    for t, n in enumerate(lengths):
        lstm_out, (lstm_h, _) = lstm(x[start:start + n].unsqueeze(1))
        torch.testing.assert_close(output[start:start + n], lstm_out[:, 0], rtol=0, atol=1e-12)
        torch.testing.assert_close(h_n[:, t], lstm_h[:, 0], rtol=0, atol=1e-12)
        total = total + lstm_out.sum() + lstm_h.sum()
        start += n
    total.backward()
    torch.testing.assert_close(ours, x.grad, rtol=0, atol=1e-12)


# --------------------------------------------------------------------- host syncs (CUDA only)
@needs_cuda
@pytest.mark.cuda
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("mode", ["inference", "kept projections", "training"])
@pytest.mark.parametrize("cell", CELLS)
def test_cuda_syncs_do_not_grow_with_the_number_of_levels(cell, mode, bidirectional):
    """torch's sync debug mode (a warning per synchronising CUDA call) over a second call of a
    classifier-style model on a balanced tree (5 levels) and a caterpillar (16 levels) of 16
    leaves each: the same count for both, so no sync is inside a level loop. The CPU version of
    this check (ops recorded by a dispatch mode) is test_engine's."""
    def syncs(parent):
        torch.manual_seed(0)
        model = TreeLSTM(6, 5, cell=cell, arity=2 if cell == "nary" else None,
                         bidirectional=bidirectional).cuda()
        model.cache_projections(mode == "kept projections")
        batch = TreeBatch.from_parents([parent]).to("cuda")
        leaves = torch.nonzero(batch.num_children == 0).flatten()
        table = torch.randn(20, 6, device="cuda", requires_grad=mode == "training")
        rows = torch.arange(len(leaves), device="cuda") % 20

        def call():
            with torch.set_grad_enabled(mode == "training"):
                output, (h, c) = model(table, batch, input_index=leaves, input_rows=rows)
                if mode == "training":
                    (output.sum() + h.sum() + c.sum()).backward()

        call()  # first call: the kept projections and layouts are made
        torch.cuda.synchronize()
        previous = torch.cuda.get_sync_debug_mode()
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                call()
        finally:
            torch.cuda.set_sync_debug_mode(previous)
        return [str(w.message).splitlines()[0] for w in caught]

    # the sync debug mode also counts blocking copies, so the count is not test_engine's
    shallow, deep = syncs(full_binary(4)), syncs(caterpillar(16))
    assert len(shallow) == len(deep), f"syncs: balanced {shallow}, caterpillar {deep}"


# ------------------------------------------------------------ training, predicting, benchmark
def _config(device, **kwargs):
    options = dict(model="treelstm", embed_dim=16, hidden_size=12, batch_size=5, epochs=2,
                   device=device, seed=3, dropout=0.5)
    options.update(kwargs)
    return TrainConfig(**options)


@pytest.fixture(scope="module")
def splits():
    trees = read_ptb(DATA / "train.txt")[:60]
    return {"train": trees[:30], "dev": trees[30:45], "test": trees[45:60]}


class Interrupted(Exception):
    pass


@pytest.fixture
def deterministic(device):
    """On a GPU, torch's deterministic algorithms: CUDA's ``index_add_`` (a word's gradient
    rows, summed) adds in any order otherwise, so two runs may differ in the last bits
    (cuBLAS needs CUBLAS_WORKSPACE_CONFIG too, which gpu_check.sh sets: else only a warning)."""
    if device == "cpu":
        yield
        return
    before, warn_only = (torch.are_deterministic_algorithms_enabled(),
                         torch.is_deterministic_algorithms_warn_only_enabled())
    torch.use_deterministic_algorithms(True, warn_only=True)
    yield
    torch.use_deterministic_algorithms(before, warn_only=warn_only)


@pytest.mark.parametrize("device", DEVICES)
def test_training_matches_the_cpu_and_resumes_bit_for_bit(device, splits, tmp_path,
                                                          deterministic):
    """One epoch without dropout on ``device``: the loss as on the CPU (up to float rounding);
    two with dropout (CUDA draws its masks from its own generator): a run interrupted after one
    epoch and resumed ends with the same weights, bit for bit (on a GPU under deterministic
    algorithms)."""
    epoch = [train(_config(where, epochs=1, dropout=0.0), splits=splits)
             for where in ("cpu", device)]
    assert next(epoch[1].model.parameters()).device.type == device
    losses = [run.metrics["history"][0]["train"]["loss"] for run in epoch]
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)

    straight = train(_config(device), tmp_path / "straight", splits=splits)

    def stop(done, record):
        if done == 1:
            raise Interrupted
    with pytest.raises(Interrupted):
        train(_config(device), tmp_path / "resumed", splits=splits, on_epoch_end=stop)
    random.seed(99), np.random.seed(99), torch.manual_seed(99)  # as a fresh process would
    resumed = train(_config(device), tmp_path / "resumed", resume=True, splits=splits)
    ours, theirs = resumed.model.state_dict(), straight.model.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert load_checkpoint(tmp_path / "resumed" / "best.pt").epoch in (1, 2)


@pytest.fixture(scope="module")
def checkpoint(splits, tmp_path_factory):
    result = train(_config("cpu", dropout=0.0), splits=splits)
    path = tmp_path_factory.mktemp("devices") / "tree.pt"
    save_checkpoint(path, result.model, result.vocab, _config("cpu", dropout=0.0).to_dict())
    return path


@pytest.mark.parametrize("device", DEVICES)
def test_predictor_on_the_device_matches_the_cpu(device, checkpoint):
    trees = read_ptb(DATA / "test.txt")[:80]
    expected = list(Predictor.from_checkpoint(checkpoint).predict(trees, batch_size=16))
    predictor = Predictor.from_checkpoint(checkpoint, device=device)
    assert next(predictor.model.parameters()).device.type == device
    ours = list(predictor.predict(trees, batch_size=16))
    assert [r.label for r in ours] == [r.label for r in expected]
    torch.testing.assert_close(torch.tensor([r.probs for r in ours]),
                               torch.tensor([r.probs for r in expected]), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_predict_cli_on_the_device(device, checkpoint, tmp_path, capsys):
    lines = (DATA / "test.txt").read_text().splitlines()[:40]
    source = tmp_path / "trees.txt"
    source.write_text("\n".join(lines) + "\n")
    records = {}
    for where in ("cpu", device):
        out = tmp_path / f"{where}.jsonl"
        assert main(["predict", str(checkpoint), str(source), "-o", str(out),
                     "--device", where]) == 0
        records[where] = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records[device]) == len(lines)
    assert [r["label"] for r in records[device]] == [r["label"] for r in records["cpu"]]


@pytest.mark.parametrize("device", DEVICES)
def test_bench_runs_on_the_device(device, capsys):
    bench = load_script("benchmarks/bench.py")
    result = bench.main(["--quick", "--device", device, "--methods", "native,native-childsum,lstm",
                         "--no-memory"])
    rows = result["results"]
    assert len(rows) == 3 * 2 * 2  # methods x modes x --quick's batch sizes
    assert all(row["status"] == "ok" and row["trees_per_s"] > 0 for row in rows), rows
    assert result["environment"]["device"].startswith(device)


def _collected(*args):
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "cuda",
                           "-p", "no:cacheprovider", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return {line for line in done.stdout.splitlines() if "::" in line}


@pytest.mark.slow
def test_gpu_check_runs_every_cuda_test():
    """benchmarks/gpu_check.sh names test files for `pytest -m cuda`: together they hold every
    test marked cuda in tests/ (a cuda test in a file it does not name would never run)."""
    script = (REPO / "benchmarks" / "gpu_check.sh").read_text()
    named = re.findall(r"tests/test_\w+\.py", script)
    assert named and all((REPO / path).is_file() for path in named)
    everywhere = _collected("tests")
    assert len(everywhere) > 50
    assert _collected(*named) == everywhere
