"""A registry of named tree cases, reused by every test (like DGL's graph_cases)."""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Case:
    name: str
    parents: list            # one parent list per tree
    positions: Optional[list] = None

    @property
    def arity(self) -> int:
        """Smallest arity that fits: max children, or max slot + 1 when positions are given."""
        need = 1
        for t, parent in enumerate(self.parents):
            counts = {}
            for v, p in enumerate(parent):
                if p >= 0:
                    counts[p] = counts.get(p, 0) + 1
                    if self.positions is not None:
                        need = max(need, self.positions[t][v] + 1)
            need = max([need] + list(counts.values()))
        return need

    @property
    def num_nodes(self) -> int:
        return sum(len(p) for p in self.parents)


def chain(n):
    """Node t's parent is t + 1: the order nn.LSTM reads a sequence."""
    return [t + 1 for t in range(n - 1)] + [-1]


def full_binary(depth):
    """Heap order, root first: parents before children."""
    n = 2 ** (depth + 1) - 1
    return [-1] + [(v - 1) // 2 for v in range(1, n)]


def caterpillar(num_leaves):
    """A binary tree whose inner nodes form a chain: ``num_leaves - 1`` levels."""
    parent, spine = [-1], 0
    for _ in range(num_leaves - 1):
        parent += [spine, spine]
        spine = len(parent) - 1
    return parent


def random_tree(n, seed, max_children=None):
    """A random tree with shuffled node ids (children before or after parents)."""
    rng = random.Random(seed)
    parent, counts = [-1], {0: 0}
    for v in range(1, n):
        choices = [u for u in range(v) if max_children is None or counts[u] < max_children]
        p = rng.choice(choices)
        parent.append(p)
        counts[p] += 1
        counts[v] = 0
    perm = list(range(n))
    rng.shuffle(perm)  # node v is renamed perm[v]
    shuffled = [0] * n
    for v, p in enumerate(parent):
        shuffled[perm[v]] = -1 if p < 0 else perm[p]
    return shuffled


CASES = {
    case.name: case for case in [
        Case("single node", [[-1]]),
        Case("chain", [chain(6)]),
        Case("star", [[-1, 0, 0, 0, 0]]),
        Case("deep chain", [chain(40)]),
        Case("full binary", [full_binary(3)]),
        Case("random", [random_tree(25, seed=1, max_children=3)]),
        # binary tree with unary internal nodes (a unary node sits in slot 0 or 1)
        Case("unary nodes", [[-1, 0, 0, 1, 2, 4, 4]], positions=[[-1, 0, 1, 1, 0, 0, 1]]),
        Case("mixed forest", [[-1], chain(4), full_binary(2), [3, 3, -1, 2],
                              random_tree(12, seed=2, max_children=2)]),
    ]
}

BINARY_CASES = [name for name, case in CASES.items() if case.arity <= 2]
