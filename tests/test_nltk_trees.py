"""nltk trees -> SentimentTree / TreeBatch (``treelstm.data.nltk_trees``): SST lines against
``parse_ptb_line``, hand-written trees for parser output (n-ary, unary, bare words), a recursive
reference on generated trees, binarisation against nltk's ``chomsky_normal_form``, and every bad
input."""
import math
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from treelstm import TreeBatch
from treelstm.data import IGNORE_INDEX, SentimentTree, parse_ptb_line, read_ptb
from treelstm.data.nltk_trees import parse_bracketed, sentiment_tree_from_nltk, tree_batch_from_nltk

nltk = pytest.importorskip("nltk", reason="nltk is not installed (pip install '.[test]')")
Tree = nltk.Tree

REPO = Path(__file__).resolve().parents[1]
SST_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst"
SENTIMENT_DIR = REPO / "treelstm" / "datasets" / "sentiment"
needs_sst = pytest.mark.skipif(not SST_DIR.is_dir(), reason=f"SST not found at {SST_DIR} (the "
                                                            "shared data directory is only "
                                                            "present on the dev machine)")
X = IGNORE_INDEX


# ------------------------------------------------------------------ references
def reference_nodes(tree):
    """Independent reference: ``(start, end, label)`` of every node (leaves ``(i, i + 1, .)``),
    by recursion over the nltk tree, with unary chains collapsed into their top node."""
    nodes = []

    def label_of(label):
        return int(label) if str(label) in {"0", "1", "2", "3", "4"} else X

    def visit(node, start):
        if isinstance(node, str):
            nodes.append((start, start + 1, X))
            return start + 1
        label = label_of(node.label())
        while len(node) == 1 and isinstance(node[0], Tree):
            node = node[0]
        if len(node) == 1:
            nodes.append((start, start + 1, label))
            return start + 1
        end = start
        for child in node:
            end = visit(child, end)
        nodes.append((start, end, label))
        return end

    visit(tree, 0)
    return sorted(nodes)


def nodes_of(tree: SentimentTree):
    """``(start, end, label)`` of every node of a SentimentTree, from its parent list."""
    first = list(range(tree.num_nodes))
    last = list(range(tree.num_nodes))
    for node in range(len(tree.tokens), tree.num_nodes):  # post-order: children come first
        children = [c for c, p in enumerate(tree.parent) if p == node]
        first[node] = min(first[c] for c in children)
        last[node] = max(last[c] for c in children)
    return sorted((first[v], last[v] + 1, tree.labels[v]) for v in range(tree.num_nodes))


def spans(nodes):
    return sorted((start, end) for start, end, _ in nodes if end - start > 1)


def nltk_binarised_spans(tree, factor):
    """Spans of the internal nodes after nltk's own collapse_unary + chomsky_normal_form."""
    tree = tree.copy(deep=True)
    tree.collapse_unary(collapsePOS=True, collapseRoot=True)
    tree.chomsky_normal_form(factor=factor)
    found = []

    def visit(node, start):
        if len(node) == 1 and isinstance(node[0], str):
            return start + 1
        end = start
        for child in node:
            end = visit(child, end)
        found.append((start, end))
        return end

    visit(tree, 0)
    return sorted(found)


def check_numbering(tree: SentimentTree):
    """Leaves 0..n-1 without children, internal nodes after their children, root last."""
    tree.validate()
    num_tokens = len(tree.tokens)
    assert tree.root == tree.num_nodes - 1
    for node, parent in enumerate(tree.parent):
        assert parent == -1 or parent > node
        assert parent == -1 or parent >= num_tokens


# ------------------------------------------------------------------ SST
@pytest.mark.parametrize("path", sorted(SENTIMENT_DIR.glob("*.txt")), ids=lambda p: p.name)
def test_bundled_treebank_equals_parse_ptb_line(path):
    for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        expected = parse_ptb_line(line)
        assert sentiment_tree_from_nltk(Tree.fromstring(line)) == expected, f"{path.name}:{number}"
        assert parse_bracketed(line) == expected, f"{path.name}:{number}"


