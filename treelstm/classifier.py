"""The sentiment classifiers' contract (:class:`ClassifierOutput`, :class:`SentimentClassifier`)
and :class:`TreeLSTMClassifier`, a label for every node of a constituency tree.

The names are importable from :mod:`treelstm.models` too, where they were first defined.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional, Protocol, Sequence

import torch
from torch import Tensor, nn

from .checks import check_positive_ints, check_probability
from .models import TreeLSTM

__all__ = ["ClassifierOutput", "TreeClassifierOutput", "SentimentClassifier",
           "TreeLSTMClassifier"]


class ClassifierOutput(NamedTuple):
    """What every sentiment classifier returns: ``node_logits`` ``[N_nodes, C]`` for every node
    (``None`` for a classifier that labels sentences only, :class:`~treelstm.LSTMClassifier`)
    and ``root_logits`` ``[N_trees, C]``, one row per sentence.

    The classifiers' contract (used by training, evaluation and
    :class:`~treelstm.predict.Predictor`): ``collate(trees, vocab)`` makes the model's input from
    :class:`~treelstm.data.SentimentTree` objects, ``forward(inputs, nodes=True)`` returns a
    ``ClassifierOutput`` (with ``nodes=False``, ``node_logits`` is ``None``: the sentence labels
    alone, which may cost less), ``cost(tree)`` is the size of a tree for batching,
    ``labels_nodes`` says whether ``node_logits`` can be given, ``reads_trees`` whether the tree
    matters or its words only, and ``max_children`` the widest node it takes (``None``: any)."""

    node_logits: Optional[Tensor]
    root_logits: Tensor


#: The former name of :class:`ClassifierOutput`.
TreeClassifierOutput = ClassifierOutput


class Classifier(Protocol):
    """The contract of :class:`ClassifierOutput` as a type: what training, evaluation and the
    :class:`~treelstm.predict.Predictor` use of a model, which they check by name only (a module
    with these members will do, a :class:`SentimentClassifier` or not)."""

    labels_nodes: bool
    num_classes: int

    def collate(self, trees: Sequence[Any], vocab: Any) -> Any: ...

    def cost(self, tree: Any) -> int: ...

    def check_tree(self, tree: Any) -> None: ...

    def __call__(self, inputs: Any, nodes: bool = True) -> ClassifierOutput: ...


class SentimentClassifier(nn.Module):
    """The part every sentiment classifier shares: its constructor checks the common arguments
    (``"<Class>: vocab_size must be a positive integer; ..."``) and makes the embedding
    ``nn.Embedding(vocab_size, embed_dim, padding_idx=padding_idx)``; the subclass then adds its
    encoder, ``dropout`` and ``output`` layers, in that order, and the contract of
    :class:`ClassifierOutput` (``collate``, ``cost``, ``check_tree``, ``labels_nodes``,
    ``config``, ``forward``).

    ``sizes`` are the subclass's other sizes that must be positive integers, checked after
    ``vocab_size``, ``num_classes`` and ``embed_dim`` and before ``dropout``.
    """

    labels_nodes: bool

    def __init__(self, vocab_size: int, num_classes: int, embed_dim: int, dropout: float,
                 padding_idx: Optional[int], **sizes: int) -> None:
        super().__init__()
        owner = type(self).__name__
        check_positive_ints(owner, vocab_size=vocab_size, num_classes=num_classes,
                            embed_dim=embed_dim, **sizes)
        check_probability(owner, "dropout", dropout)
        self.vocab_size = vocab_size
        self.num_classes = num_classes
        self.embed_dim = embed_dim
        self.padding_idx = padding_idx
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=padding_idx)


class TreeLSTMClassifier(SentimentClassifier):
    r"""A sentiment classifier over constituency trees: a label for every node.

    Tokens are embedded and fed to a :class:`TreeLSTM` at the leaves only
    (``input_index=leaf_index``); every node's :math:`h` goes through dropout and a linear layer,
    as in Tai, Socher & Manning (2015), Section 5.1:

    .. math::
        \hat{p}_\theta(y \mid \{x\}_j) = \mathrm{softmax}(W^{(s)} \mathrm{dropout}(h_j) + b^{(s)})

    Args:
        vocab_size: rows of the embedding (``len(vocab)``); row ``padding_idx`` stays zero.
        num_classes: ``C``, e.g. 5 (fine-grained) or 2 (binary).
        embed_dim: size of the word vectors. Default: 300
        hidden_size: size of :math:`h` and :math:`c`. Default: 150
        num_layers: stacked Tree-LSTM layers. Default: 1
        cell: ``"nary"`` (ordered children; binary constituency trees) or ``"childsum"``.
            Default: ``"nary"``
        arity: child slots of the N-ary cell; ``None`` means 2. Must be ``None`` for Child-Sum.
        dropout: dropout probability on :math:`h` before the output layer (and between Tree-LSTM
            layers when ``num_layers > 1``). Default: 0.5
        backend: ``"native"`` or ``"dgl"`` (see :class:`TreeLSTM`). Default: ``"native"``
        padding_idx: the embedding's padding row. Default: 0
        bidirectional: a bidirectional :class:`TreeLSTM` (a top-down pass after the bottom-up
            one); the output layer then reads :math:`[h^\uparrow_j; h^\downarrow_j]`.
            Default: ``False``

    Inputs: inputs
        - **inputs**: a :class:`~treelstm.data.TreeInputs` (``collate_trees``); its
          ``token_ids`` ``[L]`` go to the leaves ``leaf_index`` ``[L]`` of ``batch``.

    Outputs: node_logits, root_logits (a :class:`~treelstm.classifier.ClassifierOutput`)
        - **node_logits** of shape `(N_nodes, C)`: unnormalised scores for every node.
        - **root_logits** of shape `(N_trees, C)`: the rows of ``node_logits`` at ``batch.roots``.

    Examples::

        >>> from treelstm.data import Vocab, collate_trees, parse_ptb_line
        >>> tree = parse_ptb_line("(3 (2 a) (3 (2 very) (3 good)))")
        >>> vocab = Vocab.build([tree.tokens])
        >>> model = TreeLSTMClassifier(len(vocab), 5, embed_dim=8, hidden_size=6)
        >>> node_logits, root_logits = model(collate_trees([tree], vocab))
        >>> node_logits.shape, root_logits.shape
        (torch.Size([5, 5]), torch.Size([1, 5]))
    """

    def __init__(self, vocab_size: int, num_classes: int, embed_dim: int = 300,
                 hidden_size: int = 150, num_layers: int = 1, cell: str = "nary",
                 arity: Optional[int] = None, dropout: float = 0.5, backend: str = "native",
                 padding_idx: Optional[int] = 0, bidirectional: bool = False) -> None:
        super().__init__(vocab_size, num_classes, embed_dim, dropout, padding_idx)
        if cell == "nary" and arity is None:
            arity = 2
        # TreeLSTM's own dropout acts between layers only; with one layer it would just warn.
        self.tree_lstm = TreeLSTM(embed_dim, hidden_size, num_layers=num_layers, cell=cell,
                                  arity=arity, dropout=dropout if num_layers > 1 else 0.0,
                                  backend=backend, bidirectional=bidirectional)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(self.tree_lstm.num_directions * hidden_size, num_classes)

    @property
    def config(self) -> dict:
        """The constructor arguments, in plain JSON types; ``TreeLSTMClassifier(**model.config)``
        builds the same architecture."""
        return {"vocab_size": self.vocab_size, "num_classes": self.num_classes,
                "embed_dim": self.embed_dim, "hidden_size": self.tree_lstm.hidden_size,
                "num_layers": self.tree_lstm.num_layers, "cell": self.tree_lstm.cell,
                "arity": self.tree_lstm.arity, "dropout": self.dropout.p,
                "backend": self.tree_lstm.backend, "padding_idx": self.padding_idx,
                "bidirectional": self.tree_lstm.bidirectional}

    labels_nodes = True
    reads_trees = True

    @property
    def max_children(self) -> Optional[int]:
        """The most children a node may have, the N-ary cell's arity (``None`` for Child-Sum,
        any number)."""
        return self.tree_lstm.arity if self.tree_lstm.cell == "nary" else None

    @staticmethod
    def collate(trees: Sequence[Any], vocab: Any) -> Any:
        """The model's input for ``trees`` (:func:`~treelstm.data.collate_trees`)."""
        from .data import collate_trees

        return collate_trees(trees, vocab)

    @staticmethod
    def cost(tree: Any) -> int:
        """The size of ``tree`` for batching: its nodes."""
        return tree.num_nodes

    def check_tree(self, tree: Any) -> None:
        """ValueError if this model cannot take ``tree``: an N-ary Tree-LSTM and a node with
        more children than its arity (binarise such trees)."""
        arity = self.tree_lstm.arity if self.tree_lstm.cell == "nary" else None
        if arity is not None:
            widest, count = tree.widest_node()
            if count > arity:
                raise ValueError(f"node {widest} has {count} children; this model's N-ary "
                                 f"Tree-LSTM takes at most {arity} (binarise the tree: e.g. "
                                 f"parse_bracketed(line, binarize={arity}) or "
                                 f"SentimentTree.from_nltk(tree, binarize={arity}); lines given "
                                 "to predict are binarised)")

    def forward(self, inputs: Any, nodes: bool = True) -> ClassifierOutput:
        """``(node_logits [N_nodes, C], root_logits [N_trees, C])`` for a
        :class:`~treelstm.data.TreeInputs` from :func:`~treelstm.data.collate_trees`; with
        ``nodes=False``, ``(None, root_logits)``: only the roots go through the output layer."""
        if not (hasattr(inputs, "batch") and hasattr(inputs, "leaf_index")):
            raise TypeError(f"TreeLSTMClassifier: expected TreeInputs (from collate_trees); got "
                            f"{type(inputs).__name__}")
        if inputs.token_ids.dim() != 1:
            raise ValueError(f"TreeLSTMClassifier: Expected token_ids to be 1D [num_leaves], got "
                             f"{inputs.token_ids.dim()}D instead")
        if torch.is_grad_enabled():  # each distinct token embedded and projected once
            table, rows = torch.unique(inputs.token_ids, return_inverse=True)
            table = self.embedding(table)
        else:  # inference: the vocabulary is the table (kept between batches after
            # tree_lstm.cache_projections(), as a Predictor has it)
            table, rows = self.embedding.weight, inputs.token_ids
        if not nodes:
            h_n, _ = self.tree_lstm.final_states(table, inputs.batch,
                                                 input_index=inputs.leaf_index, input_rows=rows)
            # the last layer's states, both directions: the roots' rows of forward's output
            roots = torch.cat(h_n[-self.tree_lstm.num_directions:].unbind(0), dim=1)
            return ClassifierOutput(None, self.output(self.dropout(roots)))
        h, _ = self.tree_lstm(table, inputs.batch, input_index=inputs.leaf_index,
                              input_rows=rows)
        node_logits = self.output(self.dropout(h))
        roots = inputs.batch.to(node_logits.device).roots
        return ClassifierOutput(node_logits, node_logits.index_select(0, roots))
