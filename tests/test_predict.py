"""Batched inference: treelstm.predict (Predictor, windows, batch plans, line parsing) and
``python -m treelstm predict`` (file, stdin, JSONL, bad lines, streaming, input order)."""
import io
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import root_logits
from hypothesis import given, settings
from hypothesis import strategies as st

from treelstm.__main__ import main, predict_command
from treelstm.data import IGNORE_INDEX, SentimentTree, collate_trees, parse_ptb_line, read_ptb
from treelstm.predict import (LineError, Predictor, TreePrediction, iter_windows, plan_batches,
                              parse_tree_line, predict_records, tree_from_json)
from treelstm.training import TrainConfig, save_checkpoint, train

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "treelstm" / "datasets" / "sentiment"


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread


def _train_tiny(model: str, path: Path) -> Path:
    config = TrainConfig(model=model, embed_dim=16, hidden_size=12, batch_size=10, epochs=2,
                         max_train=200, device="cpu", seed=1)
    result = train(config)
    save_checkpoint(path, result.model, result.vocab, config.to_dict())
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    directory = tmp_path_factory.mktemp("predict")
    return {model: _train_tiny(model, directory / f"{model}.pt") for model in ("treelstm", "lstm")}


@pytest.fixture(scope="module")
def test_trees():
    return read_ptb(DATA / "test.txt")[:120]


def _json_line(tree: SentimentTree) -> str:
    return json.dumps({"parent": tree.parent, "tokens": tree.tokens})


def _run(*args, input=None, timeout=120):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "treelstm", "predict", *args], cwd=ROOT,
                          input=input, capture_output=True, text=True, timeout=timeout, env=env)


def _records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


# ------------------------------------------------------------------------ Predictor (API)
@pytest.mark.parametrize("model", ["treelstm", "lstm"])
def test_predictor_matches_a_plain_forward(checkpoints, test_trees, model):
    """Against an independent path: plain forwards, one fixed-size chunking (helpers)."""
    predictor = Predictor.from_checkpoint(checkpoints[model])
    logits = root_logits(predictor.model, test_trees, predictor.vocab, batch_size=7)
    results = list(predictor.predict(test_trees, batch_size=32))
    assert len(results) == len(test_trees)
    assert all(isinstance(r, TreePrediction) for r in results)
    assert [r.label for r in results] == logits.argmax(dim=1).tolist()
    torch.testing.assert_close(torch.tensor([r.probs for r in results]),
                               logits.softmax(dim=1), rtol=1e-5, atol=1e-6)
    assert len(set(r.label for r in results)) > 1, "a trained model should not be constant"


@pytest.mark.parametrize("batch_size, max_nodes, window", [(1, None, 5), (3, 40, 7),
                                                           (64, 100000, None), (500, 8, 1000)])
def test_predictions_do_not_depend_on_batching(checkpoints, test_trees, batch_size, max_nodes,
                                               window):
    predictor = Predictor.from_checkpoint(checkpoints["treelstm"])
    reference = [predictor.predict_batch([tree])[0] for tree in test_trees[:40]]
    results = list(predictor.predict(test_trees[:40], batch_size=batch_size, max_nodes=max_nodes,
                                     window=window))
    assert [r.label for r in results] == [r.label for r in reference]
    torch.testing.assert_close(torch.tensor([r.probs for r in results]),
                               torch.tensor([r.probs for r in reference]), rtol=1e-4, atol=1e-6)


def test_node_labels_are_the_argmax_at_every_node(checkpoints, test_trees):
    predictor = Predictor.from_checkpoint(checkpoints["treelstm"])
    trees = test_trees[:10]
    results = list(predictor.predict(trees, batch_size=4, node_labels=True))
    for tree, result in zip(trees, results):
        with torch.no_grad():
            node_logits, root_logits = predictor.model(collate_trees([tree], predictor.vocab))
        assert result.node_labels == node_logits.argmax(dim=1).tolist()
        assert result.label == result.node_labels[tree.root]
    assert all(r.node_labels is None for r in predictor.predict(trees))


def test_predictor_rejects_bad_input(checkpoints, test_trees):
    predictor = Predictor.from_checkpoint(checkpoints["treelstm"])
    with pytest.raises(TypeError, match="item 1 is a int; expected a SentimentTree, an nltk.Tree "
                                        "or a line of text"):
        list(predictor.predict([test_trees[0], 42]))
    with pytest.raises(ValueError, match="item 1: empty line"):
        list(predictor.predict([test_trees[0], "  "]))
    wide = parse_ptb_line("(2 (2 a) (2 b) (2 c))")
    with pytest.raises(ValueError, match=r"item 1: node 3 has 3 children.*at most 2"):
        list(predictor.predict([test_trees[0], wide]))
    lstm = Predictor.from_checkpoint(checkpoints["lstm"])
    assert len(list(lstm.predict([wide]))) == 1  # the LSTM reads words; any tree will do
    with pytest.raises(ValueError, match="node labels need a TreeLSTMClassifier"):
        lstm.predict_batch([wide], node_labels=True)
    with pytest.raises(ValueError, match="dtype must be"):
        Predictor(predictor.model, predictor.vocab, dtype="int8")
    with pytest.raises(TypeError, match=r"must be a classifier \(TreeLSTMClassifier, LSTMClassifier, or a "
                                        r"module with collate, cost, check_tree"):
        Predictor(torch.nn.Linear(2, 2), predictor.vocab)


