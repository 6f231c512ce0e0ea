"""treelstm.training and the command line: overfitting, checkpoints, exact resume, corrupt files,
test-once-with-best, the scripts' --help and smoke runs; and nothing lost, nothing silently wrong:
a checkpoint write SIGKILLed halfway, every truncation, byte flips and malicious pickles, resume
refusing other data or settings, ``python -m treelstm train`` SIGKILLed and resumed bit for bit,
NaN / Inf losses and gradients, ``clip_grad_norm``, empty splits and one-word sentences."""
import builtins
import json
import math
import os
import pickle
import random
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import root_logits
from treelstm.__main__ import compare_command, eval_command, main, train_command
from treelstm.data import SentimentTree, Vocab, parse_ptb_line, read_ptb
from treelstm.models import TreeLSTMClassifier
from treelstm.training import (TrainConfig, compare, comparison_table, evaluate, get_rng_state,
                               load_checkpoint, load_model, load_splits, remove_stale_temp_files,
                               save_checkpoint, set_rng_state, train)
from treelstm.training import comparison, evaluation, loop
from treelstm.training.checkpoint import _checksum

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "treelstm" / "datasets" / "sentiment"
MODELS = ["treelstm", "lstm"]


@pytest.fixture(scope="module")
def fine_trees():
    return read_ptb(DATA / "train.txt")[:60]


@pytest.fixture(scope="module")
def splits(fine_trees):
    return {"train": fine_trees[:30], "dev": fine_trees[30:45], "test": fine_trees[45:60]}


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread


def _small(model="treelstm", **kwargs):
    options = dict(model=model, embed_dim=16, hidden_size=12, batch_size=5, epochs=2,
                   device="cpu", seed=3)
    options.update(kwargs)
    return TrainConfig(**options)


def _state_equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _temp_files(directory):
    return sorted(p.name for p in Path(directory).glob(".*.tmp"))


# ---------------------------------------------------------------------------- training
@pytest.mark.parametrize("model", MODELS)
def test_overfits_twenty_trees(fine_trees, model):
    trees = fine_trees[:20]
    assert len({tree.root_label for tree in trees}) > 2  # not a one-class problem
    config = _small(model, embed_dim=32, hidden_size=32, dropout=0.0, lr=0.1, weight_decay=0.0,
                    epochs=30)
    result = train(config, splits={"train": trees, "dev": trees, "test": trees})
    assert evaluate(result.model, trees, result.vocab)["root_acc"] == 1.0
    assert result.metrics["test"]["root_acc"] == 1.0
    losses = [record["train"]["loss"] for record in result.metrics["history"]]
    assert losses[-1] < 0.1 * losses[0]


def test_tree_loss_covers_every_node_and_ignores_neutral_in_binary(fine_trees):
    vocab = Vocab.build(tree.tokens for tree in fine_trees)
    model = TreeLSTMClassifier(len(vocab), 5, 8, 8, dropout=0.0)
    inputs = evaluation._collate(model, fine_trees[:4], vocab)
    node_logits, root_logits = model(inputs)
    phrase = evaluation._loss_sum(model, inputs, phrase_loss=True)[0] / 4
    root = evaluation._loss_sum(model, inputs, phrase_loss=False)[0] / 4
    per_node = torch.nn.functional.cross_entropy(node_logits, inputs.labels, reduction="none")
    torch.testing.assert_close(phrase, per_node.sum() / 4)
    torch.testing.assert_close(root, per_node[inputs.batch.roots].sum() / 4)
    # binary view: labels -1 are skipped, not an error
    binary = [tree for tree in read_ptb(DATA / "dev.txt", view="binary")[:4]]
    model2 = TreeLSTMClassifier(len(vocab), 2, 8, 8, dropout=0.0)
    inputs2 = evaluation._collate(model2, binary, vocab)
    assert (inputs2.labels == -1).any()
    loss = evaluation._loss_sum(model2, inputs2, phrase_loss=True)[0] / 4
    logits2 = model2(inputs2).node_logits
    kept = inputs2.labels != -1
    expected = torch.nn.functional.cross_entropy(logits2[kept], inputs2.labels[kept],
                                                 reduction="sum") / 4
    torch.testing.assert_close(loss, expected)


def test_binary_view_run(tmp_path):
    binary = {split: read_ptb(DATA / f"{split}.txt", view="binary")[:20]
              for split in ("train", "dev", "test")}
    metrics = train(_small(view="binary", epochs=1), tmp_path, splits=binary).metrics
    assert metrics["test"]["binary_root_acc"] == metrics["test"]["root_acc"]
    assert load_model(tmp_path / "best.pt").model.output.out_features == 2


def test_binary_accuracy_from_fine_logits():
    # gold: 0 (neg), 4 (pos), 2 (neutral: left out), 1 (neg)
    labels = torch.tensor([0, 4, 2, 1])
    logits = torch.log(torch.tensor([
        [0.1, 0.1, 0.6, 0.1, 0.1],     # argmax neutral, but neg == pos mass: counted as negative
        [0.3, 0.0, 0.3, 0.2, 0.2],     # neg 0.3 < pos 0.4: positive (correct)
        [0.0, 0.0, 1.0, 0.0, 0.0],
        [0.0, 0.2, 0.3, 0.5, 0.0],     # pos wins: wrong
    ]) + 1e-12)
    assert evaluation._binary_from_fine(logits, labels) == (2, 3)