@needs_sst
def test_sst_test_split_equals_parse_ptb_line():
    lines = (SST_DIR / "test.txt").read_text("utf-8").splitlines()
    assert len(lines) == 2210
    for number, line in enumerate(lines, 1):
        tree = sentiment_tree_from_nltk(Tree.fromstring(line))
        expected = parse_ptb_line(line)
        assert tree.tokens == expected.tokens, f"test.txt:{number}"
        assert tree.parent == expected.parent, f"test.txt:{number}"
        assert tree.labels == expected.labels, f"test.txt:{number}"
        assert sentiment_tree_from_nltk(Tree.fromstring(line), binarize=2) == expected


@needs_sst
@pytest.mark.parametrize("split", ["dev", pytest.param("train", marks=pytest.mark.slow)])
def test_sst_lines_equal_parse_ptb_line(split):
    # train has words with a no-break space ("8\xa01\/2"), which parse_bracketed keeps whole.
    for number, line in enumerate((SST_DIR / f"{split}.txt").read_text("utf-8").splitlines(), 1):
        assert parse_bracketed(line) == parse_ptb_line(line), f"{split}.txt:{number}"


DETERMINERS = {"the", "a", "an", "this", "that", "his", "her", "its", "their", "my", "your", "our",
               "these", "those"}
VERBS = {"makes", "make", "made", "gives", "give", "gave", "takes", "take", "took", "puts", "put",
         "turns", "turn", "keeps", "keep", "sets", "brings", "leaves", "tells", "finds", "find"}


@needs_sst
def test_sst_binarisation_evidence():
    """The counts the module docstring gives for choosing right factoring."""
    determiner = {"right": 0, "left": 0}
    verb = {"right": 0, "left": 0}
    period = {"low": 0, "top": 0}
    for split in ("train", "dev", "test"):
        for tree in read_ptb(SST_DIR / f"{split}.txt"):
            num_tokens, children = len(tree.tokens), tree.children()
            first, last = list(range(tree.num_nodes)), list(range(tree.num_nodes))
            for node in range(num_tokens, tree.num_nodes):
                left, right = children[node]  # SST is strictly binary
                first[node], last[node] = first[left], last[right]
                word = tree.tokens[first[node]].lower()
                shape = "right" if left < num_tokens else "left"
                if last[node] - first[node] == 2 and word in DETERMINERS:
                    determiner[shape] += 1
                if last[node] - first[node] >= 2 and word in VERBS:
                    verb[shape] += 1
            if num_tokens >= 3 and tree.tokens[-1] == ".":
                sibling = next(c for c in children[tree.parent[num_tokens - 1]]
                               if c != num_tokens - 1)
                period["top" if first[sibling] == 0 else "low"] += 1
    assert determiner == {"right": 7375, "left": 776}
    assert verb == {"right": 1202, "left": 1395}
    assert period == {"low": 7952, "top": 3019}


# ------------------------------------------------------------------ hand-written trees
def sentiment(tokens, parent, labels):
    return SentimentTree(tokens=tokens, parent=parent, labels=labels)


