"""PTB/SST reader and writer, label views, malformed input, the bundled synthetic treebank, the
fast reader against the nltk-based reference, fuzzing (a ValueError with ``file:line`` or a
correct parse, nothing else), very long and deep lines."""
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nltk import Tree

from helpers import load_script
from treelstm.data import (IGNORE_INDEX, SentimentTree, binary_view, parse_ptb_line, read_ptb,
                           to_ptb_string)
from treelstm.data.ptb import _read_fast, parse_ptb_line_nltk

REPO = Path(__file__).resolve().parents[1]
SST_DIR = REPO / ".." / "shared" / "data" / "sst"
SENTIMENT_DIR = REPO / "treelstm" / "datasets" / "sentiment"
TRAIN_LINES = (SENTIMENT_DIR / "train.txt").read_text(encoding="utf-8").splitlines()

EXAMPLE = "(3 (2 It) (4 (2 's) (3 (2 a) (4 lovely) (2 film))))"

# Named lines reused by the round-trip and structure tests.
LINES = {
    "example": EXAMPLE,
    "single preterminal": "(2 Hello)",
    "binary": "(1 (2 (2 the) (2 plot)) (1 (2 is) (1 (2 not) (3 good))))",
    "unary chain": "(3 (3 (2 x)) (4 (4 (4 great))))",
    "internal left of leaf": "(1 (2 (2 a) (2 b)) (0 c))",
    "wide": "(4 (2 a) (2 b) (3 c) (4 d) (2 e))",
    "unicode": "(3 (2 Amélie) (4 (2 是) (3 naïve)))",
    "no-break space in token": "(2 (2 like) (2 8\u00a01\\/2))",
    "brackets as tokens": "(2 (2 -LRB-) (2 (2 sic) (2 -RRB-)))",
}


def spans_from_nltk(line):
    """Independent reference: (first token, last token, label) of every node, by recursion."""
    spans = []

    def visit(node, start):
        if isinstance(node[0], str):
            spans.append((start, start, int(node.label())))
            return start + 1
        end = start
        for child in node:
            end = visit(child, end)
        spans.append((start, end - 1, int(node.label())))
        return end

    visit(Tree.fromstring(line, leaf_pattern=r"[^ ()]+"), 0)
    return sorted(spans)


def spans_from_tree(tree, words=False):
    """The same from the parent list: walk up from every leaf (leaves are nodes 0..n-1). With
    ``words``, each span also holds its node's word ("" for an internal node)."""
    first = [len(tree.tokens)] * tree.num_nodes
    last = [-1] * tree.num_nodes
    for i in range(len(tree.tokens)):
        node = i
        while node != -1:
            first[node], last[node] = min(first[node], i), max(last[node], i)
            node = tree.parent[node]
    spans = [(first[v], last[v], tree.labels[v]) for v in range(tree.num_nodes)]
    if words:
        spans = [span + (tree.tokens[v] if v < len(tree.tokens) else "",)
                 for v, span in enumerate(spans)]
    return sorted(spans)


def write(path, text, newline="\n"):
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


# ------------------------------------------------------------------------------ parsing
def test_parse_example_numbering():
    tree = parse_ptb_line(EXAMPLE)
    assert tree.tokens == ["It", "'s", "a", "lovely", "film"]
    # Leaves 0..4, then internal nodes in post-order: (3 a lovely film)=5, (4 's ...)=6, root=7.
    assert tree.parent == [7, 6, 5, 5, 5, 6, 7, -1]
    assert tree.labels == [2, 2, 2, 4, 2, 3, 4, 3]
    assert tree.root == 7 and tree.root_label == 3 and tree.num_nodes == 8


@pytest.mark.parametrize("name", list(LINES))
def test_structure_matches_independent_spans(name):
    tree = parse_ptb_line(LINES[name])
    assert spans_from_tree(tree) == spans_from_nltk(LINES[name])
    assert tree.root == tree.num_nodes - 1
    leaves = [v for v in range(tree.num_nodes) if v not in tree.parent]
    assert leaves == list(range(len(tree.tokens)))


@pytest.mark.parametrize("name", list(LINES))
def test_string_tree_string_round_trip(name):
    assert to_ptb_string(parse_ptb_line(LINES[name])) == LINES[name]


