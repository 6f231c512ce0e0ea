"""Unlabeled binary constituency parsing: tokenised sentences -> binary trees, learned from SST's
own trees, so that raw text can be given to the Tree-LSTM classifiers.

The parser is the span-based parser of Stern, Andreas & Klein (2017), "A Minimal Span-Based
Neural Constituency Parser" (ACL), in the form Kitaev & Klein (2018), "Constituency Parsing with
a Self-Attentive Encoder" (ACL) also use, without labels:

* each word is embedded; start and end sentinels are added; a BiLSTM reads the sequence, giving
  forward states ``f_k`` and backward states ``b_k`` (position 0 is the start sentinel, word ``t``
  is at position ``t``, the end sentinel at ``n + 1``);
* a span ``(i, j)``, ``0 <= i < j <= n`` (the words ``i+1 .. j``, between fenceposts ``i`` and
  ``j``), is represented by endpoint differences ``r(i, j) = [f_j - f_i ; b_{i+1} - b_{j+1}]``
  and scored by an MLP, ``s(i, j) = w2 . relu(W1 r(i, j) + c1) + c2``;
* a binary tree's score is the sum of its spans' scores. Every binary tree over ``n`` words has
  the same number of spans (``2n - 1``), so the best tree is exactly the one CKY finds:
  ``best(i, j) = s(i, j) + max_k best(i, k) + best(k, j)`` (:func:`cky`).

Training uses the published objective, the structured hinge loss with cost-augmented decoding
(Taskar et al. 2005, as in Stern et al. 2017, section 3): for the gold tree ``T*`` and the Hamming
cost ``D(T) = |spans of T not in T*|``, ``loss = max_T [s(T) + D(T)] - s(T*)`` (>= 0, as ``T*``
is a candidate with cost 0); the inner max is :func:`cky` on ``s + cost``. It trains the scores
that the decoder compares, tree against tree, and needs no extra hyper-parameter; a per-span
binary cross-entropy would train each span alone, for a decoder it never sees.

Vectorised in torch: a padded batch of sentences goes through the BiLSTM at once (packed), all
spans of all sentences through the MLP at once (``W1 r(i, j) = g_j - g_i`` with
``g_k = W1 [f_k ; -b_{k+1}]``, so the first layer runs per fencepost, not per span), and CKY loops
over span lengths only, each step over every sentence and span start at once, on the scores'
device (CPU or CUDA). Deterministic given a seed.

Also here: the baseline trees (:func:`right_branching`, :func:`balanced`), evalb-style
unlabeled bracket scores (:func:`bracket_f1`), training with checkpoints that resume exactly
(:func:`train_parser`) and reading a parser file (:func:`read_parser`, :func:`load_parser`). The
command line: ``python -m treelstm parser train|eval`` and ``python -m treelstm parse``.

Example::

    from treelstm.parse import load_parser
    parser, vocab = load_parser("runs/parser/parser.pt")
    tree = parser.parse([["It", "'s", "a", "lovely", "film"]])[0]   # a SentimentTree
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple, Optional, Sequence, Union, cast

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .checks import check_positive_ints, check_probability, is_int, is_number
from .data import IGNORE_INDEX, SentimentTree, Vocab
from .data.parents import bottom_up_order, children_lists
from .files import PathLike, check_no_run, remove_stale_temp_files, write_text
from .progress import Progress, track

__all__ = ["SpanParser", "CKYResult", "cky", "tree_spans", "bracket_f1", "right_branching",
           "balanced", "evaluate_parser", "ParserSettings", "ParserTrainResult", "train_parser",
           "ParserFile", "read_parser", "load_parser", "PARSER_FILES"]

logger = logging.getLogger(__name__)

Span = tuple[int, int]
#: What :func:`train_parser` writes to its ``out_dir``.
PARSER_FILES = ("parser.pt", "checkpoint.pt", "metrics.json")
_MODEL_CLASSES: dict[str, type] = {}  # filled below the class: {"SpanParser": SpanParser}
_PARSE_BATCH_SPANS = 2 ** 17  # at most this many (padded) span cells in one parse batch
_SORT_CHUNK = 50  # training batches are cut from length-sorted chunks of this many batches


# ------------------------------------------------------------------------------ the model
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


_MODEL_CLASSES["SpanParser"] = SpanParser


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


# ------------------------------------------------------------------------------------ CKY
class CKYResult(NamedTuple):
    """What :func:`cky` returns.

    Attributes:
        score: ``[B]`` the best tree's total span score, per sentence.
        splits: per sentence, ``{(i, j): k}`` for each span of length >= 2 of its best tree:
            ``(i, j)`` is split into ``(i, k)`` and ``(k, j)``.
    """

    score: Tensor
    splits: list[dict[Span, int]]


def cky(scores: Tensor, lengths: Tensor) -> CKYResult:
    """The binary tree maximising the sum of its spans' scores, for each sentence (exact).

    ``best(i, i+1) = s(i, i+1)``; ``best(i, j) = s(i, j) + max_{i<k<j} best(i, k) + best(k, j)``.
    One step per span length; each step handles every sentence and span start at once, on
    ``scores``' device. Ties go to the leftmost split. No gradients.

    Args:
        scores: ``[B, F, F]`` with ``scores[b, i, j] = s(i, j)`` for ``0 <= i < j <=
            lengths[b]`` (other entries unused).
        lengths: ``[B]`` words per sentence, in ``1..F-1``.
    """
    if scores.dim() != 3 or scores.shape[1] != scores.shape[2]:
        raise ValueError(f"cky: Expected scores of shape [B, F, F], got {tuple(scores.shape)}")
    if lengths.dim() != 1 or lengths.shape[0] != scores.shape[0]:
        raise ValueError(f"cky: Expected lengths of shape [{scores.shape[0]}], got "
                         f"{tuple(lengths.shape)}")
    fenceposts = scores.shape[1]
    lengths_list = [int(n) for n in lengths.tolist()]
    if any(not 1 <= n < fenceposts for n in lengths_list):
        raise ValueError(f"cky: lengths must be in [1, {fenceposts - 1}]; got {lengths_list[:8]}")
    if not lengths_list:
        return CKYResult(scores.new_zeros(0), [])
    with torch.no_grad():
        scores = scores.detach()
        chart = torch.zeros_like(scores)
        split = torch.zeros(scores.shape, dtype=torch.long, device=scores.device)
        device = scores.device
        starts = torch.arange(fenceposts - 1, device=device)
        chart[:, starts, starts + 1] = scores[:, starts, starts + 1]
        for width in range(2, max(lengths_list) + 1):
            starts = torch.arange(fenceposts - width, device=device)
            offsets = torch.arange(1, width, device=device)
            middles = starts.unsqueeze(1) + offsets                     # [S, width-1]
            ends = starts + width
            candidates = chart[:, starts.unsqueeze(1), middles] + chart[:, middles,
                                                                       ends.unsqueeze(1)]
            best, best_offset = candidates.max(dim=-1)                  # [B, S]
            chart[:, starts, ends] = scores[:, starts, ends] + best
            split[:, starts, ends] = starts + 1 + best_offset
        batch_index = torch.arange(scores.shape[0], device=device)
        total = chart[batch_index, 0, lengths.to(device)]
        split_rows = split.cpu().tolist()
    return CKYResult(total, [_backtrack(rows, n) for rows, n in zip(split_rows, lengths_list)])


def _backtrack(split_rows: list[list[int]], length: int) -> dict[Span, int]:
    splits: dict[Span, int] = {}
    stack = [(0, length)]
    while stack:
        start, end = stack.pop()
        if end - start > 1:
            middle = split_rows[start][end]
            splits[start, end] = middle
            stack.extend(((start, middle), (middle, end)))
    return splits


def _binary_tree(tokens: list[str], split_at: Callable[[int, int], int]) -> SentimentTree:
    """The binary tree over ``tokens`` whose span ``(i, j)`` splits at ``split_at(i, j)``,
    numbered as :func:`~treelstm.data.parse_ptb_line` numbers nodes (leaves ``0..n-1``, internal
    nodes in post-order, root last), labels :data:`IGNORE_INDEX`. Iterative: any length."""
    num_words = len(tokens)
    parent = [-1] * (2 * num_words - 1)
    next_node = num_words
    done: list[int] = []  # the nodes of finished subtrees, left to right
    stack: list[tuple[int, int, bool]] = [(0, num_words, False)]
    while stack:
        start, end, children_done = stack.pop()
        if end - start == 1:
            done.append(start)
        elif not children_done:
            middle = split_at(start, end)
            stack.extend(((start, end, True), (middle, end, False), (start, middle, False)))
        else:
            right, left = done.pop(), done.pop()
            parent[left] = parent[right] = next_node
            done.append(next_node)
            next_node += 1
    return SentimentTree(tokens=tokens, parent=parent, labels=[IGNORE_INDEX] * len(parent))


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


# ---------------------------------------------------------------------- trees and scores
def tree_spans(tree: SentimentTree) -> list[Span]:
    """``[N]`` the span ``(i, j)`` (words ``i+1..j``, fenceposts ``i`` and ``j``) of each node;
    leaf ``k`` is ``(k, k+1)``."""
    children = children_lists(tree.parent)
    spans: list[Span] = [(node, node + 1) for node in range(len(tree.parent))]
    for node in bottom_up_order(tree.parent, children):
        if children[node]:
            spans[node] = (min(spans[c][0] for c in children[node]),
                           max(spans[c][1] for c in children[node]))
    return spans


def _brackets(tree: SentimentTree) -> Counter:
    """evalb's unlabeled brackets: the spans of length >= 2 but the whole sentence, with
    multiplicity (a unary chain repeats its span)."""
    whole = (0, len(tree.tokens))
    return Counter(span for span in tree_spans(tree) if span[1] - span[0] > 1 and span != whole)


def _binary_gold_spans(tree: SentimentTree) -> list[Span]:
    """The spans of ``tree`` with unary chains collapsed and nodes of more than two children
    right-binarised: the binary tree the parser learns (SST's trees are binary already)."""
    children = tree.children()
    spans = tree_spans(tree)
    gold = {(k, k + 1) for k in range(len(tree.tokens))}
    for node, kids in enumerate(children):
        for first in range(len(kids) - 1):  # (c1..cm), (c2..cm), ..., (c_{m-1} c_m)
            gold.add((spans[kids[first]][0], spans[node][1]))
    gold.add((0, len(tree.tokens)))
    return sorted(gold)


def bracket_f1(gold_trees: Sequence[SentimentTree],
               predicted_trees: Sequence[SentimentTree]) -> dict:
    """evalb-style unlabeled bracket scores, micro-averaged over the corpus.

    A tree's brackets are its spans of two or more words except the whole sentence (which every
    tree has), with multiplicity. ``precision = matched / predicted``, ``recall = matched /
    gold`` (1.0 when the denominator is 0: nothing to get wrong), ``f1`` their harmonic mean,
    ``exact`` the fraction of sentences whose brackets match exactly (evalb's complete match).

    Returns:
        ``{"precision", "recall", "f1", "exact", "sentences", "gold_brackets",
        "predicted_brackets", "matched_brackets"}``.

    Example (gold brackets ``(0, 2)``, ``(2, 4)``; right-branching ``(1, 4)``, ``(2, 4)``)::

        >>> from treelstm.data import parse_ptb_line
        >>> gold = parse_ptb_line("(2 (2 (2 a) (2 b)) (2 (2 c) (2 d)))")
        >>> bracket_f1([gold], [right_branching(gold.tokens)])["f1"]
        0.5

    Raises:
        ValueError: the lists differ in length, or a pair of trees in their words.
    """
    if len(gold_trees) != len(predicted_trees):
        raise ValueError(f"bracket_f1: {len(gold_trees)} gold trees but {len(predicted_trees)} "
                         "predicted trees; expected one prediction per gold tree")
    matched = gold_total = predicted_total = exact = 0
    for number, (gold, predicted) in enumerate(zip(gold_trees, predicted_trees)):
        if list(gold.tokens) != list(predicted.tokens):
            raise ValueError(f"bracket_f1: tree {number}: the predicted tree's words "
                             f"({len(predicted.tokens)}) differ from the gold tree's "
                             f"({len(gold.tokens)}); expected the same sentence")
        gold_brackets, predicted_brackets = _brackets(gold), _brackets(predicted)
        common = sum((gold_brackets & predicted_brackets).values())
        matched += common
        gold_total += sum(gold_brackets.values())
        predicted_total += sum(predicted_brackets.values())
        exact += gold_brackets == predicted_brackets
    precision = matched / predicted_total if predicted_total else 1.0
    recall = matched / gold_total if gold_total else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1,
            "exact": exact / len(gold_trees) if gold_trees else 1.0,
            "sentences": len(gold_trees), "gold_brackets": gold_total,
            "predicted_brackets": predicted_total, "matched_brackets": matched}


