"""Decoding: the exact best binary tree of span scores (:func:`cky`), and the tree itself
(:class:`~treelstm.data.SentimentTree`) built from its splits."""
from __future__ import annotations

from typing import Callable, NamedTuple

import torch
from torch import Tensor

from ..data import IGNORE_INDEX, SentimentTree

#: A span ``(i, j)``: the words ``i+1 .. j``, between fenceposts ``i`` and ``j``.
Span = tuple[int, int]


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

