"""treelstm.parse (the span parser, CKY, bracket scores, baselines, training and its files) and
the ``parser train|eval`` and ``parse`` commands. Each behaviour against something independent:
CKY against brute force over every binary tree, trees against ``parse_ptb_line``, scores against
hand-counted brackets, a resumed run against an uninterrupted one."""
import argparse
import io
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from treelstm.cli import parse as cli_parse
from treelstm.data import IGNORE_INDEX, SentimentTree, Vocab, parse_ptb_line, to_ptb_string
from treelstm.parse import (ParserSettings, SpanParser, balanced, bracket_f1, cky, load_parser,
                            read_parser, right_branching, train_parser, tree_spans)

from conftest import DEVICES

ROOT = Path(__file__).resolve().parent.parent
HEAVY = {"torch", "numpy", "nltk"}
TINY = {"embed_dim": 8, "hidden_size": 8, "mlp_size": 8, "batch_size": 4}
# Four trees of different shapes; each is repeated in the tiny treebank.
TREEBANK = ["(3 (2 (2 the) (2 film)) (3 (2 is) (3 good)))",
            "(1 (2 it) (1 (2 was) (1 (2 not) (3 (2 very) (3 good)))))",
            "(2 (2 (2 (2 a) (2 long)) (2 story)) (2 .))",
            "(2 (2 (2 we) (2 (2 saw) (2 it))) (2 (2 and) (2 (2 left) (2 early))))"]


def ptb(line: str) -> SentimentTree:
    return parse_ptb_line(line)


def with_label_2(tree: SentimentTree) -> SentimentTree:
    return SentimentTree(tree.tokens, tree.parent, [2] * len(tree.parent))


def brute_force_best(scores: torch.Tensor, length: int) -> float:
    """The best total span score over every binary tree of ``length`` words (plain recursion)."""
    def trees(start, end):
        if end - start == 1:
            yield [(start, end)]
            return
        for middle in range(start + 1, end):
            for left, right in itertools.product(trees(start, middle), trees(middle, end)):
                yield left + right + [(start, end)]

    return max(sum(float(scores[i, j]) for i, j in tree) for tree in trees(0, length))


def split_tree_score(scores: torch.Tensor, splits: dict, length: int) -> float:
    spans = list(splits) + [(k, k + 1) for k in range(length)]
    assert len(spans) == 2 * length - 1  # a binary tree: every span of length >= 2 is split
    return sum(float(scores[i, j]) for i, j in spans)


# ------------------------------------------------------------------------------------ CKY
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("length", range(1, 8))
def test_cky_finds_the_best_of_all_binary_trees(length, device):
    generator = torch.Generator().manual_seed(length)
    lengths = torch.tensor([length, max(1, length - 2), length], device=device)
    scores = torch.randn(3, 9, 9, generator=generator, dtype=torch.float64).to(device)
    result = cky(scores, lengths)
    for row, n in enumerate(lengths.tolist()):
        best = brute_force_best(scores[row].cpu(), n)
        assert float(result.score[row]) == pytest.approx(best, abs=1e-9)
        assert split_tree_score(scores[row].cpu(), result.splits[row], n) == \
            pytest.approx(best, abs=1e-9)


def test_cky_of_a_batch_is_cky_of_each_sentence():
    generator = torch.Generator().manual_seed(0)
    lengths = torch.tensor([5, 1, 12, 7])
    scores = torch.randn(4, 13, 13, generator=generator)
    batched = cky(scores, lengths)
    for row, n in enumerate(lengths.tolist()):
        alone = cky(scores[row:row + 1, :n + 1, :n + 1], lengths[row:row + 1])
        assert alone.splits[0] == batched.splits[row]
        assert float(alone.score[0]) == pytest.approx(float(batched.score[row]))


def test_cky_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"cky: Expected scores of shape \[B, F, F\]"):
        cky(torch.zeros(2, 3, 4), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"cky: lengths must be in \[1, 3\]"):
        cky(torch.zeros(2, 4, 4), torch.tensor([1, 4]))


