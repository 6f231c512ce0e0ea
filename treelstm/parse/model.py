"""The span parser (:class:`SpanParser`): a BiLSTM over the words, an MLP scoring every span
from endpoint differences, and :meth:`SpanParser.parse` (batches of tokenised sentences -> the
best binary trees, by :func:`~treelstm.parse.cky`)."""
from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..checks import check_positive_ints, check_probability
from ..data import SentimentTree, Vocab
from .cky import Span, _binary_tree, cky

_PARSE_BATCH_SPANS = 2 ** 17  # at most this many (padded) span cells in one parse batch


class SpanParser(nn.Module):
    r"""Scores every span of a sentence; the best binary tree maximises the sum of its spans'
    scores (Stern, Andreas & Klein 2017).

    .. math::
        \begin{array}{ll}
        x_0 = \text{start},\ x_t = E[w_t],\ x_{n+1} = \text{end} \\
        (f_k, b_k) = \text{BiLSTM}(x_0 \dots x_{n+1})_k \\
        r(i, j) = [f_j - f_i \,;\, b_{i+1} - b_{j+1}] \\
        s(i, j) = w_2^\top \text{relu}(W_1 r(i, j) + c_1) + c_2
        \end{array}

    Args:
        vocab: the words (:class:`~treelstm.data.Vocab`; its padding id 0 and unknown id 1);
            :meth:`parse` looks words up in it.
        embed_dim: word vector size ``E``.
        hidden_size: LSTM state size ``H`` per direction.
        mlp_size: hidden size ``M`` of the span MLP.
        num_layers: stacked BiLSTM layers.
        dropout: on the word vectors, between LSTM layers and on the LSTM states.

    Inputs: ``token_ids`` ``[B, T]`` (padded with 0), ``lengths`` ``[B]`` (each in 1..T).

    Outputs: ``scores`` ``[B, T+1, T+1]``: ``scores[b, i, j] = s(i, j)`` for
    ``0 <= i < j <= lengths[b]``, 0 elsewhere.

    Shapes: ``B`` sentences, ``T`` the longest; ``F = T + 1`` fenceposts.

    Parameters: ``embedding.weight`` ``[V, E]`` (N(0, 1), row 0 zero); ``start``, ``end``
    ``[E]`` (N(0, 1)); ``lstm`` (:class:`torch.nn.LSTM`, its own init); ``span_hidden``
    ``[M, 2H]`` + ``[M]`` and ``span_out`` ``[1, M]`` + ``[1]`` (:class:`torch.nn.Linear` init).
    """

    def __init__(self, vocab: Vocab, embed_dim: int = 100, hidden_size: int = 200,
                 mlp_size: int = 200, num_layers: int = 1, dropout: float = 0.3) -> None:
        super().__init__()
        if not isinstance(vocab, Vocab):
            raise TypeError(f"SpanParser: vocab must be a treelstm.data.Vocab, got "
                            f"{type(vocab).__name__}")
        check_positive_ints("SpanParser", embed_dim=embed_dim, hidden_size=hidden_size,
                            mlp_size=mlp_size, num_layers=num_layers)
        check_probability("SpanParser", "dropout", dropout)
        self.vocab = vocab
        self.embed_dim, self.hidden_size, self.mlp_size = embed_dim, hidden_size, mlp_size
        self.num_layers, self.dropout = num_layers, float(dropout)
        self.embedding = nn.Embedding(len(vocab), embed_dim, padding_idx=Vocab.pad_index)
        self.start = nn.Parameter(torch.empty(embed_dim))
        self.end = nn.Parameter(torch.empty(embed_dim))
        self.lstm = nn.LSTM(embed_dim, hidden_size, num_layers=num_layers, batch_first=True,
                            bidirectional=True, dropout=self.dropout if num_layers > 1 else 0.0)
        self.span_hidden = nn.Linear(2 * hidden_size, mlp_size)
        self.span_out = nn.Linear(mlp_size, 1)
        self.drop = nn.Dropout(self.dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.embedding.reset_parameters()
        nn.init.normal_(self.start)
        nn.init.normal_(self.end)
        self.lstm.reset_parameters()
        self.span_hidden.reset_parameters()
        self.span_out.reset_parameters()

    @property
    def config(self) -> dict:
        """The constructor's settings (JSON); the vocabulary is stored beside them, with its size
        here so that a file's vocabulary and weights are checked to belong together."""
        return {"vocab_size": len(self.vocab), "embed_dim": self.embed_dim,
                "hidden_size": self.hidden_size, "mlp_size": self.mlp_size,
                "num_layers": self.num_layers, "dropout": self.dropout}

    def extra_repr(self) -> str:
        return (f"vocab_size={len(self.vocab)}, embed_dim={self.embed_dim}, hidden_size="
                f"{self.hidden_size}, mlp_size={self.mlp_size}, num_layers={self.num_layers}, "
                f"dropout={self.dropout}")

    @property
    def device(self) -> torch.device:
        return self.span_out.weight.device

    def check_input(self, token_ids: Tensor, lengths: Tensor) -> None:
        if not isinstance(token_ids, Tensor) or token_ids.dim() != 2 or \
                token_ids.dtype != torch.long:
            raise ValueError(f"SpanParser: Expected token_ids to be a 2D int64 tensor [B, T], got "
                             f"{_describe(token_ids)} instead")
        if not isinstance(lengths, Tensor) or lengths.dim() != 1 or lengths.dtype != torch.long \
                or lengths.shape[0] != token_ids.shape[0]:
            raise ValueError(f"SpanParser: Expected lengths to be a 1D int64 tensor of "
                             f"{token_ids.shape[0]} lengths, got {_describe(lengths)} instead")
        if lengths.numel() and (int(lengths.min()) < 1 or int(lengths.max()) > token_ids.shape[1]):
            raise ValueError(f"SpanParser: lengths must be in [1, {token_ids.shape[1]}] (the "
                             f"padded length); got {lengths.tolist()[:8]}")
        if token_ids.numel() and (int(token_ids.min()) < 0 or
                                  int(token_ids.max()) >= len(self.vocab)):
            raise ValueError(f"SpanParser: token ids must be in [0, {len(self.vocab)}) (the "
                             f"vocabulary); got ids from {int(token_ids.min())} to "
                             f"{int(token_ids.max())}")

    def forward(self, token_ids: Tensor, lengths: Tensor) -> Tensor:
        """``scores`` ``[B, T+1, T+1]`` of every span (see the class docstring)."""
        self.check_input(token_ids, lengths)
        fenceposts = self.fencepost_states(token_ids, lengths)          # [B, F, 2H]
        projected = fenceposts @ self.span_hidden.weight.T               # g_k: [B, F, M]
        num_fenceposts = token_ids.shape[1] + 1
        starts, ends = _span_index(num_fenceposts, token_ids.device)
        # relu(g_j - g_i + c1) for every span; in place: the [B, S, M] tensor is the cost.
        hidden = (projected + self.span_hidden.bias).index_select(1, ends)
        hidden = hidden.sub_(projected.index_select(1, starts)).relu_()  # [B, S, M]
        span_scores = self.span_out(hidden).squeeze(-1)                  # [B, S]
        return _scatter_spans(span_scores, num_fenceposts, starts, ends, lengths)

    def span_scores(self, token_ids: Tensor, lengths: Tensor) -> Tensor:
        """The module's call: ``scores`` ``[B, T+1, T+1]``."""
        return self(token_ids, lengths)

    def fencepost_states(self, token_ids: Tensor, lengths: Tensor) -> Tensor:
        """``[B, T+1, 2H]``: ``[f_k ; -b_{k+1}]`` at fencepost ``k``, so that
        ``r(i, j)`` is the difference of fenceposts ``j`` and ``i``."""
        batch, length = token_ids.shape
        words = self.embedding(token_ids)
        positions = torch.arange(length + 2, device=token_ids.device)
        is_end = (positions == (lengths + 1).unsqueeze(1)).unsqueeze(-1)  # [B, T+2, 1]
        sequence = torch.cat([self.start.expand(batch, 1, -1), words,
                              words.new_zeros(batch, 1, self.embed_dim)], dim=1)
        sequence = self.drop(torch.where(is_end, self.end, sequence))
        packed = pack_padded_sequence(sequence, (lengths + 2).cpu(), batch_first=True,
                                      enforce_sorted=False)
        states, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True,
                                        total_length=length + 2)
        states = self.drop(states)
        forward, backward = states[..., :self.hidden_size], states[..., self.hidden_size:]
        return torch.cat([forward[:, :length + 1], -backward[:, 1:]], dim=-1)

    def encode(self, sentences: Sequence[Sequence[str]]) -> tuple[Tensor, Tensor]:
        """``(token_ids [B, T], lengths [B])`` of tokenised sentences, on the parser's device."""
        lengths = [len(words) for words in sentences]
        token_ids = torch.zeros(len(sentences), max(lengths, default=1), dtype=torch.long)
        for row, words in enumerate(sentences):
            token_ids[row, :len(words)] = torch.tensor(self.vocab.encode(words), dtype=torch.long)
        return token_ids.to(self.device), torch.tensor(lengths, device=self.device)

    def parse(self, sentences: Sequence[Sequence[str]],
              batch_size: int = 256) -> list[SentimentTree]:
        """The best binary tree of each tokenised sentence, in order.

        Each tree's leaves are the words (nodes ``0..n-1``), its internal nodes ``n..2n-2`` in
        post-order with the root last (the numbering of
        :func:`~treelstm.data.parse_ptb_line`), every label :data:`IGNORE_INDEX`; a one-word
        sentence is a single leaf. Runs in eval mode without gradients (the module's mode is
        restored), in batches of similar lengths of at most ``batch_size`` sentences.

        Raises:
            ValueError: an empty sentence, or a word that is not a non-empty ``str``.
        """
        _check_sentences(sentences)
        check_positive_ints("SpanParser.parse", batch_size=batch_size)
        trees: list[Optional[SentimentTree]] = [None] * len(sentences)
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                for batch in _length_batches([len(s) for s in sentences], batch_size):
                    words = [sentences[index] for index in batch]
                    token_ids, lengths = self.encode(words)
                    result = cky(self(token_ids, lengths), lengths)
                    for index, tokens, splits in zip(batch, words, result.splits):
                        trees[index] = _binary_tree(list(tokens), _split_lookup(splits))
        finally:
            self.train(was_training)
        return trees  # type: ignore[return-value]


