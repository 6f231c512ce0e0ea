"""TreeBatch: a validated batch of trees with its bottom-up level schedule.

The checks of the user's lists live in :mod:`treelstm.node_lists`, the networkx and DGL formats
in :mod:`treelstm.graph_formats`; the constructors here put them together.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from . import graph_formats
from .node_lists import (as_int_array, default_positions, first_descendants, node_list,
                         per_tree_lists, reject_bools)

#: How :meth:`TreeBatch.from_parents` orders siblings when no positions are given.
CHILD_ORDERS = ("id", "first_descendant")

#: What :meth:`TreeBatch.from_parents` takes for ``parents`` and ``positions``: one list, array or
#: tensor per tree.
NodeLists = Sequence[Union[Sequence[int], np.ndarray, Tensor]]


@dataclass(frozen=True)
class LevelOrder:
    """The bottom-up schedule: level ``k`` holds the nodes of height ``k`` (all their children
    have smaller heights; level 0 = the leaves), laid out as rows of one buffer so that each
    level is one contiguous block of rows, for executors that keep all states in one
    ``[num_nodes, H]`` buffer and write each level in place.

    ``nodes`` ``[N]`` the node in each row, level by level; ``row`` ``[N]`` each node's row (the
    inverse permutation); level ``k`` is rows ``bounds[k]:bounds[k + 1]``. The child edges are
    grouped by their parent's level, the edges into level ``k`` being
    ``edge_bounds[k]:edge_bounds[k + 1]``: ``child_row`` ``[E]`` the row of each edge's child;
    ``child_parent`` ``[E]`` the index of its parent *within* its level (its row minus
    ``bounds[k]``). ``root_row`` ``[T]`` the row of each tree's root.
    """

    nodes: Tensor
    row: Tensor
    bounds: tuple[int, ...]
    child_row: Tensor
    child_parent: Tensor
    edge_bounds: tuple[int, ...]
    root_row: Tensor


@dataclass(frozen=True)
class DepthOrder:
    """The top-down schedule as rows of one buffer: the nodes by depth, roots first, so that
    depth ``d`` is rows ``bounds[d]:bounds[d + 1]`` (depth 0 = the roots, one per tree).

    ``nodes`` ``[N]`` the node in each row; ``row`` ``[N]`` each node's row (the inverse
    permutation); ``parent_offset`` ``[N - T]`` for rows ``T..N-1`` the index of the row's
    parent *within* the previous depth's rows.
    """

    nodes: Tensor
    row: Tensor
    bounds: tuple[int, ...]
    parent_offset: Tensor


class TreeBatch:
    r"""A batch of rooted trees, validated once, with the schedule both executors use.

    Node order is tree by tree, and inside a tree the order of its parent list; parents may come
    before or after their children. Build one with :meth:`from_parents`, :meth:`from_networkx` or
    :meth:`from_dgl`.

    The tensors below are all ``torch.long`` on ``device``, with ``N`` = ``num_nodes`` and
    ``T`` = ``num_trees``.

    Attributes:
        parent: ``[N]`` global id of each node's parent, ``-1`` at roots.
        position: ``[N]`` each node's child slot under its parent (``-1`` at roots).
        tree_index: ``[N]`` the tree each node belongs to.
        roots: ``[T]`` global id of each tree's root.
        tree_sizes: ``[T]`` nodes per tree.
        offsets: ``[T]`` global id of each tree's node 0.
        depth: ``[N]`` distance to the root (root = 0).
        height: ``[N]`` longest distance down to a leaf (leaf = 0); the schedule's level.
        num_children: ``[N]``.

    Example::

        >>> batch = TreeBatch.from_parents([[-1, 0, 0], [2, 2, -1]])
        >>> batch.num_nodes, batch.num_trees
        (6, 2)
        >>> batch.roots
        tensor([0, 5])
    """

    # The tensors above, set in __init__ from the arrays of ``_np`` (declared for type checkers).
    parent: Tensor
    position: Tensor
    tree_index: Tensor
    roots: Tensor
    tree_sizes: Tensor
    offsets: Tensor
    depth: Tensor
    height: Tensor
    num_children: Tensor

    def __init__(self, parent: np.ndarray, position: np.ndarray, tree_sizes: np.ndarray,
                 depth: np.ndarray, height: np.ndarray, device: torch.device = torch.device("cpu")):
        # Private: use the from_* constructors, which validate.
        self._np = {"parent": parent, "position": position, "tree_sizes": tree_sizes,
                    "depth": depth, "height": height}
        self.device = torch.device(device)
        self.num_nodes = int(parent.shape[0])
        self.num_trees = int(tree_sizes.shape[0])
        offsets = np.zeros(self.num_trees, dtype=np.int64)
        np.cumsum(tree_sizes[:-1], out=offsets[1:])
        tree_index = np.repeat(np.arange(self.num_trees, dtype=np.int64), tree_sizes)
        num_children = np.bincount(parent[parent >= 0], minlength=self.num_nodes)
        self._np.update(offsets=offsets, tree_index=tree_index, num_children=num_children,
                        roots=np.flatnonzero(parent < 0))
        for name, array in self._np.items():
            setattr(self, name, torch.from_numpy(array).to(self.device))
        self.num_levels = int(height.max()) + 1 if self.num_nodes else 0
        self.max_children = int(num_children.max()) if self.num_nodes else 0
        self._level_order: Optional[LevelOrder] = None
        self._depth_order: Optional[DepthOrder] = None
        self._child_slots: dict[int, Tensor] = {}
        self._level_children: dict[int, tuple[Tensor, ...]] = {}
        self._arity_checked: set[int] = set()
        self._dgl_graph = None
        self._on_device: dict[torch.device, "TreeBatch"] = {self.device: self}

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_parents(cls, parents: NodeLists, positions: Optional[NodeLists] = None,
                     child_order: str = "id") -> "TreeBatch":
        """Batch trees given as parent lists.

        Args:
            parents: one list per tree; ``parents[t][v]`` is the parent of node ``v`` of tree ``t``
                (an index into the same list), ``-1`` for the root. Lists, arrays or tensors.
            positions: optional, same shape; ``positions[t][v]`` is node ``v``'s child slot under
                its parent (used by N-ary cells; the root's entry is ignored). By default a node's
                slot is its rank among its siblings by node id.
            child_order: without ``positions``, how siblings are put in slots: ``"id"`` (by node
                id) or ``"first_descendant"`` (by the smallest node id in each sibling's subtree:
                left to right when the leaves are numbered in sentence order before the internal
                nodes, as in a :class:`~treelstm.data.SentimentTree`, whose
                :meth:`~treelstm.data.SentimentTree.child_positions` these equal).

        Raises:
            TypeError: non-integer parents or positions (floats, bools, strings, nested lists; a
                tensor or array of a non-integer dtype), or a flat list instead of one per tree.
            ValueError: an empty tree, a parent out of range (including integers beyond int64,
                which would wrap around), zero or several roots, a cycle, a negative slot or a
                slot used twice under one parent.
        """
        if child_order not in CHILD_ORDERS:
            raise ValueError(f"TreeBatch.from_parents: child_order must be one of {CHILD_ORDERS}; "
                             f"got {child_order!r}")
        parents = per_tree_lists(parents, "parent")
        if not parents:
            raise ValueError("TreeBatch.from_parents: expected at least one tree; got none")
        reject_bools(parents, "parent")
        arrays = [as_int_array(p, t, "parent") for t, p in enumerate(parents)]
        tree_sizes = np.array([len(a) for a in arrays], dtype=np.int64)
        empty = np.flatnonzero(tree_sizes == 0)
        if len(empty):
            raise ValueError(f"TreeBatch: tree {empty[0]} is empty; every tree needs at least one "
                             "node (its root)")
        local_parent = np.concatenate(arrays)
        num_trees, num_nodes = len(arrays), int(tree_sizes.sum())
        offsets = np.zeros(num_trees, dtype=np.int64)
        np.cumsum(tree_sizes[:-1], out=offsets[1:])
        tree_index = np.repeat(np.arange(num_trees, dtype=np.int64), tree_sizes)
        local_id = np.arange(num_nodes, dtype=np.int64) - offsets[tree_index]

        out_of_range = np.flatnonzero((local_parent < -1) | (local_parent >= tree_sizes[tree_index]))
        if len(out_of_range):
            v = out_of_range[0]
            t = tree_index[v]
            raise ValueError(f"TreeBatch: tree {t}, node {local_id[v]} has parent "
                             f"{local_parent[v]}; expected -1 (root) or a node id in "
                             f"[0, {tree_sizes[t]})")
        is_root = local_parent == -1
        cls._check_one_root(is_root, tree_index, local_id, num_trees)
        parent = np.where(is_root, -1, local_parent + offsets[tree_index])
        depth = cls._depths(parent, tree_index, local_id)

        if positions is None:
            key = first_descendants(parent, depth) if child_order == "first_descendant" else None
            position = default_positions(parent, key)
        else:
            position = cls._checked_positions(positions, parent, tree_sizes, tree_index, local_id)
        height = cls._heights(parent, depth)
        return cls(parent, position, tree_sizes, depth, height)

    @staticmethod
    def _check_one_root(is_root: np.ndarray, tree_index: np.ndarray, local_id: np.ndarray,
                        num_trees: int) -> None:
        """ValueError naming the first tree without a root or with several (and their nodes)."""
        roots_per_tree = np.bincount(tree_index[is_root], minlength=num_trees)
        bad = np.flatnonzero(roots_per_tree != 1)
        if len(bad):
            t = bad[0]
            if roots_per_tree[t] == 0:
                raise ValueError(f"TreeBatch: tree {t} has no root (no parent -1); expected "
                                 "exactly one")
            found = local_id[is_root & (tree_index == t)]
            raise ValueError(f"TreeBatch: tree {t} has {roots_per_tree[t]} roots (nodes "
                             f"{node_list(found)}); expected exactly one")

    @staticmethod
    def _depths(parent: np.ndarray, tree_index: np.ndarray, local_id: np.ndarray) -> np.ndarray:
        """Depth of every node by pointer doubling (O(N log N), no recursion); ValueError on cycles."""
        num_nodes = parent.shape[0]
        nodes = np.arange(num_nodes, dtype=np.int64)
        jump = np.where(parent < 0, nodes, parent)
        dist = (parent >= 0).astype(np.int64)
        for _ in range(max(1, math.ceil(math.log2(max(num_nodes, 2)))) + 1):
            dist = dist + dist[jump]
            jump = jump[jump]
        stuck = np.flatnonzero(parent[jump] >= 0)
        if len(stuck):
            t = tree_index[stuck[0]]
            in_tree = stuck[tree_index[stuck] == t]
            raise ValueError(f"TreeBatch: tree {t} has a cycle: nodes {node_list(local_id[in_tree])} "
                             "never reach the root")
        return dist

    @staticmethod
    def _checked_positions(positions, parent, tree_sizes, tree_index, local_id) -> np.ndarray:
        positions = per_tree_lists(positions, "position")
        if len(positions) != len(tree_sizes):
            raise ValueError(f"TreeBatch: got {len(tree_sizes)} parent lists but {len(positions)} "
                             "position lists; expected one per tree")
        reject_bools(positions, "position")
        arrays = [as_int_array(p, t, "position") for t, p in enumerate(positions)]
        for t, array in enumerate(arrays):
            if len(array) != tree_sizes[t]:
                raise ValueError(f"TreeBatch: tree {t} has {tree_sizes[t]} nodes but "
                                 f"{len(array)} positions; expected one position per node")
        position = np.concatenate(arrays)
        position[parent < 0] = -1
        negative = np.flatnonzero((parent >= 0) & (position < 0))
        if len(negative):
            v = negative[0]
            raise ValueError(f"TreeBatch: tree {tree_index[v]}, node {local_id[v]} has position "
                             f"{position[v]}; expected a slot >= 0")
        children = np.flatnonzero(parent >= 0)
        order = children[np.lexsort((position[children], parent[children]))]
        same = np.flatnonzero((parent[order[1:]] == parent[order[:-1]])
                              & (position[order[1:]] == position[order[:-1]]))
        if len(same):
            a, b = order[same[0]], order[same[0] + 1]
            raise ValueError(f"TreeBatch: tree {tree_index[a]}, nodes {local_id[a]} and "
                             f"{local_id[b]} both use slot {position[a]} under parent "
                             f"{local_id[parent[a]]}; each slot holds at most one child")
        return position

    @staticmethod
    def _heights(parent: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """Height of every node: one vectorised step per depth, deepest first."""
        height = np.zeros(parent.shape[0], dtype=np.int64)
        order = np.argsort(depth, kind="stable")
        bounds = np.searchsorted(depth[order], np.arange(int(depth.max()) + 2))
        for d in range(int(depth.max()), 0, -1):
            nodes = order[bounds[d]:bounds[d + 1]]
            np.maximum.at(height, parent[nodes], height[nodes] + 1)
        return height

    @classmethod
    def from_networkx(cls, graphs: Union[Any, Iterable[Any]]) -> "TreeBatch":
        """Batch ``networkx.DiGraph`` arborescences (edges parent -> child).

        A tree's node order is the graph's node order; a child's slot is the edge attribute
        ``"position"`` when every edge of the graph has one, else its rank among its siblings.

        Raises:
            TypeError: a graph that is not a ``networkx.DiGraph`` (or is a multigraph).
            ValueError: a node with two parents (with a hint when the edges look child ->
                parent, DGL's direction), a cycle (its nodes named), zero or several roots,
                ``"position"`` on some edges only, and :meth:`from_parents`'s errors.
        """
        graphs, parents, positions = graph_formats.networkx_trees(graphs)
        try:
            return cls.from_parents(parents, positions)
        except ValueError as error:
            if "has a cycle" not in str(error):
                raise
            # One root, and a cycle apart from it: name the cycle's nodes by their labels.
            cycle_error = graph_formats.networkx_cycle_error(graphs)
            if cycle_error is None:
                raise
            raise cycle_error from None

    @classmethod
    def from_nltk(cls, trees: Any, binarize: Optional[int] = None,
                  factor: str = "right") -> "TreeBatch":
        """A batch of ``nltk.Tree`` s (one, or an iterable): leaves are nodes ``0..n-1`` of each
        tree in sentence order, children in slots left to right; unary chains collapsed, nodes
        of more than ``binarize`` children factored (see
        :func:`~treelstm.data.tree_batch_from_nltk`). Needs nltk."""
        from .data.nltk_trees import tree_batch_from_nltk

        return tree_batch_from_nltk(trees, binarize, factor)

    @classmethod
    def from_dgl(cls, graph: Any) -> "TreeBatch":
        """Batch from a DGL graph with edges child -> parent (DGL's tree-LSTM convention).

        A batched graph (``dgl.batch``) keeps its trees; an unbatched one is one tree. A child's
        slot is ``graph.edata["position"]`` (integers, one per edge) when present.
        """
        return cls.from_parents(*graph_formats.dgl_trees(graph))

    # ------------------------------------------------------------------ conversions
    def to(self, device: Union[str, torch.device]) -> "TreeBatch":
        """The same batch with its tensors (and schedule) on ``device``."""
        device = torch.device(device)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        if device not in self._on_device:
            moved = TreeBatch(self._np["parent"], self._np["position"], self._np["tree_sizes"],
                              self._np["depth"], self._np["height"], device=device)
            moved._on_device = self._on_device  # copies share one cache, so each moves once
            self._on_device[device] = moved
        return self._on_device[device]

    def local_parents(self) -> list[list[int]]:
        """The per-tree parent lists this batch was built from."""
        parent, offsets = self._np["parent"], self._np["offsets"]
        local = np.where(parent < 0, -1, parent - offsets[self._np["tree_index"]])
        return [a.tolist() for a in np.split(local, np.cumsum(self._np["tree_sizes"])[:-1])]

    def local_positions(self) -> list[list[int]]:
        """The per-tree child slots (``-1`` at roots)."""
        position = self._np["position"]
        return [a.tolist() for a in np.split(position, np.cumsum(self._np["tree_sizes"])[:-1])]

    def to_networkx(self) -> list:
        """One ``networkx.DiGraph`` per tree, nodes ``0..n-1``, edges parent -> child with
        attribute ``"position"``."""
        return graph_formats.to_networkx(self.local_parents(), self.local_positions())

    def to_dgl(self):
        """A batched DGL graph with edges child -> parent and ``edata["position"]``, on this
        batch's device (DGL's tree-LSTM convention)."""
        return graph_formats.to_dgl(self._np["parent"], self._np["position"],
                                    self._np["tree_sizes"], self.device)

    def dgl_graph(self):
        """:meth:`to_dgl`, built once and cached."""
        if self._dgl_graph is None:
            self._dgl_graph = self.to_dgl()
        return self._dgl_graph

    # ------------------------------------------------------------------ schedule
    @property
    def level_order(self) -> LevelOrder:
        """The bottom-up schedule (see :class:`~treelstm.batch.LevelOrder`). Computed once, on
        ``device``."""
        if self._level_order is None:
            self._level_order = self._build_level_order()
        return self._level_order

    def _build_level_order(self) -> LevelOrder:
        parent, height = self._np["parent"], self._np["height"]
        node_order = np.argsort(height, kind="stable")
        node_bounds = np.searchsorted(height[node_order], np.arange(self.num_levels + 1))
        row = np.empty(self.num_nodes, dtype=np.int64)
        row[node_order] = np.arange(self.num_nodes)
        child = np.flatnonzero(parent >= 0)
        edge_order = np.argsort(height[parent[child]], kind="stable")
        child = child[edge_order]
        edge_level = height[parent[child]]  # the level each edge leads into
        edge_bounds = np.searchsorted(edge_level, np.arange(self.num_levels + 1))
        child_parent = row[parent[child]] - node_bounds[edge_level]
        # One host->device copy for the whole schedule.
        roots = self._np["roots"]
        flat = torch.from_numpy(np.concatenate([node_order, row, row[child], child_parent,
                                                row[roots]])).to(self.device)
        nodes, rows, child_row, child_parent, root_row = flat.split(
            [self.num_nodes] * 2 + [len(child)] * 2 + [len(roots)])
        return LevelOrder(nodes, rows, tuple(node_bounds.tolist()), child_row, child_parent,
                          tuple(edge_bounds.tolist()), root_row)

    @property
    def depth_order(self) -> DepthOrder:
        """The top-down schedule (see :class:`~treelstm.batch.DepthOrder`), for bidirectional
        layers. Computed once, on ``device``."""
        if self._depth_order is None:
            parent, depth = self._np["parent"], self._np["depth"]
            num_depths = int(depth.max()) + 1 if self.num_nodes else 0
            node_order = np.argsort(depth, kind="stable")
            bounds = np.searchsorted(depth[node_order], np.arange(num_depths + 1))
            row = np.empty(self.num_nodes, dtype=np.int64)
            row[node_order] = np.arange(self.num_nodes)
            below_roots = node_order[self.num_trees:]
            row_depth = depth[below_roots]
            parent_offset = row[parent[below_roots]] - bounds[row_depth - 1]
            flat = torch.from_numpy(np.concatenate([node_order, row, parent_offset])).to(
                self.device)
            nodes, rows, offsets = flat.split([self.num_nodes] * 2 + [len(below_roots)])
            self._depth_order = DepthOrder(nodes, rows, tuple(bounds.tolist()), offsets)
        return self._depth_order

    def child_slots(self, arity: int) -> Tensor:
        """``[num_nodes - L, arity]``, ``L`` = the number of leaves: for each non-leaf row of
        :attr:`level_order` (rows ``L..N-1``), the rows of its children by slot, ``num_nodes`` for
        an empty slot. For N-ary executors; call :meth:`check_arity` first. Computed once per
        arity, on ``device``."""
        if arity not in self._child_slots:
            order = self.level_order
            parent, position = self._np["parent"], self._np["position"]
            num_leaves = order.bounds[1]
            row = order.row.cpu().numpy()
            child = np.flatnonzero(parent >= 0)
            slots = np.full((self.num_nodes - num_leaves, arity), self.num_nodes, dtype=np.int64)
            slots[row[parent[child]] - num_leaves, position[child]] = row[child]
            self._child_slots[arity] = torch.from_numpy(slots).to(self.device)
        return self._child_slots[arity]

    def level_children(self, arity: int) -> tuple[Tensor, ...]:
        """Per level ``k = 1..num_levels-1``, the rows of :meth:`child_slots` of that level's
        nodes, flattened (``[n_k * arity]``, slot order within a node): what an N-ary executor
        gathers level by level, split once per arity."""
        if arity not in self._level_children:
            bounds = self.level_order.bounds
            sizes = [arity * (bounds[k + 1] - bounds[k]) for k in range(1, len(bounds) - 1)]
            self._level_children[arity] = self.child_slots(arity).view(-1).split(sizes)
        return self._level_children[arity]

    def check_arity(self, arity: int) -> None:
        """ValueError if a node has more children than ``arity`` or a slot ``>= arity``
        (checked once per arity: a batch does not change)."""
        if arity in self._arity_checked:
            return
        num_children, position = self._np["num_children"], self._np["position"]
        over = np.flatnonzero(num_children > arity)
        if len(over):
            v = over[0]
            t = self._np["tree_index"][v]
            raise ValueError(f"TreeBatch: tree {t}, node {v - self._np['offsets'][t]} has "
                             f"{num_children[v]} children; expected at most arity={arity}")
        slot = np.flatnonzero(position >= arity)
        if len(slot):
            v = slot[0]
            t = self._np["tree_index"][v]
            raise ValueError(f"TreeBatch: tree {t}, node {v - self._np['offsets'][t]} is in slot "
                             f"{position[v]}; expected a slot in [0, {arity}) for arity={arity}")
        self._arity_checked.add(arity)

    def __len__(self) -> int:
        return self.num_trees

    def __repr__(self) -> str:
        return (f"TreeBatch(num_trees={self.num_trees}, num_nodes={self.num_nodes}, "
                f"num_levels={self.num_levels}, device={self.device})")
