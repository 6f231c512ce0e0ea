"""LSTMClassifier: the sequential ``nn.LSTM`` baseline over the tokens of the same trees."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from .classifier import ClassifierOutput, SentimentClassifier

__all__ = ["LSTMClassifier"]


class LSTMClassifier(SentimentClassifier):
    r"""A sentence classifier: ``nn.LSTM`` over the leaf tokens in sentence order.

    The baseline of Tai, Socher & Manning (2015), Table 2: the same embedding and output layer
    as :class:`~treelstm.classifier.TreeLSTMClassifier`, but the words are read left to right (and
    right to left with ``bidirectional=True``) and only the sentence gets a label:

    .. math::
        \hat{p}_\theta(y \mid x) = \mathrm{softmax}(W^{(s)} \mathrm{dropout}(h_T) + b^{(s)})

    where :math:`h_T` is the last layer's state after the last token (with ``bidirectional``,
    the forward state after the last token concatenated with the backward state after the first).

    Args:
        vocab_size: rows of the embedding (``len(vocab)``); row ``padding_idx`` stays zero.
        num_classes: ``C``, e.g. 5 (fine-grained) or 2 (binary).
        embed_dim: size of the word vectors. Default: 300
        hidden_size: size of the LSTM state (per direction). Default: 150
        num_layers: stacked LSTM layers. Default: 1
        bidirectional: read the sentence in both directions. Default: ``False``
        dropout: dropout probability before the output layer (and between LSTM layers when
            ``num_layers > 1``). Default: 0.5
        padding_idx: the embedding's padding row. Default: 0

    Inputs: inputs
        - **inputs**: a :class:`~treelstm.data.SequenceInputs` (``collate_sequences``):
          ``token_ids`` `(B, T_max)` right-padded, ``lengths`` `(B)`.

    Outputs: node_logits, root_logits (a :class:`~treelstm.classifier.ClassifierOutput`)
        - **node_logits**: ``None`` (sentences only).
        - **root_logits** of shape `(B, C)`: unnormalised scores for each sentence.

    Examples::

        >>> from treelstm.data import Vocab, collate_sequences, parse_ptb_line
        >>> tree = parse_ptb_line("(3 (2 a) (3 (2 very) (3 good)))")
        >>> vocab = Vocab.build([tree.tokens])
        >>> model = LSTMClassifier(len(vocab), 5, embed_dim=8, hidden_size=6)
        >>> model(collate_sequences([tree, tree], vocab)).root_logits.shape
        torch.Size([2, 5])
    """

    def __init__(self, vocab_size: int, num_classes: int, embed_dim: int = 300,
                 hidden_size: int = 150, num_layers: int = 1, bidirectional: bool = False,
                 dropout: float = 0.5, padding_idx: Optional[int] = 0) -> None:
        super().__init__(vocab_size, num_classes, embed_dim, dropout, padding_idx,
                         hidden_size=hidden_size, num_layers=num_layers)
        self.lstm = nn.LSTM(embed_dim, hidden_size, num_layers=num_layers, batch_first=True,
                            bidirectional=bidirectional,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        num_directions = 2 if bidirectional else 1
        self.output = nn.Linear(num_directions * hidden_size, num_classes)

    @property
    def config(self) -> dict:
        """The constructor arguments, in plain JSON types; ``LSTMClassifier(**model.config)``
        builds the same architecture."""
        return {"vocab_size": self.vocab_size, "num_classes": self.num_classes,
                "embed_dim": self.embed_dim, "hidden_size": self.lstm.hidden_size,
                "num_layers": self.lstm.num_layers, "bidirectional": self.lstm.bidirectional,
                "dropout": self.dropout.p, "padding_idx": self.padding_idx}

    labels_nodes = False
    reads_trees = False  # the words only: any tree shape, or plain text
    max_children = None

    @staticmethod
    def collate(trees: Sequence[Any], vocab: Any) -> Any:
        """The model's input for ``trees`` (:func:`~treelstm.data.collate_sequences`)."""
        from .data import collate_sequences

        return collate_sequences(trees, vocab)

    @staticmethod
    def cost(tree: Any) -> int:
        """The size of ``tree`` for batching: its tokens."""
        return len(tree.tokens)

    @staticmethod
    def check_tree(tree: Any) -> None:
        """Any tree's words can be read (nothing to check)."""

    def forward(self, inputs: Any, nodes: bool = True) -> ClassifierOutput:
        """``(None, root_logits [B, C])`` for a :class:`~treelstm.data.SequenceInputs` from
        :func:`~treelstm.data.collate_sequences` (``nodes``, the contract's, changes nothing:
        this model labels sentences only)."""
        if not (hasattr(inputs, "token_ids") and hasattr(inputs, "lengths")):
            raise TypeError(f"LSTMClassifier: expected SequenceInputs (from collate_sequences); "
                            f"got {type(inputs).__name__}")
        token_ids, lengths = inputs.token_ids, inputs.lengths
        if token_ids.dim() != 2:
            raise ValueError(f"LSTMClassifier: Expected token_ids to be 2D [batch, max_length], "
                             f"got {token_ids.dim()}D instead")
        if lengths.shape != token_ids.shape[:1]:
            raise ValueError(f"LSTMClassifier: Expected lengths of shape [{token_ids.shape[0]}], "
                             f"got {list(lengths.shape)}")
        packed = pack_padded_sequence(self.embedding(token_ids), lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)  # h_n: [layers * directions, B, H], in input order
        if self.lstm.bidirectional:
            last = torch.cat([h_n[-2], h_n[-1]], dim=1)
        else:
            last = h_n[-1]
        return ClassifierOutput(None, self.output(self.dropout(last)))
