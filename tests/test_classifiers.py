"""TreeLSTMClassifier and LSTMClassifier: shapes, batched == one at a time, structure sensitivity,
the two backends, configs, bad inputs, one-word and 1,000-token sentences."""
import pytest
import torch
from torch import nn

from conftest import BACKENDS, needs_dgl
from treelstm import TreeLSTM
from treelstm.baseline import LSTMClassifier
from treelstm.data import (SentimentTree, Vocab, collate_sequences, collate_trees, parse_ptb_line,
                           to_ptb_string)
from treelstm.models import ClassifierOutput, TreeClassifierOutput, TreeLSTMClassifier

LINES = [
    "(3 (2 It) (4 (2 's) (3 (2 a) (3 (4 lovely) (2 film)))))",
    "(2 Hello)",                                              # one token: the root is a leaf
    "(1 (2 (2 the) (2 plot)) (0 dull))",                      # internal left child, leaf right
    "(3 (3 (2 x)) (4 (4 (4 great))))",                        # unary chains
    "(0 (1 (2 not) (3 good)) (2 (2 .) (2 zebra)))",
]


@pytest.fixture
def trees():
    return [parse_ptb_line(line) for line in LINES]


@pytest.fixture
def vocab(trees):
    return Vocab.build(tree.tokens for tree in trees)


def _tree_model(vocab, **kwargs):
    torch.manual_seed(0)
    options = dict(embed_dim=6, hidden_size=5, dropout=0.0)
    options.update(kwargs)
    return TreeLSTMClassifier(len(vocab), 5, **options).double().eval()


def _lstm_model(vocab, **kwargs):
    torch.manual_seed(0)
    options = dict(embed_dim=6, hidden_size=5, dropout=0.0)
    options.update(kwargs)
    return LSTMClassifier(len(vocab), 5, **options).double().eval()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", ["nary", "childsum"])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_tree_classifier_shapes(trees, vocab, backend, cell, num_layers):
    model = _tree_model(vocab, cell=cell, backend=backend, num_layers=num_layers)
    inputs = collate_trees(trees, vocab)
    output = model(inputs)
    assert isinstance(output, TreeClassifierOutput)
    node_logits, root_logits = output
    assert node_logits.shape == (inputs.batch.num_nodes, 5)
    assert root_logits.shape == (len(trees), 5)
    assert torch.equal(root_logits, node_logits[inputs.batch.roots])
    assert torch.isfinite(node_logits).all()


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_lstm_classifier_shapes(trees, vocab, bidirectional, num_layers):
    model = _lstm_model(vocab, bidirectional=bidirectional, num_layers=num_layers)
    output = model(collate_sequences(trees, vocab))
    assert isinstance(output, ClassifierOutput) and output.node_logits is None
    logits = output.root_logits
    assert logits.shape == (len(trees), 5)
    assert model.output.in_features == (2 if bidirectional else 1) * 5


@pytest.mark.parametrize("cell", ["nary", "childsum"])
def test_tree_classifier_batched_equals_one_at_a_time(trees, vocab, cell):
    model = _tree_model(vocab, cell=cell, num_layers=2)
    batched = model(collate_trees(trees, vocab))
    node_rows = []
    for tree in trees:
        single = model(collate_trees([tree], vocab))
        node_rows.append(single.node_logits)
    torch.testing.assert_close(batched.node_logits, torch.cat(node_rows), rtol=0, atol=1e-12)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_lstm_classifier_batched_equals_unpadded(trees, vocab, bidirectional):
    """Padding must not leak into the result: each sentence alone, without padding, through the
    model's own nn.LSTM, gives the same logits."""
    model = _lstm_model(vocab, bidirectional=bidirectional, num_layers=2)
    batched = model(collate_sequences(trees, vocab)).root_logits
    for row, tree in enumerate(trees):
        ids = torch.tensor([vocab.encode(tree.tokens)])
        _, (h_n, _) = model.lstm(model.embedding(ids))
        last = torch.cat([h_n[-2], h_n[-1]], dim=1) if bidirectional else h_n[-1]
        torch.testing.assert_close(batched[row], model.output(last)[0], rtol=0, atol=1e-12)