@pytest.mark.parametrize("name", list(LINES))
def test_tree_string_tree_round_trip(name):
    tree = parse_ptb_line(LINES[name])
    assert parse_ptb_line(to_ptb_string(tree)) == tree


def test_round_trip_of_a_tree_with_other_node_ids():
    # Internal nodes numbered root first (not the reader's post-order) still write correctly.
    tree = SentimentTree(tokens=["a", "b", "c"], parent=[4, 4, 3, -1, 3], labels=[1, 2, 3, 4, 0])
    assert to_ptb_string(tree) == "(4 (0 (1 a) (2 b)) (3 c))"


def test_unary_chain_has_one_child_per_chain_node():
    tree = parse_ptb_line("(3 (3 (2 x)))")
    assert tree.tokens == ["x"]
    assert tree.parent == [1, 2, -1]
    assert tree.children() == [[], [0], [1]]


def test_validate():
    parse_ptb_line(EXAMPLE).validate()
    with pytest.raises(ValueError, match=r"SentimentTree: internal node 2 has no children"):
        SentimentTree(["a"], [1, -1, 1], [2, 2, 2]).validate()


def test_child_positions_are_left_to_right():
    tree = parse_ptb_line(LINES["internal left of leaf"])
    # (1 (2 a b) c): internal node 3 is the left child of the root even though 3 > leaf 2.
    assert tree.parent == [3, 3, 4, 4, -1]
    assert tree.children()[4] == [3, 2]
    assert tree.child_positions() == [0, 1, 1, 0, -1]


def test_parse_strips_surrounding_whitespace():
    assert parse_ptb_line("  (2 a)\r\n") == parse_ptb_line("(2 a)")


def test_parse_rejects_non_str():
    with pytest.raises(TypeError, match="expected a str, got bytes"):
        parse_ptb_line(b"(2 a)")


# ------------------------------------------------------------------------------ files
def test_read_ptb_lf_crlf_bom_and_trailing_blank_lines(tmp_path):
    text = EXAMPLE + "\n" + LINES["unicode"] + "\n"
    expected = [parse_ptb_line(EXAMPLE), parse_ptb_line(LINES["unicode"])]
    assert read_ptb(write(tmp_path / "lf.txt", text)) == expected
    assert read_ptb(write(tmp_path / "crlf.txt", text, newline="\r\n")) == expected
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert read_ptb(tmp_path / "bom.txt") == expected
    assert read_ptb(write(tmp_path / "no_eol.txt", text.rstrip("\n"))) == expected
    assert read_ptb(write(tmp_path / "blank_end.txt", text + "\n  \n")) == expected
    assert read_ptb(str(tmp_path / "lf.txt")) == expected


def test_read_ptb_empty_file(tmp_path):
    assert read_ptb(write(tmp_path / "empty.txt", "")) == []


def test_fine_view_keeps_labels_and_all_trees(tmp_path):
    path = write(tmp_path / "views.txt", "(2 (0 a) (4 b))\n(1 (2 c) (1 d))\n")
    trees = read_ptb(path, view="fine")
    assert [t.labels for t in trees] == [[0, 4, 2], [2, 1, 1]]


def test_binary_view(tmp_path):
    path = write(tmp_path / "views.txt",
                 "(2 (0 a) (4 b))\n(1 (2 c) (0 d))\n(3 (2 e) (4 (3 f) (1 g)))\n")
    trees = read_ptb(path, view="binary")
    # Neutral root dropped; 0,1 -> 0; 3,4 -> 1; neutral phrases -> ignore.
    assert [t.tokens for t in trees] == [["c", "d"], ["e", "f", "g"]]
    assert trees[0].labels == [IGNORE_INDEX, 0, 0]
    assert trees[1].labels == [IGNORE_INDEX, 1, 0, 1, 1]
    assert IGNORE_INDEX == -1


def test_binary_view_function():
    assert binary_view(parse_ptb_line("(2 (4 a) (0 b))")) is None
    tree = parse_ptb_line("(4 (4 a) (2 b))")
    assert binary_view(tree).labels == [1, -1, 1]
    assert tree.labels == [4, 2, 4]  # the input is not modified


