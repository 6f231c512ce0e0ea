"""Plain text and any bracketed trees in: :mod:`treelstm.inputs`, ``Predictor.to_trees`` /
``predict`` on strings and ``nltk.Tree`` s, and ``python -m treelstm predict`` on mixed lines.
The references are independent: an SST line with the same tokens (and, for a Tree-LSTM, the
same shape), read by the fast PTB reader."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from treelstm.data import SentimentTree, tokenize
from treelstm.inputs import line_kind, parse_tree_line, sentence_tree, trees_from_texts
from treelstm.predict import Predictor, predict_records
from treelstm.training import TrainConfig, save_checkpoint, train

nltk = pytest.importorskip("nltk", reason="nltk (the data extra) reads trees with other labels")

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def predictors(tmp_path_factory):
    directory = tmp_path_factory.mktemp("inputs")
    paths = {}
    for model in ("treelstm", "lstm"):
        config = TrainConfig(model=model, embed_dim=16, hidden_size=12, batch_size=10, epochs=1,
                             max_train=120, device="cpu", seed=3)
        result = train(config)
        paths[model] = directory / f"{model}.pt"
        save_checkpoint(paths[model], result.model, result.vocab, config.to_dict())
    return {model: Predictor.from_checkpoint(path) for model, path in paths.items()}, paths


def probs(predictor, items):
    return torch.tensor([p.probs for p in predictor.predict(items)])


def test_line_kinds():
    assert [line_kind(text) for text in ["(2 a)", "{}", "a (b)", "-LRB- x"]] == [
        "ptb", "jsonl", "text", "text"]
    assert line_kind("(really) good", "text") == "text"
    with pytest.raises(ValueError, match="format must be one of"):
        line_kind("x", "xml")


def test_sentence_tree_holds_the_words():
    assert sentence_tree(["good"]) == SentimentTree(["good"], [-1], [-1])
    tree = sentence_tree(["a", "b", "c"])
    assert tree.parent == [3, 3, 3, -1] and tree.tokens == ["a", "b", "c"]
    tree.validate()


def test_an_lstm_reads_plain_text_as_the_sst_line_of_its_tokens(predictors):
    predictor = predictors[0]["lstm"]
    sentences = ["It's a lovely film (really).", "this movie is not great", "Dull."]
    sst = ["(2 " + " ".join(f"(2 {token})" for token in tokenize(text)) + ")"
           for text in sentences]
    torch.testing.assert_close(probs(predictor, sentences), probs(predictor, sst))


def test_a_tree_lstm_reads_a_parsers_labels_as_sst_integers(predictors):
    predictor = predictors[0]["treelstm"]
    parsed = "(ROOT (S (NP (DT The) (NN movie)) (VP (VBD was) (ADJP (JJ great)))))"
    # unary chains collapse: ADJP over JJ is the leaf 'great', VP is (was great), ROOT=S
    sst = "(2 (2 (2 The) (2 movie)) (2 (2 was) (2 great)))"
    torch.testing.assert_close(probs(predictor, [parsed]), probs(predictor, [sst]))
    assert parse_tree_line(parsed, binarize=2) == SentimentTree(
        ["The", "movie", "was", "great"], [4, 4, 5, 5, 6, 6, -1], [-1] * 7)


def test_wide_nodes_are_binarised_for_an_n_ary_model(predictors):
    predictor = predictors[0]["treelstm"]
    assert predictor.max_children == 2
    wide = "(3 (2 a) (2 very) (4 good))"  # SST's format, three children
    right = "(3 (2 a) (2 (2 very) (4 good)))"  # right-factored, as nltk's chomsky_normal_form
    torch.testing.assert_close(probs(predictor, [wide]), probs(predictor, [right]))
    assert parse_tree_line(wide).widest_node()[1] == 3  # as written without binarize


def test_a_tree_lstm_needs_a_parser_for_text_and_takes_any_callable(predictors):
    predictor = predictors[0]["treelstm"]
    with pytest.raises(ValueError, match=r"item 1: plain text needs a parser for a Tree-LSTM"):
        list(predictor.predict(["(2 (2 a) (2 b))", "a b"]))

    def right_branching(text):  # a parser a user may have: text -> nltk.Tree
        tokens = tokenize(text)
        tree = nltk.Tree("X", [tokens[-1]])
        for token in reversed(tokens[:-1]):
            tree = nltk.Tree("X", [nltk.Tree("W", [token]), tree])
        return tree

    with_parser = Predictor(predictor.model, predictor.vocab, parser=right_branching)
    text = "not a good movie"
    sst = "(2 (2 not) (2 (2 a) (2 (2 good) (2 movie))))"
    torch.testing.assert_close(probs(with_parser, [text]), probs(predictor, [sst]))
    torch.testing.assert_close(probs(with_parser, [nltk.Tree.fromstring(
        "(S (W not) (S (W a) (S (W good) (W movie))))")]), probs(predictor, [sst]))
    with pytest.raises(TypeError, match="parser must be a callable"):
        Predictor(predictor.model, predictor.vocab, parser="parser.pt")
    broken = Predictor(predictor.model, predictor.vocab, parser=lambda text: 42)
    results = trees_from_texts(["a b"], broken.parser, True, 2)
    assert isinstance(results[0], ValueError) and "expected an nltk.Tree" in str(results[0])


def test_records_of_mixed_lines_in_input_order(predictors):
    predictor = predictors[0]["lstm"]
    lines = ["a fine film\n", "\n", "(3 (2 a) (3 (2 very) (4 good)))\n",
             '{"parent": [2, 2, -1], "tokens": ["so", "bad"]}\n', "(ROOT (NN wow))\n"]
    records = list(predict_records(predictor, lines))
    assert [r["line"] for r in records] == [1, 3, 4, 5]
    assert all("label" in r for r in records)
    tree_records = list(predict_records(predictors[0]["treelstm"], lines, skip_bad=True))
    assert [("error" in r) for r in tree_records] == [True, False, False, False]


def test_cli_text_format_and_parser_checks(predictors, tmp_path):
    _, paths = predictors
    source = tmp_path / "text.txt"
    source.write_text("(really) good\nawful\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    def run(*args):
        return subprocess.run([sys.executable, "-m", "treelstm", "predict", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=120, env=env)

    done = run(str(paths["lstm"]), str(source), "--format", "text")
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["line"] for line in done.stdout.splitlines()] == [1, 2]
    done = run(str(paths["lstm"]), str(source))  # auto: '(really) good' is no tree
    assert done.returncode == 1 and "text.txt:1:" in done.stderr
    done = run(str(paths["treelstm"]), str(source), "--format", "text", "-o",
               str(paths["lstm"]), "--parser", str(paths["lstm"]))
    assert done.returncode == 2 and "refusing to overwrite" in done.stderr
    done = run(str(paths["treelstm"]), str(source), "--format", "text", "--parser",
               str(tmp_path / "missing.pt"))
    assert done.returncode == 2 and "missing.pt" in done.stderr and "Traceback" not in done.stderr
    assert "--parser PARSER.pt" in run("--help").stdout


def test_predict_reads_every_string_as_a_sentence_with_format_text(predictors):
    predictor = predictors[0]["lstm"]
    with pytest.raises(ValueError, match="item 0: "):  # auto: a bracket starts a tree
        list(predictor.predict(["(really) good"]))
    as_text = [p.probs for p in predictor.predict(["(really) good"], format="text")]
    as_tree = [p.probs for p in predictor.predict(["(2 (2 -LRB-) (2 really) (2 -RRB-) (2 good))"])]
    torch.testing.assert_close(torch.tensor(as_text), torch.tensor(as_tree))


def test_one_string_or_tree_is_not_an_iterable_of_items(predictors):
    predictor = predictors[0]["lstm"]
    for one in ("Great!", b"Great!", parse_tree_line("(2 (2 a) (2 b))"),
                nltk.Tree("S", ["a", "b"])):
        with pytest.raises(TypeError, match=r"expected an iterable of items .* pass \[item\]"):
            predictor.predict(one)  # at once, not when iterated


def test_cli_names_what_failed_to_load_and_notes_an_unused_parser(predictors, tmp_path):
    _, paths = predictors
    source = tmp_path / "in.txt"
    source.write_text("a fine film\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    def run(*args):
        return subprocess.run([sys.executable, "-m", "treelstm", "predict", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=120, env=env)

    done = run(str(tmp_path / "none.pt"), str(source))
    assert done.returncode == 2 and f"checkpoint {tmp_path / 'none.pt'}: No such file" in done.stderr
    done = run(str(paths["treelstm"]), str(source), "--parser", str(paths["lstm"]))
    assert done.returncode == 2 and f"--parser {paths['lstm']}: unknown model class " \
        "'LSTMClassifier'" in done.stderr and "it holds a sentiment classifier" in done.stderr
    done = run(str(paths["treelstm"].parent), str(source))  # a folder
    assert done.returncode == 2 and "checkpoint " in done.stderr and ": is a directory; " \
        "expected a checkpoint file such as" in done.stderr and "checkpoint :" not in done.stderr
    done = run(str(paths["lstm"]), str(source), "-o", str(tmp_path / "no" / "out.jsonl"))
    assert done.returncode == 2 and f"--output {tmp_path / 'no' / 'out.jsonl'}: the folder " \
        f"{tmp_path / 'no'} does not exist" in done.stderr
    done = run(str(paths["lstm"]), str(tmp_path / "none.txt"))
    assert done.returncode == 2 and f"input {tmp_path / 'none.txt'}: No such file" in done.stderr
    (tmp_path / "blank.txt").write_text("\n  \n")
    done = run(str(paths["lstm"]), str(tmp_path / "blank.txt"))
    assert done.returncode == 0 and done.stdout == "" and f"note: {tmp_path / 'blank.txt'} " \
        "holds no lines to label" in done.stderr
    done = run(str(paths["lstm"]), str(source), "--parser", str(paths["treelstm"]))
    assert done.returncode == 0 and "note: --parser is not used" in done.stderr
    source.write_text("(Wendigo is) why we go\n")
    done = run(str(paths["lstm"]), str(source))
    assert done.returncode == 1 and "--format text" in done.stderr
    assert "trees/s" not in done.stderr  # no throughput line after a failure


def test_a_broken_line_gets_the_reason_that_applies():
    """A tree broken inside is not sent to --format text; a sentence that starts with a bracket
    is; a parser's tree too deep for nltk says so rather than that 'ROOT' is not an integer."""
    pytest.importorskip("nltk")
    for tree in ["(3 (2 a) (2 b)", "(3 (2 a) (2 b)))", "(ROOT (S (NP a) (VP b)",
                 "(3 (2 a) (4 good))) extra"]:
        with pytest.raises(ValueError, match="malformed brackets") as error:
            parse_tree_line(tree)
        assert "--format text" not in str(error.value)
    for sentence in ["(Not) a bad movie.", "(Wendigo is) why we go", "(Not) a bad movie :)",
                     "(Spoiler) it's great (really)"]:
        with pytest.raises(ValueError, match="--format text"):
            parse_tree_line(sentence)
    with pytest.raises(ValueError, match="malformed brackets") as error:
        parse_tree_line("(Not) a bad movie.", format="ptb")  # the format was chosen: no hint
    assert "--format text" not in str(error.value)
    with pytest.raises(ValueError, match=r"^expected a bracketed tree '\(...\)'; got 'A fine "
                                         r"film' \(plain text: --format text"):
        parse_tree_line("A fine film", format="ptb")
    with pytest.raises(ValueError, match=r"\(a JSON tree: --format jsonl\)"):
        parse_tree_line('{"parent": [-1], "tokens": ["a"]}', format="ptb")
    depth = 600
    deep = "(ROOT " + "(S " * depth + "(NN word)" + ")" * depth + ")"
    with pytest.raises(ValueError, match=r"^nested too deeply for nltk's bracket reader "
                                         r"\(at most 499 levels\); trees with labels 0..4"):
        parse_tree_line(deep)
    sst = deep.replace("ROOT", "2").replace("S", "2").replace("NN", "2")
    assert parse_tree_line(sst).num_nodes == depth + 2  # SST's labels: no depth limit
    for typo, reason in [("x", "label 'x' is not an integer"), ("9", "label 9 is out of range")]:
        with pytest.raises(ValueError, match=f"^{reason}"):  # not nltk's depth
            parse_tree_line(sst.replace("(2 word)", f"({typo} word)"))