def test_tree_classifier_uses_input_at_leaves_only(trees, vocab):
    """Same as a TreeLSTM run by hand with zero input at the internal nodes."""
    model = _tree_model(vocab)
    inputs = collate_trees(trees, vocab)
    x = torch.zeros(inputs.batch.num_nodes, 6, dtype=torch.float64)
    x[inputs.leaf_index] = model.embedding(inputs.token_ids)
    # With bias, zero input gives W·0 + b_ih = b_ih, exactly what input_index does.
    h, _ = model.tree_lstm(x, inputs.batch)
    torch.testing.assert_close(model(inputs).node_logits, model.output(h), rtol=0, atol=1e-12)


def test_tree_classifier_follows_the_structure(vocab):
    """Swapping the two leaves under the root changes an N-ary model's output but not a
    Child-Sum one's (order-invariant); the LSTM baseline sees the order too."""
    ab = [parse_ptb_line("(3 (3 good) (1 dull))")]
    ba = [parse_ptb_line("(3 (1 dull) (3 good))")]
    vocab = Vocab.build([["good", "dull"]])
    nary, childsum = _tree_model(vocab, cell="nary"), _tree_model(vocab, cell="childsum")
    assert not torch.allclose(nary(collate_trees(ab, vocab)).root_logits,
                              nary(collate_trees(ba, vocab)).root_logits)
    torch.testing.assert_close(childsum(collate_trees(ab, vocab)).root_logits,
                               childsum(collate_trees(ba, vocab)).root_logits)
    lstm = _lstm_model(vocab)
    assert not torch.allclose(lstm(collate_sequences(ab, vocab)).root_logits,
                              lstm(collate_sequences(ba, vocab)).root_logits)


@needs_dgl
def test_tree_classifier_backends_agree(trees, vocab):
    model = _tree_model(vocab, num_layers=2)
    inputs = collate_trees(trees, vocab)
    native = model(inputs).node_logits
    model.tree_lstm.backend = "dgl"
    torch.testing.assert_close(model(inputs).node_logits, native, rtol=0, atol=1e-10)


def test_dropout_only_in_training(trees, vocab):
    model = _tree_model(vocab, dropout=0.5)
    inputs = collate_trees(trees, vocab)
    assert torch.equal(model(inputs).node_logits, model(inputs).node_logits)
    model.train()
    torch.manual_seed(1)
    first = model(inputs).node_logits
    assert not torch.equal(first, model(inputs).node_logits)


def test_padding_row_is_zero_and_gets_no_gradient(trees, vocab):
    for model, inputs in ((_tree_model(vocab), collate_trees(trees, vocab)),
                          (_lstm_model(vocab), collate_sequences(trees, vocab))):
        assert torch.count_nonzero(model.embedding.weight[vocab.pad_index]) == 0
        model(inputs).root_logits.sum().backward()
        assert torch.count_nonzero(model.embedding.weight.grad[vocab.pad_index]) == 0


@pytest.mark.parametrize("make", [
    lambda v: TreeLSTMClassifier(v, 5, 6, 5, num_layers=2, cell="childsum", backend="native"),
    lambda v: TreeLSTMClassifier(v, 2, 6, 5, cell="nary"),
    lambda v: LSTMClassifier(v, 5, 6, 5, num_layers=2, bidirectional=True, dropout=0.3),
], ids=["tree-childsum", "tree-nary", "bilstm"])
def test_config_rebuilds_the_same_architecture(make):
    model = make(11)
    clone = type(model)(**model.config)
    assert clone.config == model.config
    assert {k: v.shape for k, v in clone.state_dict().items()} == \
        {k: v.shape for k, v in model.state_dict().items()}
    clone.load_state_dict(model.state_dict())


def test_nary_defaults_to_arity_two(vocab):
    model = TreeLSTMClassifier(len(vocab), 5, 6, 5)
    assert isinstance(model.tree_lstm, TreeLSTM)
    assert model.tree_lstm.cell == "nary" and model.tree_lstm.arity == 2
    assert model.config["arity"] == 2


def test_single_layer_dropout_does_not_warn(vocab, recwarn):
    TreeLSTMClassifier(len(vocab), 5, 6, 5, dropout=0.5)
    LSTMClassifier(len(vocab), 5, 6, 5, dropout=0.5)
    assert not [w for w in recwarn.list if "dropout" in str(w.message)]