def test_unknown_view(tmp_path):
    path = write(tmp_path / "file.txt", EXAMPLE + "\n")
    with pytest.raises(ValueError, match=r"view must be one of \('fine', 'binary'\), got 'sst2'"):
        read_ptb(path, view="sst2")


GOOD = "(3 (2 a) (4 b))\n(1 (1 c))\n"

MALFORMED = {
    "missing close": ("(3 (2 a) (4 b)",
                      r"malformed brackets: expected '\)' but got 'end-of-string' at index 14"),
    "extra close": ("(3 (2 a) (4 b)))",
                    r"malformed brackets: expected 'end-of-string' but got '\)' at index 15"),
    "two trees": ("(2 a) (3 b)", r"malformed brackets: expected 'end-of-string'"),
    "bare word": ("hello", r"malformed brackets: expected '\(' but got 'hello'"),
    "non-integer label": ("(3 (x a) (4 b))", r"label 'x' is not an integer"),
    "float label": ("(3.0 (2 a))", r"label '3.0' is not an integer"),
    "label too large": ("(3 (5 a) (4 b))", r"label 5 is out of range; expected 0..4"),
    "negative label": ("(-1 (2 a))", r"label -1 is out of range"),
    "no label": ("( (2 a))", r"node \( \(2 a\)\) has no label; expected an integer 0..4"),
    "empty node": ("()", r"node \(\) has no label"),
    "node without children": ("(3 (2 a) (3))", r"node \(3\) has no children"),
    "two words": ("(3 (2 a b) (4 c))", r"preterminal \(2 a b\) has 2 words; expected exactly one"),
    "mixed children": ("(3 (2 a) b)", r"node \(3 \(2 a\) b\) mixes words and labelled subtrees"),
    "word in brackets": ("(2 (a))", r"label 'a' is not an integer"),
    "blank line inside": ("", r"empty line"),
    "whitespace line inside": ("   \t", r"empty line"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_line_names_file_and_line(tmp_path, name):
    line, reason = MALFORMED[name]
    path = write(tmp_path / "file.txt", GOOD + line + "\n(2 z)\n")
    with pytest.raises(ValueError, match=r"file\.txt:3: " + reason):
        read_ptb(path)


@pytest.mark.parametrize("name", [n for n in MALFORMED if "inside" not in n])
def test_malformed_line_with_crlf(tmp_path, name):
    line, reason = MALFORMED[name]
    path = write(tmp_path / "file.txt", GOOD + line + "\n", newline="\r\n")
    with pytest.raises(ValueError, match=r"file\.txt:3: " + reason):
        read_ptb(path)


@pytest.mark.parametrize("name", [n for n in MALFORMED if "inside" not in n])
def test_parse_ptb_line_raises_the_same_reason(name):
    line, reason = MALFORMED[name]
    with pytest.raises(ValueError, match=reason):
        parse_ptb_line(line)


def test_invalid_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "file.txt"
    path.write_bytes(GOOD.encode() + b"(2 caf\xe9)\n")
    with pytest.raises(ValueError, match=r"file\.txt:3: not valid UTF-8"):
        read_ptb(path)


def test_error_in_first_line_is_line_1(tmp_path):
    path = write(tmp_path / "train.txt", "(x (2 a))\n")
    with pytest.raises(ValueError, match=r"^.*train\.txt:1: label 'x' is not an integer"):
        read_ptb(path)


BAD_TREES = {
    "binary-view label": (SentimentTree(["a"], [-1], [-1]), r"node 0 has label -1; expected"),
    "label count": (SentimentTree(["a"], [-1], [2, 2]), r"1 parents but 2 labels"),
    "two roots": (SentimentTree(["a", "b"], [-1, -1], [2, 2]), r"2 roots"),
    "leaf with a child": (SentimentTree(["a", "b"], [-1, 0], [2, 2]),
                          r"node 1 has parent 0, which is a leaf"),
    "childless internal": (SentimentTree(["a"], [1, -1, 1], [2, 2, 2]),
                           r"internal node 2 has no children"),
    "cycle": (SentimentTree(["a"], [1, -1, 3, 2], [2, 2, 2, 2]), r"never reach the root"),
    "token with space": (SentimentTree(["a b"], [-1], [2]), r"token 0 is 'a b'"),
    "token with bracket": (SentimentTree(["(a"], [-1], [2]), r"token 0 is '\(a'"),
    "no tokens": (SentimentTree([], [-1], [2]), r"0 tokens for 1 nodes"),
    "parent out of range": (SentimentTree(["a"], [5, -1], [2, 2]), r"node 0 has parent 5"),
}


@pytest.mark.parametrize("name", list(BAD_TREES))
def test_to_ptb_string_rejects_invalid_trees(name):
    tree, reason = BAD_TREES[name]
    with pytest.raises(ValueError, match=r"to_ptb_string: .*" + reason):
        to_ptb_string(tree)


def test_deep_tree_round_trip():
    depth = 450  # no depth limit any more: see test_nesting_100000_deep
    line = "(2 " * depth + "(2 x)" + ")" * depth
    tree = parse_ptb_line(line)
    assert tree.num_nodes == depth + 1
    assert to_ptb_string(tree) == line


def test_writer_does_not_recurse():
    depth = 5000  # deeper than Python's recursion limit
    tree = SentimentTree(["x"], list(range(1, depth + 1)) + [-1], [2] * (depth + 1))
    assert to_ptb_string(tree) == "(2 " * depth + "(2 x)" + ")" * depth


def test_tree_deeper_than_nltk_allows_is_read(tmp_path):
    depth = 600  # the nltk-based reader refused nesting deeper than 499 nodes
    line = "(2 " * depth + "(2 x)" + ")" * depth
    (tree,) = read_ptb(write(tmp_path / "deep.txt", line + "\n"))
    assert tree.num_nodes == depth + 1 and to_ptb_string(tree) == line
    with pytest.raises(ValueError,
                       match=r"too deeply for nltk's bracket reader \(at most 499 levels\)"):
        parse_ptb_line_nltk(line)


# ------------------------------------------------------------------------------ bundled data
def load_generator():
    return load_script("data/generate_sentiment.py")


def test_bundled_treebank_equals_generator_output(tmp_path):
    assert load_generator().main(["--seed", "0", "--out", str(tmp_path)]) == 0
    for split in ("train", "dev", "test"):
        assert (tmp_path / f"{split}.txt").read_bytes() == \
            (SENTIMENT_DIR / f"{split}.txt").read_bytes(), split


def test_generator_seed_changes_output(tmp_path):
    generator = load_generator()
    generator.main(["--seed", "1", "--out", str(tmp_path / "a"), "--train", "20", "--dev", "5",
                    "--test", "5"])
    generator.main(["--seed", "1", "--out", str(tmp_path / "b"), "--train", "20", "--dev", "5",
                    "--test", "5"])
    generator.main(["--seed", "2", "--out", str(tmp_path / "c"), "--train", "20", "--dev", "5",
                    "--test", "5"])
    a, b, c = ((tmp_path / d / "train.txt").read_text() for d in "abc")
    assert a == b != c
    assert len(read_ptb(tmp_path / "a" / "dev.txt")) == 5


def test_generator_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_generator().main(["--help"])
    assert exit_info.value.code == 0
    assert "--seed" in capsys.readouterr().out


def value(tree, node):
    return tree.labels[node] - 2


def sign(x):
    return (x > 0) - (x < 0)


def test_bundled_treebank_shape_and_label_rules():
    splits = {split: read_ptb(SENTIMENT_DIR / f"{split}.txt") for split in ("train", "dev", "test")}
    assert {s: len(t) for s, t in splits.items()} == {"train": 3000, "dev": 500, "test": 500}
    lines = set()
    for trees in splits.values():
        lines |= {to_ptb_string(t) for t in trees}
    assert len(lines) == 4000  # no tree twice, within or across splits
    trees = [t for split in splits.values() for t in split]
    assert 8 <= sum(len(t.tokens) for t in trees) / len(trees) <= 15
    assert {t.root_label for t in trees} == {0, 1, 2, 3, 4}
    checked = {"not": 0, "very": 0, "too": 0, "and": 0, "but": 0}
    for tree in trees:
        children = tree.children()
        for node, kids in enumerate(children):
            if node < len(tree.tokens):
                continue
            assert len(kids) == 2  # binary trees
            left, right = kids
            word = tree.tokens[left] if left < len(tree.tokens) else None
            v, x = value(tree, node), value(tree, right)
            if word in ("not", "hardly", "never"):
                assert v == -sign(x), to_ptb_string(tree)
                checked["not"] += 1
            elif word in ("very", "really", "truly", "extremely", "remarkably", "incredibly"):
                assert v == sign(x) * min(2, abs(x) + 1), to_ptb_string(tree)
                checked["very"] += 1
            elif word == "too":
                assert v == -1
                checked["too"] += 1
            elif right >= len(tree.tokens) and children[right][0] < len(tree.tokens) and \
                    tree.tokens[children[right][0]] in ("and", "but"):
                conjunction = tree.tokens[children[right][0]]
                a, b = value(tree, left), value(tree, children[right][1])
                expected = max(-2, min(2, a + b)) if conjunction == "and" else (b or a)
                assert v == expected, to_ptb_string(tree)
                checked[conjunction] += 1
    assert min(checked.values()) > 100, checked


# ------------------------------------------------------------------------------ real SST
@pytest.mark.skipif(not SST_DIR.is_dir(), reason=f"SST not found at {SST_DIR} (the shared data "
                                                 "directory is only present on the dev machine)")
def test_real_sst_counts_and_exact_round_trip():
    expected = {"train": (8544, 318582, 6920), "dev": (1101, 41447, 872),
                "test": (2210, 82600, 1821)}
    for split, (num_trees, num_nodes, num_binary) in expected.items():
        path = SST_DIR / f"{split}.txt"
        trees = read_ptb(path)
        assert len(trees) == num_trees
        assert sum(t.num_nodes for t in trees) == num_nodes
        assert sum(binary_view(t) is not None for t in trees) == num_binary
        lines = path.read_text(encoding="utf-8").splitlines()
        assert [to_ptb_string(t) for t in trees] == lines


# ------------------------------------------------------------------------------ fast reader vs nltk
def outcome(read, line):
    """What a reader makes of a line: the tree, or the message of its ValueError."""
    try:
        return read(line)
    except ValueError as error:
        return f"ValueError: {error}"


def with_doubled_spaces(line):
    """The same tree, not in SST's single-space form (so read by the general path)."""
    return line.replace(" ", "  ")


@pytest.mark.slow
@pytest.mark.skipif(not SST_DIR.is_dir(), reason=f"SST not found at {SST_DIR} (the shared data "
                                                 "directory is only present on the dev machine)")
@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_real_sst_equals_nltk_reference(split):
    for number, line in enumerate((SST_DIR / f"{split}.txt").read_text("utf-8").splitlines(), 1):
        expected = parse_ptb_line_nltk(line)
        assert parse_ptb_line(line) == expected, f"{split}.txt:{number}"
        assert _read_fast(line) is not None, f"{split}.txt:{number} missed the fast path"
        assert parse_ptb_line(with_doubled_spaces(line)) == expected, f"{split}.txt:{number}"


@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_bundled_treebank_equals_nltk_reference(split):
    for number, line in enumerate((SENTIMENT_DIR / f"{split}.txt").read_text("utf-8").splitlines(),
                                  1):
        expected = parse_ptb_line_nltk(line)
        assert parse_ptb_line(line) == expected, f"{split}.txt:{number}"
        assert _read_fast(line) is not None, f"{split}.txt:{number} missed the fast path"
        assert parse_ptb_line(with_doubled_spaces(line)) == expected, f"{split}.txt:{number}"


# Words: anything but ASCII whitespace and brackets, including no-break spaces, other Unicode
# whitespace, backslashes and quotes.
WORDS = st.text(st.characters(blacklist_characters=" \t\n\r\x0b\x0c()",
                              blacklist_categories=("Cs",)), min_size=1, max_size=4)
# Some of what nltk skips after "(" (Unicode whitespace, but not \x1c-\x1f).
SPACE_AFTER_OPEN = " \t\n\xa0\u2003\u3000\x85"
# What separates fields.
ASCII_SPACE = " \t\n\r\x0b\x0c"

# Lines whose reading by nltk is not obvious, and what both readers make of them.
ODD_LINES = {
    "space after (": ("( 2 a)", SentimentTree(["a"], [-1], [2])),
    "no-break space after (": ("(\xa02 a)", SentimentTree(["a"], [-1], [2])),
    "space before )": ("(2 a\t)", SentimentTree(["a"], [-1], [2])),
    "no space between subtrees": ("(3(2 a)(4 b))",
                                  SentimentTree(["a", "b"], [2, 2, -1], [2, 4, 3])),
    "signed and padded labels": ("(+3 (-0 a) (04 b))",
                                 SentimentTree(["a", "b"], [2, 2, -1], [0, 4, 3])),
    "no-break space in a word": ("(2 \xa0a\xa0)", SentimentTree(["\xa0a\xa0"], [-1], [2])),
    "\\x1c is not skipped after (": ("(\x1c 2 a)", "ValueError: node ( 2 a) has no label; "
                                                   "expected an integer 0..4"),
    "\\x1c before a label is dropped": ("(\x1c2 a)", SentimentTree(["a"], [-1], [2])),
    "no-break space after a label": ("(2\xa0 a)", "ValueError: label '2\\xa0' is not an integer "
                                                  "(node (2\xa0 a))"),
}


@pytest.mark.parametrize("name", list(ODD_LINES))
def test_odd_lines_read_like_nltk(name):
    line, expected = ODD_LINES[name]
    assert outcome(parse_ptb_line, line) == expected
    assert outcome(parse_ptb_line_nltk, line) == expected


@st.composite
def sentiment_trees(draw, max_tokens=10):
    """A random valid tree: leaves merged into internal nodes (unary ones too), any node order."""
    num_tokens = draw(st.integers(1, max_tokens))
    parent = [-1] * num_tokens
    roots = list(range(num_tokens))
    unary_left = draw(st.integers(0, 3))
    while len(roots) > 1 or unary_left:
        if len(roots) == 1 or (unary_left and draw(st.booleans())):
            start, size = draw(st.integers(0, len(roots) - 1)), 1
            unary_left -= 1
        else:
            start = draw(st.integers(0, len(roots) - 2))
            size = draw(st.integers(2, len(roots) - start))
        parent.append(-1)
        for child in roots[start:start + size]:
            parent[child] = len(parent) - 1
        roots[start:start + size] = [len(parent) - 1]
    labels = draw(st.lists(st.integers(0, 4), min_size=len(parent), max_size=len(parent)))
    tokens = draw(st.lists(WORDS, min_size=num_tokens, max_size=num_tokens))
    return SentimentTree(tokens=tokens, parent=parent, labels=labels)


@st.composite
def respaced(draw, line):
    """``line`` written differently for the same tree: other whitespace between fields, after "("
    and before ")", labels like "+3", "03", "-0"."""
    pieces = []
    for piece in re.split(r"( |\(\d|\))", line):
        if piece == " ":
            piece = draw(st.text(st.sampled_from(ASCII_SPACE), min_size=1, max_size=3))
        elif piece.startswith("("):
            label = draw(st.sampled_from([piece[1], "+" + piece[1], "0" + piece[1]]
                                         + (["-0"] if piece[1] == "0" else [])))
            piece = "(" + draw(st.text(st.sampled_from(SPACE_AFTER_OPEN), max_size=2)) + label
        elif piece == ")":
            piece = draw(st.text(st.sampled_from(ASCII_SPACE), max_size=2)) + piece
        pieces.append(piece)
    return "".join(pieces)


PROPERTY = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@PROPERTY
@given(tree=sentiment_trees())
def test_random_trees_read_back_like_nltk(tree):
    line = to_ptb_string(tree)
    read = parse_ptb_line(line)
    assert read == parse_ptb_line_nltk(line)
    assert _read_fast(line) == read  # the form to_ptb_string writes takes the fast path
    assert to_ptb_string(read) == line


@PROPERTY
@given(data=st.data(), tree=sentiment_trees())
def test_random_trees_written_differently_read_like_nltk(data, tree):
    line = to_ptb_string(tree)
    variant = data.draw(respaced(line))
    assert parse_ptb_line(variant) == parse_ptb_line_nltk(variant) == parse_ptb_line(line)


BRACKET_TEXT = st.lists(st.sampled_from(list("()01234+-x \t\n\xa0\x1c\u2028")
                                        + ["(2 ", "(2 x)", "05", "-0"]), max_size=12).map("".join)


@st.composite
def damaged_lines(draw):
    """A valid line with a few random cuts, insertions and repeats."""
    line = to_ptb_string(draw(sentiment_trees(max_tokens=6)))
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, len(line)))
        end = draw(st.integers(position, min(len(line), position + 8)))
        kind = draw(st.sampled_from(["delete", "insert", "repeat"]))
        if kind == "delete":
            line = line[:position] + line[end:]
        elif kind == "insert":
            line = line[:position] + draw(BRACKET_TEXT) + line[position:]
        else:
            line = line[:end] + line[position:end] + line[end:]
    return line


