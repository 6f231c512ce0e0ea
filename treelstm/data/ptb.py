"""Penn-treebank-style sentiment trees (the Stanford Sentiment Treebank format).

One tree per line, every node labelled with a sentiment class, e.g.::

    (3 (2 It) (4 (2 's) (3 (2 a) (4 lovely) (2 film))))

A *preterminal* such as ``(2 It)`` is a leaf node: token ``'It'`` with label 2. There is no
separate word node. Every other node has one or more labelled children.

Node numbering of a :class:`SentimentTree` with ``n`` tokens and ``N`` nodes: the leaves are
nodes ``0..n-1`` in sentence order; internal nodes are ``n..N-1`` in post-order (children before
parents), so the root is node ``N-1``. Because a left internal child can have a larger id than a
right leaf sibling, the left-to-right order of children is given by
:meth:`SentimentTree.child_positions`, not by node id.

Label views (``view=``):

* ``"fine"``: the five SST classes 0..4 (very negative .. very positive), every tree.
* ``"binary"``: trees whose root is neutral (2) are dropped; labels 0, 1 -> 0 (negative),
  3, 4 -> 1 (positive), and neutral phrase labels (2) become :data:`IGNORE_INDEX` (``-1``), to be
  skipped with ``nn.CrossEntropyLoss(ignore_index=-1)``.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Optional, Union

from nltk import Tree
from nltk.tree.tree import MAX_TREE_DEPTH  # nltk refuses deeper nesting; we pass that on

__all__ = ["IGNORE_INDEX", "MAX_TREE_DEPTH", "NUM_CLASSES", "VIEWS", "SentimentTree", "binary_view",
           "parse_ptb_line", "read_ptb", "to_ptb_string"]

#: Label of nodes a loss should skip (neutral phrases in the binary view).
IGNORE_INDEX = -1
#: Label views accepted by :func:`read_ptb`.
VIEWS = ("fine", "binary")
#: Number of classes of each view.
NUM_CLASSES = {"fine": 5, "binary": 2}

_NUM_FINE_LABELS = 5
_INTEGER = re.compile(r"[+-]?[0-9]+")  # ASCII digits only, unlike int()
# Fields are split on ASCII whitespace only: SST has tokens with a no-break space ("8\xa01/2").
_ASCII_SPACE = " \t\n\r\f\v"
_FIELD = r"[^ \t\n\r\f\v()]+"
_TOKEN_FORBIDDEN = re.compile(r"[ \t\n\r\f\v()]")
_SHOWN_CHARS = 60

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class SentimentTree:
    """One sentence with its tree and a sentiment label on every node.

    Attributes (``n`` tokens, ``N`` nodes):
        tokens: ``[n]`` the words in sentence order; token ``i`` is leaf node ``i``.
        parent: ``[N]`` parent of each node, ``-1`` at the root.
        labels: ``[N]`` class of each node (0..4 in the fine view; 0, 1 or ``-1`` in the
            binary view).
    """

    tokens: list[str]
    parent: list[int]
    labels: list[int]

    @property
    def num_nodes(self) -> int:
        return len(self.parent)

    @property
    def root(self) -> int:
        """Id of the root node."""
        return self.parent.index(-1)

    @property
    def root_label(self) -> int:
        return self.labels[self.root]

    def validate(self) -> None:
        """ValueError unless the lists agree: one label per node, one root, leaves
        ``0..n-1`` without children, every other node with children, no cycles."""
        _check_structure(self, "SentimentTree")

    def children(self) -> list[list[int]]:
        """``[N]`` lists: the children of each node, left to right."""
        children: list[list[int]] = [[] for _ in self.parent]
        for node, parent in enumerate(self.parent):
            if parent >= 0:
                children[parent].append(node)
        leftmost = self._leftmost_leaf(children)
        for siblings in children:
            siblings.sort(key=leftmost.__getitem__)
        return children

    def child_positions(self) -> list[int]:
        """``[N]`` each node's slot under its parent, left to right from 0 (``-1`` at the root).

        Pass these as ``positions`` to :meth:`treelstm.TreeBatch.from_parents` so that N-ary cells
        see the left child in slot 0.
        """
        positions = [-1] * len(self.parent)
        for siblings in self.children():
            for slot, node in enumerate(siblings):
                positions[node] = slot
        return positions

    def _leftmost_leaf(self, children: list[list[int]]) -> list[int]:
        """The first leaf below each node (a leaf is its own), bottom-up without recursion."""
        num_tokens = len(self.tokens)
        leftmost = list(range(len(self.parent)))
        for node in _bottom_up_order(self.parent, children):
            if node >= num_tokens:
                leftmost[node] = min((leftmost[c] for c in children[node]), default=node)
        return leftmost


def _bottom_up_order(parent: list[int], children: list[list[int]]) -> list[int]:
    """All nodes reachable from the root, every child before its parent."""
    order, stack = [], [parent.index(-1)]
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(children[node])
    order.reverse()
    return order


def _shorten(text: str) -> str:
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS - 3] + "..."


def _node_text(node: Tree) -> str:
    # pformat writes an empty node as "(3 )"; show it as written, "(3)".
    return _shorten(node.pformat(margin=1 << 30).replace(" )", ")"))


def _check_node(node: Tree) -> int:
    """The node's label; ValueError unless it is 0..4 and the node is a preterminal
    ``(label word)`` or has only labelled children."""
    label = node.label()
    if not label:
        raise ValueError(f"node {_node_text(node)} has no label; expected an integer 0..4")
    if not _INTEGER.fullmatch(label):
        raise ValueError(f"label {_shorten(repr(label))} is not an integer (node "
                         f"{_node_text(node)})")
    # int() of a very long digit string is slow (and refused past 4300 digits): out of range.
    if len(label.lstrip("+-0")) > 1 or not 0 <= int(label) < _NUM_FINE_LABELS:
        raise ValueError(f"label {_shorten(label)} is out of range; expected "
                         f"0..{_NUM_FINE_LABELS - 1} (node {_node_text(node)})")
    value = int(label)
    words = sum(isinstance(child, str) for child in node)
    if not len(node):
        raise ValueError(f"node {_node_text(node)} has no children; expected a preterminal "
                         "(label word) or labelled children")
    if words and words != len(node):
        raise ValueError(f"node {_node_text(node)} mixes words and labelled subtrees; expected "
                         "a preterminal (label word) or only labelled children")
    if words > 1:
        raise ValueError(f"preterminal {_node_text(node)} has {words} words; expected exactly one")
    return value


def _read_brackets(line: str) -> Tree:
    """nltk's bracket reader, its multi-line error squeezed into one line."""
    if not line.strip(_ASCII_SPACE):
        raise ValueError("empty line; expected one bracketed tree per line")
    try:
        return Tree.fromstring(line, node_pattern=_FIELD, leaf_pattern=_FIELD)
    except TimeoutError:
        # nltk bounds its pattern matching by wall-clock time; a huge line can run past it.
        raise ValueError(f"line of {len(line)} characters is too long for nltk's bracket reader "
                         "(it timed out); expected one sentence per line") from None
    except ValueError as error:
        # nltk: "Tree.read(): expected ')' but got 'end-of-string'\n  at index 4.\n ..."
        parts = [p.strip() for p in str(error).splitlines()]
        reason = parts[0].replace("Tree.read(): ", "")
        if len(reason) > 2 * _SHOWN_CHARS:  # nltk quotes the offending token whole (1 MB words)
            reason = reason[:2 * _SHOWN_CHARS - 3] + "..."
        if not reason.startswith("expected"):  # e.g. nltk's MAX_TREE_DEPTH (500) guard
            raise ValueError(reason) from None
        where = f" {parts[1].rstrip('.')}" if len(parts) > 1 and parts[1].startswith("at") else ""
        raise ValueError(f"malformed brackets: {reason}{where}") from None