def test_test_split_evaluated_once_with_best_weights(tmp_path, splits, monkeypatch):
    calls = []
    real_evaluate = loop.evaluate  # what train() calls

    def spy(model, trees, *args, **kwargs):
        calls.append((trees, {k: v.clone() for k, v in model.state_dict().items()}))
        return real_evaluate(model, trees, *args, **kwargs)

    monkeypatch.setattr(loop, "evaluate", spy)
    result = train(_small(epochs=3, lr=0.3), tmp_path, splits=splits)
    test_calls = [state for trees, state in calls if trees is splits["test"]]
    assert len(test_calls) == 1
    assert len([1 for trees, _ in calls if trees is splits["dev"]]) == 3
    best = load_checkpoint(tmp_path / "best.pt")
    assert best.epoch == result.metrics["best_epoch"]
    assert _state_equal(test_calls[0], best.state_dict)
    history = result.metrics["history"]
    assert max(r["dev"]["root_acc"] for r in history) == result.metrics["best_dev"]["root_acc"]


def test_output_files(tmp_path, splits):
    train(_small(epochs=2), tmp_path, splits=splits)
    assert {p.name for p in tmp_path.iterdir()} == {"checkpoint.pt", "best.pt", "metrics.json",
                                                   "learning_curve.png"}
    assert (tmp_path / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["epochs_done"] == 2 and len(metrics["history"]) == 2
    assert metrics["test"]["trees"] == 15 and metrics["num_parameters"] > 0
    assert metrics["config"]["model"] == "treelstm"


# -------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("model", MODELS)
def test_checkpoint_round_trip_gives_identical_predictions(tmp_path, splits, model):
    config = _small(model, epochs=1, bidirectional=model == "lstm")
    result = train(config, splits=splits)
    path = tmp_path / "sub" / "model.pt"
    save_checkpoint(path, result.model, result.vocab, config.to_dict(), epoch=1)
    loaded = load_model(path)
    assert type(loaded.model) is type(result.model)
    assert loaded.vocab == result.vocab and loaded.config == config.to_dict()
    assert not loaded.model.training
    expected = root_logits(result.model, splits["test"], result.vocab)
    assert torch.equal(root_logits(loaded.model, splits["test"], loaded.vocab), expected)
    # a plain torch.load(weights_only=True) reads it: no pickled objects
    content = torch.load(path, weights_only=True)
    assert content["format"] == "treelstm.checkpoint"
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temp file left


def test_checkpoint_write_is_atomic(tmp_path, splits, monkeypatch):
    result = train(_small(epochs=0), splits=splits)
    path = tmp_path / "model.pt"
    save_checkpoint(path, result.model, result.vocab)
    before = path.read_bytes()

    def broken_save(obj, file):
        file.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, result.model, result.vocab)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