@settings(PROPERTY, max_examples=1000)
@given(line=damaged_lines() | BRACKET_TEXT | st.text(max_size=20))
def test_malformed_lines_fail_like_nltk(line):
    """Same tree or the same one-line ValueError, for any short line."""
    result = outcome(parse_ptb_line, line)
    assert result == outcome(parse_ptb_line_nltk, line)
    assert "\n" not in str(result)


def test_differences_from_nltk_reference():
    """Besides depth (below), a zero-padded label past Python's 4300-digit int() limit: the
    reference fails with int()'s error, the reader takes its value."""
    line = "(" + "0" * 5000 + "3 a)"
    assert parse_ptb_line(line) == SentimentTree(["a"], [-1], [3])
    with pytest.raises(ValueError, match="4300 digits"):
        parse_ptb_line_nltk(line)


def test_reader_does_not_import_nltk():
    code = "import sys, treelstm.data.ptb; print('nltk' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=REPO)
    assert result.stdout.strip() == "False"


# ------------------------------------------------------------------------------ fuzzing
# Mutated lines and random bytes: a ValueError with ``file:line``, or a correct parse.
BASE_LINES = TRAIN_LINES[:40] + [LINES[name] for name in (
    "single preterminal", "unicode", "no-break space in token", "internal left of leaf",
    "unary chain")]
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