def parse_ptb_line(line: str) -> SentimentTree:
    """Parse one bracketed sentiment tree (fine labels 0..4).

    Raises:
        ValueError: unbalanced brackets, a label that is not an integer in 0..4, an empty line,
            or a node that is neither a preterminal ``(label word)`` nor has labelled children.
    """
    if not isinstance(line, str):
        raise TypeError(f"parse_ptb_line: expected a str, got {type(line).__name__}")
    root = _read_brackets(line.strip(_ASCII_SPACE))

    tokens: list[str] = []
    leaf_labels: list[int] = []
    internal_labels: list[int] = []
    # Children of each internal node (post-order index k) as ("leaf", i) or ("internal", k).
    internal_children: list[list[tuple[str, int]]] = []

    # Iterative post-order (SST trees can be deep); a frame is
    # [node, label, children done so far, index of the next child to visit].
    stack: list[list] = [[root, _check_node(root), [], 0]]
    while stack:
        frame = stack[-1]
        node, label, done, next_child = frame
        if isinstance(node[0], str):
            tokens.append(node[0])
            leaf_labels.append(label)
            finished = ("leaf", len(tokens) - 1)
        elif next_child < len(node):
            frame[3] += 1
            child = node[next_child]
            stack.append([child, _check_node(child), [], 0])
            continue
        else:
            internal_labels.append(label)
            internal_children.append(done)
            finished = ("internal", len(internal_labels) - 1)
        stack.pop()
        if stack:
            stack[-1][2].append(finished)

    num_tokens = len(tokens)
    parent = [-1] * (num_tokens + len(internal_labels))
    for k, kids in enumerate(internal_children):
        for kind, index in kids:
            parent[index if kind == "leaf" else num_tokens + index] = num_tokens + k
    return SentimentTree(tokens=tokens, parent=parent, labels=leaf_labels + internal_labels)