def test_missing_or_corrupt_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError):
        Predictor.from_checkpoint(tmp_path / "nothing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        Predictor.from_checkpoint(tmp_path / "junk.pt")


def test_autocast_bf16_runs_on_cpu(checkpoints, test_trees):
    predictor = Predictor.from_checkpoint(checkpoints["treelstm"], dtype="bf16")
    results = list(predictor.predict(test_trees[:20]))
    full = list(Predictor.from_checkpoint(checkpoints["treelstm"]).predict(test_trees[:20]))
    probs = torch.tensor([r.probs for r in results])
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(20), atol=1e-4, rtol=0)
    torch.testing.assert_close(probs, torch.tensor([r.probs for r in full]), atol=0.05, rtol=0)


# ------------------------------------------------------------------ windows and batches
def test_iter_windows_holds_a_bounded_window():
    pulled = 0

    def source():
        nonlocal pulled
        for i in range(20_000):
            pulled += 1
            yield i

    emitted = []
    for window in iter_windows(source(), 512):
        assert len(window) <= 512
        assert pulled - len(emitted) <= 512  # never more than one window taken ahead
        emitted.extend(window)
    assert emitted == list(range(20_000))
    assert list(iter_windows([], 3)) == []
    with pytest.raises(ValueError, match="window must be a positive integer"):
        list(iter_windows([1], 0))


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(1, 50), max_size=60), batch_trees=st.integers(1, 10),
       max_nodes=st.one_of(st.none(), st.integers(1, 120)))
def test_plan_batches_properties(sizes, batch_trees, max_nodes):
    batches = plan_batches(sizes, batch_trees, max_nodes)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(sizes)))  # every item exactly once
    assert [sizes[i] for i in flat] == sorted(sizes)  # similar sizes together
    for batch in batches:
        assert 1 <= len(batch) <= batch_trees
        if max_nodes is not None and len(batch) > 1:
            assert sum(sizes[i] for i in batch) <= max_nodes


def test_plan_batches_rejects_bad_limits():
    with pytest.raises(ValueError, match="batch_trees"):
        plan_batches([1, 2], 0)
    with pytest.raises(ValueError, match="max_nodes"):
        plan_batches([1, 2], 2, max_nodes=0)


def test_predict_records_holds_a_bounded_window_and_keeps_input_order(checkpoints):
    """The whole pipeline on a 20,000-line generator: lines read ahead of the records written
    never exceed the window, and records come out in input order."""
    predictor = Predictor.from_checkpoint(checkpoints["treelstm"])
    shapes = ["(2 good)", "(1 (2 not) (3 good))", "(3 (2 the) (3 (2 plot) (3 (2 is) (4 great))))"]
    pulled = 0

    def lines():
        nonlocal pulled
        rng = random.Random(0)
        for _ in range(20_000):
            pulled += 1
            yield rng.choice(shapes) + "\n"

    window = 700
    numbers = []
    ahead = 0
    for record in predict_records(predictor, lines(), batch_trees=64, window=window):
        numbers.append(record["line"])
        ahead = max(ahead, pulled - len(numbers))
    assert numbers == list(range(1, 20_001))
    assert ahead < window


# ---------------------------------------------------------------------------- lines
def test_parse_tree_line_formats():
    ptb = "(3 (2 a) (3 (2 very) (4 good)))"
    tree = parse_tree_line(ptb)
    assert tree == parse_ptb_line(ptb)
    same = parse_tree_line(_json_line(tree).encode("utf-8"), "jsonl")
    assert same.tokens == tree.tokens and same.parent == tree.parent
    assert same.labels == [IGNORE_INDEX] * tree.num_nodes
    assert parse_tree_line("  " + _json_line(tree) + "\r\n").parent == tree.parent
    with pytest.raises(ValueError, match="not valid JSON"):
        parse_tree_line(ptb, "jsonl")
    with pytest.raises(ValueError):  # the PTB reader's own message
        parse_tree_line(_json_line(tree), "ptb")
    with pytest.raises(ValueError, match="neither a bracketed tree"):
        parse_tree_line("hello world")
    with pytest.raises(ValueError, match="empty line"):
        parse_tree_line("   ")
    with pytest.raises(ValueError, match="not valid UTF-8"):
        parse_tree_line(b"(2 \xff)")
    with pytest.raises(ValueError, match="format must be one of"):
        parse_tree_line(ptb, "xml")