# --------------------------------------------------------------------------- trees, baselines
def test_baseline_trees():
    words = "a b c d e".split()
    assert to_ptb_string(with_label_2(right_branching(words))) == \
        "(2 (2 a) (2 (2 b) (2 (2 c) (2 (2 d) (2 e)))))"
    assert to_ptb_string(with_label_2(balanced(words))) == \
        "(2 (2 (2 a) (2 b)) (2 (2 c) (2 (2 d) (2 e))))"
    assert right_branching(["x"]).parent == [-1]
    with pytest.raises(ValueError, match="sentence 0 is empty"):
        balanced([])


def check_binary_tree_in_reader_numbering(tree: SentimentTree, words: list) -> None:
    """A valid binary SentimentTree over ``words`` whose nodes are numbered as parse_ptb_line
    numbers them (so that writing and reading it back gives the same lists)."""
    tree.validate()
    assert tree.tokens == words and set(tree.labels) == {IGNORE_INDEX}
    assert len(tree.parent) == 2 * len(words) - 1
    assert all(len(children) in (0, 2) for children in tree.children())
    back = parse_ptb_line(to_ptb_string(with_label_2(tree)))
    assert (back.tokens, back.parent) == (tree.tokens, tree.parent)


def tiny_parser(words, seed=0, **settings) -> SpanParser:
    torch.manual_seed(seed)
    return SpanParser(Vocab.build([words]), **{"embed_dim": 8, "hidden_size": 8, "mlp_size": 8,
                                               **settings})


def test_parsed_trees_are_binary_in_the_readers_numbering():
    words = "one two three four five six seven eight nine".split()
    sentences = [words[:n] for n in range(1, 10)] + [words[::-1], ["unknown", "words"]]
    trees = tiny_parser(words).parse(sentences, batch_size=3)
    for sentence, tree in zip(sentences, trees):
        check_binary_tree_in_reader_numbering(tree, sentence)
    for make in (right_branching, balanced):
        check_binary_tree_in_reader_numbering(make(words), words)


def reference_scores(parser: SpanParser, words: list) -> torch.Tensor:
    """``[n+1, n+1]`` span scores of one sentence, written plainly in float64: nn.LSTM over
    ``[start, E[w_1] .. E[w_n], end]``, ``r(i, j) = [f_j - f_i ; b_{i+1} - b_{j+1}]``, the MLP."""
    parser = parser.double()
    ids = torch.tensor(parser.vocab.encode(words))
    sequence = torch.cat([parser.start[None], parser.embedding(ids), parser.end[None]])
    states = parser.lstm(sequence[None])[0][0]
    forward, backward = states[:, :parser.hidden_size], states[:, parser.hidden_size:]
    n = len(words)
    scores = torch.zeros(n + 1, n + 1, dtype=torch.float64)
    for i in range(n + 1):
        for j in range(i + 1, n + 1):
            span = torch.cat([forward[j] - forward[i], backward[i + 1] - backward[j + 1]])
            scores[i, j] = parser.span_out(torch.relu(parser.span_hidden(span)))[0]
    return scores


def test_span_scores_match_the_textbook_formula():
    words = "a b c d e f g".split()
    parser = tiny_parser(words, num_layers=2).double().eval()
    sentences = [words, words[:1], words[2:5], ["unknown"] + words[:2]]
    with torch.no_grad():
        batched = parser(*parser.encode(sentences))
        for row, sentence in enumerate(sentences):
            n = len(sentence)
            torch.testing.assert_close(batched[row, :n + 1, :n + 1],
                                       reference_scores(parser, sentence))