@PROPERTY
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


@PROPERTY
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
    assert spans_from_tree(tree, words=True) == expected


@PROPERTY
@given(content=st.binary(max_size=400))
def test_fuzz_random_bytes_file(fuzz_dir, content):
    path = fuzz_dir / "random.bin"
    path.write_bytes(content)
    _check_read(path, num_lines=content.count(b"\n") + 1)


@PROPERTY
@given(junk=st.binary(min_size=1, max_size=40), where=st.floats(0, 1), lines=st.integers(1, 5))
def test_fuzz_random_bytes_spliced_into_a_good_file(fuzz_dir, junk, where, lines):
    good = ("\n".join(TRAIN_LINES[:lines]) + "\n").encode("utf-8")
    cut = int(where * len(good))
    path = fuzz_dir / "spliced.txt"
    path.write_bytes(good[:cut] + junk + good[cut:])
    _check_read(path, num_lines=path.read_bytes().count(b"\n") + 1)


# ------------------------------------------------------------------------------ size and depth
def right_branching(num_tokens):
    """(0 (2 w0) (1 (2 w1) ... (2 wN)...)) and its parent list: leaf i hangs under the i-th
    internal node, whose id is num_tokens + (num_tokens - 2 - i) in post-order."""
    line = "".join(f"({i % 5} (2 w{i}) " for i in range(num_tokens - 1))
    line += f"(2 w{num_tokens - 1})" + ")" * (num_tokens - 1)
    internal = [2 * num_tokens - 2 - i for i in range(num_tokens - 1)]  # by opening order
    parent = internal + [internal[-1]] + [internal[i - 1] for i in range(num_tokens - 2, 0, -1)]
    return line, parent + [-1]