#: The model classes a parser file may hold, by name (for :mod:`treelstm.training.checkpoint`).
_MODEL_CLASSES: dict[str, type] = {"SpanParser": SpanParser}


def _split_lookup(splits: Mapping[Span, int]) -> Callable[[int, int], int]:
    return lambda start, end: splits[start, end]


def _describe(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"a {value.dim()}D {value.dtype} tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def _span_index(fenceposts: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """``(starts, ends)`` ``[S]``: every span ``i < j`` over ``fenceposts`` fenceposts."""
    index = torch.triu_indices(fenceposts, fenceposts, offset=1, device=device)
    return index[0], index[1]


def _scatter_spans(span_scores: Tensor, fenceposts: int, starts: Tensor, ends: Tensor,
                   lengths: Tensor) -> Tensor:
    """``[B, S]`` scores of the spans ``(starts, ends)`` -> ``[B, F, F]``, 0 off the spans of
    each sentence."""
    batch = span_scores.shape[0]
    flat = span_scores.new_zeros(batch, fenceposts * fenceposts).index_copy(
        1, starts * fenceposts + ends, span_scores)
    return flat.view(batch, fenceposts, fenceposts) * _valid_spans(fenceposts, lengths)


def _valid_spans(fenceposts: int, lengths: Tensor) -> Tensor:
    """``[B, F, F]`` bool: ``i < j <= lengths[b]``, the spans of each sentence."""
    positions = torch.arange(fenceposts, device=lengths.device)
    upper = positions.unsqueeze(0) > positions.unsqueeze(1)              # [F, F]: i < j
    return upper & (positions <= lengths.unsqueeze(1)).unsqueeze(1)      # j <= n


def _check_sentences(sentences: Sequence[Sequence[str]]) -> None:
    if isinstance(sentences, str) or not isinstance(sentences, Sequence):
        raise TypeError(f"SpanParser.parse: expected a list of tokenised sentences (lists of "
                        f"str), got {type(sentences).__name__}")
    for number, words in enumerate(sentences):
        if isinstance(words, str) or not isinstance(words, Sequence):
            raise TypeError(f"SpanParser.parse: sentence {number} is a {type(words).__name__}; "
                            "expected a list of words (str)")
        if not words:
            raise ValueError(f"SpanParser.parse: sentence {number} is empty; expected at least "
                             "one word")
        bad = next((word for word in words if not isinstance(word, str) or not word), None)
        if bad is not None:
            raise ValueError(f"SpanParser.parse: sentence {number} holds the word {bad!r}; "
                             "expected non-empty str words")


def _length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices sorted by length (stable), cut into batches of at most ``batch_size`` and at most
    :data:`_PARSE_BATCH_SPANS` padded span cells (a longer sentence runs alone)."""
    batches: list[list[int]] = []
    current: list[int] = []
    for index in sorted(range(len(lengths)), key=lengths.__getitem__):
        cells = (len(current) + 1) * (lengths[index] + 1) ** 2
        if current and (len(current) == batch_size or cells > _PARSE_BATCH_SPANS):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches

