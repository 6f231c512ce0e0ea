"""CoNLL-U reader and dependency trees: HEAD -> parent, skipped multiword tokens and empty
nodes, every malformed input named by file, line and sentence, batching with input at every node."""
import random
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from treelstm import TreeLSTM
from treelstm.data import (DependencyTree, Vocab, collate_dependency_trees, iter_conllu,
                           parents_from_heads, parse_conllu, read_conllu)

conllu = pytest.importorskip("conllu", reason="the conllu package is not installed "
                                              "(pip install '.[data]')")

# A Spanish-style sentence with a multiword token ("del" = "de" + "el") and an empty node.
SENTENCE = """# sent_id = es-1
# text = Vengo del mercado
1	Vengo	venir	VERB	_	_	0	root	_	_
2-3	del	_	_	_	_	_	_	_	_
2	de	de	ADP	_	_	4	case	_	_
3	el	el	DET	_	_	4	det	_	_
3.1	ir	ir	VERB	_	_	_	_	0:root	_
4	mercado	mercado	NOUN	_	_	1	obl	_	_
"""
SECOND = """# sent_id = en-2
1	Dogs	dog	NOUN	_	_	2	nsubj	_	_
2	bark	bark	VERB	_	_	0	root	_	_
3	loudly	loudly	ADV	_	_	2	advmod	_	_
"""


def _token(index, form, head, deprel="dep"):
    return f"{index}\t{form}\t_\tX\t_\t_\t{head}\t{deprel}\t_\t_"


def _conllu_text(heads, sent_id="s"):
    lines = [f"# sent_id = {sent_id}"]
    lines += [_token(i, f"w{i}", head, "root" if head == 0 else "dep")
              for i, head in enumerate(heads, start=1)]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ reading
def test_words_heads_and_relations():
    first, second = parse_conllu(SENTENCE + "\n" + SECOND)
    assert first.tokens == ["Vengo", "de", "el", "mercado"]  # "del" and "ir" skipped
    assert first.parent == [-1, 3, 3, 0]
    assert first.deprels == ["root", "case", "det", "obl"]
    assert first.sent_id == "es-1"
    assert second.tokens == ["Dogs", "bark", "loudly"] and second.parent == [1, -1, 1]
    assert second.heads == [2, 0, 2]


def test_children_agree_with_conllu_parse_tree():
    """An independent reference: the conllu package's own tree builder."""
    for tree, reference in zip(parse_conllu(SENTENCE + "\n" + SECOND),
                               conllu.parse_tree(SENTENCE + "\n" + SECOND)):
        expected = {}
        stack = [reference]
        while stack:
            node = stack.pop()
            expected[node.token["form"]] = sorted(c.token["form"] for c in node.children)
            stack.extend(node.children)
        children = tree.children()
        got = {tree.tokens[v]: sorted(tree.tokens[c] for c in children[v])
               for v in range(tree.num_nodes)}
        assert got == expected


def test_read_conllu_file_crlf_bom_and_no_final_newline(tmp_path):
    path = tmp_path / "two.conllu"
    text = "\ufeff" + SENTENCE + "\n\n\n" + SECOND.rstrip("\n")
    path.write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
    trees = read_conllu(path)
    assert [t.sent_id for t in trees] == ["es-1", "en-2"]
    assert trees[1].tokens == ["Dogs", "bark", "loudly"]
    assert list(iter_conllu(path)) == trees


def test_iter_conllu_is_lazy(tmp_path):
    path = tmp_path / "bad-later.conllu"
    path.write_text(SECOND + "\n" + _conllu_text([0, 0], "broken"), encoding="utf-8")
    sentences = iter_conllu(path)
    assert next(sentences).tokens == ["Dogs", "bark", "loudly"]  # read before the bad one
    with pytest.raises(ValueError, match="sentence broken"):
        next(sentences)


