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

The reader (:func:`parse_ptb_line`) is hand-written, iterative and linear in the length of the
line: no nesting-depth limit, no time-out, no nltk. It accepts exactly what the earlier nltk-based
reader accepted (kept as :func:`parse_ptb_line_nltk`, the reference it is tested against), with
the same error messages, except that nltk refused nesting deeper than 499 nodes and gave up on
lines its regular expression could not tokenize within 5 seconds (and a zero-padded label of
more than 4300 digits was Python's ``int()`` error). The syntax, as nltk reads it:

* fields (labels and words) are separated by ASCII whitespace and brackets only, so a word may
  contain a no-break space (SST has ``8\\xa01/2``);
* after ``(`` any Unicode whitespace is skipped, so ``( 2 a)`` is ``(2 a)``;
* a label is an ASCII integer 0..4, optionally signed or zero-padded (``+3``, ``03``, ``-0``).
"""
from __future__ import annotations

import os
import re
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Optional, Union, cast

from ..checks import is_int, shorten
from .lines import content_lines
from .parents import ParentListTree, bottom_up_order, children_lists

__all__ = ["IGNORE_INDEX", "NUM_CLASSES", "VIEWS", "SentimentTree", "binary_view",
           "parse_ptb_line", "parse_ptb_line_nltk", "read_ptb",  # noqa: F822 (lazy: nltk)
           "to_ptb_string"]

#: Label of nodes a loss should skip (neutral phrases in the binary view).
IGNORE_INDEX = -1
#: Label views accepted by :func:`read_ptb`.
VIEWS = ("fine", "binary")
#: Number of classes of each view.
NUM_CLASSES = {"fine": 5, "binary": 2}
#: Deprecated, always ``None``: the reader has no nesting-depth limit (nltk's was 500).
MAX_TREE_DEPTH = None

_NUM_FINE_LABELS = 5
_INTEGER = re.compile(r"[+-]?[0-9]+")  # ASCII digits only, unlike int()
# Fields are split on ASCII whitespace only: SST has tokens with a no-break space ("8\xa01/2").
_ASCII_SPACE = " \t\n\r\f\v"
_FIELD = r"[^ \t\n\r\f\v()]+"
_TOKEN_FORBIDDEN = re.compile(r"[ \t\n\r\f\v()]")
# What nltk skips after "(": \s of the `regex` module it matches with (Unicode White_Space), which
# unlike re's \s and str.isspace() leaves out \x1c-\x1f.
_SPACE_AFTER_OPEN = "[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
# nltk's tokens: "(" with the spaces and label after it, ")", or a word. Linear: the alternatives
# start with different characters and nothing after the optional label can make it backtrack.
_TOKEN = re.compile(rf"\({_SPACE_AFTER_OPEN}*(?:{_FIELD})?|\)|{_FIELD}")
_OPENINGS = {f"({value}": value for value in range(_NUM_FINE_LABELS)}  # "(0" .. "(4"
_SHOWN_CHARS = 60

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class SentimentTree(ParentListTree):
    """One sentence with its tree and a sentiment label on every node.

    A tree of ``n`` tokens has ``N`` nodes.

    Attributes:
        tokens: ``[n]`` the words in sentence order; token ``i`` is leaf node ``i``.
        parent: ``[N]`` parent of each node, ``-1`` at the root.
        labels: ``[N]`` class of each node (0..4 in the fine view; 0, 1 or ``-1`` in the
            binary view).
    """

    tokens: list[str]
    parent: list[int]
    labels: list[int]

    @property
    def root_label(self) -> int:
        """The sentence's label, that of the root node."""
        return self.labels[self.root]

    @classmethod
    def from_nltk(cls, tree: Any, binarize: Optional[int] = None,
                  factor: str = "right") -> "SentimentTree":
        """The tree of an ``nltk.Tree`` with any labels (SST's integers kept, a parser's ``S``,
        ``NP``, ... as :data:`~treelstm.data.ptb.IGNORE_INDEX`), unary chains collapsed, nodes of
        more than ``binarize`` children factored:
        :func:`~treelstm.data.sentiment_tree_from_nltk`."""
        from .nltk_trees import sentiment_tree_from_nltk

        return sentiment_tree_from_nltk(tree, binarize, factor)

    def validate(self, caller: str = "SentimentTree") -> None:
        """ValueError unless the lists agree: one label per node, one root, leaves
        ``0..n-1`` without children, every other node with children, no cycles. The message
        starts with ``caller`` (e.g. the function and item that was given the tree)."""
        _check_structure(self, caller)

    def widest_node(self) -> tuple[int, int]:
        """``(node, number of children)`` of the node with the most children (the first such)."""
        counts = [0] * len(self.parent)
        for parent in self.parent:
            if parent >= 0:
                counts[parent] += 1
        widest = max(range(len(counts)), key=counts.__getitem__)
        return widest, counts[widest]

    def children(self) -> list[list[int]]:
        """``[N]`` lists: the children of each node, left to right."""
        children = children_lists(self.parent)
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
        for node in bottom_up_order(self.parent, children):
            if node >= num_tokens:
                leftmost[node] = min((leftmost[c] for c in children[node]), default=node)
        return leftmost


def parse_ptb_line(line: str) -> SentimentTree:
    """Parse one bracketed sentiment tree (fine labels 0..4).

    Linear in the length of the line and without recursion: any nesting depth and any line
    length (memory allowing) are read, the same way on every machine.

    Raises:
        ValueError: unbalanced brackets, a label that is not an integer in 0..4, an empty line,
            or a node that is neither a preterminal ``(label word)`` nor has labelled children.
    """
    if not isinstance(line, str):
        raise TypeError(f"parse_ptb_line: expected a str, got {type(line).__name__}")
    text = line.strip(_ASCII_SPACE)
    if not text:
        raise ValueError("empty line; expected one bracketed tree per line")
    tree = _read_fast(text)
    return tree if tree is not None else _read_careful(text)


def _read_fast(text: str) -> Optional[SentimentTree]:
    """The tree of a line written the way SST and :func:`to_ptb_string` write them, else ``None``.

    Such a line splits on single spaces into pieces ``(label`` and ``word)`` (a word, the ``)`` of
    its preterminal and those of the internal nodes it ends). The pieces are read right to left:
    a node's ``)`` is met before its children, so internal nodes are numbered in reverse
    post-order as they are met and every node's parent already has its final id.
    """
    pieces = text.split(" ")
    num_nodes = text.count("(")
    num_words = len(pieces) - num_nodes  # if every "(" starts a piece; checked below
    if num_words < 1:
        return None
    words = [""] * num_words
    parent = [-1] * num_nodes
    labels = [0] * num_nodes
    leaf, node = num_words, num_nodes  # ids are handed out downwards
    open_nodes = [-1]  # internal nodes whose "(label" is still to come; -1: outside the root
    word_label_due = False  # the next piece must be the label of the word just read
    for piece in reversed(pieces):
        label = _OPENINGS.get(piece)
        if label is None:
            word = piece.rstrip(")")
            closes = len(piece) - len(word) - 1  # internal nodes ending after this word
            if word_label_due or not leaf or not 0 <= closes <= node - num_words:
                return None
            while closes:
                node -= 1
                parent[node] = open_nodes[-1]
                open_nodes.append(node)
                closes -= 1
            leaf -= 1
            words[leaf] = word
            parent[leaf] = open_nodes[-1]
            word_label_due = True
        elif word_label_due:
            labels[leaf] = label
            word_label_due = False
        elif len(open_nodes) > 1:
            labels[open_nodes.pop()] = label
        else:
            return None  # an internal node opens before the root
    if leaf or node != num_words or len(open_nodes) > 1 or word_label_due:
        return None
    # One root, and words without brackets or other whitespace (else nltk would split them).
    if parent.count(-1) != 1 or not all(words) or _TOKEN_FORBIDDEN.search("".join(words)):
        return None
    return SentimentTree(tokens=words, parent=parent, labels=labels)


def _read_careful(text: str) -> SentimentTree:
    """Any line, read the way nltk's ``Tree.fromstring`` tokenizes and nests it, then checked
    node by node.

    Raises:
        ValueError: the nltk-based reader's message: the first bracket error in reading order
            (with its index in ``text``), else the first bad node in pre-order.
    """
    labels: list[str] = []  # per node, in pre-order (the order the nodes open)
    starts: list[int] = []
    parents: list[int] = []
    num_children: list[int] = []
    num_words: list[int] = []
    word_of: list[str] = []
    closed: list[int] = []  # nodes in post-order
    open_nodes: list[int] = []
    for match in _TOKEN.finditer(text):
        token, start = match.group(), match.start()
        if token == ")":
            if not open_nodes:
                raise _bracket_error("end-of-string" if labels else "(", token, start)
            closed.append(open_nodes.pop())
        elif token[0] == "(":
            if labels and not open_nodes:
                raise _bracket_error("end-of-string", token, start)
            if open_nodes:
                num_children[open_nodes[-1]] += 1
            parents.append(open_nodes[-1] if open_nodes else -1)
            open_nodes.append(len(labels))
            labels.append(token[1:].lstrip())  # nltk skips whitespace after "("
            starts.append(start)
            num_children.append(0)
            num_words.append(0)
            word_of.append("")
        else:
            if not open_nodes:
                raise _bracket_error("(", token, start)
            num_children[open_nodes[-1]] += 1
            num_words[open_nodes[-1]] += 1
            word_of[open_nodes[-1]] = token
    if open_nodes or not labels:
        raise _bracket_error(")" if open_nodes else "(", "end-of-string", len(text))
    for node, label in enumerate(labels):
        problem = _node_problem(label, num_children[node], num_words[node],
                                partial(_node_text, text, starts[node]))
        if problem is not None:
            raise ValueError(problem)

    leaves = [node for node in range(len(labels)) if num_words[node]]  # preterminals
    order = leaves + [node for node in closed if not num_words[node]]
    new_id = [0] * len(order) + [-1]  # new_id[-1] == -1: the root's parent stays -1
    for position, node in enumerate(order):
        new_id[node] = position
    # every label passed _node_problem above, so _label_value gives an int, never None
    return SentimentTree(tokens=[word_of[node] for node in leaves],
                         parent=[new_id[parents[node]] for node in order],
                         labels=[cast(int, _label_value(labels[node])) for node in order])


def _label_value(label: str) -> Optional[int]:
    """The class of a label (``"3"``, ``"+3"``, ``"03"``, ``"-0"``), ``None`` unless 0..4."""
    if not _INTEGER.fullmatch(label):
        return None
    digits = label.lstrip("+-").lstrip("0")
    if len(digits) > 1:  # int() of a long digit string is slow (and refused past 4300 digits)
        return None
    value = int(digits or "0")
    return value if value < _NUM_FINE_LABELS and (value == 0 or label[0] != "-") else None


def _bracket_error(expected: str, got: str, index: int) -> ValueError:
    reason = f"expected {expected!r} but got {got!r}"
    if len(reason) > 2 * _SHOWN_CHARS:  # the token is quoted whole (a 1 MB word)
        reason = reason[:2 * _SHOWN_CHARS - 3] + "..."
    return ValueError(f"malformed brackets: {reason} at index {index}")


def _node_problem(label: str, num_children: int, num_words: int,
                  node_text: Callable[[], str]) -> Optional[str]:
    """What is wrong with a node, ``None`` if nothing; ``node_text()`` shows it in the message."""
    if not label:
        return f"node {node_text()} has no label; expected an integer 0..4"
    if not _INTEGER.fullmatch(label):
        return f"label {shorten(repr(label))} is not an integer (node {node_text()})"
    if _label_value(label) is None:
        return (f"label {shorten(label)} is out of range; expected 0..{_NUM_FINE_LABELS - 1} "
                f"(node {node_text()})")
    if not num_children:
        return (f"node {node_text()} has no children; expected a preterminal (label word) or "
                "labelled children")
    if num_words and num_words != num_children:
        return (f"node {node_text()} mixes words and labelled subtrees; expected a preterminal "
                "(label word) or only labelled children")
    if num_words > 1:
        return f"preterminal {node_text()} has {num_words} words; expected exactly one"
    return None


def _node_text(text: str, start: int) -> str:
    """The node opening at ``text[start]`` as nltk prints it, ``(label child child)`` with single
    spaces, shortened; reads no further than the shortened text needs."""
    pieces: list[str] = []
    length = depth = 0
    for match in _TOKEN.finditer(text, start):
        token = match.group()
        if token == ")":
            piece = ")"
            depth -= 1
        elif token[0] == "(":
            piece = ("(" if depth == 0 else " (") + token[1:].lstrip()
            depth += 1
        else:
            piece = " " + token
        pieces.append(piece)
        length += len(piece)
        if depth == 0 or length > _SHOWN_CHARS:
            break
    return shorten("".join(pieces))


def binary_view(tree: SentimentTree) -> Optional[SentimentTree]:
    """The binary-view copy of a fine-labelled tree, or ``None`` when its root is neutral.

    Labels 0, 1 -> 0; 3, 4 -> 1; 2 -> :data:`~treelstm.data.ptb.IGNORE_INDEX`.
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
    tree: Optional[SentimentTree]  # binary_view drops some trees
    with closing(content_lines(path, "one bracketed tree per line", _ASCII_SPACE)) as lines:
        for lineno, line in lines:
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
    for index, token in enumerate(tokens):
        if not isinstance(token, str):
            raise ValueError(f"{caller}: token {index} is {shorten(repr(token))}; expected a str")
    for node, label in enumerate(labels):
        if not is_int(label) or not -2 ** 62 < label < 2 ** 62:
            raise ValueError(f"{caller}: node {node} has label {shorten(repr(label))}; expected an "
                             f"integer (a class, or {IGNORE_INDEX} for none)")
    roots = [v for v, p in enumerate(parent) if p == -1]
    if len(roots) != 1:
        found = "no root (no parent -1)" if not roots else \
            f"{len(roots)} roots (parent -1: nodes {roots[:8]}{'...' if len(roots) > 8 else ''})"
        raise ValueError(f"{caller}: {found}; expected exactly one")
    children: list[list[int]] = [[] for _ in range(num_nodes)]
    for node, p in enumerate(parent):
        if p != -1:
            if not is_int(p) or not 0 <= p < num_nodes:
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
    if len(bottom_up_order(parent, children)) != num_nodes:
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
        if not is_int(label) or not 0 <= label < 5:
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


def __getattr__(name: str) -> Any:
    # The nltk-based reference reader lives in ptb_nltk, which imports this module; it stays
    # importable from here, looked up on first use.
    if name == "parse_ptb_line_nltk":
        from .ptb_nltk import parse_ptb_line_nltk

        return parse_ptb_line_nltk
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
