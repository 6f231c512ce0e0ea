"""Hardening (issue 7): nothing lost, nothing silently wrong.

* checkpoints: a process SIGKILLed while writing leaves the previous file loadable; every
  truncation and many single-byte flips give a ValueError naming the file (or, where the byte
  did not matter, the identical content); a malicious pickle is refused without running;
  vocabulary / settings / data mismatches on load and resume are clear errors;
* ``python -m treelstm train`` SIGKILLed mid-run and resumed ends bit for bit where an
  uninterrupted run ends;
* numerics: a NaN / Inf loss or gradient stops training naming the epoch and batch;
  ``clip_grad_norm``; a 20,000-node chain and a 5,000-child star run forward and backward and
  agree with ``nn.LSTM`` / the float64 reference;
* extreme sizes: empty files and splits, one-word sentences, a 1,000-token sentence, 50,000
  trees in one batch;
* the PTB reader under fuzzing: a ValueError with ``file:line`` or a correct parse, nothing else.

(tests/test_training.py and tests/test_data_ptb.py hold the basic cases; nothing is repeated.)
"""
import builtins
import json
import math
import os
import pickle
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nltk import Tree

import reference
from conftest import BACKENDS
from treelstm import LSTMClassifier, TreeBatch, TreeLSTM, TreeLSTMClassifier, training
from treelstm.data import (SentimentTree, Vocab, collate_sequences, collate_trees,
                           parse_ptb_line, read_ptb, to_ptb_string)
from treelstm.training import (TrainConfig, load_checkpoint, load_model, load_splits,
                               save_checkpoint, train)
from treelstm.training import loop
from treelstm.training.checkpoint import _checksum

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "treelstm" / "datasets" / "sentiment"
TRAIN_LINES = (DATA / "train.txt").read_text(encoding="utf-8").splitlines()


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread


@pytest.fixture(scope="module")
def splits():
    trees = [parse_ptb_line(line) for line in TRAIN_LINES[:60]]
    return {"train": trees[:30], "dev": trees[30:45], "test": trees[45:60]}


def _small(**kwargs):
    options = dict(embed_dim=16, hidden_size=12, batch_size=5, epochs=2, device="cpu", seed=3)
    options.update(kwargs)
    return TrainConfig(**options)


def _state_equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _python(*args, **kwargs):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, **kwargs)


def _temp_files(directory):
    return sorted(p.name for p in Path(directory).glob(".*.tmp"))


def _rewrite(source, target, **changes):
    """A copy of checkpoint ``source`` with fields changed *and a valid checksum*: damage done
    by a writer, not on disk."""
    content = torch.load(source, weights_only=True)
    content.update(changes)
    content["checksum"] = _checksum(content)
    torch.save(content, target)
    return target


# ============================================================================ checkpoints
SAVE_LOOP = r"""
import sys
import torch
from treelstm.data import Vocab
from treelstm.models import TreeLSTMClassifier
from treelstm.training import save_checkpoint

path, num_words = sys.argv[1], int(sys.argv[2])
vocab = Vocab(["<pad>", "<unk>"] + [f"w{i}" for i in range(num_words)])
model = TreeLSTMClassifier(len(vocab), 5, embed_dim=64, hidden_size=8, dropout=0.0)
for generation in range(1_000_000):
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.fill_(generation)
    print(generation, flush=True)  # about to write this generation
    save_checkpoint(path, model, vocab, extra={"generation": generation})
"""


def _temp_file_growing(directory, name):
    for temp in directory.glob(f".{name}.*.tmp"):
        try:
            if temp.stat().st_size > 1 << 20:
                return True
        except FileNotFoundError:  # replaced meanwhile
            pass
    return False


def test_sigkill_while_saving_leaves_the_previous_checkpoint(tmp_path):
    """A child process saves a ~26 MB checkpoint over and over (generation g: every weight = g);
    it is SIGKILLed while its temporary file is half written. The file on disk must be the
    previous generation, complete."""
    script = tmp_path / "save_loop.py"
    script.write_text(SAVE_LOOP)
    path = tmp_path / "model.pt"
    child = _python(str(script), str(path), "100000", stdout=subprocess.PIPE, text=True)
    try:
        started = [-1]
        while started[-1] < 2:  # generations 0 and 1 are on disk
            line = child.stdout.readline()
            assert line, f"the save loop died (exit status {child.wait()})"
            started.append(int(line))
        deadline = time.monotonic() + 60
        while not _temp_file_growing(tmp_path, "model.pt") and time.monotonic() < deadline:
            time.sleep(0.001)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        started += [int(line) for line in child.stdout.read().split()]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    left = _temp_files(tmp_path)
    assert len(left) == 1, "the kill did not land in the middle of a write"
    checkpoint = load_checkpoint(path)
    generation = checkpoint.extra["generation"]
    assert generation == started[-1] - 1  # the one before the interrupted write
    assert all(bool((tensor == generation).all()) for tensor in checkpoint.state_dict.values())
    assert len(checkpoint.vocab) == 100_002
    # the next run of train() in that directory clears the leftover
    assert training.remove_stale_temp_files(tmp_path, ["model.pt"]) == [tmp_path / left[0]]
    assert _temp_files(tmp_path) == []


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory, splits):
    result = train(_small(epochs=1), splits=splits)
    path = tmp_path_factory.mktemp("ckpt") / "good.pt"
    optimizer = torch.optim.Adagrad(result.model.parameters())
    save_checkpoint(path, result.model, result.vocab, _small(epochs=1).to_dict(),
                    optimizer=optimizer, epoch=1, rng_state=training.get_rng_state(),
                    extra={"note": "original"})
    return path


