"""Constituency trees from nltk (``nltk.Tree``, or any bracketed string) as
:class:`~treelstm.data.SentimentTree` s and :class:`~treelstm.TreeBatch` es: the output of a parser
(``(ROOT (S (NP (DT The) (NN movie)) (VP (VBD was) (ADJP (JJ great)))))``) as well as SST's own
lines. Needs nltk (``pip install treelstm[data]``), imported when a function is called.

How a tree is read, to match :func:`~treelstm.data.parse_ptb_line` on SST:

* **labels**: an integer label 0..4 (SST's sentiment classes, also ``"+3"``, ``"03"``) is kept;
  any other label (``ROOT``, ``S``, ``NP``, ``VP``, ``""``, ``"7"``) becomes
  :data:`~treelstm.data.ptb.IGNORE_INDEX` (``-1``), a node no loss looks at;
* **leaves**: a *preterminal*, a node whose only child is a string (``(NN movie)``, ``(2 It)``), is
  one leaf: token ``movie`` with the node's label. A string beside other children (``(S a b)``,
  ``(S a (NP b))``) is a leaf of its own, labelled ``-1``;
* **unary chains** are collapsed into their top node, which keeps its label: ``(ROOT (S ...))``
  is one node labelled as ``ROOT``, ``(NP (NN dog))`` one leaf. This is nltk's
  ``collapse_unary(collapsePOS=True, collapseRoot=True)``, except that nltk joins the labels
  (``ROOT+S``). A leaf is a token: a Tree-LSTM gives a one-child node nothing to combine;
* **binarisation** (``binarize=k``, e.g. 2 for a binary N-ary model): a node with more than ``k``
  children is factored into nested nodes of at most ``k`` children, the new ones labelled ``-1``.
  ``factor="right"`` (the default) keeps the first ``k - 1`` children and puts the rest under a
  new last child, as nltk's ``chomsky_normal_form(factor="right")`` does for ``k = 2`` (with any
  horizontal or vertical Markov order: those only name nltk's new nodes); ``factor="left"``
  mirrors it.

Why right factoring: SST's trees (all strictly binary) were binarised by the Stanford parser,
head-outward (a head's nearest siblings attach first), which neither factoring reproduces, and
nltk has no head rules to imitate it. In SST (train+dev+test, counted by
``tests/test_nltk_trees.py::test_sst_binarisation_evidence``): 7,375 of the 8,151 three-word
spans that start with a determiner are ``(the (X Y))`` (head-final noun phrases, as right
factoring makes them); 1,395 of the 2,597 spans of three or more words that start with a verb
such as ``makes``/``takes``/``gives`` attach the verb to its object first,
``((takes us) (on ...))`` (head-initial verb phrases, as left factoring makes them); the final
period attaches below the subject, ``(It (is ... .))``, in 7,952 of the 10,971 sentences that end
in one, as right factoring of ``(S NP VP .)`` does. Right factoring agrees with the more frequent
cases (English is mostly right-branching) and is nltk's default. Whether flattening an SST tree
and factoring it again gives it back cannot be measured: SST does not mark which of its nodes
binarisation added.

Numbering, as :func:`~treelstm.data.parse_ptb_line`: with ``n`` tokens, the leaves are nodes
``0..n-1`` in sentence order, the internal nodes ``n..N-1`` in post-order, the root last.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Optional, Union

from ..batch import TreeBatch
from ..checks import is_int, shorten
from .ptb import IGNORE_INDEX, SentimentTree, _check_structure, _label_value

if TYPE_CHECKING:
    from nltk import Tree

__all__ = ["FACTORS", "sentiment_tree_from_nltk", "parse_bracketed", "tree_batch_from_nltk"]

#: Values of ``factor``: where binarisation puts the new node (see the module docstring).
FACTORS = ("right", "left")
_NUM_FINE_LABELS = 5


def sentiment_tree_from_nltk(tree: Tree, binarize: Optional[int] = None,
                             factor: str = "right") -> SentimentTree:
    """A :class:`~treelstm.data.SentimentTree` from an ``nltk.Tree`` with any labels.

    See the module docstring: labels 0..4 kept, others :data:`~treelstm.data.ptb.IGNORE_INDEX`;
    preterminals are leaves; unary chains collapsed into their top node; with ``binarize=k``,
    nodes of more than ``k`` children factored (``factor="right"`` or ``"left"``). The input tree
    is not changed. Without recursion: any depth.

    Raises:
        ImportError: nltk is not installed.
        TypeError: ``tree`` is not an ``nltk.Tree``, or a child is neither a Tree nor a str.
        ValueError: a node (the root of an empty tree included) has no children; ``binarize``
            is not ``None`` or an integer >= 2; an unknown ``factor``.
    """
    return _from_nltk(tree, binarize, factor, "sentiment_tree_from_nltk")


def parse_bracketed(line: str, binarize: Optional[int] = None,
                    factor: str = "right") -> SentimentTree:
    """One bracketed tree with any labels, e.g. a parser's
    ``(ROOT (S (NP (DT The) (NN movie)) (VP (VBD was) (ADJP (JJ great)))))`` or a line of SST,
    read by ``nltk.Tree.fromstring`` and converted by :func:`sentiment_tree_from_nltk`.

    Labels and words are separated by ASCII whitespace and brackets only, as in
    :func:`~treelstm.data.parse_ptb_line` (SST has a word with a no-break space). On SST lines
    the result equals :func:`~treelstm.data.parse_ptb_line`'s.

    Raises:
        ImportError: nltk is not installed.
        TypeError: ``line`` is not a str.
        ValueError: an empty line, malformed brackets (``"parse_bracketed: malformed brackets:
            expected ')' but got 'end-of-string' at index 9"``), a node without children, a bad
            ``binarize`` or ``factor``.
    """
    if not isinstance(line, str):
        raise TypeError(f"parse_bracketed: expected a str, got {type(line).__name__}")
    _import_tree("parse_bracketed")
    _check_options(binarize, factor, "parse_bracketed")
    from .ptb import _ASCII_SPACE
    from .ptb_nltk import _read_brackets

    try:
        tree = _read_brackets(line.strip(_ASCII_SPACE))
    except ValueError as error:  # nltk's message, squeezed into one line
        raise ValueError(f"parse_bracketed: {error}") from None
    return _from_nltk(tree, binarize, factor, "parse_bracketed")


def tree_batch_from_nltk(trees: Union[Tree, Iterable[Tree]], binarize: Optional[int] = None,
                         factor: str = "right") -> TreeBatch:
    """A :class:`~treelstm.TreeBatch` of ``nltk.Tree`` s (one tree, or an iterable of them), read
    as :func:`sentiment_tree_from_nltk` reads them: in each tree the leaves are nodes ``0..n-1``
    in sentence order (token ``i`` is node ``i``), and every node's slot under its parent is its
    place among its siblings from the left (what N-ary cells need).

    Raises:
        ImportError: nltk is not installed.
        TypeError: a tree that is not an ``nltk.Tree`` (the message names its index).
        ValueError: no trees; a tree :func:`sentiment_tree_from_nltk` refuses (the message names
            its index).
    """
    tree_class = _import_tree("tree_batch_from_nltk")
    _check_options(binarize, factor, "tree_batch_from_nltk")
    if isinstance(trees, tree_class):
        trees = [trees]
    elif isinstance(trees, (str, bytes)):
        raise TypeError("tree_batch_from_nltk: expected nltk.Tree objects, got a "
                        f"{type(trees).__name__} (read it with nltk.Tree.fromstring)")
    converted = []
    for index, tree in enumerate(trees):
        try:
            converted.append(_from_nltk(tree, binarize, factor, "tree_batch_from_nltk"))
        except (TypeError, ValueError) as error:
            message = str(error).replace("tree_batch_from_nltk: ", "", 1)
            raise type(error)(f"tree_batch_from_nltk: tree {index}: {message}") from None
    if not converted:
        raise ValueError("tree_batch_from_nltk: expected at least one tree; got none")
    return TreeBatch.from_parents([tree.parent for tree in converted],
                                  [tree.child_positions() for tree in converted])


def _from_nltk(tree: Any, binarize: Optional[int], factor: str, owner: str) -> SentimentTree:
    tree_class = _import_tree(owner)
    if not isinstance(tree, tree_class):
        raise TypeError(f"{owner}: expected an nltk.Tree, got {type(tree).__name__}")
    _check_options(binarize, factor, owner)
    labels, children, tokens = _read_nodes(tree, tree_class, owner)
    if binarize is not None:
        _binarize(labels, children, binarize, factor)
    return _numbered(labels, children, tokens)


def _read_nodes(root: Tree, tree_class: type, owner: str
                ) -> tuple[list[int], list[list[int]], dict[int, str]]:
    """The nodes of ``root`` in pre-order after collapsing unary chains: each node's label
    (0..4 or ``IGNORE_INDEX``), its children left to right (``[]`` for a leaf), and the token of
    each leaf."""
    labels: list[int] = []
    children: list[list[int]] = []
    tokens: dict[int, str] = {}
    # (nltk node or word, parent id, where: a linked path (index, where-of-parent) for messages)
    stack: list[tuple[Any, int, Any]] = [(root, -1, None)]
    while stack:
        node, parent, where = stack.pop()
        node_id = len(labels)
        if parent >= 0:
            children[parent].append(node_id)
        children.append([])
        if isinstance(node, str):  # a word beside other children
            labels.append(IGNORE_INDEX)
            tokens[node_id] = node
            continue
        labels.append(_class_of(node.label()))
        while len(node) == 1 and isinstance(node[0], tree_class):  # a unary chain
            node, where = node[0], (0, where)
        if not len(node):
            raise ValueError(f"{owner}: node {_shown(node)} at position {_position(where)} has no "
                             "children; expected a preterminal (label word) or children")
        if len(node) == 1:
            if not isinstance(node[0], str):
                raise TypeError(f"{owner}: node {_shown(node)} at position {_position(where)} has "
                                f"a child of type {type(node[0]).__name__}; expected an "
                                "nltk.Tree or a str")
            tokens[node_id] = node[0]
            continue
        for index in range(len(node) - 1, -1, -1):
            child = node[index]
            if not isinstance(child, (tree_class, str)):
                raise TypeError(f"{owner}: node {_shown(node)} at position {_position(where)} "
                                f"has a child of type {type(child).__name__}; expected an "
                                "nltk.Tree or a str")
            stack.append((child, node_id, (index, where)))
    return labels, children, tokens


def _binarize(labels: list[int], children: list[list[int]], arity: int, factor: str) -> None:
    """Factor every node of more than ``arity`` children, in place; new nodes are appended. A
    node of ``n`` children becomes a chain of new nodes, each taking ``arity - 1`` of them (from
    the left with ``factor="right"``, from the right with ``"left"``): linear in ``n``."""
    for node in range(len(children)):
        kids = children[node]
        if len(kids) <= arity:
            continue
        step = arity - 1
        count = -(-(len(kids) - arity) // step)  # new nodes: until `arity` kids are left
        links = list(range(len(children), len(children) + count))
        labels.extend([IGNORE_INDEX] * count)
        children.extend([] for _ in range(count))
        owners = [node] + links
        for k, owner in enumerate(owners):
            if factor == "right":
                group = kids[k * step:(k + 1) * step] if k < count else kids[count * step:]
                children[owner] = group + [links[k]] if k < count else group
            else:
                end = len(kids) - k * step
                group = kids[end - step:end] if k < count else kids[:end]
                children[owner] = [links[k]] + group if k < count else group


def _numbered(labels: list[int], children: list[list[int]],
              tokens: dict[int, str]) -> SentimentTree:
    """Renumber: leaves first in sentence order, then internal nodes in post-order."""
    leaves: list[int] = []
    internal: list[int] = []
    stack = [(0, False)]
    while stack:
        node, done = stack.pop()
        if not children[node]:
            leaves.append(node)
        elif done:
            internal.append(node)
        else:
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(children[node]))
    order = leaves + internal
    new_id = [0] * len(children)
    for position, node in enumerate(order):
        new_id[node] = position
    parent = [-1] * len(order)
    for node in internal:
        for child in children[node]:
            parent[new_id[child]] = new_id[node]
    tree = SentimentTree(tokens=[tokens[node] for node in leaves], parent=parent,
                         labels=[labels[node] for node in order])
    _check_structure(tree, "nltk tree")  # cheap, and guards the renumbering
    return tree


def _class_of(label: Any) -> int:
    """A sentiment class 0..4 from an integer label, else ``IGNORE_INDEX``."""
    if is_int(label):
        return label if 0 <= label < _NUM_FINE_LABELS else IGNORE_INDEX
    value = _label_value(label) if isinstance(label, str) else None
    return IGNORE_INDEX if value is None else value


def _check_options(binarize: Optional[int], factor: str, owner: str) -> None:
    if binarize is not None and not (is_int(binarize) and binarize >= 2):
        raise ValueError(f"{owner}: binarize must be None or an integer >= 2 (the most children "
                         f"a node keeps); got {binarize!r}")
    if factor not in FACTORS:
        raise ValueError(f"{owner}: factor must be one of {FACTORS}; got {factor!r}")


def _import_tree(owner: str) -> type:
    try:
        from nltk import Tree
    except ImportError as error:
        raise ImportError(f"{owner} needs nltk, which is not installed: "
                          "pip install treelstm[data]") from error
    return Tree


def _position(where: Any) -> tuple[int, ...]:
    """nltk's tree position from the linked path kept while reading."""
    path = []
    while where is not None:
        index, where = where
        path.append(index)
    return tuple(reversed(path))


def _shown(node: Tree) -> str:
    return shorten(f"({node.label()} ...)" if len(node) else f"({node.label()})")