@pytest.mark.parametrize("num_tokens", [1000, 20_000])
def test_right_branching_sentence(num_tokens):
    line, parent = right_branching(num_tokens)
    tree = parse_ptb_line(line)
    assert tree.tokens == [f"w{i}" for i in range(num_tokens)]
    assert tree.parent == parent
    assert tree.labels == [2] * num_tokens + [i % 5 for i in reversed(range(num_tokens - 1))]
    assert parse_ptb_line(with_doubled_spaces(line)) == tree
    assert to_ptb_string(tree) == line
    # the old limit
    with pytest.raises(ValueError,
                       match=r"too deeply for nltk's bracket reader \(at most 499 levels\)"):
        parse_ptb_line_nltk(line)


def test_nesting_100000_deep():
    depth = 100_000
    line = "(2 " * depth + "(3 x)" + ")" * depth
    tree = parse_ptb_line(line)
    assert tree.tokens == ["x"] and tree.num_nodes == depth + 1
    assert tree.parent == list(range(1, depth + 1)) + [-1]
    assert tree.labels == [3] + [2] * depth
    assert parse_ptb_line(line.replace(" ", "\t")) == tree  # the general path, as deep
    assert to_ptb_string(tree) == line


@pytest.mark.parametrize("line, reason", [
    ("(2 " * 100_000 + "(3 x)" + ")" * 99_999,
     r"malformed brackets: expected '\)' but got 'end-of-string' at index 400004"),
    ("(2 " * 100_000 + "(3 x)" + ")" * 100_001,
     r"malformed brackets: expected 'end-of-string' but got '\)' at index 400005"),
    ("(2 " * 100_000 + "(7 x)" + ")" * 100_000, r"label 7 is out of range; expected 0\.\.4 "
                                                r"\(node \(7 x\)\)"),
    ("(2 " * 100_000 + "(3 x y)" + ")" * 100_000, r"preterminal \(3 x y\) has 2 words"),
    ("(2 " * 100_000 + "(3)" + ")" * 100_000, r"node \(3\) has no children"),
    ("(9 " + "(2 " * 100_000 + "(3 x)" + ")" * 100_001,
     r"label 9 is out of range; expected 0\.\.4 \(node \(9 \(2 \(2 \(2 [(2 ]*\.\.\.\)$"),
], ids=["missing close", "extra close", "bad label", "two words", "empty node", "bad root"])
def test_deep_malformed_lines_are_value_errors(line, reason):
    for variant in (line, line.replace(" ", "\t")):
        with pytest.raises(ValueError, match=reason) as error:
            parse_ptb_line(variant)
        assert len(str(error.value)) < 200