@pytest.fixture
def good_checkpoint(tmp_path, splits):
    result = train(_small(epochs=0), splits=splits)
    path = tmp_path / "good.pt"
    save_checkpoint(path, result.model, result.vocab, {"view": "fine"})
    return path


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "flip"])
def test_corrupt_checkpoint_raises_value_error_naming_the_file(good_checkpoint, damage):
    data = good_checkpoint.read_bytes()
    bad = good_checkpoint.with_name(f"bad-{damage}.pt")
    if damage == "truncate":
        bad.write_bytes(data[:len(data) // 2])
    elif damage == "garbage":
        bad.write_bytes(os.urandom(2048))
    elif damage == "empty":
        bad.write_bytes(b"")
    else:  # overwrite the middle of the archive (tensor data and its CRC no longer match)
        middle = len(data) // 2
        bad.write_bytes(data[:middle] + bytes(255 - b for b in data[middle:middle + 64])
                        + data[middle + 64:])
    with pytest.raises(ValueError, match=f"bad-{damage}.pt"):
        load_model(bad)


def test_not_a_checkpoint_raises(tmp_path):
    plain = tmp_path / "plain.pt"
    torch.save({"weight": torch.zeros(2)}, plain)
    with pytest.raises(ValueError, match="plain.pt: not a treelstm checkpoint"):
        load_checkpoint(plain)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_pickled_objects_are_refused(good_checkpoint, tmp_path):
    """Loading uses weights_only=True: a file with an arbitrary pickled object is refused."""
    content = torch.load(good_checkpoint, weights_only=True)
    content["extra"] = Path("/etc/passwd")  # any non-allowlisted class
    evil = tmp_path / "evil.pt"
    torch.save(content, evil)
    with pytest.raises(ValueError, match="evil.pt: not a readable treelstm checkpoint"):
        load_checkpoint(evil)


def test_damaged_metadata_raises(good_checkpoint, tmp_path):
    content = torch.load(good_checkpoint, weights_only=True)
    for key, value, match in (("vocab", "{not json", "damaged checkpoint metadata"),
                              ("model_class", "Transformer", "unknown model class"),
                              ("version", 99, "checkpoint version 99")):
        broken = dict(content, **{key: value})
        broken["checksum"] = _checksum(broken)  # damaged by a writer, not on disk
        path = tmp_path / f"{key}.pt"
        torch.save(broken, path)
        with pytest.raises(ValueError, match=f"{key}.pt: .*{match}"):
            load_checkpoint(path)
    wrong_shapes = dict(content, model_config=json.dumps(
        dict(json.loads(content["model_config"]), hidden_size=7)))
    wrong_shapes["checksum"] = _checksum(wrong_shapes)
    path = tmp_path / "shapes.pt"
    torch.save(wrong_shapes, path)
    with pytest.raises(ValueError, match="shapes.pt: the stored weights do not fit"):
        load_model(path)


def test_changed_weights_fail_the_checksum(good_checkpoint, tmp_path):
    content = torch.load(good_checkpoint, weights_only=True)
    content["state_dict"]["output.bias"][0] += 1e-6
    path = tmp_path / "edited.pt"
    torch.save(content, path)
    with pytest.raises(ValueError, match="edited.pt: checksum mismatch"):
        load_model(path)


def test_rng_state_round_trip():
    state = get_rng_state()
    first = (random.random(), np.random.rand(), torch.rand(3), random.gauss(0, 1),
             np.random.randn())
    set_rng_state(state)
    second = (random.random(), np.random.rand(), torch.rand(3), random.gauss(0, 1),
              np.random.randn())
    assert first[0] == second[0] and first[1] == second[1] and torch.equal(first[2], second[2])
    assert first[3:] == second[3:]
    assert all(isinstance(v, (torch.Tensor, int, float, type(None))) for v in state.values()
               if not isinstance(v, list))


# ------------------------------------------------------------------------------ resume
class Interrupted(Exception):
    pass


def _interrupt_after(epoch):
    def callback(done, record):
        if done == epoch:
            raise Interrupted
    return callback


@pytest.mark.parametrize("model", MODELS)
def test_resume_is_bitwise_identical(tmp_path, splits, model):
    config = _small(model, epochs=3, dropout=0.5)  # dropout: the RNG state matters
    straight = train(config, tmp_path / "straight", splits=splits)
    with pytest.raises(Interrupted):
        train(config, tmp_path / "resumed", splits=splits, on_epoch_end=_interrupt_after(1))
    after_one = load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")
    assert after_one.epoch == 1
    # a fresh process would start with other RNG states: scramble them
    random.seed(99), np.random.seed(99), torch.manual_seed(99)
    resumed = train(config, tmp_path / "resumed", resume=True, splits=splits)
    final = resumed.model.state_dict()
    assert _state_equal(final, straight.model.state_dict())
    assert not any(torch.equal(final[k], after_one.state_dict[k]) for k in final
                   if k != "embedding.weight")  # epochs 2 and 3 did train
    a, b = straight.metrics, resumed.metrics
    assert [r["train"]["loss"] for r in a["history"]] == [r["train"]["loss"] for r in b["history"]]
    assert a["test"]["root_acc"] == b["test"]["root_acc"] and a["best_epoch"] == b["best_epoch"]
    saved_a = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")
    saved_b = load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")
    assert _state_equal(saved_a.state_dict, saved_b.state_dict)
    assert torch.equal(saved_a.rng_state["torch"], saved_b.rng_state["torch"])


def test_resume_extends_a_finished_run(tmp_path, splits):
    """train 1 epoch, then resume with --epochs 2 == train 2 epochs straight."""
    straight = train(_small(epochs=2), tmp_path / "a", splits=splits)
    train(_small(epochs=1), tmp_path / "b", splits=splits)
    extended = train(_small(epochs=2), tmp_path / "b", resume=True, splits=splits)
    assert _state_equal(extended.model.state_dict(), straight.model.state_dict())


def test_resume_without_rng_restore_would_differ(tmp_path, splits, monkeypatch):
    """The resume test can fail: skipping the RNG restore changes the weights (dropout)."""
    config = _small(epochs=2, dropout=0.5)
    straight = train(config, tmp_path / "a", splits=splits)
    with pytest.raises(Interrupted):
        train(config, tmp_path / "b", splits=splits, on_epoch_end=_interrupt_after(1))
    monkeypatch.setattr(loop, "set_rng_state", lambda state: None)
    resumed = train(config, tmp_path / "b", resume=True, splits=splits)
    assert not _state_equal(resumed.model.state_dict(), straight.model.state_dict())


def test_resume_with_other_settings_raises(tmp_path, splits):
    train(_small(epochs=1), tmp_path, splits=splits)
    with pytest.raises(ValueError, match="cannot resume: the checkpoint has hidden_size=12"):
        train(_small(epochs=2, hidden_size=13), tmp_path, resume=True, splits=splits)
    with pytest.raises(ValueError, match="needs an out_dir"):
        train(_small(), resume=True, splits=splits)


def test_embeddings_file_initialises_the_embedding(tmp_path, splits):
    vectors = {"the": [0.5] * 16, "plot": [-0.25] * 16, "notinvocab": [9.0] * 16}
    path = tmp_path / "vectors.txt"
    path.write_text("".join(f"{word} {' '.join(map(str, values))}\n"
                            for word, values in vectors.items()))
    result = train(_small(epochs=0, embeddings=str(path)), splits=splits)
    weight = result.model.embedding.weight
    for word in ("the", "plot"):
        assert torch.equal(weight[result.vocab[word]], torch.tensor(vectors[word]))
    frozen = train(_small(epochs=1, embeddings=str(path), freeze_embeddings=True), splits=splits)
    assert torch.equal(frozen.model.embedding.weight[frozen.vocab["the"]],
                       torch.tensor(vectors["the"]))
    with pytest.raises(ValueError, match="vectors.txt:1: expected 32 values"):
        train(_small(epochs=0, embed_dim=32, embeddings=str(path)), splits=splits)


def test_bad_config_raises():
    with pytest.raises(ValueError, match="model must be one of"):
        TrainConfig(model="gru")
    with pytest.raises(ValueError, match="view must be one of"):
        TrainConfig(view="ternary")
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        TrainConfig(hidden_size=0)


def test_missing_data_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="train.txt"):
        train(_small(data=str(tmp_path)))


# ------------------------------------------------------- early stopping, embedding's own lr
def test_patience_stops_after_epochs_without_a_better_dev_accuracy(splits, tmp_path):
    # a learning rate too small to change a prediction: epoch 1 stays the best on dev
    config = _small(epochs=6, lr=1e-12, weight_decay=0.0, patience=2)
    metrics = train(config, tmp_path, splits=splits).metrics
    assert metrics["best_epoch"] == 1 and metrics["epochs_done"] == 3
    assert metrics["test"] is not None
    # resuming an early-stopped run does not train on, whatever --epochs says
    again = train(config, tmp_path, splits=splits, resume=True).metrics
    assert again["epochs_done"] == 3 and again["history"] == metrics["history"]
    # a larger patience (a setting that may change on resume) goes on from there
    longer = train(_small(epochs=6, lr=1e-12, weight_decay=0.0, patience=4), tmp_path,
                   splits=splits, resume=True).metrics
    assert longer["epochs_done"] == 5
    assert train(_small(epochs=4, lr=1e-12, weight_decay=0.0), splits=splits
                 ).metrics["epochs_done"] == 4  # no patience: every epoch


def test_embedding_lr_updates_the_embedding_by_plain_sgd(splits):
    """As Tai et al.'s code: the embedding leaves AdaGrad (and its weight decay) and moves by
    -lr * gradient; the rows of words no batch has keep their values."""
    config = _small(epochs=1, dropout=0.0, weight_decay=0.5, embedding_lr=0.3,
                    batch_size=len(splits["train"]))
    result = train(config, splits=splits)
    start = train(_small(epochs=0, dropout=0.0, weight_decay=0.5, embedding_lr=0.3,
                         batch_size=len(splits["train"])), splits=splits).model
    vocab = result.vocab
    used = {vocab[token] for tree in splits["train"] for token in tree.tokens}
    unused = [i for i in range(len(vocab)) if i not in used]
    after, before = result.model.embedding.weight, start.embedding.weight
    assert unused and torch.equal(after[unused], before[unused])  # no weight decay
    assert not torch.equal(after[sorted(used)], before[sorted(used)])
    # the step is -0.3 * grad: recompute the gradient of the one batch at the start weights
    inputs = evaluation._collate(start, splits["train"], vocab)
    start.train()
    loss_sum, _ = evaluation._loss_sum(start, inputs, True)
    (loss_sum / len(splits["train"])).backward()
    torch.testing.assert_close(after, before - 0.3 * start.embedding.weight.grad)
    adagrad = train(_small(epochs=1, dropout=0.0, weight_decay=0.5,
                           batch_size=len(splits["train"])), splits=splits).model
    assert not torch.equal(adagrad.embedding.weight[unused], before[unused])  # decayed


# ------------------------------------------------------------------------------ compare
def test_compare_table(tmp_path, splits, monkeypatch):
    monkeypatch.setattr(comparison, "load_splits", lambda data, view: splits)
    result = compare(_small(epochs=1), tmp_path, rows=["treelstm", "lstm"])
    table = result["table"]
    lines = [line for line in table.splitlines() if line.startswith("|")]
    assert len(lines) == 4
    assert lines[2].startswith("| Tree-LSTM |") and lines[3].startswith("| LSTM |")
    assert lines[3].split("|")[6].strip() == "n/a"       # all-phrase: Tree-LSTM only
    assert lines[2].split("|")[6].strip() != "n/a"
    assert "not a separately trained binary model" in result["caption"] or \
        "no separate binary model" in result["caption"]
    assert (tmp_path / "compare.md").read_text() == table
    saved = json.loads((tmp_path / "compare.json").read_text())
    assert set(saved["results"]) == {"treelstm", "lstm"}
    assert (tmp_path / "treelstm" / "best.pt").is_file() and (tmp_path / "lstm" / "best.pt").is_file()
    with pytest.raises(ValueError, match="rows must be"):
        compare(_small(), rows=["gru"])


def test_comparison_table_uses_the_same_budget(tmp_path, splits, monkeypatch):
    monkeypatch.setattr(comparison, "load_splits", lambda data, view: splits)
    result = compare(_small(epochs=1, seed=5), rows=["treelstm", "treelstm-root", "lstm"])
    configs = [metrics["config"] for metrics in result["results"].values()]
    for key in ("epochs", "seed", "hidden_size", "embed_dim", "lr", "batch_size"):
        assert len({c[key] for c in configs}) == 1
    assert [c["phrase_loss"] for c in configs[:2]] == [True, False]
    assert comparison_table(result["results"]).count("\n") == 5


def test_package_names_are_those_of_their_modules():
    """``from treelstm.training import X`` gives the object its module defines, for every name of
    ``__all__`` and the other public names the command line and examples import."""
    import treelstm.training as package

    names = [*package.__all__, "MAX_SEED", "SPLITS", "resolve_device", "DEFAULT_COMPARE_ROWS",
             "TORCHRUN_VARIABLES", "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION"]
    for name in names:
        value = getattr(package, name)
        module = getattr(value, "__module__", None)
        if module is not None and module.startswith("treelstm."):
            assert getattr(sys.modules[module], name) is value, name
    assert package.evaluate is loop.evaluate and package.load_splits is comparison.load_splits
    assert package.compare is comparison.compare and callable(package.train)
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        package.nonexistent


# -------------------------------------------------------------------------- command line
def _run(*args, timeout=120):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)


