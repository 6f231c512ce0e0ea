"""The C level steps (engine/kernels.c, loaded by engine/kernels.py): against the pure-torch ops
they replace and the float64 model, on special values, and how the library behaves when they
cannot be built or loaded."""
import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cases import random_tree
from treelstm import TreeBatch, TreeLSTM, functional
from treelstm.engine import kernels

ROOT = Path(__file__).resolve().parent.parent

needs_kernels = pytest.mark.skipif(
    os.environ.get(kernels.ENVIRONMENT) != "1" and kernels.library() is None,
    reason=f"the C kernels are unavailable here: {kernels.status()}")


def forest(num_trees, seed=0, max_children=2, size=23):
    return TreeBatch.from_parents([random_tree(size, seed=seed + t, max_children=max_children)
                                   for t in range(num_trees)])


def two_layer_case(num_trees, cell, arity, **options):
    """A two-layer float32 model, a forest, a 40-word table and a row of it for every node."""
    torch.manual_seed(0)
    model = TreeLSTM(6, 5, num_layers=2, cell=cell, arity=arity, **options)
    batch = forest(num_trees, max_children=arity or 4)
    table = torch.randn(40, 6) * 2
    rows = torch.randint(0, 40, (batch.num_nodes,), generator=torch.Generator().manual_seed(1))
    return model, batch, table, rows


def run(model, batch, where, table, rows, enabled):
    """The model's outputs under no_grad (or with autograd when ``where`` says so)."""
    leaves = torch.nonzero(batch.num_children == 0).flatten()
    with kernels.use(enabled), torch.no_grad():
        if where == "leaves":
            output, (h_n, c_n) = model(table, batch, input_index=leaves,
                                       input_rows=rows[:len(leaves)])
        elif where == "leaf rows":  # the leaves' rows themselves, not a table's
            output, (h_n, c_n) = model(table.index_select(0, rows[:len(leaves)]), batch,
                                       input_index=leaves)
        else:  # a word at every node
            output, (h_n, c_n) = model(table.index_select(0, rows[:batch.num_nodes]), batch)
    return output, h_n, c_n


@needs_kernels
@pytest.mark.parametrize("num_trees", [1, 3, 30])
@pytest.mark.parametrize("cell,arity", [("nary", 2), ("nary", 3), ("childsum", None)])
@pytest.mark.parametrize("where", ["leaves", "leaf rows", "every node"])
@pytest.mark.parametrize("bias", [True, False])
def test_c_steps_match_the_torch_ops_and_float64(num_trees, cell, arity, where, bias):
    """Inference (no_grad) with the C steps against the pure-torch ops (float32) and the float64
    model: one tree, a few, and 30 (N-ary: more than PAD_FROM inner nodes, padded products);
    two layers, so that the second reads every node's state."""
    model, batch, table, rows = two_layer_case(num_trees, cell, arity, bias=bias)
    fused = run(model, batch, where, table, rows, True)
    plain = run(model, batch, where, table, rows, False)
    exact = run(copy.deepcopy(model).double(), batch, where, table.double(), rows, False)
    for ours, torch_ops, float64 in zip(fused, plain, exact):
        torch.testing.assert_close(ours, torch_ops, rtol=0, atol=2e-6)
        torch.testing.assert_close(ours.double(), float64, rtol=0, atol=2e-6)


@needs_kernels
def test_c_steps_are_the_ones_that_run(monkeypatch):
    """With the kernels available, float32 inference goes through them (both cells); with
    use(False), or in float64, it does not."""
    calls = []
    for name in ("nary_update", "childsum_update", "nary_inference"):
        original = getattr(kernels, name)
        monkeypatch.setattr(kernels, name,
                            lambda *args, _f=original, _n=name, **kw: calls.append(_n) or
                            _f(*args, **kw))
    batch = forest(2)
    leaves = torch.nonzero(batch.num_children == 0).flatten()
    for cell in ("nary", "childsum"):
        model = TreeLSTM(4, 3, cell=cell, arity=2 if cell == "nary" else None)
        x = torch.randn(len(leaves), 4)
        with torch.no_grad():
            model(x, batch, input_index=leaves)
            seen = len(calls)
            with kernels.use(False):
                model(x, batch, input_index=leaves)
            model.double()(x.double(), batch, input_index=leaves)
        assert seen > 0 and len(calls) == seen, (cell, calls)
        calls.clear()