def binary_view(tree: SentimentTree) -> Optional[SentimentTree]:
    """The binary-view copy of a fine-labelled tree, or ``None`` when its root is neutral.

    Labels 0, 1 -> 0; 3, 4 -> 1; 2 -> :data:`IGNORE_INDEX`.
    """
    if tree.root_label == 2:
        return None
    mapping = {0: 0, 1: 0, 2: IGNORE_INDEX, 3: 1, 4: 1}
    try:
        labels = [mapping[label] for label in tree.labels]
    except KeyError as error:
        raise ValueError(f"binary_view: expected fine labels 0..4, got {error.args[0]!r}") from None
    return SentimentTree(tokens=list(tree.tokens), parent=list(tree.parent), labels=labels)


def read_ptb(path: PathLike, view: str = "fine") -> list[SentimentTree]:
    """Read a file of bracketed sentiment trees, one per line (UTF-8, LF or CRLF).

    Args:
        path: the file.
        view: ``"fine"`` (labels 0..4, all trees) or ``"binary"`` (see the module docstring:
            neutral-root trees dropped, labels 0/1, neutral phrases ``-1``).

    Returns:
        the trees in file order.

    Raises:
        ValueError: an unknown ``view``, or a malformed line; the message starts with
            ``"<path>:<line>: "``. Blank lines are only allowed at the end of the file.
    """
    if view not in VIEWS:
        raise ValueError(f"read_ptb: view must be one of {VIEWS}, got {view!r}")
    name = os.fspath(path)
    trees: list[SentimentTree] = []
    first_blank: Optional[int] = None
    # Binary mode so that a bad byte can be reported with its line number.
    with open(path, "rb") as file:
        for lineno, raw in enumerate(file, start=1):
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(f"{name}:{lineno}: not valid UTF-8 ({error.reason} at byte "
                                 f"{error.start})") from None
            if not line.strip(_ASCII_SPACE):
                first_blank = first_blank or lineno
                continue
            if first_blank is not None:
                raise ValueError(f"{name}:{first_blank}: empty line; expected one bracketed "
                                 "tree per line")
            try:
                tree = parse_ptb_line(line)
            except ValueError as error:
                raise ValueError(f"{name}:{lineno}: {error}") from None
            if view == "binary":
                tree = binary_view(tree)
                if tree is None:
                    continue
            trees.append(tree)
    return trees