def _python(*args, **kwargs):
    """``_run`` without waiting: the running process, to be read from or killed."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, **kwargs)


@pytest.mark.parametrize("script", ["examples/train_sst.py", "examples/compare.py"])
def test_script_help_exits_zero(script):
    done = _run(script, "--help")
    assert done.returncode == 0, done.stderr
    assert "--epochs" in done.stdout and "--data" in done.stdout and "--seed" in done.stdout


def test_module_help_lists_commands():
    done = _run("-m", "treelstm", "--help")
    assert done.returncode == 0, done.stderr
    for command in ("train", "eval", "compare"):
        assert f"  {command} " in done.stdout


@pytest.mark.parametrize("command", [train_command, eval_command, compare_command])
def test_command_help_exits_zero(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        command(["--help"])
    assert exit_info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_train_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        train_command(["--help"])
    text = capsys.readouterr().out
    for option in ("--model", "--data", "--view", "--epochs", "--seed", "--embeddings", "--out",
                   "--resume", "--device", "--backend", "--max-train", "--quiet", "--lr",
                   "--weight-decay", "--batch-size", "--clip-grad-norm", "--dropout", "--hidden-size"):
        assert option in text
    assert "0.05" in text and "0.0001" in text and "150" in text and "300" in text


def test_unknown_or_missing_command_fails(capsys):
    for argv, message in ((["fly"], "invalid choice: 'fly'"),
                          ([], "the following arguments are required: COMMAND")):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


@pytest.mark.parametrize("command", ["train", "eval", "compare", "predict"])
def test_subcommand_help_is_the_commands_own(command, capsys):
    """``python -m treelstm X --help`` shows X's own parser: every option, description, epilog."""
    from treelstm.__main__ import COMMANDS

    with pytest.raises(SystemExit):
        main([command, "--help"])
    through_main = capsys.readouterr().out
    with pytest.raises(SystemExit):
        COMMANDS[command][0](f"python -m treelstm {command}").parse_args(["--help"])
    assert through_main == capsys.readouterr().out