def test_scores_of_a_sentence_do_not_depend_on_the_batch():
    """Padding and the end sentinel: a sentence scores the same alone and beside longer ones."""
    words = "a b c d e f g".split()
    parser = tiny_parser(words).eval()
    sentences = [words[:3], words, words[2:6]]
    token_ids, lengths = parser.encode(sentences)
    batched = parser(token_ids, lengths)
    for row, sentence in enumerate(sentences):
        alone = parser(*parser.encode([sentence]))[0]
        n = len(sentence)
        torch.testing.assert_close(batched[row, :n + 1, :n + 1], alone)
        assert not batched[row, n + 1:].any() and not batched[row, :, n + 1:].any()
        assert not torch.triu(batched[row]).tril().any()  # i < j only: the diagonal is 0


def test_parser_input_checks():
    parser = tiny_parser(["a"])
    with pytest.raises(ValueError, match="SpanParser: Expected token_ids to be a 2D int64"):
        parser(torch.zeros(3, dtype=torch.long), torch.tensor([1]))
    with pytest.raises(ValueError, match=r"SpanParser: lengths must be in \[1, 2\]"):
        parser(torch.zeros(2, 2, dtype=torch.long), torch.tensor([1, 3]))
    with pytest.raises(ValueError, match="SpanParser.parse: sentence 1 is empty"):
        parser.parse([["a"], []])
    with pytest.raises(TypeError, match="sentence 0 is a str"):
        parser.parse(["a b"])
    with pytest.raises(ValueError, match="SpanParser: embed_dim must be a positive integer"):
        SpanParser(Vocab.build([["a"]]), embed_dim=0)
    assert "mlp_size=8" in repr(parser)


# ------------------------------------------------------------------------------ bracket F1
def test_bracket_f1_against_hand_counted_brackets():
    gold = [ptb("(2 (2 (2 a) (2 b)) (2 (2 c) (2 d)))"),        # brackets (0,2) (2,4)
            ptb("(2 (2 (2 a) (2 b)) (2 c))"),                   # (0,2)
            ptb("(2 (2 a) (2 b) (2 c) (2 d))"),                 # none: a flat node
            ptb("(2 (2 (2 (2 a) (2 b))) (2 c))")]               # (0,2) twice: a unary chain
    predicted = [right_branching(list("abcd")),                # (1,4) (2,4): 1 match
                 ptb("(2 (2 (2 a) (2 b)) (2 c))"),             # (0,2): exact
                 balanced(list("abcd")),                       # (0,2) (2,4): no gold
                 ptb("(2 (2 (2 a) (2 b)) (2 c))")]             # (0,2) once: 1 match, not exact
    scores = bracket_f1(gold, predicted)
    assert (scores["matched_brackets"], scores["gold_brackets"],
            scores["predicted_brackets"]) == (3, 5, 6)
    assert scores["precision"] == pytest.approx(3 / 6)
    assert scores["recall"] == pytest.approx(3 / 5)
    assert scores["f1"] == pytest.approx(2 * (3 / 6) * (3 / 5) / (3 / 6 + 3 / 5))
    assert scores["exact"] == pytest.approx(1 / 4)
    assert bracket_f1(gold[1:2], gold[1:2])["f1"] == 1.0
    assert bracket_f1([ptb("(2 (2 a) (2 b))")], [ptb("(2 (2 a) (2 b))")])["f1"] == 1.0
    with pytest.raises(ValueError, match="2 gold trees but 1 predicted"):
        bracket_f1(gold[:2], predicted[:1])
    with pytest.raises(ValueError, match="tree 0: the predicted tree's words"):
        bracket_f1(gold[:1], [right_branching(list("abce"))])


def test_tree_spans():
    tree = ptb("(2 (2 It) (2 (2 (2 's) (2 good)) (2 .)))")
    assert tree_spans(tree) == [(0, 1), (1, 2), (2, 3), (3, 4), (1, 3), (1, 4), (0, 4)]


# -------------------------------------------------------------------------------- training
def treebank(repeats: int = 6) -> list[SentimentTree]:
    return [ptb(line) for line in TREEBANK] * repeats


