"""SICK: the pre-parsed and tab-separated readers, pair batching, the relatedness model of Tai et
al. (targets, KL loss, expected score), the metrics against scipy and by hand, training,
checkpoints, the bundled sample, examples/train_sick.py and ``python -m treelstm sick-train``
/ ``sick-eval``."""
import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from treelstm.data import (RelatednessPair, SICKRecord, Vocab, collate_pairs, read_sick,
                           read_sick_splits, read_sick_tsv)
from treelstm.__main__ import main, sick_eval_command, sick_train_command
from treelstm.sick import (RelatednessConfig, RelatednessModel, evaluate_relatedness,
                           expected_score, load_relatedness_model, mse, pearson, predict_scores,
                           relatedness_loss, save_relatedness_checkpoint, spearman,
                           target_distribution, train_relatedness)

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "treelstm" / "datasets" / "sick_sample"
REAL_SICK = ROOT / ".." / "shared" / "data" / "sick"

# Three pairs in the pre-parsed form (project-written sentences).
FILES = {
    "a.toks": ["A cat sleeps", "Two men are talking loudly", "Rain"],
    "b.toks": ["The cat is sleeping", "Men talk", "It rains"],
    "a.parents": ["2 3 0", "2 4 4 0 4", "0"],
    "b.parents": ["2 4 4 0", "2 0", "2 0"],
    "a.rels": ["det nsubj root", "num nsubj aux root advmod", "root"],
    "b.rels": ["det nsubj aux root", "nsubj root", "nsubj root"],
    "sim.txt": ["4.6", "3", "1.0"],
    "id.txt": ["11", "12", "13"],
}
TSV_HEADER = "pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment"


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread


def _write(directory: Path, files=None, **changes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    content = dict(FILES if files is None else files)
    content.update(changes)
    for name, lines in content.items():
        if lines is not None:
            (directory / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory


# --------------------------------------------------------------------------- pre-parsed
def test_read_sick_small_directory(tmp_path):
    pairs = read_sick(_write(tmp_path / "split"))
    assert len(pairs) == 3 and all(isinstance(p, RelatednessPair) for p in pairs)
    first = pairs[0]
    assert first.left.tokens == ["A", "cat", "sleeps"] and first.left.parent == [1, 2, -1]
    assert first.right.parent == [1, 3, 3, -1]
    assert first.left.deprels == ["det", "nsubj", "root"]
    assert [p.score for p in pairs] == [4.6, 3.0, 1.0]
    assert [p.pair_id for p in pairs] == ["11", "12", "13"]
    assert pairs[2].left.tokens == ["Rain"] and pairs[2].left.parent == [-1]


def test_optional_files(tmp_path):
    pairs = read_sick(_write(tmp_path / "bare", **{"a.rels": None, "b.rels": None,
                                                   "id.txt": None}))
    assert [p.pair_id for p in pairs] == ["1", "2", "3"]
    assert pairs[0].left.deprels is None


def test_crlf_and_missing_final_newline(tmp_path):
    directory = _write(tmp_path / "crlf")
    for name in FILES:
        path = directory / name
        path.write_bytes(path.read_bytes().rstrip(b"\n").replace(b"\n", b"\r\n"))
    assert [p.left.tokens for p in read_sick(directory)] == \
        [p.left.tokens for p in read_sick(_write(tmp_path / "lf"))]


@pytest.mark.parametrize("changes, error, message", [
    ({"sim.txt": None}, FileNotFoundError, "missing sim.txt.*read_sick_tsv"),
    ({"b.rels": None}, FileNotFoundError, "has a.rels but not b.rels"),
    ({"b.toks": FILES["b.toks"][:2]}, ValueError, "different numbers of lines.*b.toks 2"),
    ({"a.parents": ["2 3 0", "2 4 4 0", "0"]}, ValueError,
     r"a.parents:2: 4 heads for 5 tokens"),
    ({"b.parents": ["2 4 4 0", "2 0", "2 x"]}, ValueError, r"b.parents:3: expected integers"),
    ({"a.parents": ["2 3 0", "2 4 4 0 9", "0"]}, ValueError,
     r"a.parents:2: word 5 has head 9, out of range"),
    ({"a.parents": ["0 3 0", "2 4 4 0 4", "0"]}, ValueError, r"a.parents:1: 2 roots"),
    ({"b.parents": ["2 3 2 0", "2 0", "2 0"]}, ValueError, r"b.parents:1: cycle: words 2 -> 3"),
    ({"sim.txt": ["4.6", "5.5", "1"]}, ValueError, r"sim.txt:2: score 5.5 is outside 1..5"),
    ({"sim.txt": ["4.6", "high", "1"]}, ValueError, r"sim.txt:2: score 'high' is not a number"),
    ({"a.toks": ["A cat sleeps", "Two  men are talking", "Rain"]}, ValueError,
     r"a.toks:2: empty token"),
    ({"a.rels": ["det nsubj", "num nsubj aux root advmod", "root"]}, ValueError,
     r"a.rels:1: 2 relations for 3 tokens"),
])
def test_read_sick_errors_name_file_and_line(tmp_path, changes, error, message):
    with pytest.raises(error, match=message):
        read_sick(_write(tmp_path / "split", **changes))


def test_read_sick_needs_a_directory(tmp_path):
    (tmp_path / "SICK_train.txt").write_text(TSV_HEADER + "\n", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="has no parses: read it with read_sick_tsv"):
        read_sick(tmp_path / "SICK_train.txt")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        read_sick(tmp_path / "nothing")


def test_read_sick_splits(tmp_path):
    for split in ("train", "dev", "test"):
        _write(tmp_path / split)
    splits = read_sick_splits(tmp_path)
    assert sorted(splits) == ["dev", "test", "train"] and len(splits["dev"]) == 3


# ------------------------------------------------------------------------ tab-separated
def test_read_sick_tsv(tmp_path):
    path = tmp_path / "SICK_x.txt"
    path.write_bytes((TSV_HEADER + "\r\n1\tA cat sleeps\tThe cat's asleep\t4.5\tENTAILMENT\r\n"
                      "7\tRain\tSun\t1\tCONTRADICTION\r\n").encode("utf-8"))
    records = read_sick_tsv(path)
    assert records == [SICKRecord("1", "A cat sleeps", "The cat's asleep", 4.5, "ENTAILMENT"),
                       SICKRecord("7", "Rain", "Sun", 1.0, "CONTRADICTION")]
    assert records[0].tokens_b == ["The", "cat's", "asleep"]


@pytest.mark.parametrize("body, message", [
    ("pair\tA\tB\n", ":1: expected the header"),
    (TSV_HEADER + "\n1\tA\tB\t4\n", ":2: 4 tab-separated columns; expected 5"),
    (TSV_HEADER + "\n1\tA\tB\t4\tMAYBE\n", ":2: entailment_judgment 'MAYBE'"),
    (TSV_HEADER + "\n1\tA\tB\t0.5\tNEUTRAL\n", ":2: score 0.5 is outside"),
    (TSV_HEADER + "\n1\tA\tB\tnan\tNEUTRAL\n", ":2: score nan is outside"),
    (TSV_HEADER + "\n1\t \tB\t3\tNEUTRAL\n", ":2: sentence_A is empty"),
    ("", ":1: expected the header.*an empty file"),
])
def test_read_sick_tsv_errors(tmp_path, body, message):
    path = tmp_path / "bad.txt"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        read_sick_tsv(path)


@pytest.mark.skipif(not REAL_SICK.is_dir(), reason="../shared/data/sick is absent (the real "
                                                   "SICK is read by path, not bundled)")
def test_real_sick_counts_and_agreement():
    splits = read_sick_splits(REAL_SICK)
    assert {split: len(pairs) for split, pairs in splits.items()} == \
        {"train": 4500, "dev": 500, "test": 4927}
    files = {"train": "SICK_train.txt", "dev": "SICK_trial.txt",
             "test": "SICK_test_annotated.txt"}
    for split, name in files.items():
        records = read_sick_tsv(REAL_SICK / name)
        assert [r.pair_id for r in records] == [p.pair_id for p in splits[split]]
        assert [r.score for r in records] == [p.score for p in splits[split]]
    entailment = [r.entailment for r in read_sick_tsv(REAL_SICK / "SICK_train.txt")]
    assert (entailment.count("NEUTRAL"), entailment.count("ENTAILMENT"),
            entailment.count("CONTRADICTION")) == (2536, 1299, 665)


# ----------------------------------------------------------------------------- collate
def test_collate_pairs_layout(tmp_path):
    pairs = read_sick(_write(tmp_path / "split"))
    vocab = Vocab.build((t for p in pairs for t in (p.left.tokens, p.right.tokens)), lower=True)
    inputs = collate_pairs(pairs, vocab)
    trees = [p.left for p in pairs] + [p.right for p in pairs]
    assert inputs.num_pairs == 3 and inputs.batch.num_trees == 6
    assert inputs.batch.local_parents() == [t.parent for t in trees]
    assert inputs.token_ids.tolist() == [i for t in trees for i in vocab.encode(t.tokens)]
    assert inputs.lengths.tolist() == [len(t.tokens) for t in trees]
    assert inputs.sequence_ids[1].tolist() == vocab.encode(trees[1].tokens)
    assert inputs.sequence_ids[2].tolist() == vocab.encode(["Rain"]) + [0, 0, 0, 0]
    assert inputs.scores.tolist() == pytest.approx([4.6, 3.0, 1.0])
    with pytest.raises(TypeError, match="got one pair"):
        collate_pairs(pairs[0], vocab)
    with pytest.raises(ValueError, match="at least one pair"):
        collate_pairs([], vocab)
    with pytest.raises(TypeError, match="SICKRecord has no trees"):
        collate_pairs([SICKRecord("1", "a", "b", 3.0, "NEUTRAL")], vocab)


# ----------------------------------------------------------------------------- targets
def test_target_distribution_examples():
    target = target_distribution(torch.tensor([3.6, 1.0, 5.0, 2.0, 4.25]))
    expected = torch.tensor([[0, 0, 0.4, 0.6, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 1],
                             [0, 1, 0, 0, 0], [0, 0, 0, 0.75, 0.25]])
    torch.testing.assert_close(target, expected)
    with pytest.raises(ValueError, match=r"must lie in \[1, 5\]"):
        target_distribution(torch.tensor([0.5]))
    with pytest.raises(ValueError, match=r"must lie in \[1, 5\]"):
        target_distribution(torch.tensor([float("nan")]))
    with pytest.raises(ValueError, match="Expected scores to be 1D"):
        target_distribution(torch.ones(2, 2))


@settings(max_examples=50, deadline=None)
@given(scores=st.lists(st.floats(1.0, 5.0), min_size=1, max_size=20))
def test_target_expectation_is_the_score(scores):
    """r^T p = y, p sums to 1 and has at most two non-zero neighbouring entries."""
    y = torch.tensor(scores, dtype=torch.float64)
    target = target_distribution(y)
    torch.testing.assert_close(target.sum(dim=1), torch.ones_like(y))
    torch.testing.assert_close(expected_score(target.log()), y)
    assert (target >= 0).all()
    for row in target:
        nonzero = torch.nonzero(row).flatten().tolist()
        assert len(nonzero) <= 2 and (len(nonzero) < 2 or nonzero[1] == nonzero[0] + 1)


def test_loss_is_the_mean_kl_divergence():
    torch.manual_seed(0)
    log_probs = torch.randn(4, 5, dtype=torch.float64).log_softmax(dim=1)
    scores = torch.tensor([1.0, 2.5, 4.9, 5.0], dtype=torch.float64)
    target = target_distribution(scores).numpy()
    q = log_probs.exp().numpy()
    expected = sum(p * np.log(p / qi) for row, qrow in zip(target, q)
                   for p, qi in zip(row, qrow) if p > 0) / 4
    assert float(relatedness_loss(log_probs, scores)) == pytest.approx(expected, rel=1e-12)
    perfect = torch.from_numpy(target).clamp_min(1e-300).log()
    assert float(relatedness_loss(perfect, scores)) == pytest.approx(0.0, abs=1e-12)


# ----------------------------------------------------------------------------- metrics
def _plain_pearson(x, y):
    """The textbook formula, in plain Python."""
    n = len(x)
    mean_x, mean_y = sum(x) / n, sum(y) / n
    s_xy = sum((a - mean_x) * (b - mean_y) for a, b in zip(x, y))
    s_xx = sum((a - mean_x) ** 2 for a in x)
    s_yy = sum((b - mean_y) ** 2 for b in y)
    return s_xy / math.sqrt(s_xx * s_yy)


def _plain_ranks(values):
    """1-based ranks, ties sharing their average: (number below) + (number equal + 1) / 2."""
    return [sum(v < value for v in values) + (sum(v == value for v in values) + 1) / 2
            for value in values]


def test_metrics_on_hand_computed_examples():
    # x - 2.5 = [-1.5, -.5, .5, 1.5], y - 5 = [-3, -1, 0, 4]: sums 11, 5, 26
    assert pearson([1, 2, 3, 4], [2, 4, 5, 9]) == pytest.approx(11 / math.sqrt(5 * 26), abs=1e-12)
    # ranks [1, 2.5, 2.5, 4] and [1, 3, 2, 4]: centred sums 4.5, 4.5, 5
    assert spearman([1, 2, 2, 3], [10, 30, 20, 40]) == pytest.approx(3 / math.sqrt(10), abs=1e-12)
    assert spearman([1, 2, 3, 4], [1, 8, 27, 64]) == pytest.approx(1.0)
    assert pearson([1, 2, 3, 4], [1, 8, 27, 64]) < 0.99
    assert mse([1, 2, 3], [1, 4, 0]) == pytest.approx(13 / 3)
    assert mse(torch.tensor([1.5, 2.5], dtype=torch.float32), [1, 3]) == pytest.approx(0.25)


def test_metrics_of_a_constant_side_are_nan_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy's ConstantInputWarning would fail here
        for metric in (pearson, spearman):
            assert math.isnan(metric([3.0, 3.0, 3.0], [1, 2, 3]))
            assert math.isnan(metric(torch.tensor([1.0, 2.0, 4.0]), [2, 2, 2]))
    assert math.isnan(pearson([1, 2, float("nan")], [1, 2, 3]))
    assert mse([3.0, 3.0], [1, 5]) == 4.0


@settings(max_examples=40, deadline=None)
@given(data=st.lists(st.tuples(st.integers(1, 6), st.floats(-3, 3, width=32)), min_size=3,
                     max_size=40))
def test_metrics_agree_with_scipy(data):
    stats = pytest.importorskip("scipy.stats", reason="scipy is not installed")
    x = np.array([a for a, _ in data], dtype=np.float64)  # integer values: many ties
    y = np.array([b for _, b in data], dtype=np.float64)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        assert np.isnan(pearson(x, y)) and np.isnan(spearman(x, y))
        return
    assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-9)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-9)
    assert pearson(x, y) == pytest.approx(_plain_pearson(list(x), list(y)), abs=1e-9)
    assert spearman(x, y) == pytest.approx(
        _plain_pearson(_plain_ranks(list(x)), _plain_ranks(list(y))), abs=1e-9)
    assert mse(x, y) == pytest.approx(np.mean((x - y) ** 2), rel=1e-12)
    assert pearson(torch.tensor(x), list(y)) == pytest.approx(pearson(x, y))


