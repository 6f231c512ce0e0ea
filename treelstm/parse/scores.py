"""Trees as spans, and scored against each other: :func:`tree_spans`, the baseline trees
(:func:`right_branching`, :func:`balanced`), evalb-style unlabeled bracket scores
(:func:`bracket_f1`) and a parser's scores on a treebank (:func:`evaluate_parser`)."""
from __future__ import annotations

import math
import time
from collections import Counter
from typing import Sequence

import torch

from ..data import SentimentTree
from ..data.parents import bottom_up_order, children_lists
from .cky import Span, _binary_tree
from .model import SpanParser, _check_sentences


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