def test_wrong_inputs_raise(trees, vocab):
    tree_model, lstm_model = _tree_model(vocab), _lstm_model(vocab)
    with pytest.raises(TypeError, match="TreeLSTMClassifier: expected TreeInputs"):
        tree_model(collate_sequences(trees, vocab))
    with pytest.raises(TypeError, match="LSTMClassifier: expected SequenceInputs"):
        lstm_model(collate_trees(trees, vocab))
    with pytest.raises(TypeError, match="expected TreeInputs"):
        tree_model(torch.zeros(3, dtype=torch.long))


def test_more_children_than_arity_raise(vocab):
    three = parse_ptb_line("(3 (2 a) (3 good) (2 film))")
    vocab = Vocab.build([three.tokens])
    with pytest.raises(ValueError, match="expected at most arity=2"):
        _tree_model(vocab)(collate_trees([three], vocab))
    _tree_model(vocab, cell="childsum")(collate_trees([three], vocab))  # any number is fine


@pytest.mark.parametrize("cls", [TreeLSTMClassifier, LSTMClassifier])
@pytest.mark.parametrize("kwargs, match", [
    (dict(vocab_size=0, num_classes=5), "vocab_size must be a positive integer"),
    (dict(vocab_size=10, num_classes=0), "num_classes must be a positive integer"),
    (dict(vocab_size=10, num_classes=5, embed_dim=2.5), "embed_dim must be a positive integer"),
    (dict(vocab_size=10, num_classes=5, dropout=1.5), "dropout must be a number in"),
])
def test_bad_constructor_arguments_raise(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_bad_cell_raises():
    with pytest.raises(ValueError, match="cell must be one of"):
        TreeLSTMClassifier(10, 5, cell="lstm")
    with pytest.raises(ValueError, match="arity is for cell='nary' only"):
        TreeLSTMClassifier(10, 5, cell="childsum", arity=2)


def test_repr_shows_the_parts(vocab):
    text = repr(TreeLSTMClassifier(len(vocab), 5, 6, 5))
    assert "TreeLSTM(6, 5, cell='nary', arity=2)" in text and "Linear" in text
    assert isinstance(LSTMClassifier(len(vocab), 5, 6, 5).lstm, nn.LSTM)


# ------------------------------------------------- input_rows: no_grad reads the embedding table
def _logits_from_embedded_tokens(model, inputs):
    """node_logits written plainly: every token embedded, the rows fed at the leaves."""
    h, _ = model.tree_lstm(model.embedding(inputs.token_ids), inputs.batch,
                           input_index=inputs.leaf_index)
    return model.output(h)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", ["nary", "childsum"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cache", [False, True], ids=["not kept", "kept"])
def test_tree_classifier_no_grad_equals_grad_enabled(trees, vocab, backend, cell, bidirectional,
                                                     cache):
    model = _tree_model(vocab, cell=cell, backend=backend, num_layers=2,
                        bidirectional=bidirectional)
    model.tree_lstm.cache_projections(cache)
    inputs = collate_trees(trees + trees[::-1], vocab)  # every token read twice or more
    with torch.no_grad():
        first, second = model(inputs).node_logits, model(inputs).node_logits
    with_grad = model(inputs).node_logits
    assert with_grad.requires_grad
    plain = _logits_from_embedded_tokens(model, inputs).detach()
    for logits in (first, second, with_grad.detach()):
        torch.testing.assert_close(logits, plain, rtol=0, atol=1e-12)