def right_branching(tokens: Sequence[str]) -> SentimentTree:
    """``(w1 (w2 (... (w_{n-1} w_n))))``, labels :data:`IGNORE_INDEX` (a baseline)."""
    _check_sentences([tokens])
    return _binary_tree(list(tokens), lambda start, end: start + 1)


def balanced(tokens: Sequence[str]) -> SentimentTree:
    """The balanced binary tree: each span splits in the middle, the right half taking the odd
    word (``((a b) (c d e))``), labels :data:`IGNORE_INDEX` (a baseline)."""
    _check_sentences([tokens])
    return _binary_tree(list(tokens), lambda start, end: (start + end) // 2)


def evaluate_parser(parser: SpanParser, trees: Sequence[SentimentTree],
                    batch_size: int = 256) -> dict:
    """:func:`bracket_f1` of ``parser``'s trees against ``trees``, plus ``seconds`` and
    ``sentences_per_s`` (parsing only)."""
    start = time.perf_counter()
    predicted = parser.parse([tree.tokens for tree in trees], batch_size=batch_size)
    if parser.device.type == "cuda":
        torch.cuda.synchronize(parser.device)
    seconds = time.perf_counter() - start
    metrics = bracket_f1(trees, predicted)
    metrics.update(seconds=seconds, sentences_per_s=len(trees) / seconds if seconds else math.inf)
    return metrics


# ------------------------------------------------------------------------------- training
@dataclass(frozen=True)
class ParserSettings:
    """Every setting of :func:`train_parser` (stored in its files; a resumed run must match all
    of them but ``epochs`` and ``data``). The defaults train on SST's 8,544 trees in about 5
    minutes on one CPU thread (dev F1 71.6%; ``benchmarks/parser_eval.py``)."""

    epochs: int = 10
    seed: int = 0
    embed_dim: int = 100
    hidden_size: int = 200
    mlp_size: int = 200
    num_layers: int = 1
    dropout: float = 0.3
    #: Probability of replacing a training word by the unknown word, so that its vector learns
    #: to stand for the words parsing will meet that training did not.
    word_dropout: float = 0.1
    lr: float = 2e-3
    batch_size: int = 32
    clip_grad_norm: float = 5.0
    lower: bool = True
    #: Where the trees came from (recorded for ``parser eval``, never read by the library).
    data: Optional[str] = None

    def validate(self) -> None:
        check_positive_ints("ParserSettings", epochs=self.epochs, embed_dim=self.embed_dim,
                            hidden_size=self.hidden_size, mlp_size=self.mlp_size,
                            num_layers=self.num_layers, batch_size=self.batch_size)
        if not is_int(self.seed) or self.seed < 0:
            raise ValueError(f"ParserSettings: seed must be an integer >= 0; got {self.seed!r}")
        check_probability("ParserSettings", "dropout", self.dropout)
        check_probability("ParserSettings", "word_dropout", self.word_dropout)
        for name in ("lr", "clip_grad_norm"):
            value = getattr(self, name)
            if not is_number(value) or not 0 < value < math.inf:
                raise ValueError(f"ParserSettings: {name} must be a positive number; got "
                                 f"{value!r}")
        if not isinstance(self.lower, bool):
            raise ValueError(f"ParserSettings: lower must be True or False; got {self.lower!r}")
        if self.data is not None and not isinstance(self.data, str):
            raise ValueError(f"ParserSettings: data must be a str or None; got {self.data!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "ParserSettings":
        """The settings of a file; ValueError on an unknown or bad field."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown parser settings {unknown}")
        settings = cls(**values)
        settings.validate()
        return settings

    def model_kwargs(self) -> dict:
        return {"embed_dim": self.embed_dim, "hidden_size": self.hidden_size,
                "mlp_size": self.mlp_size, "num_layers": self.num_layers,
                "dropout": self.dropout}


class ParserTrainResult(NamedTuple):
    """What :func:`train_parser` returns: the parser with the best dev weights (eval mode), the
    per-epoch history and the best epoch ``{"epoch", "dev"}``."""

    parser: SpanParser
    history: list[dict]
    best: dict


def train_parser(train_trees: Sequence[SentimentTree], dev_trees: Sequence[SentimentTree],
                 out_dir: Optional[PathLike] = None, epochs: int = 10, seed: int = 0, *,
                 resume: bool = False, overwrite: bool = False,
                 progress: Union[bool, Progress] = False,
                 device: Union[str, torch.device] = "cpu",
                 on_epoch_end: Optional[Callable[[int, dict], None]] = None,
                 **settings: Any) -> ParserTrainResult:
    """Train a :class:`SpanParser` on ``train_trees`` (structured hinge loss, Adam), keep the
    epoch with the best dev bracket F1.

    Each epoch visits the trees in an order that depends on (seed, epoch) only (batches of
    similar lengths, shuffled). With ``out_dir``, atomically (temporary file + rename):
    ``parser.pt`` whenever dev F1 improves, then ``checkpoint.pt`` (weights, optimizer, epoch,
    RNG states, history) and ``metrics.json`` after every epoch.

    Args:
        train_trees, dev_trees: the trees (labels unused; unary chains are collapsed and wider
            nodes right-binarised for training, and dev is scored against the trees as given).
        out_dir: where the files go; ``None`` keeps everything in memory.
        epochs, seed: passes over the training trees; the seed of the weights, the order and
            the dropout masks.
        resume: continue from ``out_dir/checkpoint.pt`` if it exists; the result is the same,
            bit for bit on one device and thread count, as an uninterrupted run. ``epochs`` may
            be raised to train longer; every other setting and the training trees must match.
        overwrite: start afresh in an ``out_dir`` that holds a run, replacing its files.
        progress: ``True`` for tqdm bars, or ``progress(iterable, total, description)``.
        device: where to train (``"cpu"``, ``"cuda"``, ``"auto"``).
        on_epoch_end: ``on_epoch_end(epoch, record)`` after each epoch's files are written.
        settings: the other fields of :class:`ParserSettings` (``embed_dim``, ``lr``, ...).

    Raises:
        FileExistsError: ``out_dir`` holds a run and neither ``resume`` nor ``overwrite``.
        ValueError: a bad setting, no trees, or (``resume``) a checkpoint that is damaged or
            was written with other settings or training trees.
        FloatingPointError: a NaN or infinite loss (nothing of that epoch is written).
    """
    from .training.config import resolve_device

    config = ParserSettings(epochs=epochs, seed=seed, **settings)
    config.validate()
    if not train_trees or not dev_trees:
        raise ValueError(f"train_parser: {len(train_trees)} training and {len(dev_trees)} dev "
                         "trees; expected at least one of each")
    out_path = Path(out_dir) if out_dir is not None else None
    if resume and out_path is None:
        raise ValueError("train_parser: resume=True needs an out_dir holding checkpoint.pt")
    device = torch.device(device) if isinstance(device, torch.device) else resolve_device(device)
    run = _ParserRun.start(config, list(train_trees), list(dev_trees), out_path, device,
                           progress, resume, overwrite)
    for epoch in range(run.start_epoch, config.epochs):
        record = run.run_epoch(epoch)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, record)
    return run.finish()


@dataclass
class _ParserRun:
    """One training run: what changes together (parser, optimizer, history, best epoch) and
    what it trains on; the steps of :func:`train_parser` are its methods."""

    config: ParserSettings
    train_trees: list[SentimentTree]
    dev_trees: list[SentimentTree]
    out_dir: Optional[Path]
    device: torch.device
    progress: Union[bool, Progress]
    parser: SpanParser
    optimizer: torch.optim.Optimizer
    fingerprints: dict
    train_ids: list[list[int]]
    train_gold: list[list[Span]]
    history: list[dict] = dataclasses.field(default_factory=list)
    best: dict = dataclasses.field(default_factory=dict)
    best_state: Optional[dict] = None  # without out_dir: the best epoch's weights
    start_epoch: int = 0

    @classmethod
    def start(cls, config: ParserSettings, train_trees: list[SentimentTree],
              dev_trees: list[SentimentTree], out_dir: Optional[Path], device: torch.device,
              progress: Union[bool, Progress], resume: bool, overwrite: bool) -> "_ParserRun":
        from .training.resume import _data_fingerprint
        from .training.seed import seed_everything

        checkpoint = None
        if out_dir is not None:
            if not resume and not overwrite:
                check_no_run(out_dir, PARSER_FILES)
            for stale in remove_stale_temp_files(out_dir, PARSER_FILES):
                logger.info("removed %s, left by a run killed while writing", stale)
        fingerprints = {"train": _data_fingerprint(train_trees),
                        "dev": _data_fingerprint(dev_trees)}
        if resume:  # train_parser refuses resume without an out_dir
            checkpoint = _load_resumable(cast(Path, out_dir), config, fingerprints)
        seed_everything(config.seed)
        vocab = checkpoint.vocab if checkpoint is not None else \
            Vocab.build((tree.tokens for tree in train_trees), lower=config.lower)
        parser = SpanParser(vocab, **config.model_kwargs()).to(device)
        optimizer = torch.optim.Adam(parser.parameters(), lr=config.lr)
        run = cls(config, train_trees, dev_trees, out_dir, device, progress, parser, optimizer,
                  fingerprints, train_ids=[vocab.encode(tree.tokens) for tree in train_trees],
                  train_gold=[_binary_gold_spans(tree) for tree in train_trees])
        if checkpoint is not None:
            run._restore(checkpoint)
        return run

    def _restore(self, checkpoint) -> None:
        from .training.seed import set_rng_state

        try:
            self.parser.load_state_dict(checkpoint.state_dict)
            self.optimizer.load_state_dict(checkpoint.optimizer)
            for group in self.optimizer.param_groups:
                if group.get("lr") != self.config.lr:
                    raise ValueError(f"the optimizer state has lr={group.get('lr')!r}, the "
                                     f"settings lr={self.config.lr!r}")
            set_rng_state(checkpoint.rng_state)
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as error:
            reason = (str(error).strip().splitlines() or [""])[0]
            raise ValueError(f"{checkpoint.path}: cannot resume: its weights, optimizer or RNG "
                             f"state do not fit this run's settings: {type(error).__name__}: "
                             f"{reason[:300]}") from None
        self.start_epoch = checkpoint.epoch
        self.history = checkpoint.extra["history"]
        self.best = checkpoint.extra["best"]
        logger.info("resuming %s after epoch %d", checkpoint.path, self.start_epoch)

    # ------------------------------------------------------------------------- an epoch
    def run_epoch(self, epoch: int) -> dict:
        from .training.checkpoint import save_checkpoint
        from .training.seed import get_rng_state

        train_metrics = self.train_epoch(epoch)
        dev = evaluate_parser(self.parser, self.dev_trees)
        improved = not self.best or dev["f1"] > self.best["dev"]["f1"]
        record = {"epoch": epoch + 1, "train": train_metrics, "dev": dev, "best": improved}
        self.history.append(record)
        if improved:
            self.best = {"epoch": epoch + 1, "dev": dev}
            if self.out_dir is not None:
                save_checkpoint(self.out_dir / "parser.pt", self.parser, self.parser.vocab,
                                self.config.to_dict(), epoch=epoch + 1,
                                extra={"dev": dev, "fingerprints": self.fingerprints},
                                model_classes=_MODEL_CLASSES)
            else:
                self.best_state = {k: v.detach().clone() for k, v in
                                   self.parser.state_dict().items()}
        logger.info("epoch %d/%d: train loss %.4f, dev F1 %.2f%%%s, %.0f sentences/s",
                    epoch + 1, self.config.epochs, train_metrics["loss"], 100 * dev["f1"],
                    " (best)" if improved else "", train_metrics["sentences_per_s"])
        if self.out_dir is not None:
            save_checkpoint(self.out_dir / "checkpoint.pt", self.parser, self.parser.vocab,
                            self.config.to_dict(), optimizer=self.optimizer, epoch=epoch + 1,
                            rng_state=get_rng_state(),
                            extra={"history": self.history, "best": self.best,
                                   "fingerprints": self.fingerprints},
                            model_classes=_MODEL_CLASSES)
            write_text(self.out_dir / "metrics.json", json.dumps(
                {"settings": self.config.to_dict(), "history": self.history, "best": self.best},
                indent=2) + "\n")
        return record

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """The batches of ``epoch``, a function of (seed, epoch) only: a shuffled order, cut
        into chunks sorted by length (little padding), cut into batches, the batches shuffled."""
        rng = np.random.default_rng([self.config.seed, epoch])
        order = rng.permutation(len(self.train_trees))
        lengths = np.array([len(ids) for ids in self.train_ids])
        size = self.config.batch_size
        batches: list[np.ndarray] = []
        for chunk_start in range(0, len(order), size * _SORT_CHUNK):
            chunk = order[chunk_start:chunk_start + size * _SORT_CHUNK]
            chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
            batches.extend(chunk[i:i + size] for i in range(0, len(chunk), size))
        return [batches[i] for i in rng.permutation(len(batches))]

    def train_epoch(self, epoch: int) -> dict:
        parser, config = self.parser, self.config
        parser.train()
        batches = self.epoch_batches(epoch)
        total_loss, start = 0.0, time.perf_counter()
        for batch in track(self.progress, batches, len(batches),
                           f"epoch {epoch + 1}/{config.epochs}"):
            loss = self.hinge_loss(batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"epoch {epoch + 1}: the loss is {loss.item()} on "
                                         f"training trees {batch.tolist()[:8]} (try a smaller "
                                         "lr); nothing of this epoch was written")
            self.optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(parser.parameters(), config.clip_grad_norm)
            self.optimizer.step()
            total_loss += loss.item() * len(batch)
        seconds = time.perf_counter() - start
        return {"loss": total_loss / len(self.train_trees), "seconds": seconds,
                "sentences_per_s": len(self.train_trees) / seconds if seconds else math.inf}

    def hinge_loss(self, batch: np.ndarray) -> Tensor:
        """Mean over the batch of ``max_T [s(T) + D(T)] - s(T*)`` (cost-augmented CKY)."""
        ids = [self.train_ids[i] for i in batch]
        lengths = torch.tensor([len(row) for row in ids], device=self.device)
        token_ids = torch.zeros(len(ids), int(lengths.max()), dtype=torch.long)
        for row, values in enumerate(ids):
            token_ids[row, :len(values)] = torch.tensor(values)
        token_ids = token_ids.to(self.device)
        if self.config.word_dropout > 0:
            dropped = torch.rand(token_ids.shape, device=self.device) < self.config.word_dropout
            token_ids = token_ids.masked_fill(dropped & (token_ids != Vocab.pad_index),
                                              Vocab.unk_index)
        scores = self.parser(token_ids, lengths)
        gold = _span_mask([self.train_gold[i] for i in batch], scores)
        cost = _valid_spans(scores.shape[1], lengths).to(scores.dtype) - gold  # Hamming
        predicted_splits = cky(scores.detach() + cost, lengths).splits
        predicted = _span_mask([_split_spans(splits, n) for splits, n in
                                zip(predicted_splits, lengths.tolist())], scores)
        margins = ((predicted - gold) * scores + predicted * cost).sum(dim=(1, 2))
        return margins.clamp_min(0).mean()

    # ------------------------------------------------------------------------------ end
    def finish(self) -> ParserTrainResult:
        if self.out_dir is not None:
            parser = read_parser(self.out_dir / "parser.pt", map_location=self.device).parser
        else:  # the first epoch is always the best so far, and epochs >= 1
            self.parser.load_state_dict(cast(dict, self.best_state))
            parser = self.parser
        parser.eval()
        return ParserTrainResult(parser, self.history, self.best)


def _split_spans(splits: Mapping[Span, int], length: int) -> list[Span]:
    """Every span of the tree ``splits`` describes: the split ones and the words."""
    return list(splits) + [(k, k + 1) for k in range(length)]


def _span_mask(spans: Sequence[Sequence[Span]], like: Tensor) -> Tensor:
    """``[B, F, F]`` (``like``'s shape and device): 1 at each sentence's spans, else 0."""
    rows = [row for row, sentence in enumerate(spans) for _ in sentence]
    starts = [start for sentence in spans for start, _ in sentence]
    ends = [end for sentence in spans for _, end in sentence]
    mask = torch.zeros_like(like)
    mask[torch.tensor(rows), torch.tensor(starts), torch.tensor(ends)] = 1.0
    return mask


# ------------------------------------------------------------------------------ the files
@dataclass
class ParserFile:
    """The content of a file :func:`train_parser` writes, as :func:`read_parser` reads it."""

    path: str
    parser: SpanParser
    settings: ParserSettings
    epoch: Optional[int]
    extra: dict

    @property
    def vocab(self) -> Vocab:
        return self.parser.vocab


def read_parser(path: PathLike, map_location: Union[str, torch.device] = "cpu") -> ParserFile:
    """Read ``parser.pt`` (or ``checkpoint.pt``) as :func:`~treelstm.training.load_checkpoint`
    reads a classifier: ``torch.load(weights_only=True)`` (never runs code from the file), the
    SHA-256 digest, every field's type, the vocabulary against the weights; the parser is in
    eval mode on ``map_location``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: naming the file, if it is truncated, corrupt, not a treelstm file, or holds
            another model than a :class:`SpanParser` or settings that do not fit it.
    """
    from .training.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(path, map_location=map_location, model_classes=_MODEL_CLASSES)
    name = checkpoint.path
    try:
        settings = ParserSettings.from_dict(checkpoint.config)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}: damaged parser settings: {error}") from None
    model_config = dict(checkpoint.model_config)
    model_config.pop("vocab_size", None)  # load_checkpoint checked it against the vocabulary
    try:
        parser = SpanParser(checkpoint.vocab, **model_config)
        parser.load_state_dict(checkpoint.state_dict)
    except (TypeError, ValueError, RuntimeError) as error:
        raise ValueError(f"{name}: the stored weights do not fit a SpanParser (or its "
                         f"settings): {type(error).__name__}: {error}") from None
    if model_config != settings.model_kwargs():
        raise ValueError(f"{name}: the model's settings {model_config} differ from the training "
                         f"settings {settings.model_kwargs()}: a damaged or edited file")
    parser.to(map_location).eval()
    return ParserFile(name, parser, settings, checkpoint.epoch, checkpoint.extra)


def load_parser(path: PathLike, map_location: Union[str, torch.device] = "cpu"
                ) -> tuple[SpanParser, Vocab]:
    """``(parser, vocab)`` from a file :func:`train_parser` wrote (checked as
    :func:`read_parser` checks it); the parser is in eval mode on ``map_location``."""
    loaded = read_parser(path, map_location)
    return loaded.parser, loaded.vocab


def _load_resumable(out_dir: Path, config: ParserSettings, fingerprints: dict):
    """``out_dir/checkpoint.pt`` checked against this run, or ``None`` if there is none."""
    from .training.checkpoint import load_checkpoint
    from .training.resume import _check_rng_state

    path = out_dir / "checkpoint.pt"
    if not path.is_file():
        others = [name for name in ("parser.pt", "metrics.json") if (out_dir / name).exists()]
        if path.exists() or others:
            raise ValueError(f"{path}: cannot resume: " + (
                "not a file" if path.exists() else
                f"missing, but {out_dir} holds {' and '.join(others)} of a run") +
                "; use --overwrite to start again and replace it, or another --out")
        logger.info("%s not found: starting from scratch", path)
        return None
    checkpoint = load_checkpoint(path, model_classes=_MODEL_CLASSES)
    _check_same_run(checkpoint, config, fingerprints)
    if checkpoint.optimizer is None or checkpoint.rng_state is None or checkpoint.epoch is None:
        raise ValueError(f"{path}: cannot resume: the checkpoint holds no optimizer / RNG state "
                         "/ epoch")
    _check_rng_state(checkpoint)
    history, best = checkpoint.extra.get("history"), checkpoint.extra.get("best")
    if not isinstance(history, list) or len(history) != checkpoint.epoch or \
            not all(isinstance(record, dict) for record in history) or \
            not isinstance(best, dict) or \
            (history and not (is_int(best.get("epoch")) and 1 <= best["epoch"] <= len(history)
                              and isinstance(best.get("dev"), dict)
                              and is_number(best["dev"].get("f1")))):
        raise ValueError(f"{path}: cannot resume: its history and best epoch are not those "
                         "train_parser writes")
    if checkpoint.epoch > config.epochs:
        raise ValueError(f"{path}: cannot resume: it has {checkpoint.epoch} epochs done, more "
                         f"than --epochs {config.epochs}; raise --epochs to train on")
    if history:
        best_path = out_dir / "parser.pt"
        if not best_path.is_file():
            raise ValueError(f"{best_path}: missing; cannot resume without it")
        best_file = load_checkpoint(best_path, model_classes=_MODEL_CLASSES)
        _check_same_run(best_file, config, fingerprints)
        # The best epoch so far, or the next one (killed between parser.pt and checkpoint.pt).
        if best_file.epoch not in (best["epoch"], checkpoint.epoch + 1):
            raise ValueError(f"{best_path}: holds epoch {best_file.epoch!r}, but {path} has its "
                             f"best dev epoch at {best['epoch']}: not this run's parser.pt; "
                             "cannot resume")
    return checkpoint


def _check_same_run(checkpoint, config: ParserSettings, fingerprints: dict) -> None:
    """ValueError naming the file unless it was written with ``config`` (but ``epochs`` and
    ``data``) on the same trees."""
    saved = checkpoint.config
    current = config.to_dict()
    for key, value in current.items():
        if key in ("epochs", "data"):
            continue
        if saved.get(key, "<missing>") != value:
            raise ValueError(f"{checkpoint.path}: cannot resume: the checkpoint has "
                             f"{key}={saved.get(key, '<missing>')!r}, this run {key}={value!r}; "
                             "only epochs may change")
    saved_fingerprints = checkpoint.extra.get("fingerprints")
    for split, fingerprint in fingerprints.items():
        if not isinstance(saved_fingerprints, dict) or saved_fingerprints.get(split) != fingerprint:
            raise ValueError(f"{checkpoint.path}: cannot resume: the {split} trees differ from "
                             "those the checkpoint was trained on")