@pytest.mark.parametrize("value, message", [
    ([1, 2], "expected a JSON object"),
    ({"tokens": ["a"]}, "missing key 'parent'"),
    ({"parent": [-1]}, "missing key 'tokens'"),
    ({"parent": "-1", "tokens": ["a"]}, "'parent' must be a list"),
    ({"parent": [-1.0], "tokens": ["a"]}, "'parent' must hold integers"),
    ({"parent": [True, -1], "tokens": ["a"]}, "'parent' must hold integers"),
    ({"parent": [-1], "tokens": [""]}, "non-empty strings"),
    ({"parent": [-1], "tokens": [3]}, "non-empty strings"),
    ({"parent": [], "tokens": []}, "0 tokens for 0 nodes"),
    ({"parent": [2, 2, -1], "tokens": ["a", "b", "c"]}, "leaves 0..2 take no children"),
    ({"parent": [2, -1, -1], "tokens": ["a"]}, "2 roots"),
    ({"parent": [2, 2, 3, 2], "tokens": ["a", "b"]}, r"no root \(no parent -1\)"),
    ({"parent": [3, 3, 6, 4, 5, 4, -1], "tokens": ["a", "b", "c"]}, "a cycle"),
    ({"parent": [2, 2, -1, 2], "tokens": ["a", "b"]}, "internal node 3 has no children"),
    ({"parent": [2, 7, -1], "tokens": ["a", "b"]}, "parent 7"),
    # leaf 1 hangs off the root, leaves 0 and 2 share node 3: the leaves are not in order
    ({"parent": [3, 4, 3, 4, -1], "tokens": ["a", "b", "c"]}, "not a contiguous run"),
])
def test_json_trees_are_validated(value, message):
    with pytest.raises(ValueError, match=message):
        tree_from_json(value)


def test_json_tree_with_internal_node_left_of_a_leaf():
    """Like read_ptb's trees: leaves first, internal nodes after, any nesting."""
    ptb = parse_ptb_line("(1 (2 (2 a) (2 b)) (0 c))")
    tree = tree_from_json({"parent": ptb.parent, "tokens": ptb.tokens, "id": "extra keys ok"})
    assert tree.child_positions() == ptb.child_positions()


# ---------------------------------------------------------------------- command line
def test_cli_on_a_file_matches_in_process_predictions(checkpoints, test_trees, tmp_path):
    path = tmp_path / "trees.txt"
    lines = (DATA / "test.txt").read_text(encoding="utf-8").splitlines()[:120]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected = list(Predictor.from_checkpoint(checkpoints["treelstm"]).predict(test_trees))
    done = _run(str(checkpoints["treelstm"]), str(path), "--batch-trees", "16", "--max-nodes",
                "300", "--window", "50")
    assert done.returncode == 0, done.stderr
    records = _records(done.stdout)
    assert [r["line"] for r in records] == list(range(1, 121))
    assert [r["label"] for r in records] == [r.label for r in expected]
    for record, result in zip(records, expected):
        assert record["probs"] == pytest.approx(result.probs, abs=2e-6)
        assert "node_labels" not in record
    assert "trees/s" in done.stderr.splitlines()[-1]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("stdin_argument", [[], ["-"]])
def test_cli_reads_stdin(checkpoints, test_trees, stdin_argument):
    text = "\n".join(_json_line(tree) for tree in test_trees[:30]) + "\n"
    expected = list(Predictor.from_checkpoint(checkpoints["treelstm"]).predict(test_trees[:30]))
    done = _run(str(checkpoints["treelstm"]), *stdin_argument, "--format", "jsonl",
                "--node-labels", input=text)
    assert done.returncode == 0, done.stderr
    records = _records(done.stdout)
    assert [r["label"] for r in records] == [r.label for r in expected]
    assert [len(r["node_labels"]) for r in records] == [t.num_nodes for t in test_trees[:30]]


def _predict_main(args, stdin_text=None, monkeypatch=None):
    if stdin_text is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin_text.encode())))
    try:  # the exit status, whether returned or raised by argparse
        return main(["predict", *map(str, args)])
    except SystemExit as exit_info:
        return exit_info.code