def _check_structure(tree: SentimentTree, caller: str) -> None:
    """ValueError unless ``tree`` is a well-formed :class:`SentimentTree` (labels not checked)."""
    tokens, parent, labels = tree.tokens, tree.parent, tree.labels
    num_tokens, num_nodes = len(tokens), len(parent)
    if len(labels) != num_nodes:
        raise ValueError(f"{caller}: {num_nodes} parents but {len(labels)} labels; expected one "
                         "label per node")
    if not 0 < num_tokens <= num_nodes:
        raise ValueError(f"{caller}: {num_tokens} tokens for {num_nodes} nodes; expected between "
                         "1 and the number of nodes")
    roots = [v for v, p in enumerate(parent) if p == -1]
    if len(roots) != 1:
        raise ValueError(f"{caller}: {len(roots)} roots {roots[:8]}; expected exactly one")
    children: list[list[int]] = [[] for _ in range(num_nodes)]
    for node, p in enumerate(parent):
        if p != -1:
            if isinstance(p, bool) or not isinstance(p, int) or not 0 <= p < num_nodes:
                raise ValueError(f"{caller}: node {node} has parent {p!r}; expected -1 or a node "
                                 f"id in [0, {num_nodes})")
            if p < num_tokens:
                raise ValueError(f"{caller}: node {node} has parent {p}, which is a leaf (token "
                                 f"{tokens[p]!r}); leaves 0..{num_tokens - 1} take no children")
            children[p].append(node)
    childless = [v for v in range(num_tokens, num_nodes) if not children[v]]
    if childless:
        raise ValueError(f"{caller}: internal node {childless[0]} has no children; nodes "
                         f"{num_tokens}..{num_nodes - 1} must be internal")
    if len(_bottom_up_order(parent, children)) != num_nodes:
        raise ValueError(f"{caller}: some nodes never reach the root (a cycle)")


def to_ptb_string(tree: SentimentTree) -> str:
    """Write a fine-labelled tree as one bracketed line (no newline); inverse of
    :func:`parse_ptb_line`.

    Raises:
        ValueError: the tree is not a valid :class:`SentimentTree` (lengths, one root, leaves
            ``0..n-1`` childless, internal nodes with children, no cycles), a label outside
            0..4, or a token that is empty or contains ASCII whitespace or brackets.
    """
    _check_structure(tree, "to_ptb_string")
    tokens, labels = tree.tokens, tree.labels
    num_tokens = len(tokens)
    for node, label in enumerate(labels):
        if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < 5:
            raise ValueError(f"to_ptb_string: node {node} has label {label!r}; expected an "
                             "integer 0..4 (fine labels)")
    for i, token in enumerate(tokens):
        if not isinstance(token, str) or not token or _TOKEN_FORBIDDEN.search(token):
            raise ValueError(f"to_ptb_string: token {i} is {token!r}; expected a non-empty str "
                             "without ASCII whitespace or brackets")

    order = tree.children()
    pieces: list[str] = []
    stack: list[Union[int, str]] = [tree.root]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            pieces.append(item)
        elif item < num_tokens:
            pieces.append(f"({labels[item]} {tokens[item]})")
        else:
            pieces.append(f"({labels[item]} ")
            stack.append(")")
            for position, child in enumerate(reversed(order[item])):
                stack.append(child)
                if position < len(order[item]) - 1:
                    stack.append(" ")
    return "".join(pieces)