def test_parser_learns_to_reproduce_a_tiny_treebank(one_thread):
    trees = treebank()
    result = train_parser(trees, trees[:4], epochs=25, seed=1, dropout=0.0, word_dropout=0.0,
                          lr=0.02, **TINY)
    assert result.best["dev"]["f1"] == 1.0
    parsed = result.parser.parse([tree.tokens for tree in trees[:4]])
    for gold, tree in zip(trees, parsed):
        assert tree.parent == gold.parent
    # The untrained parser does not (the test can fail).
    untrained = tiny_parser(trees[0].tokens, seed=1)
    untrained_trees = untrained.parse([tree.tokens for tree in trees[:4]])
    assert bracket_f1(trees[:4], untrained_trees)["f1"] < 1.0


def weights(parser: SpanParser) -> dict:
    return {name: value.clone() for name, value in parser.state_dict().items()}


def test_resume_gives_the_uninterrupted_result(tmp_path, one_thread):
    trees = treebank(3)
    settings = dict(TINY, dropout=0.2, word_dropout=0.2)  # dropout: the RNG state matters too
    whole = train_parser(trees, trees[:4], tmp_path / "whole", epochs=3, seed=2, **settings)
    train_parser(trees, trees[:4], tmp_path / "split", epochs=2, seed=2, **settings)
    resumed = train_parser(trees, trees[:4], tmp_path / "split", epochs=3, seed=2, resume=True,
                           **settings)
    assert len(resumed.history) == 3
    with pytest.raises(ValueError, match="it has 3 epochs done, more than --epochs 2"):
        train_parser(trees, trees[:4], tmp_path / "split", epochs=2, seed=2, resume=True,
                     **settings)

    def without_times(history):
        return [{**record, "train": {"loss": record["train"]["loss"]},
                 "dev": record["dev"]["f1"]} for record in history]

    assert without_times(resumed.history) == without_times(whole.history)
    for name in ("checkpoint.pt", "parser.pt"):
        first, second = (read_parser(tmp_path / run / name) for run in ("whole", "split"))
        assert first.epoch == second.epoch
        for key, value in weights(first.parser).items():
            assert torch.equal(value, weights(second.parser)[key]), (name, key)


def test_an_out_dir_with_a_run_is_refused_and_resume_checks_the_settings(tmp_path, one_thread):
    trees = treebank(1)
    train_parser(trees, trees, tmp_path, epochs=1, **TINY)
    with pytest.raises(FileExistsError, match="already holds a run"):
        train_parser(trees, trees, tmp_path, epochs=1, **TINY)
    with pytest.raises(ValueError, match=r"checkpoint.pt: cannot resume: the checkpoint has "
                                         r"lr=0.002, this run lr=0.01"):
        train_parser(trees, trees, tmp_path, epochs=2, resume=True, **dict(TINY, lr=0.01))
    with pytest.raises(ValueError, match="cannot resume: the train trees differ"):
        train_parser(trees[:3], trees, tmp_path, epochs=2, resume=True, **TINY)
    result = train_parser(trees, trees, tmp_path, epochs=1, overwrite=True, **TINY)
    assert len(result.history) == 1
    with pytest.raises(TypeError):
        train_parser(trees, trees, None, epochs=1, hidden=3)


def test_files_read_back(tmp_path, one_thread):
    trees = treebank(1)
    result = train_parser(trees, trees, tmp_path, epochs=1, **TINY)
    parser, vocab = load_parser(tmp_path / "parser.pt")
    assert isinstance(parser, SpanParser) and not parser.training
    assert vocab == result.parser.vocab and parser.config == result.parser.config
    loaded = read_parser(tmp_path / "checkpoint.pt")
    assert loaded.settings == ParserSettings(epochs=1, **TINY) and loaded.epoch == 1
    assert json.loads((tmp_path / "metrics.json").read_text())["best"]["epoch"] == 1