def test_sentence_without_sent_id_is_numbered():
    trees = parse_conllu(_token(1, "a", 0) + "\n\n" + _token(1, "b", 0) + "\n")
    assert [t.sent_id for t in trees] == ["#1", "#2"]
    with pytest.raises(ValueError, match=r"<string>:3: sentence #2: "):
        parse_conllu(_token(1, "a", 0) + "\n\n" + _token(1, "b", 5) + "\n")


@pytest.mark.parametrize("text, message", [
    (_conllu_text([2, 0, 9]), r"x.conllu:4: sentence s: word 3 has head 9, out of range"),
    (_conllu_text([0, 1, 0]), r"x.conllu:2: sentence s: 2 roots \(words 1, 3 have head 0\).*"
                              r"lines 2, 4"),
    (_conllu_text([2, 3, 1]), r"x.conllu:2: sentence s: no root"),
    (_conllu_text([0, 3, 4, 2]), r"x.conllu:3: sentence s: cycle: words 2 -> 3 -> 4 -> 2"),
    (_conllu_text([0, 2]), r"x.conllu:3: sentence s: word 2 is its own head"),
    (_conllu_text([0, 1]).replace("\t1\tdep", "\t_\tdep"), r"x.conllu:3: .*word 2 .*no HEAD"),
    (_conllu_text([0, 1]).replace("\t1\tdep", "\tone\tdep"), r":3: .*cannot parse.*head"),
    (_conllu_text([0, 1]).replace("2\tw2", "3\tw2"), r":3: .*word ID 3; expected 2"),
    (_conllu_text([0, 1]).replace("2\tw2", "x\tw2"), r":3: .*cannot parse"),
    ("# sent_id = s\n1\tw1\t_\tX\t_\t_\t0\troot\t_\n", r":2: .*9 tab-separated columns; "
                                                      r"expected 10"),
    ("# sent_id = s\n# only a comment\n", r":1: sentence s: no word lines"),
    ("# sent_id = s\n1-2\tab\t_\t_\t_\t_\t_\t_\t_\t_\n", r":2: .*only multiword tokens"),
])
def test_malformed_sentences_name_file_line_and_sentence(tmp_path, text, message):
    path = tmp_path / "x.conllu"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        read_conllu(path)
    with pytest.raises(ValueError, match=message.replace("x.conllu", "<string>")):
        parse_conllu(text)


def test_line_numbers_count_from_the_start_of_the_file(tmp_path):
    path = tmp_path / "x.conllu"
    path.write_text(SENTENCE + "\n" + _conllu_text([2, 0, 9], "later"), encoding="utf-8")
    # SENTENCE is lines 1-8, a blank line 9, then "# sent_id = later" and words 1-3 on 11-13
    with pytest.raises(ValueError, match=r"x.conllu:13: sentence later: word 3 has head 9"):
        read_conllu(path)


def test_bad_utf8_names_the_line(tmp_path):
    path = tmp_path / "bytes.conllu"
    path.write_bytes(SECOND.encode() + b"\n" + _token(1, "caf", 0).encode() + b"\xe9\n")
    with pytest.raises(ValueError, match=r"bytes.conllu:6: not valid UTF-8"):
        read_conllu(path)


def test_missing_file_and_wrong_type(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_conllu(tmp_path / "none.conllu")
    with pytest.raises(TypeError, match="expected a str"):
        parse_conllu(b"1\ta")


# --------------------------------------------------------------------- random trees
def _random_heads(rng: random.Random, num_words: int) -> list[int]:
    """A random tree over words 1..n: each word but the first in a random order attaches to a
    word placed before it."""
    order = list(range(1, num_words + 1))
    rng.shuffle(order)
    heads = [0] * num_words
    for k, word in enumerate(order[1:], start=1):
        heads[word - 1] = order[rng.randrange(k)]
    return heads


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), num_words=st.integers(1, 30))
def test_random_trees_round_trip(seed, num_words):
    heads = _random_heads(random.Random(seed), num_words)
    (tree,) = parse_conllu(_conllu_text(heads))
    assert tree.heads == heads
    assert tree.parent == [h - 1 for h in heads]
    tree.validate()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), num_words=st.integers(2, 20))