# name -> (bracketed line, binarize, factor, expected tree), worked out by hand.
CASES = {
    "parser output": (
        "(ROOT (S (NP (DT The) (NN movie)) (VP (VBD was) (ADJP (JJ great)))))", None, "right",
        # ROOT->S and ADJP->JJ collapse; NP = 4, VP = 5, ROOT = 6
        sentiment(["The", "movie", "was", "great"], [4, 4, 5, 5, 6, 6, -1], [X] * 7)),
    "n-ary": (
        "(S (NP (DT a) (JJ big) (JJ red) (NN dog)) (VP (VBZ barks)) (. .))", None, "right",
        sentiment(["a", "big", "red", "dog", "barks", "."], [6, 6, 6, 6, 7, 7, 7, -1], [X] * 8)),
    "n-ary, binarised right": (
        "(S (NP (DT a) (JJ big) (JJ red) (NN dog)) (VP (VBZ barks)) (. .))", 2, "right",
        # (S (NP a (big (red dog))) (barks .)): (red dog) = 6, (big ..) = 7, NP = 8,
        # (barks .) = 9, S = 10
        sentiment(["a", "big", "red", "dog", "barks", "."],
                  [8, 7, 6, 6, 9, 9, 7, 8, 10, 10, -1], [X] * 11)),
    "n-ary, binarised left": (
        "(S (NP (DT a) (JJ big) (JJ red) (NN dog)) (VP (VBZ barks)) (. .))", 2, "left",
        # (S ((((a big) red) dog) barks) .): (a big) = 6, (.. red) = 7, NP = 8, (NP barks) = 9
        sentiment(["a", "big", "red", "dog", "barks", "."],
                  [6, 6, 7, 8, 9, 10, 7, 8, 9, 10, -1], [X] * 11)),
    "5 children, binarize=3": (
        "(4 (2 a) (2 b) (3 c) (4 d) (2 e))", 3, "right",
        # (4 a b (c d e)): (c d e) = 5, root = 6
        sentiment(["a", "b", "c", "d", "e"], [6, 6, 5, 5, 5, 6, -1], [2, 2, 3, 4, 2, X, 4])),
    "5 children, binarize=3, left": (
        "(4 (2 a) (2 b) (3 c) (4 d) (2 e))", 3, "left",
        sentiment(["a", "b", "c", "d", "e"], [5, 5, 5, 6, 6, 6, -1], [2, 2, 3, 4, 2, X, 4])),
    "already narrow enough": (
        "(4 (2 a) (2 b) (3 c))", 3, "right",
        sentiment(["a", "b", "c"], [3, 3, 3, -1], [2, 2, 3, 4])),
    "unary chains keep the top label": (
        "(3 (3 (2 x)) (4 (4 (4 great))))", None, "right",
        sentiment(["x", "great"], [2, 2, -1], [3, 4, 3])),
    "one word under a unary chain": (
        "(ROOT (S (VP (VB Go))))", None, "right", sentiment(["Go"], [-1], [X])),
    "mixed labels": (
        "(4 (NP (2 a) (3 b)) (X c))", None, "right",
        sentiment(["a", "b", "c"], [3, 3, 4, 4, -1], [2, 3, X, X, 4])),
    "bare words": ("(S a b)", None, "right", sentiment(["a", "b"], [2, 2, -1], [X, X, X])),
    "bare word beside a phrase": (
        "(3 a (NP b c) (2 d))", None, "right",
        # NP = 4 (b c), root = 5
        sentiment(["a", "b", "c", "d"], [5, 4, 4, 5, 5, -1], [X, X, X, 2, X, 3])),
    "internal node left of a leaf": (
        "(1 (2 (2 a) (2 b)) (0 c))", None, "right",
        sentiment(["a", "b", "c"], [3, 3, 4, 4, -1], [2, 2, 0, 2, 1])),
    "empty top bracket of PTB files": (
        "( (S (NP (PRP It)) (VP (VBZ works))) )", None, "right",
        sentiment(["It", "works"], [2, 2, -1], [X, X, X])),
    "label spellings": (
        "(+3 (03 a) (-0 b) (5 c) (-1 d))", None, "right",
        sentiment(["a", "b", "c", "d"], [4, 4, 4, 4, -1], [3, 0, X, X, 3])),
}


@pytest.mark.parametrize("name", CASES)
def test_hand_written_trees(name):
    line, binarize, factor, expected = CASES[name]
    tree = parse_bracketed(line, binarize=binarize, factor=factor)
    assert tree == expected
    check_numbering(tree)
    assert sentiment_tree_from_nltk(Tree.fromstring(line), binarize, factor) == expected


def test_integer_labels_and_subclasses():
    tree = Tree(3, [Tree(2, ["a"]), Tree(7, ["b"]), Tree(True, ["c"])])
    assert sentiment_tree_from_nltk(tree) == sentiment(["a", "b", "c"], [3, 3, 3, -1],
                                                       [2, X, X, 3])
    parented = nltk.ParentedTree.fromstring("(S (NP a) (VP b))")
    assert sentiment_tree_from_nltk(parented) == sentiment(["a", "b"], [2, 2, -1], [X] * 3)


def test_input_tree_is_not_changed():
    line = "(ROOT (S (NP (DT a) (JJ big) (NN dog)) (VP (VBZ barks))))"
    tree = Tree.fromstring(line)
    sentiment_tree_from_nltk(tree, binarize=2)
    assert tree == Tree.fromstring(line)


def test_deep_tree_without_recursion():
    tree = Tree("W", ["w0"])
    for depth in range(1, 3000):
        tree = Tree("X", [tree, Tree("W", [f"w{depth}"])])
    converted = sentiment_tree_from_nltk(tree)
    assert converted.tokens == [f"w{i}" for i in range(3000)]
    check_numbering(converted)
    assert converted.parent[:2] == [3000, 3000] and converted.parent[-2:] == [5998, -1]