def test_metric_input_errors():
    with pytest.raises(ValueError, match="same length"):
        pearson([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="at least 2 values"):
        spearman([1], [1])
    with pytest.raises(ValueError, match="same length"):
        mse(np.ones((2, 2)), np.ones((2, 2)))
    assert spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)


# ------------------------------------------------------------------------------- model
@pytest.fixture(scope="module")
def sample():
    splits = read_sick_splits(SAMPLE)
    vocab = Vocab.build((t for p in splits["train"] for t in (p.left.tokens, p.right.tokens)),
                        lower=True)
    return splits, vocab


def _swap(pairs):
    return [RelatednessPair(p.right, p.left, p.score, p.pair_id) for p in pairs]


@pytest.mark.parametrize("encoder", ["treelstm", "lstm"])
def test_model_shapes_symmetry_and_batching(sample, encoder):
    splits, vocab = sample
    pairs = splits["dev"][:12]
    torch.manual_seed(0)
    model = RelatednessModel(len(vocab), embed_dim=10, hidden_size=8, similarity_size=6,
                             encoder=encoder).double().eval()
    with torch.no_grad():
        log_probs = model(collate_pairs(pairs, vocab))
        assert log_probs.shape == (12, 5)
        torch.testing.assert_close(log_probs.exp().sum(dim=1), torch.ones(12, dtype=torch.float64))
        # h_x and h_+ are symmetric: the order of the two sentences does not matter
        torch.testing.assert_close(model(collate_pairs(_swap(pairs), vocab)), log_probs)
        for k in (0, 5, 11):  # batched == one pair at a time
            torch.testing.assert_close(model(collate_pairs([pairs[k]], vocab))[0], log_probs[k])
    scores = expected_score(log_probs)
    assert ((scores >= 1) & (scores <= 5)).all()