def test_random_broken_heads_raise(seed, num_words):
    """Pointing a random word at one of its descendants (or itself) always breaks the tree."""
    rng = random.Random(seed)
    heads = _random_heads(rng, num_words)
    word = rng.randrange(1, num_words + 1)
    descendants = [w for w in range(1, num_words + 1) if _reaches(heads, w, word)]
    heads[word - 1] = rng.choice(descendants)
    with pytest.raises(ValueError, match="own head|cycle|no root"):
        parse_conllu(_conllu_text(heads))


def _reaches(heads, start, target):
    while start != 0:
        if start == target:
            return True
        start = heads[start - 1]
    return False


# --------------------------------------------------------------------- DependencyTree
def test_parents_from_heads_and_validate():
    assert parents_from_heads([2, 0, 2]) == [1, -1, 1]
    for heads, message in [([], "no words"), ([0, 4], "out of range"), ([0, 1.5], "integer"),
                           ([0, True], "integer"), ([2, 1], "no root"), ([0, 0], "2 roots")]:
        with pytest.raises(ValueError, match=message):
            parents_from_heads(heads)
    with pytest.raises(ValueError, match="3 tokens but 2 heads"):
        DependencyTree.from_heads(["a", "b", "c"], [0, 1])
    with pytest.raises(ValueError, match="2 tokens but 1 relations"):
        DependencyTree.from_heads(["a", "b"], [0, 1], deprels=["root"])
    with pytest.raises(ValueError, match="DependencyTree t: cycle"):
        DependencyTree(["a", "b", "c"], [-1, 2, 1], sent_id="t").validate()
    with pytest.raises(ValueError, match="2 tokens but 3 parents"):
        DependencyTree(["a", "b"], [-1, 0, 0]).validate()


def test_collate_gives_every_node_its_word_and_matches_one_tree_at_a_time():
    trees = parse_conllu(SENTENCE + "\n" + SECOND)
    vocab = Vocab.build(tree.tokens for tree in trees)
    inputs = collate_dependency_trees(trees, vocab)
    assert inputs.batch.num_trees == 2 and inputs.batch.num_nodes == 7
    assert inputs.token_ids.tolist() == vocab.encode(trees[0].tokens + trees[1].tokens)
    assert inputs.batch.local_parents() == [trees[0].parent, trees[1].parent]

    torch.manual_seed(0)
    embedding = torch.nn.Embedding(len(vocab), 5)
    model = TreeLSTM(5, 4, cell="childsum").double()
    embedding.double()
    _, (h_batched, _) = model(embedding(inputs.token_ids), inputs.batch)
    for t, tree in enumerate(trees):
        single = collate_dependency_trees([tree], vocab)
        _, (h_single, _) = model(embedding(single.token_ids), single.batch)
        torch.testing.assert_close(h_batched[:, t], h_single[:, 0])


def test_collate_rejects_bad_input():
    vocab = Vocab.build([["a"]])
    tree = DependencyTree(["a"], [-1])
    with pytest.raises(TypeError, match="got one tree"):
        collate_dependency_trees(tree, vocab)
    with pytest.raises(ValueError, match="at least one tree"):
        collate_dependency_trees([], vocab)
    with pytest.raises(TypeError, match="item 1 is a str"):
        collate_dependency_trees([tree, "a"], vocab)
    with pytest.raises(ValueError, match="tree 0: .*2 roots"):
        collate_dependency_trees([DependencyTree(["a", "b"], [-1, -1])], vocab)


def test_missing_conllu_package_is_explained(monkeypatch):
    monkeypatch.setitem(sys.modules, "conllu", None)  # makes "import conllu" fail
    with pytest.raises(ImportError, match=r"pip install conllu"):
        parse_conllu(SECOND)