@pytest.mark.parametrize("command", ["train", "compare"])
def test_every_config_field_is_an_option(command):
    """Options are matched to TrainConfig fields by name: a new field without an option (or an
    option spelled differently) fails here instead of being silently left at its default."""
    import dataclasses

    from treelstm.__main__ import COMMANDS, CONFIG_FIELDS_SET_BY_COMMANDS

    parser = COMMANDS[command][0]("x")
    options = {action.dest for action in parser._actions}
    fields = {field.name for field in dataclasses.fields(TrainConfig)}
    assert fields - options == set(CONFIG_FIELDS_SET_BY_COMMANDS[command])


def test_options_reach_the_config(tmp_path, monkeypatch):
    import treelstm.training as package  # the train command imports train from here when it runs

    seen = {}

    def fake_train(config, *args, **kwargs):
        seen["config"] = config
        raise ValueError("stopped before training")

    monkeypatch.setattr(package, "train", fake_train)
    _exit_status(train_command, ["--embed-dim", "7", "--hidden-size", "5", "--num-layers", "2",
                                 "--cell", "childsum", "--dropout", "0.25", "--lr", "0.2",
                                 "--weight-decay", "0.5", "--batch-size", "3", "--epochs", "4",
                                 "--seed", "9", "--max-train", "11", "--clip-grad-norm", "2",
                                 "--patience", "2",
                                 "--freeze-embeddings", "--root-loss-only", "--view", "binary",
                                 "--model", "treelstm", "--bidirectional", "--device", "cpu",
                                 "--out", str(tmp_path / "x"), "--quiet"])
    config = seen["config"]
    assert (config.embed_dim, config.hidden_size, config.num_layers, config.cell) == \
        (7, 5, 2, "childsum")
    assert (config.dropout, config.lr, config.weight_decay, config.batch_size, config.epochs,
            config.seed, config.max_train, config.clip_grad_norm) == \
        (0.25, 0.2, 0.5, 3, 4, 9, 11, 2.0)
    assert config.freeze_embeddings and not config.phrase_loss and config.bidirectional
    assert (config.embedding_lr, config.patience) == (None, 2)
    _exit_status(train_command, ["--embedding-lr", "0.3", "--out", str(tmp_path / "y"),
                                 "--quiet"])
    assert seen["config"].embedding_lr == 0.3
    with pytest.raises(ValueError, match="exclude each other"):
        _small(embedding_lr=0.1, freeze_embeddings=True)
    assert (config.view, config.model, config.device) == ("binary", "treelstm", "cpu")