def test_cli_mixed_formats_and_output_file(checkpoints, test_trees, tmp_path, capsys):
    lines = []
    for k, tree in enumerate(test_trees[:20]):  # PTB and JSON lines, and blank lines, mixed
        from treelstm.data import to_ptb_string

        lines.append(_json_line(tree) if k % 2 else to_ptb_string(tree))
        if k % 5 == 0:
            lines.append("")
    (tmp_path / "in.txt").write_text("\ufeff" + "\n".join(lines), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    status = _predict_main([checkpoints["treelstm"], tmp_path / "in.txt", "--output", out,
                            "--quiet"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert captured.out == "" and captured.err == ""
    records = _records(out.read_text(encoding="utf-8"))
    expected = list(Predictor.from_checkpoint(checkpoints["treelstm"]).predict(test_trees[:20]))
    assert [r["label"] for r in records] == [r.label for r in expected]
    blank = {i + 1 for i, line in enumerate(lines) if not line}
    assert [r["line"] for r in records] == [n for n in range(1, len(lines) + 1)
                                            if n not in blank]


BAD_LINES = ["(3 (2 a) (3 (2 very) (4 good)))",
             "(3 (2 a) (3 (2 very",                               # unbalanced
             '{"parent": [2, 2, -1], "tokens": ["a", "b"]}',
             '{"parent": [3, 4, 3, 4, -1], "tokens": ["a", "b", "c"]}',  # leaves out of order
             "(2 (2 a) (2 b) (2 c))",             # 3 children: binarised for a binary model
             "(9 word)"]                          # not SST's label: ignored, like a parser's


def _ptb_error(line):
    with pytest.raises(ValueError) as error_info:
        parse_ptb_line(line)
    return str(error_info.value)


def test_bad_line_stops_with_exit_1_naming_the_line(checkpoints, capsys, monkeypatch):
    status = _predict_main([checkpoints["treelstm"]], "\n".join(BAD_LINES) + "\n", monkeypatch)
    captured = capsys.readouterr()
    assert status == 1
    assert f"<stdin>:2: {_ptb_error(BAD_LINES[1])}" in captured.err
    assert "Traceback" not in captured.err
    assert [r["line"] for r in _records(captured.out)] == [1]  # the lines before it are written


def test_bad_line_in_a_file_subprocess(checkpoints, tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("\n".join(BAD_LINES[2:4]) + "\n", encoding="utf-8")
    done = _run(str(checkpoints["treelstm"]), str(path), "--quiet")
    assert done.returncode == 1
    assert f"{path}:2: tree: node 3 covers 2 of the leaves 0..2" in done.stderr
    assert "Traceback" not in done.stderr
    assert _records(done.stdout) == [_records(done.stdout)[0]] and \
        _records(done.stdout)[0]["line"] == 1


def test_skip_bad_writes_error_records_and_goes_on(checkpoints, capsys, monkeypatch):
    status = _predict_main([checkpoints["treelstm"], "--skip-bad"], "\n".join(BAD_LINES) + "\n",
                           monkeypatch)
    captured = capsys.readouterr()
    assert status == 0, captured.err
    records = _records(captured.out)
    assert [r["line"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert [("error" in r) for r in records] == [False, True, False, True, False, False]
    assert records[1]["error"].startswith(_ptb_error(BAD_LINES[1]))
    assert "not a contiguous run" in records[3]["error"]
    assert "4 trees" in captured.err and "2 bad lines skipped" in captured.err


def test_bad_utf8_line_is_a_bad_line(checkpoints, tmp_path, capsys):
    path = tmp_path / "bytes.txt"
    path.write_bytes(b"(2 a)\n(2 \xff)\n(3 b)\n")
    assert _predict_main([checkpoints["lstm"], path, "--skip-bad"]) == 0
    records = _records(capsys.readouterr().out)
    assert "not valid UTF-8" in records[1]["error"] and "label" in records[2]


@pytest.mark.parametrize("args, message", [
    (["--node-labels"], "--node-labels needs a Tree-LSTM checkpoint"),
    (["--device", "cuda:99"], "cuda"),
])
def test_lstm_checkpoint_options(checkpoints, tmp_path, capsys, args, message):
    if "cuda:99" in args and torch.cuda.device_count() > 99:
        pytest.skip("a machine with 100 GPUs")
    (tmp_path / "in.txt").write_text("(2 a)\n", encoding="utf-8")
    assert _predict_main([checkpoints["lstm"], tmp_path / "in.txt", *args]) == 2
    assert message in capsys.readouterr().err


def test_cli_setup_errors_exit_2(checkpoints, tmp_path, capsys):
    assert _predict_main([tmp_path / "missing.pt", tmp_path / "in.txt"]) == 2
    assert "missing.pt" in capsys.readouterr().err
    assert _predict_main([checkpoints["treelstm"], tmp_path / "no-such-input.txt"]) == 2
    assert "no-such-input.txt" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        predict_command(["x.pt", "--batch-trees", "0"])
    assert exit_info.value.code == 2


def test_cli_help_and_command_list(capsys):
    with pytest.raises(SystemExit) as exit_info:
        predict_command(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--format", "--output", "--batch-trees", "--max-nodes", "--window", "--device",
                   "--dtype", "--node-labels", "--skip-bad", "--quiet"):
        assert option in text
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "  predict " in capsys.readouterr().out


def test_cli_dtype_bf16(checkpoints, tmp_path, capsys):
    (tmp_path / "in.txt").write_text("(3 (2 a) (4 good))\n(1 bad)\n", encoding="utf-8")
    assert _predict_main([checkpoints["treelstm"], tmp_path / "in.txt", "--dtype", "bf16"]) == 0
    captured = capsys.readouterr()
    records = _records(captured.out)
    assert len(records) == 2 and sum(records[0]["probs"]) == pytest.approx(1, abs=1e-3)
    assert "bfloat16" not in captured.err and "bf16" in captured.err


def test_streaming_a_large_file_keeps_input_order(checkpoints, tmp_path, capsys):
    """20,000 small trees through the command: one record per line, in input order, each the
    label of its tree (the tree shapes repeat, so their labels are known in advance)."""
    rng = random.Random(0)
    words = ["good", "bad", "plot", "great", "dull", "film", "not"]
    shapes = []
    for _ in range(40):
        leaves = [f"(2 {rng.choice(words)})" for _ in range(rng.randint(1, 6))]
        while len(leaves) > 1:  # random binary bracketing
            k = rng.randrange(len(leaves) - 1)
            leaves[k:k + 2] = [f"(2 {leaves[k]} {leaves[k + 1]})"]
        shapes.append(leaves[0])
    predictor = Predictor.from_checkpoint(checkpoints["treelstm"])
    label_of = {shape: r.label for shape, r in
                zip(shapes, predictor.predict([parse_ptb_line(s) for s in shapes]))}
    chosen = [rng.choice(shapes) for _ in range(20_000)]
    path = tmp_path / "large.txt"
    path.write_text("\n".join(chosen) + "\n", encoding="utf-8")
    status = _predict_main([checkpoints["treelstm"], path, "--window", "1000", "--batch-trees",
                            "128", "--max-nodes", "2000"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    records = _records(captured.out)
    assert [r["line"] for r in records] == list(range(1, 20_001))
    assert [r["label"] for r in records] == [label_of[s] for s in chosen]
    assert "predict: 20000 trees" in captured.err


def test_line_error_carries_the_line_number():
    error = LineError(7, "bad")
    assert isinstance(error, ValueError) and error.lineno == 7 and str(error) == "bad"


# ------------------------------------------------------- nothing lost, nothing silently wrong
def _fresh_probs(model, trees, vocab):
    """An independent reference: a copy of ``model`` as it is now, eval mode, no cache, one
    plain forward under no_grad."""
    import copy

    from treelstm.data import collate_sequences

    reference = copy.deepcopy(model).eval()
    with torch.no_grad():
        if hasattr(reference, "tree_lstm"):
            reference.tree_lstm.cache_projections(False)
            _, root_logits = reference(collate_trees(trees, vocab))
        else:
            root_logits = reference(collate_sequences(trees, vocab))
    return root_logits.softmax(dim=1)


def _predictor_probs(predictor, trees):
    return torch.tensor([r.probs for r in predictor.predict(trees, batch_size=16)])


@pytest.fixture
def trained(checkpoints):
    """A fresh Tree-LSTM classifier in training mode (the caller's), with its vocabulary."""
    from treelstm.training import load_model

    model, vocab, _ = load_model(checkpoints["treelstm"])
    return model.train(), vocab


def test_predictor_leaves_the_callers_model_alone(trained, test_trees):
    model, vocab = trained
    before = {k: v.clone() for k, v in model.state_dict().items()}
    predictor = Predictor(model, vocab)
    list(predictor.predict(test_trees[:20]))
    assert model.training
    assert all(p.requires_grad for p in model.parameters())
    assert not model.tree_lstm.projection_cache.enabled
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert predictor.model is not model and not predictor.model.training
    assert not any(p.requires_grad for p in predictor.model.parameters())


def _adam_steps(model, trees, vocab, steps=5, fused=True):
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05, fused=fused)
    for _ in range(steps):
        _, root_logits = model(collate_trees(trees, vocab))
        loss = torch.nn.functional.cross_entropy(
            root_logits, torch.tensor([t.root_label for t in trees]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


@pytest.mark.parametrize("change", ["fused_adam", "numpy_view", "data_write", "load_state_dict"])
def test_predictions_follow_the_weights_they_were_built_from(trained, test_trees, change):
    """Old Predictor: the weights at its construction; new Predictor: the weights now; each
    equal to a fresh forward of those weights, whatever way the caller changed them."""
    model, vocab = trained
    trees = test_trees[:60]
    old = Predictor(model, vocab)
    old_reference = _fresh_probs(model, trees, vocab)
    torch.testing.assert_close(_predictor_probs(old, trees), old_reference, rtol=1e-5, atol=1e-6)
    if change == "fused_adam":
        _adam_steps(model, trees, vocab)
    elif change == "numpy_view":  # bypasses version counters
        model.embedding.weight.detach().numpy()[:] *= 2
        model.tree_lstm.weight_ih_l0.detach().numpy()[:] *= -1
    elif change == "data_write":
        model.tree_lstm.weight_ih_l0.data.add_(0.3)
    else:
        state = {k: torch.randn_like(v) * 0.3 for k, v in model.state_dict().items()}
        model.load_state_dict(state)
    new_reference = _fresh_probs(model, trees, vocab)
    assert (new_reference - old_reference).abs().max() > 1e-3, "the change must matter"
    torch.testing.assert_close(_predictor_probs(Predictor(model, vocab), trees), new_reference,
                               rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(_predictor_probs(old, trees), old_reference, rtol=1e-5, atol=1e-6)


def test_interleaved_training_and_prediction(trained, test_trees):
    model, vocab = trained
    trees = test_trees[:40]
    for _ in range(3):
        _adam_steps(model, trees, vocab, steps=2)
        predictor = Predictor(model, vocab)
        torch.testing.assert_close(_predictor_probs(predictor, trees),
                                   _fresh_probs(model, trees, vocab), rtol=1e-5, atol=1e-6)
        assert model.training and all(p.requires_grad for p in model.parameters())


def test_output_may_not_be_the_input_or_the_checkpoint(checkpoints, tmp_path, capsys):
    source = tmp_path / "s.txt"
    source.write_text("(2 a)\n(3 (2 b) (3 c))\n", encoding="utf-8")
    (tmp_path / "link.txt").symlink_to(source)
    checkpoint_bytes = Path(checkpoints["lstm"]).read_bytes()
    for output in (source, tmp_path / "link.txt", tmp_path / "." / "s.txt"):
        assert _predict_main([checkpoints["lstm"], source, "-o", output]) == 2
        assert "is the input" in capsys.readouterr().err
    assert source.read_text(encoding="utf-8") == "(2 a)\n(3 (2 b) (3 c))\n"
    assert _predict_main([checkpoints["lstm"], source, "-o", checkpoints["lstm"]]) == 2
    assert "is the checkpoint" in capsys.readouterr().err
    assert Path(checkpoints["lstm"]).read_bytes() == checkpoint_bytes


def test_interrupted_predict_keeps_the_previous_output(checkpoints, test_trees, tmp_path,
                                                       monkeypatch, capsys):
    import treelstm.predict as predict_module

    source = tmp_path / "in.txt"
    source.write_text("".join(_json_line(t) + "\n" for t in test_trees[:30]), encoding="utf-8")
    output = tmp_path / "out.jsonl"
    output.write_text("previous good results\n")
    real = predict_module.predict_records

    def interrupted(*args, **kwargs):
        for number, record in enumerate(real(*args, **kwargs)):
            if number == 10:
                raise KeyboardInterrupt
            yield record

    monkeypatch.setattr(predict_module, "predict_records", interrupted)
    assert main(["predict", str(checkpoints["treelstm"]), str(source), "-o", str(output)]) == 130
    assert "python -m treelstm predict: interrupted" in capsys.readouterr().err
    assert output.read_text() == "previous good results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.jsonl"]


def test_kill_9_mid_predict_keeps_the_previous_output(checkpoints, test_trees, tmp_path):
    import signal
    import time

    output = tmp_path / "out.jsonl"
    output.write_text("previous good results\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen([sys.executable, "-m", "treelstm", "predict",
                                str(checkpoints["treelstm"]), "-", "-o", str(output),
                                "--window", "1", "--quiet"],
                               cwd=ROOT, stdin=subprocess.PIPE, env=env)
    try:
        # enough lines that the temporary file gets written before the signal (stdin stays open)
        process.stdin.write(("".join(_json_line(t) + "\n" for t in test_trees * 20)).encode())
        process.stdin.flush()
        deadline = time.monotonic() + 60
        # Wait until it is writing its temporary file, then kill it.
        while time.monotonic() < deadline and not any(
                p.name.startswith(".out.jsonl.") and p.stat().st_size > 0
                for p in tmp_path.iterdir()):
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert output.read_text() == "previous good results\n"


def test_closed_stdin_and_full_disk_are_one_line_errors(checkpoints, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = f"{sys.executable} -m treelstm predict {checkpoints['lstm']}"
    closed = subprocess.run(["bash", "-c", f"{command} - <&-"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert closed.returncode == 2 and "standard input is closed" in closed.stderr
    assert "Traceback" not in closed.stderr
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full (Linux)")
    source = tmp_path / "in.txt"
    source.write_text("(2 a)\n" * 2000, encoding="utf-8")
    for redirect in (f"{source} -o /dev/full", f"{source} > /dev/full"):
        full = subprocess.run(["bash", "-c", f"{command} {redirect}"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert full.returncode == 1, full.stderr
        assert "No space left on device" in full.stderr and "Traceback" not in full.stderr


def test_non_finite_weights_are_refused_at_load(checkpoints, tmp_path, capsys):
    from treelstm.training import load_model

    model, vocab, config = load_model(checkpoints["treelstm"])
    with torch.no_grad():
        model.output.weight[0, 0] = float("nan")
    path = tmp_path / "nan.pt"
    save_checkpoint(path, model, vocab, config)
    with pytest.raises(ValueError, match=r"nan\.pt: weight 'output\.weight' holds NaN"):
        Predictor.from_checkpoint(path)
    (tmp_path / "in.txt").write_text("(2 a)\n", encoding="utf-8")
    assert _predict_main([path, tmp_path / "in.txt"]) == 2
    captured = capsys.readouterr()
    assert "output.weight" in captured.err and captured.out == ""


def test_non_finite_probabilities_become_errors_not_invalid_json(checkpoints, test_trees,
                                                                 monkeypatch):
    predictor = Predictor.from_checkpoint(checkpoints["lstm"])
    real = predictor.predict_batch

    def poisoned(trees, node_labels=False):
        results = real(trees, node_labels)
        return [r._replace(probs=[float("nan")] * len(r.probs)) if len(trees[k].tokens) % 3 == 0
                else r for k, r in enumerate(results)]

    monkeypatch.setattr(predictor, "predict_batch", poisoned)
    lines = [_json_line(t) for t in test_trees[:40]]
    records = list(predict_records(predictor, lines, skip_bad=True))
    bad = [r for r in records if "error" in r]
    assert bad and all("non-finite" in r["error"] for r in bad)
    assert len(records) == 40
    assert all(json.loads(json.dumps(r, allow_nan=False)) == r for r in records)
    first_bad = bad[0]["line"]
    with pytest.raises(LineError) as error:
        list(predict_records(predictor, lines))
    assert error.value.lineno == first_bad


def test_deeply_nested_json_line_is_that_lines_error(checkpoints, tmp_path, capsys):
    source = tmp_path / "in.txt"
    deep = "[" * 100000 + "]" * 100000
    objects = '{"x": ' * 100000 + "1" + "}" * 100000
    source.write_text(f"(2 a)\n{{\"parent\": {deep}}}\n{objects}\n(3 b)\n", encoding="utf-8")
    assert _predict_main([checkpoints["lstm"], source, "--skip-bad"]) == 0
    records = _records(capsys.readouterr().out)
    assert [r["line"] for r in records] == [1, 2, 3, 4]
    assert "label" in records[0] and "label" in records[3]
    assert "nested too deeply" in records[1]["error"]
    assert "nested too deeply" in records[2]["error"]
    assert _predict_main([checkpoints["lstm"], source]) == 1  # the good line before is kept
    captured = capsys.readouterr()
    assert [r["line"] for r in _records(captured.out)] == [1]
    assert "in.txt:2: " in captured.err and "Traceback" not in captured.err


def test_no_throughput_line_when_nothing_was_predicted(checkpoints, tmp_path, capsys):
    (tmp_path / "in.txt").write_text("(2 (2 a)\n", encoding="utf-8")  # unbalanced
    assert _predict_main([checkpoints["lstm"], tmp_path / "in.txt"]) == 1
    err = capsys.readouterr().err
    assert "trees/s" not in err and "in.txt:1:" in err


def test_importing_predict_loads_checkpoint_reading_only():
    """Inference imports treelstm.training.checkpoint, not the training loop, evaluation,
    torch.distributed helpers or matplotlib (a fresh interpreter: the tests have loaded them)."""
    code = ("import json, sys, treelstm.predict; print(json.dumps(sorted(m for m in sys.modules "
            "if m.startswith('treelstm.training') or m.split('.')[0] == 'matplotlib')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [
        "treelstm.training", "treelstm.training.checkpoint", "treelstm.training.config"]


def test_sigterm_mid_predict_keeps_the_previous_output_and_leaves_no_temp_file(
        checkpoints, test_trees, tmp_path):
    import signal
    import time

    output = tmp_path / "out.jsonl"
    output.write_text("previous good results\n")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / f".out.jsonl.treelstm-{dead.pid}-left-by-kill-9.tmp").write_text("half")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen([sys.executable, "-m", "treelstm", "predict",
                                str(checkpoints["treelstm"]), "-", "-o", str(output),
                                "--window", "1", "--quiet"],
                               cwd=ROOT, stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        # enough lines that the temporary file gets written before the signal (stdin stays open)
        process.stdin.write(("".join(_json_line(t) + "\n" for t in test_trees * 20)).encode())
        process.stdin.flush()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
                p.name.startswith(".out.jsonl.") and "left-by" not in p.name
                and p.stat().st_size > 0 for p in tmp_path.iterdir()):
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 143, err
    assert b"terminated" in err and b"Traceback" not in err, err
    assert output.read_text() == "previous good results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"], err


def test_bad_line_leaves_the_previous_output_file(checkpoints, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("(2 a)\n(3 b)\n(2 (2 a)\n", encoding="utf-8")  # the last unbalanced
    output = tmp_path / "out.jsonl"
    output.write_text("previous good results\n")
    assert _predict_main([checkpoints["lstm"], source, "-o", output]) == 1
    err = capsys.readouterr().err
    assert "in.txt:3:" in err and "out.jsonl was not written" in err
    assert output.read_text() == "previous good results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.jsonl"]


def test_output_may_not_be_the_file_on_standard_input(checkpoints, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("(2 a)\n(3 b)\n", encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with open(source, "rb") as stdin:
        done = subprocess.run([sys.executable, "-m", "treelstm", "predict",
                               str(checkpoints["lstm"]), "-o", str(source), "--quiet"],
                              stdin=stdin, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and "is the input (standard input)" in done.stderr
    assert source.read_text(encoding="utf-8") == "(2 a)\n(3 b)\n"


def test_output_through_links_and_devices(checkpoints, tmp_path):
    """A symlinked output replaces its target (the link stays, the mode is kept);
    /dev/stdout is written in place (not replaced by a file)."""
    source = tmp_path / "in.txt"
    source.write_text("(2 a)\n(3 b)\n", encoding="utf-8")
    (tmp_path / "store").mkdir()
    real = tmp_path / "store" / "real.jsonl"
    real.write_text("old\n")
    real.chmod(0o600)
    (tmp_path / "link.jsonl").symlink_to(real)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "treelstm", "predict", str(checkpoints["lstm"]), str(source),
               "--quiet", "-o"]
    done = subprocess.run(command + [str(tmp_path / "link.jsonl")], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "link.jsonl").is_symlink()
    assert len(real.read_text().splitlines()) == 2 and (real.stat().st_mode & 0o777) == 0o600
    with open(tmp_path / "captured.txt", "w") as captured:
        done = subprocess.run(command + ["/dev/stdout"], stdout=captured, stderr=subprocess.PIPE,
                              text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len((tmp_path / "captured.txt").read_text().splitlines()) == 2
    assert os.path.islink("/dev/stdout") or not os.path.isfile("/dev/stdout")


def test_a_line_too_long_is_that_lines_error_and_memory_stays_bounded(checkpoints, monkeypatch):
    import io as io_module

    import treelstm.predict as predict_module

    monkeypatch.setattr(predict_module, "MAX_LINE_BYTES", 1000)
    stream = io_module.BytesIO(b"(2 a)\n(2 " + b"x" * 5000 + b")\n(3 b)\n")
    predictor = Predictor.from_checkpoint(checkpoints["lstm"])
    lines = list(predict_module.bounded_lines(stream, 1000))
    assert [len(line) for line in lines] == [6, 1001, 6]  # the long one cut, its rest skipped
    records = list(predict_records(predictor, lines, skip_bad=True))
    assert [r["line"] for r in records] == [1, 2, 3]
    assert "longer than 1000 bytes" in records[1]["error"] and "label" in records[2]


def test_iter_windows_bounds_bytes_too():
    items = [b"x" * 10] * 7
    windows = list(iter_windows(items, 100, max_size=25, size=len))
    assert [len(w) for w in windows] == [3, 3, 1]


def test_predictor_refuses_a_vocabulary_of_another_size(checkpoints):
    from treelstm.data import Vocab

    predictor = Predictor.from_checkpoint(checkpoints["lstm"])
    with pytest.raises(ValueError, match=r"the vocabulary has 5 words, the model's embedding "
                                         r"\d+ rows"):
        Predictor(predictor.model, Vocab(predictor.vocab.itos[:5]))
    with pytest.raises(ValueError, match=r"device: Expected one of .* bogus"):
        Predictor(predictor.model, predictor.vocab, device="bogus")


def test_windows_grow_from_the_first_window_to_the_window():
    sizes = [len(chunk) for chunk in iter_windows(range(1000), 300, first_window=20)]
    assert sizes == [20, 40, 80, 160, 300, 300, 100]
    assert [len(c) for c in iter_windows(range(10), 4, first_window=8)] == [4, 4, 2]
    assert [len(c) for c in iter_windows(range(10), 4)] == [4, 4, 2]
    with pytest.raises(ValueError, match="first_window must be a positive integer; got 0"):
        list(iter_windows(range(3), 4, first_window=0))