def test_words_side_by_side_in_a_bracket_are_not_read_as_a_tree_in_auto():
    """'(Not bad at all)' parses (a node 'Not' over three words) but no SST line or parser output
    has two bare words in one bracket: in auto it is refused with the --format text hint, rather
    than read with 'Not' dropped; --format ptb reads it as the tree it asks for."""
    pytest.importorskip("nltk")
    for line, pair, words in [("(Not bad at all)", "bad at", ["bad", "at", "all"]),
                              ("(S the movie)", "the movie", ["the", "movie"]),
                              ("(ROOT (S (NP the film) (VP rocks)))", "the film",
                               ["the", "film", "rocks"])]:
        with pytest.raises(ValueError, match=rf"side by side in one bracket \('{pair}'\).*"
                                             "--format text"):
            parse_tree_line(line)
        assert parse_tree_line(line, format="ptb").tokens == words
    for line in ["(ROOT (S (NP (DT the) (NN movie)) (VP (VBD was) (ADJP (JJ great)))))",
                 "(3 (2 a) (4 good))", "(X a)"]:
        parse_tree_line(line)  # every word alone in its bracket

def test_a_byte_order_mark_is_no_part_of_a_line(predictors):
    predictor = predictors[0]["lstm"]
    with_bom = [p.probs for p in predictor.predict([b"\xef\xbb\xbf(3 (2 a) (4 good))",
                                                    "\ufeffa good film"])]
    without = [p.probs for p in predictor.predict(["(3 (2 a) (4 good))", "a good film"])]
    torch.testing.assert_close(torch.tensor(with_bom), torch.tensor(without))
