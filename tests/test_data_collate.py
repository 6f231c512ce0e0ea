"""collate_trees / collate_sequences: shapes, and that ids, leaves and labels line up."""
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from treelstm import TreeBatch
from treelstm.data import (SentimentTree, SequenceInputs, TreeInputs, Vocab, collate_sequences,
                           collate_trees, parse_ptb_line, read_ptb)

LINES = [
    "(3 (2 It) (4 (2 's) (3 (2 a) (4 lovely) (2 film))))",
    "(2 Hello)",
    "(1 (2 (2 the) (2 plot)) (0 dull))",   # an internal left child beside a leaf
    "(3 (3 (2 x)) (4 (4 (4 great))))",     # unary chains
    "(0 (1 (2 not) (3 good)) (2 (2 .) (2 zebra)))",
]


@pytest.fixture
def trees():
    return [parse_ptb_line(line) for line in LINES]


@pytest.fixture
def vocab(trees):
    return Vocab.build(tree.tokens for tree in trees[:-1])  # "not good . zebra" partly unknown


def test_tree_inputs_shapes(trees, vocab):
    inputs = collate_trees(trees, vocab)
    assert isinstance(inputs, TreeInputs) and isinstance(inputs.batch, TreeBatch)
    num_nodes = sum(t.num_nodes for t in trees)
    num_tokens = sum(len(t.tokens) for t in trees)
    assert inputs.batch.num_nodes == num_nodes and inputs.batch.num_trees == len(trees)
    assert inputs.token_ids.shape == inputs.leaf_index.shape == (num_tokens,)
    assert inputs.labels.shape == (num_nodes,)
    assert inputs.root_labels.shape == (len(trees),)
    for tensor in (inputs.token_ids, inputs.leaf_index, inputs.labels, inputs.root_labels):
        assert tensor.dtype == torch.long


def test_leaves_tokens_and_labels_line_up(trees, vocab):
    inputs = collate_trees(trees, vocab)
    offset, k = 0, 0
    for tree in trees:
        for i, token in enumerate(tree.tokens):
            assert inputs.token_ids[k] == vocab[token]
            assert inputs.leaf_index[k] == offset + i
            assert inputs.labels[offset + i] == tree.labels[i]  # the leaf's own label
            k += 1
        assert inputs.labels[offset:offset + tree.num_nodes].tolist() == tree.labels
        offset += tree.num_nodes
    assert inputs.root_labels.tolist() == [3, 2, 1, 3, 0]
    assert torch.equal(inputs.root_labels, inputs.labels[inputs.batch.roots])
    assert inputs.token_ids[-1] == vocab.unk_index  # "zebra" is unknown


def test_batch_has_the_trees_and_no_children_at_leaves(trees, vocab):
    batch = collate_trees(trees, vocab).batch
    assert batch.local_parents() == [tree.parent for tree in trees]
    leaf_index = collate_trees(trees, vocab).leaf_index
    assert torch.all(batch.num_children[leaf_index] == 0)
    assert int(batch.num_children.eq(0).sum()) == len(leaf_index)


def read_back_in_order(batch, node):
    """Independent check of child slots: the leaves under ``node`` in slot order."""
    children = sorted((int(batch.position[c]), c) for c in
                      torch.nonzero(batch.parent == node).flatten().tolist())
    if not children:
        return [node]
    return [leaf for _, child in children for leaf in read_back_in_order(batch, child)]


def test_child_slots_follow_sentence_order(trees, vocab):
    inputs = collate_trees(trees, vocab)
    batch = inputs.batch
    for t, tree in enumerate(trees):
        leaves = read_back_in_order(batch, int(batch.roots[t]))
        offset = int(batch.offsets[t])
        assert leaves == list(range(offset, offset + len(tree.tokens)))
    # "(1 (2 the plot) (0 dull))": internal node 3 is in slot 0, leaf 2 ("dull") in slot 1.
    assert batch.local_positions()[2] == [0, 1, 1, 0, -1]
    children = batch.parent >= 0
    assert torch.all(batch.position[children] < batch.num_children[batch.parent[children]])


def test_single_tree(trees, vocab):
    inputs = collate_trees([trees[1]], vocab)
    assert inputs.batch.num_nodes == 1
    assert inputs.leaf_index.tolist() == [0]
    assert inputs.token_ids.tolist() == [vocab["Hello"]]


def test_binary_view_labels_pass_through(vocab):
    tree = SentimentTree(["a", "b"], [2, 2, -1], [-1, 1, 0])
    inputs = collate_trees([tree], vocab)
    assert inputs.labels.tolist() == [-1, 1, 0]
    assert inputs.root_labels.tolist() == [0]


def test_to_device(trees, vocab):
    inputs = collate_trees(trees, vocab).to("cpu")
    assert inputs.token_ids.device.type == "cpu" and inputs.batch.device.type == "cpu"
    sequences = collate_sequences(trees, vocab).to("cpu")
    assert sequences.lengths.device.type == "cpu"


def test_sequence_inputs(trees, vocab):
    inputs = collate_sequences(trees, vocab)
    assert isinstance(inputs, SequenceInputs)
    lengths = [len(t.tokens) for t in trees]
    assert inputs.token_ids.shape == (len(trees), max(lengths))
    assert inputs.lengths.tolist() == lengths
    assert inputs.labels.tolist() == [t.root_label for t in trees]
    for row, tree in enumerate(trees):
        assert inputs.token_ids[row, :lengths[row]].tolist() == vocab.encode(tree.tokens)
        assert torch.all(inputs.token_ids[row, lengths[row]:] == vocab.pad_index)
    assert vocab.pad_index == 0