@needs_kernels
def test_special_values_saturate_and_nan_propagates():
    """Pre-activations from -1e30 to 1e30, infinities and NaN: the gates saturate as torch's
    do, a NaN pre-activation gives NaN in its column and nowhere else; the nonlinearities over
    [-20, 20] agree with float64 to 3e-7."""
    lib = kernels.library()
    hidden = 7
    values = torch.tensor([-1e30, -100., -88.5, -87.4, -20., -9., -0.7, -0.625, -1e-8, 0., 1e-8,
                           0.5, 0.625, 0.7, 9., 20., 87.4, 88.5, 100., 1e30, float("inf"),
                           -float("inf")])
    grid = torch.cat([values, torch.linspace(-20, 20, 4001)])
    # leaves (arity 0): i | g | o; each of i, g, o takes every value, the others fixed
    for block in range(3):
        pre = torch.zeros(len(grid), 3 * hidden)
        pre[:, block * hidden:(block + 1) * hidden] = grid[:, None]
        others = torch.full((len(grid), 3 * hidden), 0.3)
        pre = torch.where(pre == 0, others, pre) if block != 0 else pre
        expected = [torch.empty(len(grid), hidden, dtype=torch.float64) for _ in range(2)]
        functional.nary_state_fused(pre.double(), None, 0, hidden, out=tuple(expected))
        got = [torch.empty(len(grid), hidden) for _ in range(2)]
        kernels.nary_update(lib, pre.clone(), None, None, 0, hidden, out=tuple(got))
        for ours, exact in zip(got, expected):
            assert torch.isfinite(ours).all()
            torch.testing.assert_close(ours.double(), exact, rtol=0, atol=3e-7)
    pre = torch.full((2, 3 * hidden), 0.5)
    pre[0, :hidden] = -float("inf")  # i = 0 exactly, as torch's sigmoid: c = 0 * g
    pre[1, :hidden] = -100.
    h, c = torch.empty(2, hidden), torch.empty(2, hidden)
    kernels.nary_update(lib, pre, None, None, 0, hidden, out=(h, c))
    assert torch.equal(c, torch.zeros_like(c)) and torch.equal(h, torch.zeros_like(h))
    pre = torch.full((3, 3 * hidden), 0.5)
    pre[1, hidden + 2] = float("nan")  # one g
    h, c = torch.empty(3, hidden), torch.empty(3, hidden)
    kernels.nary_update(lib, pre, None, None, 0, hidden, out=(h, c))
    assert torch.isnan(c[1, 2]) and torch.isnan(h[1, 2])
    assert torch.isfinite(c[[0, 2]]).all() and torch.isfinite(c[1, [0, 1, 3, 4, 5, 6]]).all()


@needs_kernels
@pytest.mark.parametrize("keep", [False, True])
def test_nary_update_matches_nary_state_fused(keep):
    """The level step itself: padded rows (W > (N+3)H), children read by row (empty slots: the
    zero row), activations kept or not, against functional.nary_state_fused."""
    lib = kernels.library()
    arity, hidden, n = 3, 10, 37
    c_rows = torch.randn(50, hidden)
    c_rows[-1] = 0
    children = torch.randint(0, 50, (n * arity,))
    pre = torch.randn(n, (arity + 3) * hidden + 6) * 4
    expected_pre = pre.clone()
    expected = (torch.empty(n, hidden), torch.empty(n, hidden))
    functional.nary_state_fused(expected_pre, c_rows[children].view(n, -1), arity, hidden,
                                out=expected, keep_activations=True)
    got = (torch.empty(n, hidden), torch.empty(n, hidden))
    ours_pre = pre.clone()
    kernels.nary_update(lib, ours_pre, c_rows, children, arity, hidden, out=got,
                        keep_activations=keep)
    for ours, theirs in zip(got, expected):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    width = (arity + 3) * hidden
    if keep:  # the activations a backward needs; the padding columns are left alone
        torch.testing.assert_close(ours_pre[:, :width], expected_pre[:, :width], rtol=0,
                                   atol=1e-6)
        assert torch.equal(ours_pre[:, width:], pre[:, width:])
    else:
        assert torch.equal(ours_pre, pre)


