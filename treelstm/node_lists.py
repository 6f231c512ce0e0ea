"""The per-tree lists of :meth:`TreeBatch.from_parents <treelstm.TreeBatch.from_parents>` as
a user gives them (lists, tuples, arrays, tensors) -> int64 arrays, or a TypeError/ValueError
that names the tree and the node; the default child slots; the node lists shown in messages."""
from __future__ import annotations

from itertools import chain
from numbers import Number
from typing import Any, Iterable, Optional

import numpy as np
import torch
from torch import Tensor

__all__ = ["MAX_REPORTED", "node_list", "as_int_array", "reject_bools", "is_sequence", "type_name",
           "per_tree_lists", "default_positions"]

#: How many nodes (or roots) a message lists before "...".
MAX_REPORTED = 8


def node_list(nodes: np.ndarray) -> str:
    shown = ", ".join(str(int(v)) for v in nodes[:MAX_REPORTED])
    return f"[{shown}{', ...' if len(nodes) > MAX_REPORTED else ''}]"


_INT64_MAX = int(np.iinfo(np.int64).max)
_BOOL_TYPES = frozenset((bool, np.bool_))
#: What each kind of per-node integer may be, for the messages of :func:`as_int_array`.
_EXPECTED = {"parent": "-1 (root) or a node id in [0, {size})",
             "position": "a slot in [0, 2**63)"}


def as_int_array(values: Any, tree: int, kind: str) -> np.ndarray:
    """Tree ``tree``'s parent (``kind="parent"``) or position list as a 1-D int64 array.

    TypeError for anything but integers (floats, strings, nested lists; bools in tensors and
    arrays, and in lists after :func:`reject_bools`); ValueError for an integer that int64
    cannot hold (it would wrap around), naming the node.
    """
    what = f"{kind}s[{tree}]"
    is_list = type(values) is list or type(values) is tuple  # the common case: skip isinstance
    if not is_list:
        if not is_sequence(values):
            raise TypeError(f"TreeBatch: {what} must be a flat list of integers; got "
                            f"{type_name(values)}")
        if isinstance(values, Tensor):
            if values.dtype == torch.bool or values.is_floating_point() or values.is_complex():
                raise TypeError(f"TreeBatch: {what} must hold integers; got a tensor of dtype "
                                f"{values.dtype}")
            values = values.detach().cpu().numpy()
    try:
        array = np.asarray(values)
    except (ValueError, TypeError) as error:  # ragged nested lists
        node = next((v for v, value in enumerate(values)
                     if not isinstance(value, (Number, np.generic))), None)
        got = error if node is None else (f"{values[node]!r} ({type(values[node]).__name__}) "
                                          f"at node {node}")
        raise TypeError(f"TreeBatch: {what} must be a flat list of integers; got {got}") from None
    if array.ndim != 1:
        raise TypeError(f"TreeBatch: {what} must be a flat list of integers; got an array of shape "
                        f"{tuple(array.shape)}")
    dtype_kind = array.dtype.kind
    if array.size and dtype_kind not in "iu":
        if dtype_kind != "O" and not is_list:
            raise TypeError(f"TreeBatch: {what} must hold integers; got an array of dtype "
                            f"{array.dtype}")
        items = values if is_list else array.tolist()
        node = next((v for v, value in enumerate(items) if not isinstance(value, (int, np.integer))
                     or isinstance(value, (bool, np.bool_))), None)
        if node is not None:
            raise TypeError(f"TreeBatch: {what} must hold integers; got {items[node]!r} "
                            f"({type(items[node]).__name__}) at node {node}")
        try:  # all integers, in an object array, or beyond int64 (np.asarray made floats)
            return np.array(items, dtype=np.int64)
        except OverflowError:
            raise _beyond_int64([int(v) for v in items], tree, kind) from None
    if dtype_kind == "u" and array.dtype == np.uint64 and array.size and \
            int(array.max()) > _INT64_MAX:
        raise _beyond_int64(array.tolist(), tree, kind)  # astype would wrap them to negatives
    return array.astype(np.int64, copy=False)