def test_tree_encoder_on_chains_is_the_lstm_encoder(sample):
    """Independent check of the tree path: on chain trees (word i's head is word i+1) a Child-Sum
    Tree-LSTM is nn.LSTM, so the two models with the same weights give the same output."""
    splits, vocab = sample
    chains = []
    for pair in splits["dev"][:6]:
        trees = []
        for tree in (pair.left, pair.right):
            n = len(tree.tokens)
            trees.append(type(tree)(tree.tokens, list(range(1, n)) + [-1]))
        chains.append(RelatednessPair(trees[0], trees[1], pair.score, pair.pair_id))
    torch.manual_seed(0)
    tree_model = RelatednessModel(len(vocab), 10, 8, 6, encoder="treelstm").double().eval()
    lstm_model = RelatednessModel(len(vocab), 10, 8, 6, encoder="lstm").double().eval()
    state = {key.replace("tree_lstm.", "lstm."): value
             for key, value in tree_model.state_dict().items()}
    lstm_model.load_state_dict(state)
    inputs = collate_pairs(chains, vocab)
    with torch.no_grad():
        torch.testing.assert_close(tree_model(inputs), lstm_model(inputs))


def test_model_rejects_bad_arguments(sample):
    with pytest.raises(ValueError, match="encoder must be one of"):
        RelatednessModel(10, encoder="gru")
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        RelatednessModel(10, hidden_size=0)
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2"):
        RelatednessModel(10, num_classes=1)
    with pytest.raises(TypeError, match="expected PairInputs"):
        RelatednessModel(10)(torch.zeros(3))
    model = RelatednessModel(10, 4, 3, 2)
    assert RelatednessModel(**model.config).config == model.config
    assert "encoder='treelstm'" in repr(model)