def test_threads_decide_which_levels_go_to_c(one_thread):
    assert kernels.fits(10_000, 750)
    torch.set_num_threads(2)
    assert kernels.fits(10, 750) and not kernels.fits(1_000, 750)


def _status_in_subprocess(tmp_path, **environment):
    env = {**os.environ, "TREELSTM_CACHE": str(tmp_path / "cache"), **environment}
    env.pop("PYTHONPATH", None)
    code = ("import torch\nfrom treelstm import TreeBatch, TreeLSTM\n"
            "from treelstm.engine import kernels\n"
            "batch = TreeBatch.from_parents([[-1, 0, 0]])\n"
            "with torch.no_grad():\n"
            "    out, _ = TreeLSTM(3, 2, cell='nary', arity=2)(torch.ones(3, 3), batch)\n"
            "print(kernels.status()); print(out.shape[0])\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=120)


def test_without_a_compiler_the_torch_ops_run(tmp_path):
    done = _status_in_subprocess(tmp_path, CC="/bin/false", TREELSTM_KERNELS="")
    assert done.returncode == 0, done.stderr
    status, rows = done.stdout.splitlines()
    assert status.startswith("off, could not build") and "/bin/false failed" in status, status
    assert rows == "3"
    assert not list((tmp_path / "cache").glob("*.tmp"))  # the failed build left nothing


def test_without_a_compiler_the_torch_ops_run_and_the_status_says_why(tmp_path):
    """A compiler that fails without a word, and one that "succeeds" without writing a library:
    the status gives the exit status; nothing is left in the cache."""
    silent = tmp_path / "silent-cc"
    silent.write_text("#!/bin/sh\nexit 0\n")
    silent.chmod(0o755)
    for compiler, expected in (("/bin/false", "/bin/false failed: exit status 1"),
                               (str(silent), "failed: exit status 0 (and no library written)")):
        done = _status_in_subprocess(tmp_path, CC=compiler, TREELSTM_KERNELS="")
        assert done.returncode == 0, done.stderr
        assert expected in done.stdout.splitlines()[0], done.stdout
        assert not list((tmp_path / "cache").iterdir())
    if shutil.which("cc") or shutil.which("gcc"):  # a blank $CC is as none: cc or gcc
        done = _status_in_subprocess(tmp_path, CC=" ", TREELSTM_KERNELS="")
        assert "built and loaded" in done.stdout.splitlines()[0], done.stdout


def test_kernels_required_but_unavailable_is_an_error(tmp_path):
    """In the API, an exception (kernels.Unavailable, a RuntimeError) at the first model call;
    in a command, one line and exit 2 before any work; status() says so, not raising."""
    done = _status_in_subprocess(tmp_path, CC="/bin/false", TREELSTM_KERNELS="1")
    assert done.returncode != 0
    assert "TREELSTM_KERNELS=1 but the C kernels are unavailable: could not build" in done.stderr
    env = {**os.environ, "TREELSTM_CACHE": str(tmp_path / "cache"), "CC": "/bin/false",
           "TREELSTM_KERNELS": "1"}
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "treelstm", "train", "--epochs", "1",
                           "--out", str(out)], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("python -m treelstm train: error: TREELSTM_KERNELS=1 but the C "
                           "kernels are unavailable: could not build"), line
    assert not out.exists()
    done = subprocess.run([sys.executable, "-m", "treelstm", "bench", "--quick"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert done.returncode == 2 and done.stdout == "", done
    assert done.stderr.startswith("python -m treelstm bench: error: TREELSTM_KERNELS=1 but")
    done = subprocess.run([sys.executable, "-c", "from treelstm.engine import kernels; "
                           "print(kernels.status())"], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("off: TREELSTM_KERNELS=1 but"), done


@pytest.mark.parametrize("value", ["yes", "2", "true"])
@pytest.mark.parametrize("command", [["predict", "no-such-checkpoint.pt", "no-such-input.txt"],
                                     ["bench", "--quick"]])
def test_an_unknown_setting_is_an_error(tmp_path, value, command):
    env = {**os.environ, "TREELSTM_KERNELS": value}
    done = subprocess.run([sys.executable, "-m", "treelstm", *command], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (f"python -m treelstm {command[0]}: error: TREELSTM_KERNELS must be 0 "
                           "(the pure-torch ops), 1 (the C kernels, or an error) or unset (the C "
                           f"kernels when available); got {value!r}\n")
    done = _status_in_subprocess(tmp_path, TREELSTM_KERNELS=value)
    assert done.returncode != 0 and f"got {value!r}" in done.stderr.splitlines()[-1]


def test_status_inside_use_false():
    with kernels.use(False):
        assert kernels.status() == "off (within kernels.use(False))"


def test_kernels_turned_off(tmp_path):
    done = _status_in_subprocess(tmp_path, CC="/bin/false", TREELSTM_KERNELS="0")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "off (TREELSTM_KERNELS=0)"
    assert not (tmp_path / "cache").exists()  # nothing built


@needs_kernels
def test_a_broken_cached_library_is_rebuilt_and_concurrent_builds_agree(tmp_path):
    """Two processes building into one empty cache at once both load a library; a cached file
    that is not a library, or one cut short, is replaced by a new build."""
    env = {"TREELSTM_KERNELS": "1"}
    processes = [subprocess.Popen(
        [sys.executable, "-c", "from treelstm.engine import kernels; print(kernels.status())"],
        cwd=ROOT, env={**os.environ, "TREELSTM_CACHE": str(tmp_path / "cache"), **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert all(out.startswith("on (") and "loaded" in out for out, _ in outputs), outputs
    [built] = (tmp_path / "cache").glob("kernels-*.so")
    size = built.stat().st_size
    built.write_bytes(b"not a shared library")
    done = _status_in_subprocess(tmp_path, **env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("on (") and "built and loaded" in done.stdout, done.stdout
    assert built.read_bytes()[:4] == b"\x7fELF" and built.stat().st_size == size
    # cut short (its ELF header intact): loading it would crash the process with SIGBUS
    with open(built, "r+b") as file:
        file.truncate(size // 3)
    done = _status_in_subprocess(tmp_path, **env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("on (") and "built and loaded" in done.stdout, done.stdout
    assert built.stat().st_size == size


def train_step(model, batch, where, table, rows, enabled):
    """Outputs and every gradient (parameters and the table) of one weighted loss."""
    model.zero_grad()
    table = table.clone().requires_grad_(True)
    leaves = torch.nonzero(batch.num_children == 0).flatten()
    with kernels.use(enabled):
        if where == "leaves":
            output, (h_n, c_n) = model(table, batch, input_index=leaves,
                                       input_rows=rows[:len(leaves)])
        else:
            output, (h_n, c_n) = model(table.index_select(0, rows[:batch.num_nodes]), batch)
        generator = torch.Generator().manual_seed(2)
        loss = sum((t * torch.randn(t.shape, generator=generator).to(t.dtype)).sum()
                   for t in (output, h_n, c_n))
        loss.backward()
    return [output.detach(), table.grad] + [p.grad for p in model.parameters()]


def assert_training_matches(fused, model, batch, where, table, rows):
    """``fused`` (a train_step with the C steps) against the torch ops and the float64 model."""
    plain = train_step(model, batch, where, table, rows, False)
    exact = train_step(copy.deepcopy(model).double(), batch, where, table.double(), rows, False)
    for ours, torch_ops, float64 in zip(fused, plain, exact):
        scale = float64.abs().max().item() + 1
        torch.testing.assert_close(ours, torch_ops, rtol=0, atol=1e-5 * scale)
        torch.testing.assert_close(ours.double(), float64, rtol=0, atol=1e-5 * scale)


@needs_kernels
@pytest.mark.parametrize("num_trees", [1, 3, 30])
@pytest.mark.parametrize("cell,arity", [("nary", 2), ("nary", 3), ("childsum", None)])
@pytest.mark.parametrize("where", ["leaves", "every node"])
@pytest.mark.parametrize("blas", [True, False])
def test_c_training_steps_match_the_torch_ops_and_float64(num_trees, cell, arity, where, blas,
                                                          monkeypatch):
    """Forward and hand-written backward with the C steps: outputs and every gradient against
    the pure-torch ops and the float64 model (two layers, bidirectional: the top-down pass
    sends gradients back into the bottom-up states); N-ary levels in one C call through
    torch's sgemm, and level by level (``blas=False``: no sgemm found)."""
    if not blas:
        monkeypatch.setattr(kernels, "_sgemm", None)
        monkeypatch.setattr(kernels, "_sgemm_looked", True)
    elif kernels.sgemm_address() is None:
        pytest.skip("torch exports no sgemm here (not an x86 MKL build)")
    model, batch, table, rows = two_layer_case(num_trees, cell, arity, bidirectional=True)
    fused = train_step(model, batch, where, table, rows, True)
    assert_training_matches(fused, model, batch, where, table, rows)


@needs_kernels
@pytest.mark.parametrize("cell,arity", [("nary", 2), ("nary", 3), ("childsum", None)])
@pytest.mark.parametrize("where", ["leaves", "every node"])
def test_the_backward_of_a_layer_is_one_c_call_and_leaves_are_in_c(monkeypatch, cell, arity,
                                                                   where):
    """Training where torch exports sgemm: an N-ary layer's backward (levels and leaves) is one
    C call, nary_backward; a Child-Sum layer's leaves get their gradients in one C pass,
    leaf_grads. Outputs and every gradient against the torch ops and float64."""
    if kernels.sgemm_address() is None:
        pytest.skip("torch exports no sgemm here (not an x86 MKL build)")
    results = []
    name = "nary_backward" if cell == "nary" else "leaf_grads"
    original = getattr(kernels, name)
    monkeypatch.setattr(kernels, name,
                        lambda *a, **k: results.append(original(*a, **k)) or results[-1])
    model, batch, table, rows = two_layer_case(30, cell, arity)
    fused = train_step(model, batch, where, table, rows, True)
    assert len(results) == 2 and all(r is not None for r in results)  # one per layer
    assert_training_matches(fused, model, batch, where, table, rows)


@needs_kernels
@pytest.mark.parametrize("cell,cache", [("nary", False), ("nary", True), ("childsum", False)])
def test_inference_in_one_c_call_and_level_by_level_agree(monkeypatch, cell, cache):
    """Where torch exports its BLAS sgemm, inference with input at the leaves runs all levels in
    one C call; without it (monkeypatched away) level by level: both against the torch ops, with
    and without kept projections (whose first N-ary level comes from the words' terms), 1 and
    30 trees."""
    if kernels.sgemm_address() is None:
        pytest.skip("torch exports no sgemm here (not an x86 MKL build)")
    # (N-ary without kept projections: a batch's whole layer is one call, nary_inference)
    names = ("nary_levels", "nary_inference") if cell == "nary" else ("childsum_inference",)
    originals = {name: getattr(kernels, name) for name in names}
    for num_trees in (1, 30):
        whole_calls = []
        for name, original in originals.items():
            monkeypatch.setattr(kernels, name, lambda *a, original=original, **k:
                                whole_calls.append(1) or original(*a, **k))
        torch.manual_seed(0)
        model = TreeLSTM(6, 5, cell=cell, arity=2 if cell == "nary" else None)
        model.cache_projections(cache)
        batch = forest(num_trees, max_children=2 if cell == "nary" else 4)
        table = torch.randn(40, 6)
        rows = torch.randint(0, 40, (batch.num_nodes,))
        whole = run(model, batch, "leaves", table, rows, True)
        assert whole_calls
        monkeypatch.setattr(kernels, "_sgemm", None)
        by_level = run(model, batch, "leaves", table, rows, True)
        monkeypatch.undo()
        plain = run(model, batch, "leaves", table, rows, False)
        for ours, per_level, torch_ops in zip(whole, by_level, plain):
            torch.testing.assert_close(ours, per_level, rtol=0, atol=1e-6)
            torch.testing.assert_close(ours, torch_ops, rtol=0, atol=2e-6)


@needs_kernels
@pytest.mark.parametrize("where", ["leaves", "leaf rows"])
@pytest.mark.parametrize("num_trees", [1, 30])
def test_an_nary_inference_layer_is_one_c_call(monkeypatch, where, num_trees):
    """N-ary inference with input at the leaves only (a table's rows, or the leaves' own): the
    whole layer (biases, leaves' projection and states, levels) is one C call, nary_inference,
    for one tree (U^T as the transposed view) and 30 (contiguous U^T); it agrees with the torch
    ops and float64. A second layer reads every node's state and runs level by level."""
    if kernels.sgemm_address() is None:
        pytest.skip("torch exports no sgemm here (not an x86 MKL build)")
    results = []
    original = kernels.nary_inference
    monkeypatch.setattr(kernels, "nary_inference",
                        lambda *a, **k: results.append(original(*a, **k)) or results[-1])
    model, batch, table, rows = two_layer_case(num_trees, "nary", 2)
    fused = run(model, batch, where, table, rows, True)
    assert len(results) == 1 and results[0] is not None  # the first layer's, whole
    plain = run(model, batch, where, table, rows, False)
    exact = run(copy.deepcopy(model).double(), batch, where, table.double(), rows, False)
    for ours, torch_ops, float64 in zip(fused, plain, exact):
        torch.testing.assert_close(ours, torch_ops, rtol=0, atol=2e-6)
        torch.testing.assert_close(ours.double(), float64, rtol=0, atol=2e-6)


@needs_kernels
def test_cc_may_be_a_command_line_and_stale_builds_are_cleared(tmp_path):
    """$CC as "ccache gcc" is a command and its arguments; a temporary file left by a build
    killed long ago is removed by the next build, a recent one (a build under way) is not."""
    cache = tmp_path / "cache"
    cache.mkdir()
    old, recent = cache / "kernels-0123abcd-old.tmp", cache / "kernels-0123abcd-new.tmp"
    old.write_bytes(b"half a library")
    recent.write_bytes(b"being written")
    os.utime(old, (1, 1))
    wrapper = tmp_path / "wrapper"
    wrapper.write_text('#!/bin/sh\nexec "$@"\n')
    wrapper.chmod(0o755)
    done = _status_in_subprocess(tmp_path, CC=f"{wrapper} gcc", TREELSTM_KERNELS="1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("on (") and "built and loaded" in done.stdout, done.stdout
    assert not old.exists() and recent.exists()


@needs_kernels
@pytest.mark.parametrize("cell", ["nary", "childsum"])
def test_an_infinite_input_gives_the_torch_ops_nan_pattern(cell):
    """An infinite input: outputs and gradients have NaN and inf where the torch ops' do (a
    saturated gate must be exactly 0, not a tiny number times inf)."""
    batch = TreeBatch.from_parents([[-1, 0, 0, 1, 1]])
    torch.manual_seed(0)
    model = TreeLSTM(4, 3, cell=cell, arity=2 if cell == "nary" else None)
    x = torch.randn(5, 4)
    x[0, 0] = float("inf")
    results = []
    for enabled in (True, False):
        model.zero_grad()
        inputs = x.clone().requires_grad_(True)
        with kernels.use(enabled):
            output, _ = model(inputs, batch)
            output.sum().backward()
        results.append([output.detach(), inputs.grad] + [p.grad for p in model.parameters()])
    for ours, theirs in zip(*results):
        assert torch.equal(ours.isnan(), theirs.isnan()) and torch.equal(ours.isinf(),
                                                                         theirs.isinf())
        finite = torch.isfinite(theirs)
        torch.testing.assert_close(ours[finite], theirs[finite], rtol=1e-5, atol=1e-5)


def test_use_is_per_thread():
    """use() blocks in two threads, interleaved: each sees its own setting, and none is left
    behind."""
    import threading

    entered, release, seen = threading.Event(), threading.Event(), {}

    def other():
        with kernels.use(True):
            entered.set()
            release.wait(10)
            seen["other"] = kernels.status()

    thread = threading.Thread(target=other)
    with kernels.use(False):
        thread.start()
        entered.wait(10)
        seen["main"] = kernels.status()
    release.set()
    thread.join(10)
    assert seen["main"] == "off (within kernels.use(False))"
    assert not seen["other"].startswith("off (within")
    assert not kernels.status().startswith("off (within")


@pytest.mark.parametrize("problem", ["not our library", "no source"])
def test_a_foreign_cached_library_or_a_missing_source(tmp_path, problem, monkeypatch):
    """A cached file that is a library but not the kernels of this source is built again, never
    loaded (its code would run in the process); without kernels.c the torch ops run, and the
    status says why."""
    if problem == "no source":
        monkeypatch.setattr(kernels, "SOURCE", tmp_path / "gone.c")
        library, reason = kernels._load()
        assert library is None and reason.startswith(f"cannot read {tmp_path / 'gone.c'}")
        return
    if kernels.library() is None:
        pytest.skip(f"the C kernels are unavailable here: {kernels.status()}")
    # in other processes: a library file is never rewritten in place under a process that
    # loaded it (kernels.py renames new files into place)
    done = _status_in_subprocess(tmp_path, TREELSTM_KERNELS="1")
    assert "built and loaded" in done.stdout, done
    [built] = (tmp_path / "cache").glob("kernels-*.so")
    size = built.stat().st_size
    # a library whose constructor leaves a mark when it is loaded
    source, foreign, mark = tmp_path / "foreign.c", tmp_path / "foreign.so", tmp_path / "loaded"
    source.write_text('#include <stdio.h>\n#include <stdlib.h>\n'
                      '__attribute__((constructor)) static void mark(void) {\n'
                      '    FILE *f = fopen(getenv("FOREIGN_MARK"), "w"); if (f) fclose(f); }\n')
    subprocess.run([kernels._compiler() or "cc", "-shared", "-fPIC", "-o", str(foreign),
                    str(source)], check=True, timeout=60)
    os.replace(foreign, built)
    done = _status_in_subprocess(tmp_path, TREELSTM_KERNELS="1", FOREIGN_MARK=str(mark))
    assert done.returncode == 0, done.stderr
    assert "built and loaded" in done.stdout, done.stdout
    assert built.stat().st_size == size
    assert not mark.exists()  # its code never ran


@needs_kernels
def test_transposed_is_the_rows_transposed_and_padded(monkeypatch):
    """``kernels.transposed``: the blocks of rows, transposed, contiguous, zero columns up to the
    width; ``None`` for what it does not take, and where no transposing copy is exported."""
    if kernels.transposed(torch.ones(2, 2), ((0, 2),), 2) is None:
        pytest.skip("torch exports no MKL_Somatcopy here (not an x86 MKL build)")
    weight = torch.randn(12, 7)
    out = kernels.transposed(weight, ((0, 3), (6, 12)), 16)
    expected = torch.cat([weight[0:3], weight[6:12], torch.zeros(7, 7)]).t()
    assert out.is_contiguous() and torch.equal(out, expected)
    assert torch.equal(kernels.transposed(weight, ((0, 12),), 12), weight.t())
    assert kernels.transposed(weight.t(), ((0, 7),), 7) is None  # not contiguous
    assert kernels.transposed(weight.double(), ((0, 12),), 12) is None
    monkeypatch.setattr(kernels, "_omatcopy", None)
    monkeypatch.setattr(kernels, "_omatcopy_looked", True)
    assert kernels.transposed(weight, ((0, 12),), 12) is None


@needs_kernels
@pytest.mark.parametrize("mode", ["train", "inference", "inference by steps"])
@pytest.mark.parametrize("blas_found", [True, False])
def test_levels_and_leaves_of_a_batch_in_c(monkeypatch, mode, blas_found):
    """A batch with more than TRANSPOSE_FROM rows above its leaves and more than FEW_ROWS
    distinct words: the levels' products read a contiguous U^T (MKL's transposing copy), the
    leaves' projection is torch's sgemm on W_ih's i | g | o rows; at inference the whole layer
    is one C call, or ("by steps": where that call cannot run) the biases and the leaves'
    states are one C call each; where no MKL is found, the torch ops and views. Outputs (and
    gradients) against the torch ops and float64."""
    from treelstm.engine import steps
    calls = []
    for name in ("transposed", "project_rows", "nary_biases", "leaf_word_states",
                 "nary_inference"):
        original = getattr(kernels, name)
        monkeypatch.setattr(kernels, name, lambda *a, _f=original, _n=name, **k:
                            calls.append(_n) or _f(*a, **k))
    if mode == "inference by steps":
        monkeypatch.setattr(kernels, "nary_inference", lambda *a, **k: None)
    if not blas_found:
        for name in ("_omatcopy", "_sgemm"):
            monkeypatch.setattr(kernels, name, None)
            monkeypatch.setattr(kernels, name + "_looked", True)
    elif kernels.sgemm_address() is None or kernels._somatcopy() is None:
        pytest.skip("torch exports no MKL sgemm and somatcopy here (not an x86 MKL build)")
    torch.manual_seed(0)
    model = TreeLSTM(6, 5, cell="nary", arity=2)
    batch = forest(40)
    assert batch.num_nodes - int((batch.num_children == 0).sum()) >= steps.TRANSPOSE_FROM
    table = torch.randn(200, 6)
    rows = torch.randint(0, 200, (batch.num_nodes,), generator=torch.Generator().manual_seed(1))
    leaves = int((batch.num_children == 0).sum())
    assert len(set(rows[:leaves].tolist())) > steps.FEW_ROWS
    step = train_step if mode == "train" else run
    fused = step(model, batch, "leaves", table, rows, True)
    expected = {"train": {"transposed", "project_rows"}, "inference": {"nary_inference"},
                "inference by steps": {"transposed", "project_rows", "nary_biases",
                                       "leaf_word_states"}}[mode]
    if not blas_found:  # (the layer's call needs sgemm: the steps then, without MKL's)
        expected = set() if mode == "train" else {"nary_biases", "leaf_word_states"}
    assert expected <= set(calls), calls
    plain = step(model, batch, "leaves", table, rows, False)
    exact = step(copy.deepcopy(model).double(), batch, "leaves", table.double(), rows, False)
    for ours, torch_ops, float64 in zip(fused, plain, exact):
        scale = float64.abs().max().item() + 1
        torch.testing.assert_close(ours, torch_ops, rtol=0, atol=2e-6 * scale)
        torch.testing.assert_close(ours.double(), float64, rtol=0, atol=2e-6 * scale)


def test_nary_biases_and_leaf_word_states_match_the_torch_ops():
    """The C biases against functional.leaf_bias / nary_bias_without_input (each bias present
    or absent, 2 and 3 slots), and the C leaf states against the torch update and gather."""
    lib = kernels.library()
    if lib is None:
        pytest.skip(f"the C kernels are unavailable here: {kernels.status()}")
    hidden = 5
    for arity in (2, 3):
        for with_ih, with_hh in ((True, True), (True, False), (False, True)):
            b_ih = torch.randn(4 * hidden) if with_ih else None
            b_hh = torch.randn((arity + 3) * hidden) if with_hh else None
            leaf, inner = kernels.nary_biases(lib, b_ih, b_hh, arity, hidden, 16, 32)
            expected_leaf = functional.leaf_bias(b_ih, b_hh, arity)
            expected_inner = functional.nary_bias_without_input(b_ih, b_hh, arity)
            assert torch.equal(leaf[:15], expected_leaf) and not leaf[15:].any()
            assert torch.equal(inner[:len(expected_inner)], expected_inner)
            assert not inner[len(expected_inner):].any()
    assert kernels.nary_biases(lib, None, None, 2, hidden, 15, 25) is None
    pre = torch.randn(7, 16) * 3
    bias = torch.randn(15)
    gather = torch.tensor([3, 0, 3, 6, 1])
    h, c = torch.empty(5, hidden), torch.empty(5, hidden)
    kernels.leaf_word_states(lib, pre.clone(), bias, gather, hidden, h, c)
    h_words, c_words = functional.leaf_state(pre[:, :15] + bias, hidden)
    torch.testing.assert_close(h, h_words[gather], rtol=0, atol=1e-6)
    torch.testing.assert_close(c, c_words[gather], rtol=0, atol=1e-6)


@needs_kernels
@pytest.mark.parametrize("scale", [1e-2, 1e-4, 1e-6])
def test_small_activations_keep_their_relative_precision(scale):
    """Inputs and weights small enough that the gates' pre-activations are near 0, where tanh x
    ~ x: the C steps keep float32's relative precision there (a tanh from exp alone, 1 -
    2/(exp(2x)+1), was 5% off at 1e-6), against float64, inference and gradients."""
    torch.manual_seed(0)
    model = TreeLSTM(6, 5, cell="nary", arity=2, bias=False)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale ** 0.5)
    batch = forest(30)
    table = torch.randn(200, 6) * scale ** 0.5
    rows = torch.randint(0, 200, (batch.num_nodes,), generator=torch.Generator().manual_seed(1))
    for step in (run, train_step):
        ours = step(model, batch, "leaves", table, rows, True)
        exact = step(copy.deepcopy(model).double(), batch, "leaves", table.double(), rows,
                     False)
        for value, reference in zip(ours, exact):
            scale_of = reference.abs().max().item()
            torch.testing.assert_close(value.double(), reference, rtol=0,
                                       atol=1e-5 * scale_of)