def balanced(num_tokens):
    """A balanced binary tree over w0..w{num_tokens-1}, built level by level."""
    level = [f"({i % 5} w{i})" for i in range(num_tokens)]
    while len(level) > 1:
        level = [f"(3 {level[i]} {level[i + 1]})" if i + 1 < len(level) else level[i]
                 for i in range(0, len(level), 2)]
    return level[0]


def test_ten_megabyte_line():
    num_tokens = 650_000
    line = balanced(num_tokens)
    assert len(line) > 10_000_000
    tree = parse_ptb_line(line)
    assert tree.tokens == [f"w{i}" for i in range(num_tokens)]
    assert tree.num_nodes == 2 * num_tokens - 1 and tree.parent[-1] == -1
    assert tree.labels[:num_tokens] == [i % 5 for i in range(num_tokens)]
    assert tree.labels[num_tokens:] == [3] * (num_tokens - 1)
    assert tree.parent[0:num_tokens:2] == tree.parent[1:num_tokens + 1:2]  # leaves in pairs
    assert len(set(tree.parent[0:num_tokens:2])) == num_tokens // 2


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


def test_very_long_good_line_parses(tmp_path, balanced_line):
    """20,000 tokens on one line parse (the reader is linear in the line, without nltk's depth
    limit or time guard: acceptance does not depend on machine load)."""
    line = balanced_line(20_000)
    path = tmp_path / "long.txt"
    path.write_text(line + "\n" + TRAIN_LINES[0] + "\n", encoding="utf-8")
    trees = read_ptb(path)
    assert len(trees[0].tokens) == 20_000 and trees[0].num_nodes == 39_999
    assert to_ptb_string(trees[0]) == line


def test_deep_nesting_is_read_without_a_depth_limit():
    """nltk refused 500 levels; the reader has no limit (100,000 levels:
    test_nesting_100000_deep)."""
    deep = "(2 " * 5_000 + "(2 x)" + ")" * 5_000
    assert parse_ptb_line(deep).num_nodes == 5_001


def test_benchmark_script_runs(capsys):
    module = load_script("benchmarks/ptb_reader.py")
    assert module.main(["--data", str(SENTIMENT_DIR), "--repeats", "1", "--limit", "10"]) == 0
    out = capsys.readouterr().out
    assert "30 lines; trees that differ between the readers: 0" in out
    assert "nltk reference" in out and "fast reader" in out and "speed-up" in out