def test_train_sst_smoke(tmp_path):
    out = tmp_path / "run"
    done = _run("examples/train_sst.py", "--max-train", "30", "--epochs", "2", "--embed-dim",
                "16", "--hidden-size", "12", "--out", str(out), "--device", "cpu")
    assert done.returncode == 0, done.stderr
    assert "test root accuracy" in done.stdout
    assert "epoch 2/2" in done.stderr
    for name in ("metrics.json", "learning_curve.png", "checkpoint.pt", "best.pt"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_trees"]["train"] == 30 and metrics["epochs_done"] == 2
    # resume a finished run for one more epoch, in process
    assert train_command(["--max-train", "30", "--epochs", "3", "--embed-dim", "16",
                          "--hidden-size", "12", "--out", str(out), "--device", "cpu",
                          "--resume", "--quiet"]) == 0
    assert json.loads((out / "metrics.json").read_text())["epochs_done"] == 3


def test_eval_command(tmp_path, splits, capsys):
    train(_small(epochs=1), tmp_path, splits=splits)
    assert eval_command([str(tmp_path / "best.pt"), "--split", "dev", "--json", "--quiet"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["trees"] == 500 and 0 <= metrics["root_acc"] <= 1
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"nonsense")
    with pytest.raises(SystemExit) as exit_info:
        eval_command([str(bad), "--quiet"])
    assert exit_info.value.code == 2
    assert "bad.pt" in capsys.readouterr().err


def test_compare_smoke(tmp_path):
    out = tmp_path / "cmp"
    done = _run("examples/compare.py", "--max-train", "30", "--epochs", "1", "--embed-dim", "16",
                "--hidden-size", "12", "--out", str(out), "--device", "cpu", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "| Tree-LSTM |" in done.stdout and "| LSTM |" in done.stdout
    assert (out / "compare.md").is_file() and (out / "compare.json").is_file()


# ------------------------------------------------------- nothing lost, nothing silently wrong
def _train_args(out, *more):
    return ["--max-train", "30", "--epochs", "1", "--embed-dim", "16", "--hidden-size", "12",
            "--out", str(out), "--device", "cpu", "--quiet", *more]


def _exit_status(command, argv):
    try:
        return command(argv)
    except SystemExit as exit_info:
        return exit_info.code


def test_train_refuses_an_out_dir_that_holds_a_run(tmp_path, splits, capsys):
    out = tmp_path / "run"
    train(_small(epochs=1), out, splits=splits)
    best = (out / "best.pt").read_bytes()
    with pytest.raises(FileExistsError, match=r"already holds a run.*--resume.*--overwrite"):
        train(_small(epochs=1, seed=4), out, splits=splits)
    assert (out / "best.pt").read_bytes() == best
    assert _exit_status(train_command, _train_args(out)) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "--resume" in err and "--overwrite" in err
    assert (out / "best.pt").read_bytes() == best
    # the two ways on
    train(_small(epochs=2), out, resume=True, splits=splits)
    train(_small(epochs=1, seed=4), out, overwrite=True, splits=splits)
    assert load_checkpoint(out / "checkpoint.pt").config["seed"] == 4


def test_compare_refuses_an_out_dir_that_holds_a_comparison(tmp_path, splits, monkeypatch):
    monkeypatch.setattr(comparison, "load_splits", lambda *args, **kwargs: splits)
    compare(_small(epochs=1), tmp_path, rows=["lstm"])
    table = (tmp_path / "compare.md").read_text()
    with pytest.raises(FileExistsError, match="compare.md"):
        compare(_small(epochs=1), tmp_path, rows=["lstm"])
    assert (tmp_path / "compare.md").read_text() == table
    compare(_small(epochs=1), tmp_path, rows=["lstm"], overwrite=True)


def test_resume_refuses_a_best_checkpoint_of_another_run(tmp_path, splits):
    train(_small(epochs=1), tmp_path / "a", splits=splits)
    train(_small(epochs=1, hidden_size=10), tmp_path / "b", splits=splits)
    other = {"train": splits["dev"], "dev": splits["dev"], "test": splits["test"]}
    train(_small(epochs=1), tmp_path / "c", splits=other)
    (tmp_path / "a" / "best.pt").write_bytes((tmp_path / "b" / "best.pt").read_bytes())
    with pytest.raises(ValueError, match=r"a/best\.pt: cannot resume: the checkpoint has "
                                         r"hidden_size=10"):
        train(_small(epochs=2), tmp_path / "a", resume=True, splits=splits)
    (tmp_path / "a" / "best.pt").write_bytes((tmp_path / "c" / "best.pt").read_bytes())
    with pytest.raises(ValueError, match=r"a/best\.pt: cannot resume: the training data changed"):
        train(_small(epochs=2), tmp_path / "a", resume=True, splits=splits)


def test_resume_refuses_a_best_checkpoint_of_another_epoch(tmp_path, splits):
    train(_small(epochs=3), tmp_path / "a", splits=splits)
    best_epoch = load_checkpoint(tmp_path / "a" / "best.pt").epoch
    path = tmp_path / "a" / "best.pt"
    _rewrite_checkpoint(path, epoch=best_epoch + 7)
    with pytest.raises(ValueError, match=r"best\.pt: holds epoch .*not this run's best\.pt"):
        train(_small(epochs=4), tmp_path / "a", resume=True, splits=splits)


def _rewrite_checkpoint(path, *, to=None, **changes):
    """Fields changed *with a valid checksum*: a crafted file, not a damaged one (damage done by
    a writer, not on disk). Written over ``path``, or to ``to``; returns the file written."""
    content = torch.load(path, weights_only=True)
    content.update(changes)
    content["checksum"] = _checksum(content)
    target = path if to is None else to
    torch.save(content, target)
    return target


@pytest.mark.parametrize("changes, message", [
    ({"epoch": "2"}, r"field 'epoch' should be an integer"),
    ({"epoch": True}, r"field 'epoch' should be an integer"),
    ({"optimizer": [1]}, r"field 'optimizer' should be a dict"),
    ({"rng_state": "x"}, r"field 'rng_state' should be a dict"),
    ({"state_dict": {"embedding.weight": "x"}}, r"'state_dict' should map names to tensors"),
    ({"extra": '{"a": ' * 100000 + "1" + "}" * 100000}, r"JSON nested too deeply"),
    ({"extra": json.dumps({"history": "oops", "best": {}})}, r"'history' should be a list"),
    ({"extra": json.dumps({"history": [{"epoch": 1}], "best": {}})},
     r"history record 1 is not an epoch record"),
    ({"extra": json.dumps({"history": [], "best": [1]})}, r"'history' should be a list of 1"),
])
def test_crafted_checkpoint_fields_are_refused(tmp_path, splits, changes, message):
    train(_small(epochs=1), tmp_path, splits=splits)
    _rewrite_checkpoint(tmp_path / "checkpoint.pt", **changes)
    with pytest.raises(ValueError, match=r"checkpoint\.pt: .*" + message):
        train(_small(epochs=2), tmp_path, resume=True, splits=splits)


def test_crafted_best_record_is_refused(tmp_path, splits):
    train(_small(epochs=1), tmp_path, splits=splits)
    extra = json.loads(torch.load(tmp_path / "checkpoint.pt", weights_only=True)["extra"])
    for best in ([1], {"epoch": "1"}, {"epoch": 5, "dev": {"root_acc": 0.5}}):
        _rewrite_checkpoint(tmp_path / "checkpoint.pt", extra=json.dumps(dict(extra, best=best)))
        with pytest.raises(ValueError, match=r"cannot resume: 'best' should"):
            train(_small(epochs=2), tmp_path, resume=True, splits=splits)


def test_empty_checkpoint_file_is_named(tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.pt: an empty file \(0 bytes\), not a treelstm"):
        load_checkpoint(tmp_path / "empty.pt")


@pytest.mark.parametrize("option, value, message", [
    ("--seed", "99999999999999999999999", "argument --seed: expected an integer in [0, 4294967295]"),
    ("--seed", "-1", "argument --seed"),
    ("--epochs", "0", "argument --epochs: expected a positive integer"),
    ("--lr", "nan", "argument --lr: expected a positive number"),
    ("--dropout", "1.5", "argument --dropout: expected a probability"),
    ("--threads", "-2", "argument --threads"),
    ("--device", "bogus", "argument --device"),
    ("--clip-grad-norm", "inf", "argument --clip-grad-norm"),
])
def test_bad_options_name_the_option(tmp_path, capsys, option, value, message):
    assert _exit_status(train_command, _train_args(tmp_path / "run", option, value)) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_config_seed_range():
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 4294967295\]"):
        TrainConfig(seed=2 ** 64)
    with pytest.raises(ValueError, match="seed"):
        TrainConfig(seed=True)


@pytest.mark.parametrize("device, message", [("cuda", "CUDA is not available"),
                                             ("bogus", "argument --device")])
def test_eval_device_errors_are_one_line(tmp_path, splits, capsys, device, message):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    train(_small(epochs=1), tmp_path, splits=splits)
    assert _exit_status(eval_command, [str(tmp_path / "best.pt"), "--device", device]) == 2
    assert message in capsys.readouterr().err


def test_resume_with_fewer_epochs_than_done_is_refused(tmp_path, splits):
    train(_small(epochs=2), tmp_path, splits=splits)
    with pytest.raises(ValueError, match=r"checkpoint\.pt: cannot resume: it has 2 epochs done, "
                                         r"more than --epochs 1; raise --epochs"):
        train(_small(epochs=1), tmp_path, resume=True, splits=splits)


def test_files_that_are_not_checkpoints_are_named_for_what_they_are(tmp_path, capsys):
    (tmp_path / "metrics.json").write_text('{"a": 1}')
    (tmp_path / "curve.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    (tmp_path / "notes.txt").write_text("hello")
    for name, kind in (("metrics.json", "JSON text"), ("curve.png", "a PNG image"),
                       ("notes.txt", "a text file")):
        with pytest.raises(ValueError, match=f"{name}: {kind}.*not a treelstm checkpoint"):
            load_checkpoint(tmp_path / name)
    assert _exit_status(eval_command, [str(tmp_path), "--quiet"]) == 2
    assert f"is a directory; expected a checkpoint file such as {tmp_path}/best.pt" in \
        capsys.readouterr().err


def test_subcommand_errors_show_the_subcommands_usage(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "--distributed"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m treelstm compare")
    assert "unrecognized arguments: --distributed" in err


def test_ctrl_c_during_training_is_one_line(tmp_path, monkeypatch, capsys):
    import treelstm.training as package  # the train command imports train from here when it runs

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(package, "train", interrupted)
    assert main(["train", "--out", str(tmp_path / "run"), "--quiet"]) == 130
    err = capsys.readouterr().err
    assert "interrupted; checkpoint.pt holds the last finished epoch: --resume" in err


def test_resume_without_checkpoint_in_a_finished_run_is_refused(tmp_path, splits):
    train(_small(epochs=1), tmp_path, splits=splits)
    best = (tmp_path / "best.pt").read_bytes()
    (tmp_path / "checkpoint.pt").unlink()
    with pytest.raises(ValueError, match=r"checkpoint\.pt: cannot resume: missing, but .* holds "
                                         r"best\.pt and metrics\.json"):
        train(_small(epochs=2, lr=0.5), tmp_path, resume=True, splits=splits)
    assert (tmp_path / "best.pt").read_bytes() == best


def test_crafted_optimizer_and_rng_state_are_refused(tmp_path, splits):
    train(_small(epochs=1), tmp_path, splits=splits)
    content = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    optimizer = content["optimizer"]
    optimizer["param_groups"][0]["lr"] = 100.0
    _rewrite_checkpoint(tmp_path / "checkpoint.pt", optimizer=optimizer)
    with pytest.raises(ValueError, match=r"the optimizer state has lr=100\.0, the settings "
                                         r"lr=0\.05"):
        train(_small(epochs=2), tmp_path, resume=True, splits=splits)
    train(_small(epochs=1), tmp_path / "b", splits=splits)
    for field, value in (("numpy_pos", -5), ("python_gauss", "x"), ("numpy_pos", 2 ** 70)):
        content = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
        _rewrite_checkpoint(tmp_path / "b" / "checkpoint.pt",
                            rng_state=dict(content["rng_state"], **{field: value}))
        with pytest.raises(ValueError, match=r"its RNG state is not one get_rng_state writes"):
            train(_small(epochs=2), tmp_path / "b", resume=True, splits=splits)
        _rewrite_checkpoint(tmp_path / "b" / "checkpoint.pt", rng_state=content["rng_state"])


def test_weights_that_overflow_in_float32_are_refused(tmp_path, splits):
    train(_small(epochs=1), tmp_path, splits=splits)
    content = torch.load(tmp_path / "best.pt", weights_only=True)
    state = dict(content["state_dict"])
    state["output.bias"] = state["output.bias"].double() * 1e300
    _rewrite_checkpoint(tmp_path / "best.pt", state_dict=state)
    with pytest.raises(ValueError, match=r"best\.pt: weight 'output\.bias' holds values that are "
                                         r"not finite in torch\.float32"):
        load_model(tmp_path / "best.pt")


def test_weights_that_overflow_during_training_stop_it(tmp_path, splits):
    with pytest.raises(FloatingPointError, match=r"no longer finite|gradient norm|loss"):
        train(_small(epochs=1, lr=1e38, batch_size=30), tmp_path, splits=splits)
    assert not (tmp_path / "best.pt").exists() or load_checkpoint(tmp_path / "best.pt")


def test_compare_refuses_repeated_rows(splits):
    with pytest.raises(ValueError, match="rows must not repeat"):
        compare(_small(epochs=1), rows=["lstm", "lstm"])


@pytest.mark.parametrize("option, value", [("--threads", "100000"), ("--embed-dim", "100000000"),
                                           ("--num-layers", "100000"), ("--lr", "1e308"),
                                           ("--device", "meta")])
def test_absurd_values_are_refused_before_any_work(tmp_path, capsys, option, value):
    assert _exit_status(train_command, _train_args(tmp_path / "run", option, value)) == 2
    assert f"argument {option}" in capsys.readouterr().err


def test_root_loss_only_is_for_the_tree_model(tmp_path, capsys):
    args = _train_args(tmp_path / "run", "--model", "lstm", "--root-loss-only")
    assert _exit_status(train_command, args) == 2
    assert "--root-loss-only is for --model treelstm" in capsys.readouterr().err


# ---------------------------- checkpoints: kill -9 while saving, every truncation, byte flips
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
    assert remove_stale_temp_files(tmp_path, ["model.pt"]) == [tmp_path / left[0]]
    assert _temp_files(tmp_path) == []


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory, splits):
    result = train(_small(epochs=1), splits=splits)
    path = tmp_path_factory.mktemp("ckpt") / "good.pt"
    optimizer = torch.optim.Adagrad(result.model.parameters())
    save_checkpoint(path, result.model, result.vocab, _small(epochs=1).to_dict(),
                    optimizer=optimizer, epoch=1, rng_state=get_rng_state(),
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


# --------------------------------- checkpoints: malicious pickles, metadata that does not fit
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
    path = _rewrite_checkpoint(small_checkpoint, to=tmp_path / "vocab.pt",
                               vocab=json.dumps(vocab))
    with pytest.raises(ValueError, match=r"vocab\.pt: the stored vocabulary has \d+ words but the "
                                         r"model was built for vocab_size=\d+"):
        load_checkpoint(path)
    for field, value in (("model_config", "[1, 2]"), ("config", '"fine"')):
        path = _rewrite_checkpoint(small_checkpoint, to=tmp_path / f"{field}.pt",
                                   **{field: value})
        with pytest.raises(ValueError, match=rf"{field}\.pt: damaged checkpoint metadata: "
                                             rf"{field} should be a JSON object"):
            load_checkpoint(path)


# -------------------------- resume: other data, settings or weights; leftover temporary files
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
    _rewrite_checkpoint(path, config=json.dumps(config))
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
        _rewrite_checkpoint(path, config=json.dumps(dict(config, hidden_size=13)))
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


# ------------------------------------------------------------- kill -9 and resume, end to end
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


# ----------------------------------- numerics: NaN / Inf losses and gradients, clip_grad_norm
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


# ---------------------------------- extreme sizes: empty files and splits, one-word sentences
@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\r\n"])
def test_empty_treebank_file_is_an_empty_list_and_an_empty_split_an_error(tmp_path, content):
    (tmp_path / "train.txt").write_bytes(content)
    assert read_ptb(tmp_path / "train.txt") == []
    first_line = (DATA / "train.txt").read_text(encoding="utf-8").splitlines()[0]
    for split in ("dev", "test"):
        (tmp_path / f"{split}.txt").write_text(first_line + "\n")
    with pytest.raises(ValueError, match=r"train\.txt: no trees"):
        load_splits(tmp_path)


def test_empty_split_passed_to_train_raises(splits):
    for split in ("train", "dev", "test"):
        with pytest.raises(ValueError, match=rf"train: the {split} split has no trees"):
            train(_small(), splits=dict(splits, **{split: []}))


@pytest.mark.parametrize("model", ["treelstm", "lstm"])
def test_training_on_one_word_sentences(model, one_word_lines):
    trees = [parse_ptb_line(line) for line in one_word_lines]
    metrics = train(_small(model=model, epochs=2, batch_size=2),
                    splits={"train": trees, "dev": trees, "test": trees}).metrics
    assert metrics["epochs_done"] == 2 and math.isfinite(metrics["history"][-1]["train"]["loss"])


def test_embedding_lr_steps_do_not_add_up_gradients():
    """The embedding is not one of the optimizer's parameters, so its gradient is cleared before
    each backward: two steps of a constant gradient move it by exactly 2 * lr * gradient."""
    from treelstm.training.step import guarded_update

    torch.manual_seed(0)
    model = torch.nn.Module()
    model.embedding = torch.nn.Embedding(4, 3)
    model.head = torch.nn.Linear(3, 1)
    optimizer = torch.optim.Adagrad(model.head.parameters(), lr=0.1)
    start = model.embedding.weight.detach().clone()
    weights = torch.arange(12.0).reshape(4, 3)
    for _ in range(2):
        loss = (model.embedding.weight * weights).sum() + model.head.weight.sum()
        guarded_update(model, optimizer, loss, lambda: "here", embedding_lr=0.5)
    torch.testing.assert_close(model.embedding.weight.detach(), start - 2 * 0.5 * weights)