def reject_bools(per_tree: list, kind: str) -> None:
    """TypeError for a bool in the plain lists of ``per_tree``, which np.asarray would read as
    0 or 1 (``[-1, True]``); one pass over all of them, not one per tree."""
    lists = [values for values in per_tree if type(values) is list or type(values) is tuple]
    types = set(map(type, chain.from_iterable(lists)))
    if not lists or (_BOOL_TYPES.isdisjoint(types) and torch.Tensor not in types):
        return

    def is_bool(value: Any) -> bool:  # a 0-d bool tensor too
        return type(value) in _BOOL_TYPES or (isinstance(value, torch.Tensor)
                                              and value.dtype == torch.bool)

    for tree, values in enumerate(per_tree):
        if type(values) is list or type(values) is tuple:
            node = next((v for v, value in enumerate(values) if is_bool(value)), None)
            if node is not None:
                raise TypeError(f"TreeBatch: {kind}s[{tree}] must hold integers; got "
                                f"{values[node]!r} (bool) at node {node}")


def _beyond_int64(values: list[int], tree: int, kind: str) -> ValueError:
    """The error for the first of ``values`` that int64 cannot hold."""
    node = next(v for v, value in enumerate(values) if not -_INT64_MAX - 1 <= value <= _INT64_MAX)
    expected = _EXPECTED[kind].format(size=len(values))
    return ValueError(f"TreeBatch: tree {tree}, node {node} has {kind} {values[node]}; expected "
                      f"{expected}")


def is_sequence(values: Any) -> bool:
    if isinstance(values, (Tensor, np.ndarray)):
        return values.ndim > 0
    return isinstance(values, Iterable) and not isinstance(
        values, (str, bytes, dict, set, frozenset, Number))  # a set has no node order


def type_name(value: Any) -> str:
    if isinstance(value, (Tensor, np.ndarray)) and value.ndim == 0:
        return f"a 0-d {type(value).__name__}"
    return type(value).__name__


def per_tree_lists(values: Any, kind: str) -> list:
    """``values`` (parents or positions) as a list with one entry per tree; TypeError for a flat
    list of integers or a non-sequence."""
    expected = f"TreeBatch.from_parents: expected one {kind} list per tree (a list of lists)"
    if not is_sequence(values):
        raise TypeError(f"{expected}; got {type_name(values)}")
    values = list(values)
    first = values[0] if values else None
    if isinstance(first, (Number, np.generic)) or (isinstance(first, (Tensor, np.ndarray))
                                                   and first.ndim == 0):
        got = ("integers" if isinstance(first, (int, np.integer, Tensor, np.ndarray))
               else f"{type(first).__name__}s")
        raise TypeError(f"{expected}; got a flat list of {got}. For one tree pass [{kind}s].")
    return values


def default_positions(parent: np.ndarray, key: Optional[np.ndarray] = None) -> np.ndarray:
    """Each node's slot when none are given: its rank among its siblings by node id, or by
    ``key`` (ties by node id) when given (``-1`` at roots); ``parent`` holds global ids."""
    position = np.full(parent.shape[0], -1, dtype=np.int64)
    children = np.flatnonzero(parent >= 0)
    if key is None:
        by_parent = children[np.argsort(parent[children], kind="stable")]
    else:
        by_parent = children[np.lexsort((key[children], parent[children]))]
    sorted_parent = parent[by_parent]
    group_start = np.flatnonzero(np.r_[True, sorted_parent[1:] != sorted_parent[:-1]])
    group_sizes = np.diff(np.r_[group_start, len(by_parent)])
    rank = np.arange(len(by_parent)) - np.repeat(group_start, group_sizes)
    position[by_parent] = rank
    return position


def first_descendants(parent: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """The smallest node id in each node's subtree (the node included): one vectorised step per
    depth, deepest first. With leaves numbered left to right before the internal nodes (as in a
    :class:`~treelstm.data.SentimentTree`), that is each node's leftmost leaf."""
    first = np.arange(parent.shape[0], dtype=np.int64)
    order = np.argsort(depth, kind="stable")
    bounds = np.searchsorted(depth[order], np.arange(int(depth.max()) + 2))
    for d in range(int(depth.max()), 0, -1):
        nodes = order[bounds[d]:bounds[d + 1]]
        np.minimum.at(first, parent[nodes], first[nodes])
    return first