OPTIMIZERS = {
    "sgd": lambda params: torch.optim.SGD(params, lr=0.5),
    "adam": lambda params: torch.optim.Adam(params, lr=0.05),
    "fused adam": lambda params: torch.optim.Adam(params, lr=0.05, fused=True),
}


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("optimizer_name,cache", [
    ("sgd", False), ("sgd", True), ("adam", True),
    ("fused adam", False),  # a fused step bumps no version counter: not with a kept projection
], ids=["sgd", "sgd-kept", "adam-kept", "fused adam"])
@pytest.mark.parametrize("frozen_embedding", [False, True])
def test_tree_classifier_no_grad_is_right_after_a_training_step(trees, vocab, backend,
                                                               optimizer_name, cache,
                                                               frozen_embedding):
    model = _tree_model(vocab, backend=backend)
    model.tree_lstm.cache_projections(cache)
    model.embedding.weight.requires_grad_(not frozen_embedding)  # frozen: only W_ih changes
    inputs = collate_trees(trees + trees[::-1], vocab)
    optimizer = OPTIMIZERS[optimizer_name](p for p in model.parameters() if p.requires_grad)
    with torch.no_grad():
        before = model(inputs).node_logits  # kept: the native backend keeps the projection
    for _ in range(2):
        model.train()
        loss = nn.functional.cross_entropy(model(inputs).node_logits, inputs.labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.eval()
        with torch.no_grad():
            after = model(inputs).node_logits
        fresh = TreeLSTMClassifier(**model.config).double().eval()
        fresh.load_state_dict(model.state_dict())
        with torch.no_grad():
            torch.testing.assert_close(after, fresh(inputs).node_logits, rtol=0, atol=1e-12)
        torch.testing.assert_close(after, _logits_from_embedded_tokens(fresh, inputs).detach(),
                                   rtol=0, atol=1e-12)
        assert not torch.allclose(after, before)
        before = after


@pytest.mark.parametrize("make, labels_nodes", [(_tree_model, True), (_lstm_model, False)])
def test_one_classifier_contract(trees, vocab, make, labels_nodes):
    """Training, evaluation and the Predictor rely on this, not on the class."""
    model = make(vocab)
    inputs = model.collate(trees, vocab)
    node_logits, root_logits = model(inputs)
    assert model.labels_nodes is labels_nodes
    assert (node_logits is not None) is labels_nodes
    assert root_logits.shape == (len(trees), model.num_classes)
    assert torch.equal(inputs.root_labels, torch.tensor([t.root_label for t in trees]))
    assert [model.cost(t) for t in trees] == [t.num_nodes if labels_nodes else len(t.tokens)
                                              for t in trees]
    for tree in trees:
        model.check_tree(tree)


def test_nary_classifier_refuses_wide_trees(vocab):
    wide = SentimentTree(tokens=["a", "b", "c"], parent=[3, 3, 3, -1], labels=[2, 2, 2, 2])
    with pytest.raises(ValueError, match=r"node 3 has 3 children; this model's N-ary Tree-LSTM "
                                         r"takes at most 2 \(binarise the tree: e.g. "
                                         r"parse_bracketed\(line, binarize=2\)"):
        _tree_model(vocab).check_tree(wide)
    _tree_model(vocab, cell="childsum").check_tree(wide)
    _lstm_model(vocab).check_tree(wide)


@pytest.mark.parametrize("bidirectional,num_layers", [(False, 1), (False, 2), (True, 1)])
@pytest.mark.parametrize("cell", ["nary", "childsum"])
def test_root_logits_alone_equal_the_roots_rows(cell, bidirectional, num_layers):
    """``forward(inputs, nodes=False)`` (what a Predictor asks without --node-labels) gives the
    roots' rows of the full forward, with and without the kept projection."""
    trees = [parse_ptb_line(line) for line in ["(3 (2 a) (3 (2 very) (4 good)))",
                                               "(1 (2 not) (1 (2 that) (1 bad)))", "(2 fine)"]]
    vocab = Vocab.build(tree.tokens for tree in trees)
    torch.manual_seed(0)
    model = TreeLSTMClassifier(len(vocab), 5, embed_dim=6, hidden_size=4, cell=cell,
                               num_layers=num_layers, bidirectional=bidirectional).eval()
    inputs = collate_trees(trees, vocab)
    full = model(inputs)
    for cached in (False, True, True):
        model.tree_lstm.cache_projections(cached)
        with torch.no_grad():
            alone = model(inputs, nodes=False)
        assert alone.node_logits is None
        torch.testing.assert_close(alone.root_logits, full.root_logits.detach(), rtol=0, atol=1e-6)


# ---------------------------------------------------- extreme sizes: one-word sentences, 1,000 tokens
@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("cell", ["nary", "childsum"])
def test_one_word_sentences_through_collate_and_both_classifiers(cell, one_word_lines):
    trees = [parse_ptb_line(line) for line in one_word_lines]
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


@pytest.mark.usefixtures("one_thread")
def test_thousand_token_sentence(balanced_line):
    line = balanced_line(1000)
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