def test_tree_and_sequence_inputs_agree(trees, vocab):
    tree_inputs = collate_trees(trees, vocab)
    sequence_inputs = collate_sequences(trees, vocab)
    mask = torch.arange(sequence_inputs.token_ids.shape[1]) < sequence_inputs.lengths[:, None]
    assert torch.equal(sequence_inputs.token_ids[mask], tree_inputs.token_ids)
    assert torch.equal(sequence_inputs.labels, tree_inputs.root_labels)


def test_sequences_feed_an_lstm(trees, vocab):
    inputs = collate_sequences(trees, vocab)
    embed = nn.Embedding(len(vocab), 4, padding_idx=0)
    lstm = nn.LSTM(4, 5, batch_first=True)
    packed = pack_padded_sequence(embed(inputs.token_ids), inputs.lengths, batch_first=True,
                                  enforce_sorted=False)
    _, (h, _) = lstm(packed)
    assert h.shape == (1, len(trees), 5)


@pytest.mark.parametrize("collate", [collate_trees, collate_sequences])
def test_errors(trees, vocab, collate):
    name = collate.__name__
    with pytest.raises(ValueError, match=rf"{name}: expected at least one tree, got none"):
        collate([], vocab)
    with pytest.raises(TypeError, match=rf"{name}: expected a list of SentimentTree, got one tree"):
        collate(trees[0], vocab)
    with pytest.raises(TypeError, match=rf"{name}: item 1 is a str; expected SentimentTree"):
        collate([trees[0], "(2 a)"], vocab)
    with pytest.raises(TypeError, match=rf"{name}: vocab must be a Vocab, got dict"):
        collate(trees, {})
    with pytest.raises(ValueError, match=rf"{name}: tree 0: 3 parents but 2 labels"):
        collate([SentimentTree(["a", "b"], [2, 2, -1], [2, 2])], vocab)
    with pytest.raises(ValueError, match=rf"{name}: tree 1: 0 tokens for 1 nodes"):
        collate([trees[0], SentimentTree([], [-1], [2])], vocab)
    with pytest.raises(ValueError, match=rf"{name}: tree 0: 2 roots \(parent -1: nodes \[0, 1\]\)"):
        collate([SentimentTree(["a", "b"], [-1, -1], [2, 2])], vocab)
    with pytest.raises(ValueError, match=rf"{name}: tree 0: node 1 has parent 0, which is a leaf"):
        collate([SentimentTree(["a", "b"], [2, 0, -1], [2, 2, 2])], vocab)
    with pytest.raises(ValueError, match=rf"{name}: tree 0: some nodes never reach the root"):
        collate([SentimentTree(["a"], [3, 2, 1, -1], [2, 2, 2, 2])], vocab)


def test_inputs_feed_a_tree_lstm(trees, vocab):
    from treelstm import TreeLSTM

    binary = [parse_ptb_line(line) for line in
              ["(1 (2 (2 the) (2 plot)) (0 dull))", "(3 (2 very) (3 good))"]]
    inputs = collate_trees(binary, vocab)
    embed = nn.Embedding(len(vocab), 4)
    model = TreeLSTM(4, 5, cell="nary", arity=2)
    output, (h_n, _) = model(embed(inputs.token_ids), inputs.batch, inputs.leaf_index)
    assert output.shape == (inputs.batch.num_nodes, 5)
    assert h_n.shape == (1, 2, 5)
    torch.testing.assert_close(h_n[0], output[inputs.batch.roots])


SST_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst"


@pytest.mark.skipif(not SST_DIR.is_dir(), reason=f"SST not found at {SST_DIR} (the shared data "
                                                 "directory is only present on the dev machine)")
def test_vectorised_collate_equals_the_per_tree_lists_on_all_of_sst():
    """The batch's slots (ordered by each child's first leaf, over the whole batch at once) are
    every tree's own ``child_positions()``, and its leaves are the tokens' nodes."""
    trees = [tree for split in ("train", "dev", "test") for tree in read_ptb(SST_DIR / f"{split}.txt")]
    vocab = Vocab.build(tree.tokens for tree in trees[:100])
    for start in range(0, len(trees), 1000):
        chunk = trees[start:start + 1000]
        inputs = collate_trees(chunk, vocab)
        assert inputs.batch.position.tolist() == [p for tree in chunk for p in tree.child_positions()]
        assert inputs.batch.parent.tolist() == [
            -1 if p < 0 else p + offset for tree, offset in zip(chunk, inputs.batch.offsets.tolist())
            for p in tree.parent]
        assert inputs.leaf_index.tolist() == [offset + i for tree, offset in
                                              zip(chunk, inputs.batch.offsets.tolist())
                                              for i in range(len(tree.tokens))]


@pytest.mark.parametrize("collate", [collate_trees, collate_sequences])
@pytest.mark.parametrize("tokens,labels,match", [
    (["a", "b"], [2, None, 2], r"tree 1: node 1 has label None; expected an integer"),
    (["a", "b"], [2, "x", 2], r"tree 1: node 1 has label 'x'; expected an integer"),
    (["a", "b"], [2, 2, 2 ** 70], r"tree 1: node 2 has label 1180591620717411303424"),
    (["a", 7], [2, 2, 2], r"tree 1: token 1 is 7; expected a str"),
])
def test_bad_labels_and_tokens_name_the_tree(trees, vocab, collate, tokens, labels, match):
    bad = SentimentTree(tokens, [2, 2, -1], labels)
    with pytest.raises(ValueError, match=rf"{collate.__name__}: {match}"):
        collate([trees[0], bad], vocab)