# ------------------------------------------------------------------ generated trees
LABELS = ["S", "NP", "VP", "", "0", "2", "4", "7", "ROOT"]
WORDS = ["a", "b", "dog", "'s", "-LRB-", "8\xa01\\/2"]
preterminals = st.builds(lambda label, word: Tree(label, [word]), st.sampled_from(LABELS),
                         st.sampled_from(WORDS))


def phrases(children):
    return st.builds(lambda label, kids: Tree(label, kids), st.sampled_from(LABELS),
                     st.lists(children, min_size=1, max_size=5))


trees = st.recursive(preterminals, phrases, max_leaves=25)
trees_with_bare_words = st.recursive(preterminals | st.sampled_from(WORDS), phrases,
                                     max_leaves=25).filter(lambda tree: isinstance(tree, Tree))
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(trees_with_bare_words)
def test_generated_trees_match_the_recursive_reference(tree):
    converted = sentiment_tree_from_nltk(tree)
    check_numbering(converted)
    assert converted.tokens == tree.leaves()
    assert nodes_of(converted) == reference_nodes(tree)


@SETTINGS
@given(trees, st.sampled_from(["right", "left"]))
def test_binarised_spans_equal_nltk_chomsky_normal_form(tree, factor):
    converted = sentiment_tree_from_nltk(tree, binarize=2, factor=factor)
    check_numbering(converted)
    assert converted.widest_node()[1] <= 2
    assert converted.tokens == tree.leaves()
    assert spans(nodes_of(converted)) == nltk_binarised_spans(tree, factor)


@SETTINGS
@given(trees_with_bare_words, st.integers(2, 4), st.sampled_from(["right", "left"]))
def test_binarised_trees_keep_leaves_spans_and_labels(tree, arity, factor):
    plain = sentiment_tree_from_nltk(tree)
    converted = sentiment_tree_from_nltk(tree, binarize=arity, factor=factor)
    check_numbering(converted)
    assert converted.tokens == plain.tokens
    assert converted.widest_node()[1] <= arity
    # every original node is still there with its label; the new ones are unlabelled
    new_nodes = sorted(set(nodes_of(converted)) - set(nodes_of(plain)))
    assert set(nodes_of(plain)) <= set(nodes_of(converted))
    assert all(label == X for _, _, label in new_nodes)
    widths = [len(kids) for kids in plain.children()]
    assert len(new_nodes) == sum(math.ceil((m - arity) / (arity - 1)) for m in widths if m > arity)


# ------------------------------------------------------------------ TreeBatch
def test_tree_batch_from_nltk():
    lines = ["(S (NP (DT a) (JJ big) (NN dog)) (VP barks))", "(2 x)", "(1 (2 (2 a) (2 b)) (0 c))"]
    batch = tree_batch_from_nltk([Tree.fromstring(line) for line in lines])
    expected = [parse_bracketed(line) for line in lines]
    reference = TreeBatch.from_parents([t.parent for t in expected],
                                       [t.child_positions() for t in expected])
    assert batch.local_parents() == reference.local_parents()
    assert batch.local_positions() == reference.local_positions()
    # written out: (a big dog) = 4 under S = 5; leaves in sentence order take slots 0, 1, 2
    assert batch.local_parents()[0] == [4, 4, 4, 5, 5, -1]
    assert batch.local_positions()[0][:5] == [0, 1, 2, 1, 0]
    assert batch.local_positions()[2][:4] == [0, 1, 1, 0]  # the internal node 3 is left of c
    assert batch.max_children == 3
    binary = tree_batch_from_nltk([Tree.fromstring(line) for line in lines], binarize=2)
    binary.check_arity(2)
    with pytest.raises(ValueError):
        batch.check_arity(2)


def test_tree_batch_from_one_tree():
    batch = tree_batch_from_nltk(Tree.fromstring("(S (NP a b) c)"))
    assert len(batch) == 1 and batch.local_parents() == [[3, 3, 4, 4, -1]]


