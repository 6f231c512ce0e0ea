"""Parent lists (``parent[v]``, ``-1`` at the root), as the trees of the readers hold them: what
such a tree offers (:class:`ParentListTree`), the children of every node and a bottom-up order,
without recursion."""
from __future__ import annotations

from typing import Sequence

__all__ = ["ParentListTree", "children_lists", "bottom_up_order"]


def children_lists(parent: Sequence[int]) -> list[list[int]]:
    """``[N]`` lists: the children of each node, by node id."""
    children: list[list[int]] = [[] for _ in parent]
    for node, node_parent in enumerate(parent):
        if node_parent >= 0:
            children[node_parent].append(node)
    return children


def bottom_up_order(parent: Sequence[int], children: Sequence[Sequence[int]]) -> list[int]:
    """All nodes reachable from the root, every child before its parent."""
    order, stack = [], [parent.index(-1)]
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(children[node])
    order.reverse()
    return order


class ParentListTree:
    """Base of the readers' tree dataclasses (:class:`~treelstm.data.SentimentTree`,
    :class:`~treelstm.data.DependencyTree`), which hold ``parent``: ``[N]`` the parent of each
    node, ``-1`` at the root."""

    parent: list[int]  # a field of the subclass (not of this class, which is no dataclass)

    @property
    def num_nodes(self) -> int:
        return len(self.parent)

    @property
    def root(self) -> int:
        """Id of the root node."""
        return self.parent.index(-1)