def test_every_truncation_is_a_value_error_naming_the_file(small_checkpoint, tmp_path):
    data = small_checkpoint.read_bytes()
    lengths = sorted(set(range(0, len(data), max(1, len(data) // 97)))
                     | set(range(len(data) - 64, len(data))))
    bad = tmp_path / "cut.pt"
    for length in lengths:
        bad.write_bytes(data[:length])
        with pytest.raises(ValueError, match=r"cut\.pt: "):
            load_checkpoint(bad)


def test_byte_flips_are_caught_or_harmless(small_checkpoint, tmp_path):
    """Flip one byte at ~250 places: either a ValueError naming the file, or (a byte no reader
    uses, e.g. zip padding) exactly the original content. Never different weights."""
    data = small_checkpoint.read_bytes()
    original = load_checkpoint(small_checkpoint)
    bad = tmp_path / "flipped.pt"
    caught = 0
    for position in range(0, len(data), max(1, len(data) // 250)):
        bad.write_bytes(data[:position] + bytes([data[position] ^ 0xFF]) + data[position + 1:])
        try:
            loaded = load_checkpoint(bad)
        except ValueError as error:
            assert "flipped.pt: " in str(error)
            caught += 1
            continue
        assert _state_equal(loaded.state_dict, original.state_dict), position
        assert (loaded.vocab, loaded.config, loaded.extra, loaded.epoch) == \
            (original.vocab, original.config, original.extra, original.epoch), position
    assert caught > 100


class _RunsShell:
    """Unpickling this runs ``os.system(command)``."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class _OpensFile:
    """Unpickling this calls ``open(path, "w")``, creating the file (no shell needed)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return builtins.open, (self.path, "w")


def _payloads(marker):
    return {"os.system": _RunsShell(f"touch '{marker}'"), "open": _OpensFile(str(marker))}


def _malicious_file(kind, payload, good, path):
    if kind == "raw pickle":
        path.write_bytes(pickle.dumps(payload, protocol=2))
    elif kind == "torch.save of the object":
        torch.save(payload, path)
    elif kind == "inside a checkpoint field":
        content = torch.load(good, weights_only=True)
        content["extra"] = payload
        torch.save(content, path)
    else:  # "data.pkl swapped in the zip": a valid archive whose pickle is the payload
        with zipfile.ZipFile(good) as source, zipfile.ZipFile(path, "w") as target:
            for item in source.infolist():
                body = source.read(item)
                if item.filename.endswith("/data.pkl"):
                    body = pickle.dumps(payload, protocol=2)
                target.writestr(item, body)
    return path


MALICIOUS_KINDS = ["raw pickle", "torch.save of the object", "inside a checkpoint field",
                   "data.pkl swapped in the zip"]


@pytest.mark.parametrize("payload_name", ["os.system", "open"])
@pytest.mark.parametrize("kind", MALICIOUS_KINDS)
def test_malicious_pickle_is_refused_and_never_runs(small_checkpoint, tmp_path, monkeypatch,
                                                    kind, payload_name):
    marker = tmp_path / "pwned"
    evil = _malicious_file(kind, _payloads(marker)[payload_name], small_checkpoint,
                           tmp_path / "evil.pt")
    # the payload works: a plain unpickler runs it
    if kind == "raw pickle":
        pickle.loads(evil.read_bytes())
        assert marker.exists()
        marker.unlink()
    # even with the environment asking torch for unsafe loading
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    refused = (r"evil\.pt: not a readable treelstm checkpoint: it holds a pickled object other "
               r"than tensors and plain containers \((posix\.system|io\.open)\); refused")
    with pytest.raises(ValueError, match=refused):
        load_checkpoint(evil)
    with pytest.raises(ValueError, match=refused):
        load_model(evil)
    assert not marker.exists()


def test_malicious_checkpoint_in_a_run_directory_is_refused_on_resume(small_checkpoint,
                                                                       tmp_path, splits):
    marker = tmp_path / "pwned"
    run = tmp_path / "run"
    run.mkdir()
    _malicious_file("inside a checkpoint field", _OpensFile(str(marker)), small_checkpoint,
                    run / "checkpoint.pt")
    with pytest.raises(ValueError, match=r"checkpoint\.pt: .* refused without running it"):
        train(_small(), run, resume=True, splits=splits)
    assert not marker.exists()


def test_vocabulary_that_does_not_fit_the_weights(small_checkpoint, tmp_path):
    content = torch.load(small_checkpoint, weights_only=True)
    vocab = json.loads(content["vocab"])
    vocab["itos"].append("intruder")
    path = _rewrite(small_checkpoint, tmp_path / "vocab.pt", vocab=json.dumps(vocab))
    with pytest.raises(ValueError, match=r"vocab\.pt: the stored vocabulary has \d+ words but the "
                                         r"model was built for vocab_size=\d+"):
        load_checkpoint(path)
    for field, value in (("model_config", "[1, 2]"), ("config", '"fine"')):
        path = _rewrite(small_checkpoint, tmp_path / f"{field}.pt", **{field: value})
        with pytest.raises(ValueError, match=rf"{field}\.pt: damaged checkpoint metadata: "
                                             rf"{field} should be a JSON object"):
            load_checkpoint(path)


@pytest.fixture
def one_epoch_run(tmp_path, splits):
    run = tmp_path / "run"
    train(_small(epochs=1), run, splits=splits)
    return run


def test_resume_on_other_training_data_raises(one_epoch_run, splits):
    other = dict(splits, train=splits["train"][1:] + splits["dev"][:1])
    with pytest.raises(ValueError, match=r"checkpoint\.pt: cannot resume: the training data "
                                         r"changed: its vocabulary has"):
        train(_small(), one_epoch_run, resume=True, splits=other)
    # same words, one label changed: the vocabulary cannot see it, the fingerprint does
    relabelled = [SentimentTree(t.tokens, t.parent, list(t.labels)) for t in splits["train"]]
    relabelled[7].labels[-1] = (relabelled[7].labels[-1] + 1) % 5
    with pytest.raises(ValueError, match=r"cannot resume: the training trees .* differ"):
        train(_small(), one_epoch_run, resume=True, splits=dict(splits, train=relabelled))
    # and the same trees in another order
    with pytest.raises(ValueError, match=r"cannot resume: the training trees"):
        train(_small(), one_epoch_run, resume=True,
              splits=dict(splits, train=splits["train"][::-1]))


def test_resume_checks_settings_the_checkpoint_predates(one_epoch_run, splits):
    """A checkpoint written before ``clip_grad_norm`` existed ran without clipping."""
    path = one_epoch_run / "checkpoint.pt"
    config = json.loads(torch.load(path, weights_only=True)["config"])
    del config["clip_grad_norm"]
    _rewrite(path, path, config=json.dumps(config))
    with pytest.raises(ValueError, match=r"the checkpoint has clip_grad_norm=None, this run "
                                         r"clip_grad_norm=1\.0"):
        train(_small(clip_grad_norm=1.0), one_epoch_run, resume=True, splits=splits)
    assert train(_small(), one_epoch_run, resume=True, splits=splits).metrics["epochs_done"] == 2


def test_resume_with_weights_that_do_not_fit_the_settings(one_epoch_run, splits):
    """The checkpoint's settings say hidden 13 but its weights are hidden 12 (a writer bug):
    a ValueError naming the file, not torch's RuntimeError."""
    for name in ("checkpoint.pt", "best.pt"):  # best.pt's settings are checked too
        path = one_epoch_run / name
        config = json.loads(torch.load(path, weights_only=True)["config"])
        _rewrite(path, path, config=json.dumps(dict(config, hidden_size=13)))
    with pytest.raises(ValueError, match=r"checkpoint\.pt: cannot resume: its model, optimizer "
                                         r"or RNG state does not fit"):
        train(_small(hidden_size=13), one_epoch_run, resume=True, splits=splits)


def test_best_checkpoint_of_another_epoch_is_not_used_silently(tmp_path, splits):
    """Killed after best.pt (epoch 3) was written but before checkpoint.pt, then resumed with
    --epochs 2: that best.pt is not of this history; testing with it would be wrong."""
    run = tmp_path / "run"
    train(_small(epochs=2), run, splits=splits)
    best = load_checkpoint(run / "best.pt")
    model = best.build_model()
    save_checkpoint(run / "best.pt", model, best.vocab, best.config, epoch=3)
    with pytest.raises(ValueError, match=r"best\.pt: holds epoch 3, but the best epoch on dev "
                                         r"is [12]"):
        train(_small(epochs=2), run, resume=True, splits=splits)


def test_stale_temp_files_are_removed_by_the_next_run(tmp_path, splits):
    run = tmp_path / "run"
    run.mkdir()
    dead = _dead_pid()
    for name in (f".checkpoint.pt.treelstm-{dead}-abc123.tmp", f".best.pt.treelstm-{dead}-x.tmp",
                 f".metrics.json.treelstm-{dead}-y.tmp"):
        (run / name).write_bytes(b"half a file")
    # not ours: another file, one named like ours by hand, a live writer's
    kept = [".notes.txt.z.tmp", ".best.pt.mine.tmp", f".best.pt.treelstm-{os.getppid()}-w.tmp"]
    for name in kept:
        (run / name).write_bytes(b"not ours")
    train(_small(epochs=1), run, splits=splits)
    assert _temp_files(run) == sorted(kept)


def _dead_pid() -> int:
    """The pid of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# ============================================================ kill -9 and resume, end to end
def _cli_train(data, out, *extra):
    return ["-m", "treelstm", "train", "--data", str(data), "--out", str(out), "--epochs", "3",
            "--max-train", "400", "--embed-dim", "16", "--hidden-size", "12", "--batch-size",
            "5", "--dropout", "0.5", "--seed", "7", "--device", "cpu", "--threads", "1",
            "--quiet", *extra]


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_is_bitwise_identical(tmp_path):
    """``python -m treelstm train`` (3 epochs, 400 trees, dropout on) is SIGKILLed in epoch 2,
    just after epoch 1's checkpoint appears; ``--resume`` must end with the same bytes of
    weights, optimizer state, RNG state and history as an uninterrupted run."""
    data = tmp_path / "data"
    data.mkdir()
    for split, count in (("train", 400), ("dev", 40), ("test", 40)):
        lines = (DATA / f"{split}.txt").read_text(encoding="utf-8").splitlines()[:count]
        (data / f"{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")

    straight = _python(*_cli_train(data, tmp_path / "straight"), stderr=subprocess.PIPE,
                       text=True)
    assert straight.wait(timeout=120) == 0, straight.stderr.read()
    straight.stderr.close()

    killed_dir = tmp_path / "killed"
    victim = _python(*_cli_train(data, killed_dir), stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (killed_dir / "checkpoint.pt").exists() and victim.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.1)  # into epoch 2 (an epoch takes ~0.6 s)
        assert victim.poll() is None, "the run finished before it could be killed"
        victim.send_signal(signal.SIGKILL)
        assert victim.wait(timeout=30) == -signal.SIGKILL
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()
    interrupted = load_checkpoint(killed_dir / "checkpoint.pt")
    assert interrupted.epoch in (1, 2)  # 2 only on a very slow machine
    assert json.loads((killed_dir / "metrics.json").read_text())["test"] is None

    resumed = _python(*_cli_train(data, killed_dir, "--resume"), stderr=subprocess.PIPE, text=True)
    assert resumed.wait(timeout=120) == 0, resumed.stderr.read()
    resumed.stderr.close()

    for name in ("checkpoint.pt", "best.pt"):
        a = load_checkpoint(tmp_path / "straight" / name)
        b = load_checkpoint(killed_dir / name)
        assert a.epoch == b.epoch and _state_equal(a.state_dict, b.state_dict), name
        if name == "checkpoint.pt":
            assert torch.equal(a.rng_state["torch"], b.rng_state["torch"])
            state_a, state_b = a.optimizer["state"], b.optimizer["state"]
            assert all(torch.equal(state_a[k]["sum"], state_b[k]["sum"]) for k in state_a)
    metrics_a = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    metrics_b = json.loads((killed_dir / "metrics.json").read_text())
    for key in ("loss", "root_acc"):
        assert [r["train"][key] for r in metrics_a["history"]] == \
            [r["train"][key] for r in metrics_b["history"]]
    assert metrics_a["test"]["root_acc"] == metrics_b["test"]["root_acc"]
    assert metrics_a["best_epoch"] == metrics_b["best_epoch"]
    assert _temp_files(killed_dir) == []


# =============================================================================== numerics
def _poison(kind):
    return float("nan") if kind == "nan" else float("inf")


@pytest.mark.parametrize("kind", ["nan", "inf"])
def test_non_finite_loss_stops_training_naming_epoch_and_batch(tmp_path, splits, monkeypatch,
                                                               kind):
    real_loss_sum = loop._loss_sum  # what the training step calls
    calls = []

    def poisoned(model, inputs, phrase_loss, *rest):
        loss, root_logits = real_loss_sum(model, inputs, phrase_loss, *rest)
        calls.append(1)
        if len(calls) == 6 + 3:  # 6 batches per epoch: epoch 2, batch 3
            loss = loss * _poison(kind)
        return loss, root_logits

    monkeypatch.setattr(loop, "_loss_sum", poisoned)
    with pytest.raises(FloatingPointError, match=rf"epoch 2, batch 3 of 6 \(training trees "
                                                 rf"\[[0-9, ]+\]\): the loss is {kind}; stopped "
                                                 "before the update"):
        train(_small(epochs=3), tmp_path, splits=splits)
    # nothing lost: the last finished epoch is on disk and loads
    assert load_checkpoint(tmp_path / "checkpoint.pt").epoch == 1


@pytest.mark.parametrize("kind", ["nan", "inf"])
def test_non_finite_gradient_stops_training_before_the_update(tmp_path, splits, monkeypatch,
                                                              kind):
    models = []
    real_build = loop.build_model  # what train() calls
    calls = []

    def poison(grad):
        calls.append(1)
        return torch.full_like(grad, _poison(kind)) if len(calls) == 2 else grad

    def build_with_hook(config, vocab_size):
        model = real_build(config, vocab_size)
        model.tree_lstm.weight_hh_l0.register_hook(poison)
        models.append(model)
        return model

    monkeypatch.setattr(loop, "build_model", build_with_hook)
    with pytest.raises(FloatingPointError, match=rf"epoch 1, batch 2 of 6 .*: the gradient norm "
                                                 rf"is {kind} in \[tree_lstm\.weight_hh_l0\]"):
        train(_small(), tmp_path, splits=splits)
    # raised before optimizer.step(): AdaGrad would have spread the NaN into the weights
    assert all(torch.isfinite(p).all() for p in models[0].parameters())


def test_clip_grad_norm_bounds_every_update(splits, monkeypatch):
    seen = []
    real_step = torch.optim.Adagrad.step

    def spying_step(self, *args, **kwargs):
        grads = [p.grad for group in self.param_groups for p in group["params"]
                 if p.grad is not None]
        seen.append(float(torch.nn.utils.get_total_norm(grads)))
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adagrad, "step", spying_step)
    unclipped = train(_small(epochs=1), splits=splits)
    assert max(seen) > 0.5  # so clipping at 0.5 has something to do
    seen.clear()
    clipped = train(_small(epochs=1, clip_grad_norm=0.5), splits=splits)
    assert len(seen) == 6 and max(seen) <= 0.5 * (1 + 1e-5)
    assert not _state_equal(clipped.model.state_dict(), unclipped.model.state_dict())
    assert clipped.metrics["config"]["clip_grad_norm"] == 0.5


@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf"), True, "1"])
def test_clip_grad_norm_must_be_positive(value):
    with pytest.raises(ValueError, match="clip_grad_norm must be a positive number or None"):
        TrainConfig(clip_grad_norm=value)


def test_resume_with_other_clipping_raises(tmp_path, splits):
    train(_small(epochs=1, clip_grad_norm=0.5), tmp_path, splits=splits)
    with pytest.raises(ValueError, match=r"the checkpoint has clip_grad_norm=0\.5"):
        train(_small(clip_grad_norm=1.0), tmp_path, resume=True, splits=splits)


@pytest.mark.slow
def test_deep_chain_forward_backward_equals_nn_lstm():
    """A 20,000-node chain (deeper than any recursion limit): no RecursionError, and the
    result is nn.LSTM's over the 20,000 steps, gradients included."""
    n = 20_000
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(4, 6)
    model = TreeLSTM(4, 6, cell="childsum")
    model.load_state_dict({f"{k}": v for k, v in lstm.state_dict().items()})
    batch = TreeBatch.from_parents([list(range(1, n)) + [-1]])  # node t's parent is t + 1
    x = torch.randn(n, 4, requires_grad=True)
    output, (h_n, c_n) = model(x, batch)
    (h_n.sum() + c_n.sum()).backward()
    x_lstm = x.detach().clone().requires_grad_(True)
    expected, (h_lstm, c_lstm) = lstm(x_lstm.unsqueeze(1))
    (h_lstm.sum() + c_lstm.sum()).backward()
    torch.testing.assert_close(output, expected.squeeze(1), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(h_n, h_lstm, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(x.grad, x_lstm.grad, atol=1e-6, rtol=1e-4)
    assert x.grad[-1].abs().sum() > 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_wide_star_forward_backward_equals_reference(backend):
    """One root with 5,000 children (Child-Sum): forward and backward, against the float64
    per-node reference."""
    width = 5_000
    torch.manual_seed(1)
    model = TreeLSTM(3, 4, cell="childsum", backend=backend, dtype=torch.float64)
    batch = TreeBatch.from_parents([[-1] + [0] * width])
    x = torch.randn(width + 1, 3, dtype=torch.float64, requires_grad=True)
    _, (h_n, c_n) = model(x, batch)
    (h_n.sum() + c_n.sum()).backward()

    params = tuple(p.detach() for p in model.layer_parameters(0))
    x_ref = x.detach().clone().requires_grad_(True)
    leaves = [reference.childsum_node(params, x_ref[v], []) for v in range(1, width + 1)]
    h_root, c_root = reference.childsum_node(params, x_ref[0], leaves)
    (h_root.sum() + c_root.sum()).backward()
    torch.testing.assert_close(h_n[0, 0], h_root)
    torch.testing.assert_close(c_n[0, 0], c_root)
    torch.testing.assert_close(x.grad, x_ref.grad)


# =========================================================================== extreme sizes
@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\r\n"])
def test_empty_treebank_file_is_an_empty_list_and_an_empty_split_an_error(tmp_path, content):
    (tmp_path / "train.txt").write_bytes(content)
    assert read_ptb(tmp_path / "train.txt") == []
    for split in ("dev", "test"):
        (tmp_path / f"{split}.txt").write_text(TRAIN_LINES[0] + "\n")
    with pytest.raises(ValueError, match=r"train\.txt: no trees"):
        load_splits(tmp_path)


def test_empty_split_passed_to_train_raises(splits):
    for split in ("train", "dev", "test"):
        with pytest.raises(ValueError, match=rf"train: the {split} split has no trees"):
            train(_small(), splits=dict(splits, **{split: []}))


ONE_WORD = ["(4 Wonderful)", "(0 awful)", "(2 okay)", "(3 \u00e9l\u00e9gant)", "(1 meh)"]


@pytest.mark.parametrize("cell", ["nary", "childsum"])
def test_one_word_sentences_through_collate_and_both_classifiers(cell):
    trees = [parse_ptb_line(line) for line in ONE_WORD]
    assert all(t.num_nodes == 1 and t.parent == [-1] for t in trees)
    vocab = Vocab.build(t.tokens for t in trees)
    tree_inputs = collate_trees(trees, vocab)
    assert tree_inputs.batch.num_nodes == 5 and tree_inputs.batch.num_levels == 1
    tree_model = TreeLSTMClassifier(len(vocab), 5, embed_dim=6, hidden_size=4, cell=cell,
                                    dropout=0.0)
    node_logits, root_logits = tree_model(tree_inputs)
    assert torch.equal(node_logits, root_logits) and root_logits.shape == (5, 5)
    root_logits.sum().backward()
    assert torch.isfinite(tree_model.embedding.weight.grad).all()
    sequence_inputs = collate_sequences(trees, vocab)
    assert sequence_inputs.lengths.tolist() == [1] * 5
    lstm_model = LSTMClassifier(len(vocab), 5, embed_dim=6, hidden_size=4, dropout=0.0)
    logits = lstm_model(sequence_inputs).root_logits
    assert logits.shape == (5, 5)
    logits.sum().backward()
    # each one-word tree alone gives the same logits as in the batch
    tree_model.eval()
    for t, tree in enumerate(trees):
        alone = tree_model(collate_trees([tree], vocab)).root_logits
        torch.testing.assert_close(alone[0], root_logits[t].detach())


@pytest.mark.parametrize("model", ["treelstm", "lstm"])
def test_training_on_one_word_sentences(model):
    trees = [parse_ptb_line(line) for line in ONE_WORD]
    metrics = train(_small(model=model, epochs=2, batch_size=2),
                    splits={"train": trees, "dev": trees, "test": trees}).metrics
    assert metrics["epochs_done"] == 2 and math.isfinite(metrics["history"][-1]["train"]["loss"])


def _balanced_line(num_tokens):
    """A balanced binary sentiment tree over ``num_tokens`` tokens, built without recursion."""
    pieces, stack = [], [(0, num_tokens)]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            pieces.append(item)
            continue
        low, high = item
        if high - low == 1:
            pieces.append(f"({low % 5} w{low})")
            continue
        middle = (low + high) // 2
        pieces.append(f"({(low + high) % 5} ")
        stack += [")", (middle, high), " ", (low, middle)]
    return "".join(pieces)


def test_thousand_token_sentence():
    line = _balanced_line(1000)
    tree = parse_ptb_line(line)
    assert tree.tokens == [f"w{i}" for i in range(1000)] and tree.num_nodes == 1999
    assert to_ptb_string(tree) == line
    vocab = Vocab.build([tree.tokens])
    short = parse_ptb_line("(3 (2 a) (3 good))")
    tree_model = TreeLSTMClassifier(len(vocab), 5, embed_dim=8, hidden_size=6, dropout=0.0)
    inputs = collate_trees([tree, short], vocab)
    assert inputs.batch.num_levels == 11  # ceil(log2(1000)) + 1
    node_logits, root_logits = tree_model(inputs)
    root_logits.sum().backward()
    assert torch.isfinite(tree_model.tree_lstm.weight_hh_l0.grad).all()
    tree_model.eval()
    torch.testing.assert_close(tree_model(collate_trees([tree], vocab)).root_logits[0],
                               tree_model(inputs).root_logits[0])
    lstm_model = LSTMClassifier(len(vocab), 5, embed_dim=8, hidden_size=6, dropout=0.0)
    logits = lstm_model(collate_sequences([tree, short], vocab)).root_logits
    logits.sum().backward()
    assert logits.shape == (2, 5)


def test_fifty_thousand_tiny_trees_in_one_batch():
    shapes = [[-1], [-1, 0], [-1, 0, 0], [1, 2, -1]]
    parents = [shapes[t % 4] for t in range(50_000)]
    start = time.perf_counter()
    batch = TreeBatch.from_parents(parents)
    built = time.perf_counter() - start
    assert batch.num_trees == 50_000 and batch.num_nodes == 112_500
    assert built < 20, f"TreeBatch of 50,000 trees took {built:.1f} s"
    model = TreeLSTM(3, 4, cell="nary", arity=2)
    output, (h_n, _) = model(torch.randn(batch.num_nodes, 3), batch)
    assert output.shape == (112_500, 4) and h_n.shape == (1, 50_000, 4)
    # the same through the sentiment pipeline: 50,000 one-word sentences
    trees = [parse_ptb_line(ONE_WORD[t % 5]) for t in range(50_000)]
    vocab = Vocab.build(t.tokens for t in trees)
    classifier = TreeLSTMClassifier(len(vocab), 5, embed_dim=4, hidden_size=4)
    with torch.no_grad():
        root_logits = classifier.eval()(collate_trees(trees, vocab)).root_logits
    assert root_logits.shape == (50_000, 5)
    torch.testing.assert_close(root_logits[5], root_logits[0])  # same word, same logits


# ==================================================================== PTB reader fuzzing
BASE_LINES = TRAIN_LINES[:40] + [
    "(2 Hello)", "(3 (2 Am\u00e9lie) (4 (2 \u662f) (3 na\u00efve)))",
    "(2 (2 like) (2 8\u00a01\\/2))", "(1 (2 (2 a) (2 b)) (0 c))", "(3 (3 (2 x)) (4 (4 (4 great))))",
]
INSERTS = ["(", ")", "((", "))", "()", " ", "\t", "\r", "\n", "\x00", "\xa0", "\u2028", "\x1c",
           "\ufeff", "\u00e9", "\u662f", "\U0001F600", "-1", "5", "+3", "0" * 30, "(2", "(2 x)",
           "(x", "\\", "\\(", "'", '"']


@st.composite
def mutated_lines(draw, alphabet=None):
    line = draw(st.sampled_from(BASE_LINES))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(line)))
        kind = draw(st.sampled_from(["truncate", "insert", "insert", "delete", "duplicate"]))
        if kind == "truncate":
            line = line[:position]
        elif kind == "insert":
            random_text = st.text(max_size=6) if alphabet is None else st.text(alphabet,
                                                                                max_size=6)
            text = draw(st.sampled_from(INSERTS) | random_text)
            line = line[:position] + text + line[position:]
        elif kind == "delete":
            line = line[:position] + line[position + draw(st.integers(1, 12)):]
        else:
            end = draw(st.integers(position, len(line)))
            line = line[:end] + line[position:end] * draw(st.integers(1, 3)) + line[end:]
    return line


def _check_read(path, num_lines=None):
    """read_ptb(path) is a list of valid trees that round-trip, or a one-line ValueError
    starting with '<path>:<line>: '. Any other exception fails the test."""
    try:
        trees = read_ptb(path)
    except ValueError as error:
        message = str(error)
        found = re.match(rf"{re.escape(str(path))}:(\d+): \S", message)
        assert found, message
        if num_lines is not None:
            assert 1 <= int(found.group(1)) <= num_lines, message
        assert "\n" not in message and len(message) < len(str(path)) + 400, message
        return None
    for tree in trees:
        tree.validate()
        assert parse_ptb_line(to_ptb_string(tree)) == tree
    return trees


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(line=mutated_lines())
def test_fuzz_mutated_lines(fuzz_dir, line):
    path = fuzz_dir / "mutated.txt"
    path.write_bytes(line.encode("utf-8", "surrogatepass") + b"\n")
    _check_read(path, num_lines=line.count("\n") + 2)
    try:
        parse_ptb_line(line)
    except ValueError as error:
        assert "\n" not in str(error)


def _nltk_spans(line):
    """Independent reference for ASCII lines: nltk's reader + the format's rules, by recursion;
    ``None`` if the line is not a valid sentiment tree."""
    try:
        root = Tree.fromstring(line, node_pattern=r"[^\s()]+", leaf_pattern=r"[^\s()]+")
    except ValueError:
        return None
    spans = []

    def visit(node, start):
        label = node.label()
        if not re.fullmatch(r"[+-]?[0-9]+", label or "") or not 0 <= int(label) <= 4:
            raise ValueError(label)
        words = [child for child in node if isinstance(child, str)]
        if len(node) == 0 or (words and len(words) != len(node)) or len(words) > 1:
            raise ValueError("structure")
        if words:
            spans.append((start, start, int(label), words[0]))
            return start + 1
        end = start
        for child in node:
            end = visit(child, end)
        spans.append((start, end - 1, int(label), ""))
        return end

    try:
        visit(root, 0)
    except ValueError:
        return None
    return sorted(spans)


def _spans(tree):
    first = [len(tree.tokens)] * tree.num_nodes
    last = [-1] * tree.num_nodes
    for i in range(len(tree.tokens)):
        node = i
        while node != -1:
            first[node], last[node] = min(first[node], i), max(last[node], i)
            node = tree.parent[node]
    return sorted((first[v], last[v], tree.labels[v], tree.tokens[v] if v < len(tree.tokens)
                   else "") for v in range(tree.num_nodes))


@FUZZ
@given(line=mutated_lines(alphabet=st.characters(min_codepoint=32, max_codepoint=126)))
def test_fuzz_ascii_lines_agree_with_nltk(line):
    """On printable-ASCII lines the reader accepts exactly what nltk + the format's rules
    accept, with the same spans, labels and words."""
    line = "".join(c for c in line if 32 <= ord(c) <= 126 or c == "\t")
    expected = _nltk_spans(line) if line.strip() else None
    try:
        tree = parse_ptb_line(line)
    except ValueError:
        assert expected is None, line
        return
    assert expected is not None, line
    assert _spans(tree) == expected


@FUZZ
@given(content=st.binary(max_size=400))
def test_fuzz_random_bytes_file(fuzz_dir, content):
    path = fuzz_dir / "random.bin"
    path.write_bytes(content)
    _check_read(path, num_lines=content.count(b"\n") + 1)


@FUZZ
@given(junk=st.binary(min_size=1, max_size=40), where=st.floats(0, 1), lines=st.integers(1, 5))
def test_fuzz_random_bytes_spliced_into_a_good_file(fuzz_dir, junk, where, lines):
    good = ("\n".join(TRAIN_LINES[:lines]) + "\n").encode("utf-8")
    cut = int(where * len(good))
    path = fuzz_dir / "spliced.txt"
    path.write_bytes(good[:cut] + junk + good[cut:])
    _check_read(path, num_lines=path.read_bytes().count(b"\n") + 1)


@pytest.mark.parametrize("name, line, reason", [
    ("10,000-digit label", "(" + "3" * 10_000 + " a)", r"label 3333.*\.\.\. is out of range"),
    ("1 MB word at the top", "x" * 1_000_000, r"expected '\(' but got 'xxx.*\.\.\."),
    ("1 MB of open brackets", "(" * 1_000_000,
     r"malformed brackets: expected '\)' but got 'end-of-string' at index 1000000"),
    ("1 MB of '(2 '", "(2 " * 300_000, r"expected '\)' but got 'end-of-string' at index 899999"),
    ("1 MB of close brackets", "(2 a)" + ")" * 1_000_000, r"expected 'end-of-string' but got"),
    ("100,000 words in one node", "(2 " + "a " * 100_000 + ")", r"has 100000 words"),
])
def test_very_long_bad_lines_fail_fast_with_a_short_message(tmp_path, name, line, reason):
    path = tmp_path / "long.txt"
    path.write_text(TRAIN_LINES[0] + "\n" + line + "\n", encoding="utf-8")
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"long\.txt:2: .*" + reason) as error:
        read_ptb(path)
    assert len(str(error.value)) < 300
    assert time.perf_counter() - start < 10


def test_very_long_good_line_parses(tmp_path):
    """20,000 tokens on one line parse (the reader is linear in the line, without nltk's depth
    limit or time guard: acceptance does not depend on machine load)."""
    line = _balanced_line(20_000)
    path = tmp_path / "long.txt"
    path.write_text(line + "\n" + TRAIN_LINES[0] + "\n", encoding="utf-8")
    trees = read_ptb(path)
    assert len(trees[0].tokens) == 20_000 and trees[0].num_nodes == 39_999
    assert to_ptb_string(trees[0]) == line


def test_deep_nesting_is_read_without_a_depth_limit():
    """nltk refused 500 levels; the reader has no limit (100,000 levels: test_data_ptb.py)."""
    deep = "(2 " * 5_000 + "(2 x)" + ")" * 5_000
    assert parse_ptb_line(deep).num_nodes == 5_001