@pytest.mark.parametrize("encoder", ["treelstm", "lstm"])
def test_training_learns_and_is_deterministic(sample, encoder):
    splits, vocab = sample
    train_pairs = splits["train"]

    def run():
        torch.manual_seed(0)
        model = RelatednessModel(len(vocab), embed_dim=24, hidden_size=24, similarity_size=16,
                                 encoder=encoder)
        before = evaluate_relatedness(model, splits["dev"], vocab)
        result = train_relatedness(model, train_pairs, splits["dev"], vocab, epochs=4,
                                   batch_size=25, seed=0)
        return model, before, result

    model, before, result = run()
    assert [r["epoch"] for r in result["history"]] == [1, 2, 3, 4]
    assert result["history"][-1]["loss"] < result["history"][0]["loss"]
    assert result["best_dev"]["pearson"] == max(r["dev"]["pearson"] for r in result["history"])
    # the model holds the best epoch's weights
    assert evaluate_relatedness(model, splits["dev"], vocab)["pearson"] == \
        pytest.approx(result["best_dev"]["pearson"], abs=1e-6)
    assert result["best_dev"]["pearson"] > max(0.3, before["pearson"] + 0.2)
    _, _, again = run()
    assert [r["loss"] for r in again["history"]] == [r["loss"] for r in result["history"]]
    assert predict_scores(model, splits["dev"][:3], vocab).shape == (3,)


def test_frozen_embeddings_do_not_change(sample):
    splits, vocab = sample
    torch.manual_seed(0)
    model = RelatednessModel(len(vocab), 8, 8, 4)
    before = model.embedding.weight.detach().clone()
    train_relatedness(model, splits["train"][:50], splits["dev"][:20], vocab, epochs=1,
                      freeze_embeddings=True)
    torch.testing.assert_close(model.embedding.weight, before, rtol=0, atol=0)
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        train_relatedness(model, splits["train"][:5], splits["dev"][:5], vocab, epochs=0)


def test_a_non_finite_loss_stops_sick_training_naming_the_batch(sample, monkeypatch):
    """The sentiment loop's guarded update: NaN never reaches the weights."""
    import treelstm.sick.train as sick_train

    splits, vocab = sample
    torch.manual_seed(0)
    model = RelatednessModel(len(vocab), 8, 8, 4)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    monkeypatch.setattr(sick_train, "relatedness_loss",
                        lambda output, scores: output.sum() * float("nan"))
    with pytest.raises(FloatingPointError, match=r"epoch 1, batch 1 of 2 \(training pairs "
                                                 r"\[.*\]\): the loss is nan"):
        train_relatedness(model, splits["train"][:40], splits["dev"][:20], vocab, epochs=1)
    assert all(torch.equal(p, before[name]) for name, p in model.named_parameters())


