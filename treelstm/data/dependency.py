"""Dependency trees: one node per word, words in sentence order, every node gets input.

A dependency parse gives each word a head (another word, or the root). As a tree for a Child-Sum
Tree-LSTM (Tai, Socher & Manning 2015, Section 3.1), node ``i`` is word ``i``, its parent is its
head, and *every* node has an input vector (its word), unlike constituency trees where only the
leaves do. Readers: :func:`treelstm.data.read_conllu` (CoNLL-U files) and
:func:`treelstm.data.read_sick` (the SICK ``*.toks`` / ``*.parents`` files).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch
from torch import Tensor

from ..checks import is_int
from ..batch import TreeBatch
from .collate import checked_items
from .parents import ParentListTree, children_lists
from .vocab import Vocab

__all__ = ["DependencyTree", "DependencyInputs", "parents_from_heads", "collate_dependency_trees"]


class _HeadsError(ValueError):
    """A bad head list; ``words`` are the 1-based words at fault, so a reader can name their
    lines."""

    def __init__(self, message: str, words: Sequence[int]):
        super().__init__(message)
        self.words = list(words)


def parents_from_heads(heads: Sequence[int]) -> list[int]:
    """1-based heads (``0`` = root, the CoNLL-U ``HEAD`` column) -> 0-based parents (``-1``).

    Raises:
        ValueError: a head that is not an integer in ``0..n``, no root or several roots, a word
            that is its own head, or a cycle. The message names the word (1-based, as in the
            file) so that a reader can add its file and line.
    """
    num_words = len(heads)
    if num_words == 0:
        raise _HeadsError("no words; expected at least one", [])
    for word, head in enumerate(heads, start=1):
        if not is_int(head):
            raise _HeadsError(f"word {word} has head {head!r}; expected an integer in "
                              f"0..{num_words}", [word])
        if not 0 <= head <= num_words:
            raise _HeadsError(f"word {word} has head {head}, out of range; expected 0 (root) "
                              f"or a word in 1..{num_words}", [word])
        if head == word:
            raise _HeadsError(f"word {word} is its own head (a cycle)", [word])
    roots = [word for word, head in enumerate(heads, start=1) if head == 0]
    if not roots:
        raise _HeadsError("no root (no word with head 0); expected exactly one", [])
    if len(roots) > 1:
        shown = ", ".join(map(str, roots[:8])) + (", ..." if len(roots) > 8 else "")
        raise _HeadsError(f"{len(roots)} roots (words {shown} have head 0); expected exactly "
                          "one", roots)
    cycle = _find_cycle(heads)
    if cycle:
        raise _HeadsError(f"cycle: words {' -> '.join(map(str, cycle + cycle[:1]))} never "
                          "reach the root", cycle)
    return [head - 1 for head in heads]


def _find_cycle(heads: Sequence[int]) -> list[int]:
    """A cycle of 1-based words (each followed by its head), or ``[]``; iterative, O(n)."""
    state = [0] * (len(heads) + 1)  # 0: unseen, 1: on the current path, 2: reaches the root
    state[0] = 2
    for start in range(1, len(heads) + 1):
        path, word = [], start
        while state[word] == 0:
            state[word] = 1
            path.append(word)
            word = heads[word - 1]
        if state[word] == 1:
            return path[path.index(word):]
        for visited in path:
            state[visited] = 2
    return []


@dataclass
class DependencyTree(ParentListTree):
    """One sentence with its dependency tree (``n`` words = ``n`` nodes).

    Attributes:
        tokens: ``[n]`` the words in sentence order; word ``i`` is node ``i``.
        parent: ``[n]`` the node of each word's head, ``-1`` at the root.
        deprels: ``[n]`` the relation of each word to its head (``"nsubj"``, ...), or ``None``.
        sent_id: an identifier for messages (a CoNLL-U ``sent_id``, a SICK pair id, ...).
    """

    tokens: list[str]
    parent: list[int]
    deprels: Optional[list[str]] = None
    sent_id: Optional[str] = None

    @classmethod
    def from_heads(cls, tokens: Sequence[str], heads: Sequence[int],
                   deprels: Optional[Sequence[str]] = None,
                   sent_id: Optional[str] = None) -> "DependencyTree":
        """From 1-based heads (``0`` = root); ValueError as :func:`parents_from_heads`, or when
        the lengths differ."""
        if len(tokens) != len(heads):
            raise ValueError(f"{len(tokens)} tokens but {len(heads)} heads; expected one head "
                             "per token")
        if deprels is not None and len(deprels) != len(tokens):
            raise ValueError(f"{len(tokens)} tokens but {len(deprels)} relations; expected one "
                             "relation per token")
        return cls(list(tokens), parents_from_heads(list(heads)),
                   None if deprels is None else list(deprels), sent_id)

    @property
    def heads(self) -> list[int]:
        """``[n]`` 1-based heads, ``0`` at the root (the inverse of :meth:`from_heads`)."""
        return [p + 1 for p in self.parent]

    def children(self) -> list[list[int]]:
        """``[n]`` lists: the dependents of each word, in sentence order."""
        return children_lists(self.parent)

    def validate(self) -> None:
        """ValueError unless tokens, parents (and relations) agree and form one tree."""
        name = f"DependencyTree {self.sent_id}" if self.sent_id else "DependencyTree"
        if len(self.tokens) != len(self.parent):
            raise ValueError(f"{name}: {len(self.tokens)} tokens but {len(self.parent)} parents; "
                             "expected one per word")
        bad = next((t for t in self.tokens if not isinstance(t, str)), None)
        if bad is not None:
            raise TypeError(f"{name}: tokens must be str; got {bad!r}")
        if self.deprels is not None and len(self.deprels) != len(self.tokens):
            raise ValueError(f"{name}: {len(self.tokens)} tokens but {len(self.deprels)} "
                             "relations; expected one per word")
        heads = [p + 1 if is_int(p) else p
                 for p in self.parent]
        try:
            parents_from_heads(heads)
        except ValueError as error:
            raise ValueError(f"{name}: {error} (words counted from 1)") from None


@dataclass
class DependencyInputs:
    """A batch of dependency trees for a Tree-LSTM with input at every node (``N`` nodes).

    Attributes:
        batch: the :class:`~treelstm.TreeBatch`, tree by tree, each tree's nodes in word order.
        token_ids: ``[N]`` the vocabulary id of every node's word (row ``v`` is node ``v``).
    """

    batch: TreeBatch
    token_ids: Tensor

    def to(self, device: Union[str, torch.device]) -> "DependencyInputs":
        """The same inputs on ``device``."""
        return DependencyInputs(self.batch.to(device), self.token_ids.to(device))


def collate_dependency_trees(trees: Sequence[DependencyTree], vocab: Vocab) -> DependencyInputs:
    """Batch dependency trees: one input row per node, in batch node order.

    Raises:
        TypeError, ValueError: not a non-empty list of valid :class:`DependencyTree`.
    """
    trees = checked_items(trees, DependencyTree, "collate_dependency_trees")
    for t, tree in enumerate(trees):
        try:
            tree.validate()
        except ValueError as error:
            raise ValueError(f"collate_dependency_trees: tree {t}: {error}") from None
    batch = TreeBatch.from_parents([tree.parent for tree in trees])
    token_ids = [i for tree in trees for i in vocab.encode(tree.tokens)]
    return DependencyInputs(batch, torch.tensor(token_ids, dtype=torch.long))
