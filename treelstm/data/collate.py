"""Turn a list of :class:`~treelstm.data.ptb.SentimentTree` into model inputs.

The same trees feed both models: :func:`collate_trees` for a Tree-LSTM and
:func:`collate_sequences` for an ``nn.LSTM`` baseline over the tokens.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np
import torch
from torch import Tensor

from ..batch import TreeBatch
from .ptb import SentimentTree, _check_structure
from .vocab import Vocab

__all__ = ["SequenceInputs", "TreeInputs", "collate_sequences", "collate_trees"]


@dataclass
class TreeInputs:
    """A batch of sentiment trees for a Tree-LSTM (``N`` nodes, ``T`` trees, ``L`` leaves).

    Attributes:
        batch: the :class:`~treelstm.TreeBatch`; node order is tree by tree, each tree's nodes in
            its parent-list order; child slots are left to right.
        token_ids: ``[L]`` vocabulary ids of all tokens, tree by tree in sentence order.
        leaf_index: ``[L]`` global node id of each token's leaf (token ``i`` of tree ``t`` is
            node ``batch.offsets[t] + i``).
        labels: ``[N]`` the label of every node.
        root_labels: ``[T]`` the label of each tree's root.
    """

    batch: TreeBatch
    token_ids: Tensor
    leaf_index: Tensor
    labels: Tensor
    root_labels: Tensor

    def to(self, device: Union[str, torch.device]) -> "TreeInputs":
        """The same inputs on ``device``."""
        return TreeInputs(self.batch.to(device), self.token_ids.to(device),
                          self.leaf_index.to(device), self.labels.to(device),
                          self.root_labels.to(device))


@dataclass
class SequenceInputs:
    """The token sequences of a batch of trees for an ``nn.LSTM`` (``B`` trees).

    Attributes:
        token_ids: ``[B, T_max]`` ids, right-padded with ``vocab.pad_index`` (0).
        lengths: ``[B]`` tokens per sentence (for ``pack_padded_sequence``; kept on the CPU
            by :meth:`to`, as that function wants).
        labels: ``[B]`` root label of each tree.
    """

    token_ids: Tensor
    lengths: Tensor
    labels: Tensor

    @property
    def root_labels(self) -> Tensor:
        """``[B]`` the sentence labels (the same as :class:`TreeInputs`' root labels)."""
        return self.labels

    def to(self, device: Union[str, torch.device]) -> "SequenceInputs":
        """The same inputs with ``token_ids`` and ``labels`` on ``device``."""
        return SequenceInputs(self.token_ids.to(device), self.lengths, self.labels.to(device))


def checked_items(items: Sequence, item_type: type, caller: str, noun: str = "tree",
                  hint: str = "") -> list:
    """``items`` as a non-empty list of ``item_type``; TypeError / ValueError naming ``caller``
    otherwise (shared by every collate function)."""
    if isinstance(items, item_type):
        raise TypeError(f"{caller}: expected a list of {item_type.__name__}, got one {noun}; "
                        f"pass [{noun}]")
    items = list(items)
    if not items:
        raise ValueError(f"{caller}: expected at least one {noun}, got none")
    for i, item in enumerate(items):
        if not isinstance(item, item_type):
            raise TypeError(f"{caller}: item {i} is a {type(item).__name__}; expected "
                            f"{item_type.__name__}{hint}")
    return items


def _checked(trees: Sequence[SentimentTree], vocab: Vocab, caller: str) -> list[SentimentTree]:
    """``trees`` as a list, each checked with :meth:`SentimentTree.validate`'s checks (naming
    ``caller`` and the tree)."""
    if not isinstance(vocab, Vocab):
        raise TypeError(f"{caller}: vocab must be a Vocab, got {type(vocab).__name__}")
    trees = checked_items(trees, SentimentTree, caller)
    _check_each(trees, caller)
    return trees


def _check_each(trees: list[SentimentTree], caller: str) -> None:
    for t, tree in enumerate(trees):
        _check_structure(tree, f"{caller}: tree {t}")


def _tree_batch(trees: list[SentimentTree]) -> TreeBatch:
    """The trees' :class:`TreeBatch`, children in slots left to right, validated once and
    vectorised over the batch: :meth:`TreeBatch.from_parents` checks the parent lists (one root,
    ids in range, no cycle), the counts below check the rest of :meth:`SentimentTree.validate`
    (leaves ``0..n-1`` without children, the others with). ValueError (naming the tree):
    explained by the per-tree checks, which run only when the batch is not valid."""
    try:
        if any(len(tree.labels) != len(tree.parent) or not 0 < len(tree.tokens) <= len(tree.parent)
               for tree in trees):
            raise ValueError("a tree's lists do not agree")
        if not all(isinstance(token, str) for tree in trees for token in tree.tokens):
            raise ValueError("a token that is no str")
        batch = TreeBatch.from_parents([tree.parent for tree in trees],
                                       child_order="first_descendant")
        sizes = np.array([len(tree.tokens) for tree in trees], dtype=np.int64)
        local_id = np.arange(batch.num_nodes) - np.repeat(batch.offsets.numpy(),
                                                          batch.tree_sizes.numpy())
        is_leaf = local_id < np.repeat(sizes, batch.tree_sizes.numpy())
        if not np.array_equal(batch.num_children.numpy() == 0, is_leaf):
            raise ValueError("a leaf with children, or an internal node without")
    except (TypeError, ValueError) as error:
        _check_each(trees, "collate_trees")  # raises, naming the tree and the reason
        raise ValueError(f"collate_trees: {error}") from None
    return batch


def collate_trees(trees: Sequence[SentimentTree], vocab: Vocab) -> TreeInputs:
    """Batch trees for a Tree-LSTM; see :class:`TreeInputs` for the shapes.

    Raises:
        TypeError, ValueError: not a non-empty list of valid trees (see
            :meth:`SentimentTree.validate`).
    """
    if not isinstance(vocab, Vocab):
        raise TypeError(f"collate_trees: vocab must be a Vocab, got {type(vocab).__name__}")
    trees = checked_items(trees, SentimentTree, "collate_trees")
    batch = _tree_batch(trees)
    sizes = [len(tree.tokens) for tree in trees]
    leaf_index = torch.arange(sum(sizes)) + torch.repeat_interleave(
        batch.offsets - torch.tensor([0] + sizes[:-1]).cumsum(0), torch.tensor(sizes))
    try:  # tokens and labels: checked per tree only if they cannot be read
        token_ids = torch.tensor([i for tree in trees for i in vocab.encode(tree.tokens)],
                                 dtype=torch.long)
        labels = torch.tensor([label for tree in trees for label in tree.labels],
                              dtype=torch.long)
        root_labels = torch.tensor([tree.root_label for tree in trees], dtype=torch.long)
    except (TypeError, ValueError, OverflowError, RuntimeError, AttributeError) as error:
        _check_each(trees, "collate_trees")  # raises, naming the tree and the reason
        raise ValueError(f"collate_trees: {error}") from None
    return TreeInputs(batch=batch, token_ids=token_ids, leaf_index=leaf_index, labels=labels,
                      root_labels=root_labels)


def collate_sequences(trees: Sequence[SentimentTree], vocab: Vocab) -> SequenceInputs:
    """Pad the trees' token sequences for an ``nn.LSTM`` baseline; see :class:`SequenceInputs`.

    Use with ``pack_padded_sequence(embed(token_ids), lengths, batch_first=True,
    enforce_sorted=False)``.
    """
    trees = _checked(trees, vocab, "collate_sequences")
    lengths = [len(tree.tokens) for tree in trees]
    token_ids = torch.full((len(trees), max(lengths)), vocab.pad_index, dtype=torch.long)
    for row, tree in enumerate(trees):
        token_ids[row, :lengths[row]] = torch.tensor(vocab.encode(tree.tokens), dtype=torch.long)
    return SequenceInputs(token_ids=token_ids,
                          lengths=torch.tensor(lengths, dtype=torch.long),
                          labels=torch.tensor([tree.root_label for tree in trees],
                                              dtype=torch.long))