# ---------------------------------------------------------------------- sample + script
def test_bundled_sample_is_reproducible(tmp_path):
    """treelstm/datasets/sick_sample is exactly what data/generate_sick_sample.py writes with seed 0."""
    done = subprocess.run([sys.executable, str(ROOT / "data" / "generate_sick_sample.py"),
                           "--seed", "0", "--out", str(tmp_path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    for split in ("train", "dev", "test"):
        for name in ("a.toks", "b.toks", "a.parents", "b.parents", "a.rels", "b.rels", "sim.txt",
                     "id.txt"):
            assert (tmp_path / split / name).read_bytes() == \
                (SAMPLE / split / name).read_bytes(), f"{split}/{name}"
    splits = read_sick_splits(SAMPLE)
    assert {s: len(p) for s, p in splits.items()} == {"train": 400, "dev": 100, "test": 200}
    scores = [p.score for p in splits["train"]]
    assert min(scores) < 2 and max(scores) == 5.0


def _run_script(*args, timeout=180):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(ROOT / "examples" / "train_sick.py"), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


def test_train_sick_help():
    done = _run_script("--help")
    assert done.returncode == 0, done.stderr
    for option in ("--data", "--epochs", "--seed", "--out", "--models", "--embeddings"):
        assert option in done.stdout
    assert "no parses" in done.stdout


def test_train_sick_smoke(tmp_path):
    out = tmp_path / "run"
    done = _run_script("--epochs", "1", "--embed-dim", "12", "--hidden-size", "10",
                       "--similarity-size", "6", "--max-train", "60", "--out", str(out),
                       "--quiet")
    assert done.returncode == 0, done.stderr
    assert "| Dependency Tree-LSTM (Child-Sum) |" in done.stdout and "| LSTM |" in done.stdout
    results = json.loads((out / "results.json").read_text())["results"]
    assert sorted(results) == ["lstm", "treelstm"]
    for result in results.values():
        assert set(result["test"]) >= {"pearson", "spearman", "mse"}
        assert result["test"]["pairs"] == 200
    bad = _run_script("--data", str(tmp_path / "nowhere"))
    assert bad.returncode == 2 and "not a directory" in bad.stderr
    assert "Traceback" not in bad.stderr


def _script_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_sick", ROOT / "examples" / "train_sick.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_sick_with_frozen_word_vectors(tmp_path, capsys):
    vectors = tmp_path / "vectors.txt"
    words = ["man", "woman", "dog", "cat", "is", "a", "the"]
    vectors.write_text("".join(f"{w} " + " ".join(f"{0.01 * (i + k):.2f}" for k in range(8))
                               + "\n" for i, w in enumerate(words)), encoding="utf-8")
    script = _script_module()
    status = script.main(["--epochs", "1", "--embed-dim", "8", "--hidden-size", "6",
                          "--similarity-size", "4", "--max-train", "30", "--models", "treelstm",
                          "--embeddings", str(vectors), "--freeze-embeddings", "--quiet",
                          "--out", str(tmp_path / "run")])
    assert status == 0
    assert "| Dependency Tree-LSTM (Child-Sum) |" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--embeddings", str(tmp_path / "missing.txt"), "--embed-dim", "8",
                     "--epochs", "1", "--quiet"])
    assert exit_info.value.code == 2 and "missing.txt" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main(["--models", "gru"])
    assert "unknown ['gru']" in capsys.readouterr().err


def test_train_sick_refuses_an_out_dir_with_results(tmp_path, capsys):
    script = _script_module()
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.json").write_text("{\"earlier\": true}\n")
    args = ["--epochs", "1", "--embed-dim", "8", "--hidden-size", "6", "--similarity-size", "4",
            "--max-train", "20", "--models", "lstm", "--quiet", "--out", str(out)]
    with pytest.raises(SystemExit) as exit_info:
        script.main(args)
    assert exit_info.value.code == 2
    assert "already holds a run (results.json)" in capsys.readouterr().err
    assert (out / "results.json").read_text() == "{\"earlier\": true}\n"
    assert script.main(args + ["--overwrite"]) == 0
    assert "results" in json.loads((out / "results.json").read_text())


def test_train_sick_refuses_an_out_dir_with_a_checkpoint(tmp_path, capsys):
    (tmp_path / "run" / "lstm").mkdir(parents=True)
    (tmp_path / "run" / "lstm" / "best.pt").write_bytes(b"earlier")
    with pytest.raises(SystemExit) as exit_info:
        sick_train_command(["--epochs", "1", "--quiet", "--out", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    assert "already holds a run (lstm/best.pt)" in capsys.readouterr().err
    assert (tmp_path / "run" / "lstm" / "best.pt").read_bytes() == b"earlier"


# --------------------------------------------------------------------------- checkpoints
def test_sick_model_module_is_the_sick_package():
    import treelstm.sick as package
    import treelstm.sick_model as compatibility

    for name in compatibility.__all__:
        assert getattr(compatibility, name) is getattr(package, name)


@pytest.mark.parametrize("encoder", ["treelstm", "lstm"])
def test_checkpoint_round_trip_gives_identical_predictions(sample, tmp_path, encoder):
    splits, vocab = sample
    torch.manual_seed(0)
    model = RelatednessModel(len(vocab), 12, 10, 6, encoder=encoder)
    train_relatedness(model, splits["train"][:50], splits["dev"][:20], vocab, epochs=1)
    path = tmp_path / "best.pt"
    save_relatedness_checkpoint(path, model, vocab, {"data": "somewhere"}, epoch=1,
                                extra={"note": "x"})
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]  # no temporary file left
    loaded, loaded_vocab, config = load_relatedness_model(path)
    assert not loaded.training and loaded.config == model.config
    assert loaded_vocab.itos == vocab.itos and loaded_vocab.lower
    assert config == {"data": "somewhere"}
    assert torch.equal(predict_scores(loaded, splits["test"], loaded_vocab),
                       predict_scores(model, splits["test"], vocab))


def test_checkpoints_of_the_two_tasks_are_told_apart(sample, tmp_path):
    from treelstm import TreeLSTMClassifier
    from treelstm.training import load_checkpoint, save_checkpoint

    splits, vocab = sample
    sick_path, sst_path = tmp_path / "sick.pt", tmp_path / "sst.pt"
    save_relatedness_checkpoint(sick_path, RelatednessModel(len(vocab), 4, 3, 2), vocab)
    save_checkpoint(sst_path, TreeLSTMClassifier(len(vocab), 4, 3, 5), vocab)
    with pytest.raises(ValueError, match="unknown model class 'TreeLSTMClassifier'; expected one "
                                         r"of \['RelatednessModel'\]"):
        load_relatedness_model(sst_path)
    with pytest.raises(ValueError, match="unknown model class 'RelatednessModel'"):
        load_checkpoint(sick_path)
    with pytest.raises(TypeError, match="model must be one of"):
        save_checkpoint(tmp_path / "x.pt", RelatednessModel(len(vocab), 4, 3, 2), vocab)
    damaged = bytearray(sick_path.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    (tmp_path / "damaged.pt").write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match="damaged.pt"):
        load_relatedness_model(tmp_path / "damaged.pt")


# ------------------------------------------------------------- sick-train / sick-eval CLI
SMALL = ["--epochs", "2", "--embed-dim", "12", "--hidden-size", "10", "--similarity-size", "6",
         "--max-train", "80", "--quiet"]


@pytest.fixture(scope="module")
def sick_run(tmp_path_factory):
    """One small sick-train run of both encoders with --out: (out, results.json)."""
    out = tmp_path_factory.mktemp("sick") / "run"
    assert sick_train_command(SMALL + ["--out", str(out)]) == 0
    return out, json.loads((out / "results.json").read_text())


def test_sick_train_writes_the_best_epoch_checkpoints(sick_run, capsys):
    out, report = sick_run
    assert sorted(report["results"]) == ["lstm", "treelstm"]
    assert report["settings"]["epochs"] == 2 and report["settings"]["max_train"] == 80
    for encoder, result in report["results"].items():
        model, vocab, config = load_relatedness_model(out / encoder / "best.pt")
        assert model.encoder == encoder and config == report["settings"]
        # the weights are the best dev epoch's: they score what training recorded for it
        assert sick_eval_command([str(out / encoder / "best.pt"), "--split", "dev", "--json",
                                  "--quiet"]) == 0
        dev = json.loads(capsys.readouterr().out)
        assert dev["pearson"] == pytest.approx(result["best_dev"]["pearson"], abs=1e-6)
        assert dev["data"] == str(SAMPLE) and dev["pairs"] == 100


def test_sick_eval_on_the_sample(sick_run, capsys):
    out, report = sick_run
    test = report["results"]["treelstm"]["test"]
    assert main(["sick-eval", str(out / "treelstm" / "best.pt"), "--data", str(SAMPLE),
                 "--quiet"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{out / 'treelstm' / 'best.pt'} on {SAMPLE / 'test'} (200 pairs): ")
    assert f"Pearson's r {test['pearson']:.4f}, Spearman's rho {test['spearman']:.4f}, " \
           f"MSE {test['mse']:.4f}" in line


def test_sick_eval_prints_nan_as_null(sample, tmp_path, capsys):
    """A model that predicts one score for every pair has no correlation."""
    _, vocab = sample
    model = RelatednessModel(len(vocab), 4, 3, 2)
    with torch.no_grad():
        model.output.weight.zero_()
    save_relatedness_checkpoint(tmp_path / "flat.pt", model, vocab, {"data": str(SAMPLE)})
    assert sick_eval_command([str(tmp_path / "flat.pt"), "--split", "dev", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["pearson"] is None and metrics["spearman"] is None and metrics["mse"] > 0


@pytest.mark.parametrize("args, message", [
    (["missing.pt"], "No such file or directory: 'missing.pt'"),
    (["{sst}"], "unknown model class 'TreeLSTMClassifier'"),
    (["{garbage}"], "a text file, not a treelstm checkpoint"),
    (["{sick}", "--data", "{nowhere}"], "not a directory"),
    (["{sick}", "--batch-size", "0"], "argument --batch-size: expected a positive integer, got 0"),
    (["{sick}", "--split", "trial"], "argument --split: invalid choice: 'trial'"),
    (["{sick}", "--device", "gpu"], "argument --device: device: "),
])
def test_sick_eval_refuses_bad_input_in_one_line(sample, tmp_path, capsys, args, message):
    from treelstm import TreeLSTMClassifier
    from treelstm.training import save_checkpoint

    _, vocab = sample
    names = {"sst": tmp_path / "sst.pt", "garbage": tmp_path / "garbage.pt",
             "sick": tmp_path / "sick.pt", "nowhere": tmp_path / "nowhere"}
    save_checkpoint(names["sst"], TreeLSTMClassifier(len(vocab), 4, 3, 5), vocab)
    names["garbage"].write_bytes(b"not a checkpoint at all")
    save_relatedness_checkpoint(names["sick"], RelatednessModel(len(vocab), 4, 3, 2), vocab)
    with pytest.raises(SystemExit) as exit_info:
        main(["sick-eval"] + [arg.format(**names) for arg in args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()[-1]) > 0
    assert "Traceback" not in err and err.count("error:") == 1


def test_sick_eval_bad_checkpoint_from_a_shell(tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "treelstm", "sick-eval",
                           str(tmp_path / "empty.pt")], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=env)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"python -m treelstm sick-eval: error: {tmp_path / 'empty.pt'}: an empty file (0 bytes), "
        "not a treelstm checkpoint (the zip archive that train writes as best.pt / "
        "checkpoint.pt)"]


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "argument --epochs: expected a positive integer, got 0"),
    (["--seed", "-1"], "argument --seed: expected an integer in [0, 4294967295], got -1"),
    (["--lr", "nan"], "argument --lr: expected a positive number, got nan"),
    (["--models", "lstm,gru"], "argument --models: unknown ['gru']; choose from treelstm, lstm"),
    (["--max-train", "x"], "argument --max-train: expected a positive integer, got 'x'"),
])
def test_sick_train_options_are_checked_by_name(capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["sick-train"] + args)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("command", ["sick-train", "sick-eval"])
def test_sick_command_help_is_the_commands_own(command, capsys):
    from treelstm.__main__ import COMMANDS

    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    through_main = capsys.readouterr().out
    with pytest.raises(SystemExit):
        COMMANDS[command][0](f"python -m treelstm {command}").parse_args(["--help"])
    assert through_main == capsys.readouterr().out
    options = {"sick-train": ("--data", "--models", "--epochs", "--out", "--overwrite", "best.pt",
                              "--device", "--quiet", "no parses"),
               "sick-eval": ("--data", "--split", "--json", "--device", "Pearson's r",
                             "Spearman's rho", "Exit status")}[command]
    for option in options:
        assert option in through_main


def test_every_relatedness_setting_is_a_sick_train_option():
    import dataclasses

    from treelstm.__main__ import sick_train_parser

    options = {action.dest for action in sick_train_parser("x")._actions}
    assert {field.name for field in dataclasses.fields(RelatednessConfig)} <= options
    defaults = sick_train_parser("x").parse_args([])
    assert RelatednessConfig(**{field.name: getattr(defaults, field.name)
                                for field in dataclasses.fields(RelatednessConfig)}) == \
        RelatednessConfig()
    with pytest.raises(ValueError, match=r"models: unknown \['gru'\]"):
        RelatednessConfig(models=("gru",))
    with pytest.raises(ValueError, match="seed must be an integer"):
        RelatednessConfig(seed=-1)