def corrupt_files(tmp_path, good: Path) -> dict:
    """name -> a file that is not a readable parser."""
    data = bytearray(good.read_bytes())
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    files = {"truncated": data[:len(data) // 2], "flipped": bytes(flipped),
             "empty": b"", "text": b"(2 (2 a) (2 b))\n"}
    paths = {}
    for name, content in files.items():
        paths[name] = tmp_path / f"{name}.pt"
        paths[name].write_bytes(bytes(content))
    return paths


def test_a_corrupt_or_foreign_file_is_a_value_error_naming_it(tmp_path, one_thread):
    from treelstm.classifier import TreeLSTMClassifier
    from treelstm.training import save_checkpoint

    trees = treebank(1)
    train_parser(trees, trees, tmp_path / "run", epochs=1, **TINY)
    paths = corrupt_files(tmp_path, tmp_path / "run" / "parser.pt")
    vocab = Vocab.build([["a"]])
    paths["classifier"] = tmp_path / "classifier.pt"
    save_checkpoint(paths["classifier"], TreeLSTMClassifier(len(vocab), 4, 4, 5), vocab)
    paths["pickle"] = tmp_path / "pickle.pt"
    torch.save({"format": "treelstm.checkpoint", "x": argparse.Namespace()}, paths["pickle"])
    for name, path in paths.items():
        with pytest.raises(ValueError, match=re.escape(str(path))):
            load_parser(path)
    with pytest.raises(FileNotFoundError):
        load_parser(tmp_path / "missing.pt")


# ------------------------------------------------------------------------------ the commands
def test_cli_defaults_are_the_librarys():
    assert vars(cli_parse.PARSER_DEFAULTS) == ParserSettings().to_dict()


def run_main(argv, monkeypatch, stdin: str = ""):
    """``python -m treelstm ARGV`` with the two commands registered as main.py registers them."""
    from treelstm.cli import main

    monkeypatch.setitem(main.COMMANDS, "parser", cli_parse.parser_command)
    monkeypatch.setitem(main.COMMANDS, "parse", cli_parse.parse_command)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
    try:
        return main.main(argv)
    except SystemExit as exit_info:  # argparse's way out, and fail()'s
        return exit_info.code


@pytest.fixture
def data_dir(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for split, repeats in (("train", 4), ("dev", 1), ("test", 1)):
        (data / f"{split}.txt").write_text("\n".join(TREEBANK * repeats) + "\n")
    return data


def test_commands_end_to_end(tmp_path, data_dir, monkeypatch, capsys, one_thread):
    from treelstm.predict import parse_tree_line

    out = tmp_path / "run"
    argv = ["parser", "train", "--data", str(data_dir), "--out", str(out), "--embed-dim", "8",
            "--hidden-size", "8", "--mlp-size", "8", "--quiet", "--epochs"]
    assert run_main(argv + ["2"], monkeypatch) == 0
    assert "best epoch" in capsys.readouterr().out
    assert run_main(argv + ["2"], monkeypatch) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert run_main(argv + ["3", "--resume"], monkeypatch) == 0
    assert read_parser(out / "checkpoint.pt").epoch == 3

    scores_file = tmp_path / "scores.json"
    assert run_main(["parser", "eval", str(out / "parser.pt"), "--split", "test", "--json",
                     str(scores_file)], monkeypatch) == 0
    printed = capsys.readouterr().out
    assert all(name in printed for name in ("right-branching", "balanced", "parser",
                                            "sentences/s"))
    scores = json.loads(scores_file.read_text())
    assert scores["data"] == str(data_dir / "test.txt")  # the --data of training
    trees = [ptb(line) for line in TREEBANK]
    assert scores["right_branching"]["f1"] == \
        bracket_f1(trees, [right_branching(t.tokens) for t in trees])["f1"]

    sentences = ["the film is good", "", "it was -LRB- not -RRB- good .", "one"]
    text = "\n".join(sentences) + "\n"
    (tmp_path / "in.txt").write_text(text)
    assert run_main(["parse", str(out / "parser.pt"), str(tmp_path / "in.txt"), "-o",
                     str(tmp_path / "trees.txt"), "--quiet"], monkeypatch) == 0
    lines = (tmp_path / "trees.txt").read_text().split("\n")
    assert len(lines) == len(sentences) + 1 and lines[1] == "" and lines[-1] == ""
    for sentence, line in zip(sentences, lines):
        if sentence:
            tree = parse_ptb_line(line)
            assert tree.tokens == sentence.split() and set(tree.labels) == {2}
            assert parse_tree_line(line).tokens == sentence.split()  # predict's own reader
    # Standard input to standard output, the same trees.
    assert run_main(["parse", str(out / "parser.pt"), "--quiet"], monkeypatch, stdin=text) == 0
    assert capsys.readouterr().out.split("\n") == lines


def test_parse_bad_lines(tmp_path, monkeypatch, capsys, one_thread):
    trees = treebank(1)
    train_parser(trees, trees, tmp_path / "run", epochs=1, **TINY)
    parser_file = str(tmp_path / "run" / "parser.pt")
    source = tmp_path / "in.txt"
    source.write_bytes(b"a b\nx ( y\nc d e\n\xff\n")
    output = tmp_path / "out.txt"
    output.write_text("old\n")
    assert run_main(["parse", parser_file, str(source), "-o", str(output)], monkeypatch) == 1
    err = capsys.readouterr().err
    assert f"{source}:2: the word '(' holds a bracket" in err and "was not written" in err
    assert output.read_text() == "old\n"
    assert run_main(["parse", parser_file, str(source), "-o", str(output), "--skip-bad",
                     "--quiet"], monkeypatch) == 0
    lines = output.read_text().split("\n")
    assert lines[1] == lines[3] == "" and parse_ptb_line(lines[2]).tokens == ["c", "d", "e"]
    assert f"{source}:4: not valid UTF-8" in capsys.readouterr().err
    assert run_main(["parse", parser_file, str(source), "-o", str(source)], monkeypatch) == 2
    assert "is the input" in capsys.readouterr().err
    assert run_main(["parse", str(source), str(source)], monkeypatch) == 2
    assert str(source) in capsys.readouterr().err


HELP_SCRIPT = """
import sys
import treelstm.cli.main as main
from treelstm.cli.parse import parse_command, parser_command
main.COMMANDS.update(parser=parser_command, parse=parse_command)
sys.exit(main.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("command", [["parser"], ["parser", "train"], ["parser", "eval"],
                                     ["parse"]])
def test_help_imports_no_torch(command):
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", HELP_SCRIPT, *command,
                           "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(f"usage: python -m treelstm {' '.join(command)}")
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")}
    assert "treelstm.cli.parse" in imported
    assert {name for name in imported if name.split(".")[0] in HEAVY} == set()


def test_parse_tokenize_reads_raw_text_and_train_names_a_missing_dev_file(tmp_path, capsys):
    from treelstm.cli.parse import _words

    assert _words("It's a film (really).\n".encode(), 1, 400, tokenize=True) == [
        "It", "'s", "a", "film", "-LRB-", "really", "-RRB-", "."]
    assert _words(b"It's a film.\n", 1, 400) == ["It's", "a", "film."]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.txt").write_text("(2 (2 a) (2 b))\n")
    from treelstm.cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main(["parser", "train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out"),
              "--epochs", "1", "--quiet"])
    assert exit_info.value.code == 2
    assert "dev.txt: no such file (--data needs train.txt and dev.txt)" in capsys.readouterr().err


def test_parser_train_refuses_a_data_path_that_is_no_directory(tmp_path, capsys):
    from treelstm.cli.main import main

    (tmp_path / "train.txt").write_text("(2 (2 a) (2 b))\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["parser", "train", "--data", str(tmp_path / "train.txt"), "--out",
              str(tmp_path / "out"), "--epochs", "1", "--quiet"])
    assert exit_info.value.code == 2
    assert "train.txt: not a directory (expected one holding train.txt and dev.txt)" in \
        capsys.readouterr().err