@pytest.mark.parametrize("bad, error, message", [
    ([], ValueError, "expected at least one tree; got none"),
    ("(S a)", TypeError, "expected nltk.Tree objects, got a str \\(read it with "
                         "nltk.Tree.fromstring\\)"),
    ([Tree.fromstring("(S a)"), "(S b)"], TypeError, "tree 1: expected an nltk.Tree, got str"),
    ([Tree.fromstring("(S a)"), Tree("S", [])], ValueError, "tree 1: node \\(S\\) at position "
                                                            "\\(\\) has no children"),
])
def test_tree_batch_from_nltk_refuses(bad, error, message):
    with pytest.raises(error, match=f"^tree_batch_from_nltk: {message}"):
        tree_batch_from_nltk(bad)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("bad, error, message", [
    ("(S a)", TypeError, "expected an nltk.Tree, got str"),
    (None, TypeError, "expected an nltk.Tree, got NoneType"),
    (["a"], TypeError, "expected an nltk.Tree, got list"),
    (Tree("S", []), ValueError, "node \\(S\\) at position \\(\\) has no children; expected a "
                                "preterminal \\(label word\\) or children"),
    (Tree("S", [Tree("NP", [Tree("DT", ["a"])]), Tree("VP", [])]), ValueError,
     "node \\(VP\\) at position \\(1,\\) has no children"),
    (Tree("S", [Tree("NP", [Tree("X", [])])]), ValueError,
     "node \\(X\\) at position \\(0, 0\\) has no children"),
    (Tree("S", [3, "a"]), TypeError, "node \\(S ...\\) at position \\(\\) has a child of type int; "
                                     "expected an nltk.Tree or a str"),
    (Tree("S", [Tree("NP", [None])]), TypeError,
     "node \\(NP ...\\) at position \\(0,\\) has a child of type NoneType"),
])
def test_sentiment_tree_from_nltk_refuses(bad, error, message):
    with pytest.raises(error, match=f"^sentiment_tree_from_nltk: {message}"):
        sentiment_tree_from_nltk(bad)


@pytest.mark.parametrize("binarize", [0, 1, -2, True, 2.0, "2"])
def test_bad_binarize(binarize):
    message = f"binarize must be None or an integer >= 2 \\(the most children a node keeps\\); " \
              f"got {binarize!r}"
    with pytest.raises(ValueError, match=message):
        sentiment_tree_from_nltk(Tree.fromstring("(S a b c)"), binarize=binarize)
    with pytest.raises(ValueError, match=message):
        parse_bracketed("(S a b c)", binarize=binarize)
    with pytest.raises(ValueError, match=message):
        tree_batch_from_nltk([Tree.fromstring("(S a b c)")], binarize=binarize)


def test_bad_factor():
    with pytest.raises(ValueError, match="factor must be one of \\('right', 'left'\\); got 'up'"):
        sentiment_tree_from_nltk(Tree.fromstring("(S a b c)"), binarize=2, factor="up")


@pytest.mark.parametrize("line, message", [
    ("", "empty line; expected one bracketed tree per line"),
    ("  \t", "empty line"),
    ("(S (NP a)", "malformed brackets: expected '\\)' but got 'end-of-string' at index 9"),
    ("(S a))", "malformed brackets: expected 'end-of-string' but got '\\)' at index 5"),
    ("hello", "malformed brackets: expected '\\(' but got 'hello' at index 0"),
    ("(S a) (S b)", "malformed brackets: expected 'end-of-string' but got '\\(S' at index 6"),
    ("()", "node \\(\\) at position \\(\\) has no children"),
    ("(S (NP) a)", "node \\(NP\\) at position \\(0,\\) has no children"),
])
def test_parse_bracketed_refuses(line, message):
    with pytest.raises(ValueError, match=f"^parse_bracketed: {message}") as caught:
        parse_bracketed(line)
    assert "\n" not in str(caught.value)
    # no nltk traceback attached
    assert caught.value.__context__ is None or caught.value.__suppress_context__


@pytest.mark.parametrize("bad", [b"(S a)", None, Tree.fromstring("(S a)")])
def test_parse_bracketed_refuses_non_str(bad):
    with pytest.raises(TypeError, match=f"parse_bracketed: expected a str, got "
                                        f"{type(bad).__name__}"):
        parse_bracketed(bad)


def test_without_nltk_the_error_says_what_to_install(monkeypatch):
    for name in [name for name in sys.modules if name == "nltk" or name.startswith("nltk.")]:
        monkeypatch.setitem(sys.modules, name, None)
    for call in (lambda: parse_bracketed("(S a)"), lambda: sentiment_tree_from_nltk(object()),
                 lambda: tree_batch_from_nltk([])):
        with pytest.raises(ImportError, match="needs nltk, which is not installed: "
                                              "pip install treelstm\\[data\\]"):
            call()
