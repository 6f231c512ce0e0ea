"""The nltk-based reader of bracketed sentiment trees: the reference that the hand-written reader
:func:`treelstm.data.parse_ptb_line` is tested and timed against (``tests/test_data_ptb.py``,
``benchmarks/ptb_reader.py``). Needs nltk (the ``test`` extra), imported when a line is read.

:func:`parse_ptb_line_nltk` is importable from :mod:`treelstm.data.ptb` as well.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..checks import shorten
from .ptb import _ASCII_SPACE, _FIELD, _INTEGER, _NUM_FINE_LABELS, _SHOWN_CHARS, SentimentTree

if TYPE_CHECKING:
    from nltk import Tree

__all__ = ["parse_ptb_line_nltk"]


def parse_ptb_line_nltk(line: str) -> SentimentTree:
    """:func:`parse_ptb_line` done with nltk's bracket reader (``nltk.Tree.fromstring``), then a
    walk of nltk's tree: the reference the fast reader is tested and timed against. Needs nltk.

    Unlike :func:`parse_ptb_line`, it refuses nesting deeper than nltk's ``MAX_TREE_DEPTH``
    (499 nodes) and lines nltk's regular expression does not finish within 5 seconds (which
    depends on the machine), and a label of more than 4300 digits is Python's int() error.
    """
    if not isinstance(line, str):
        raise TypeError(f"parse_ptb_line_nltk: expected a str, got {type(line).__name__}")
    root = _read_brackets(line.strip(_ASCII_SPACE))

    tokens: list[str] = []
    leaf_labels: list[int] = []
    internal_labels: list[int] = []
    # Children of each internal node (post-order index k) as ("leaf", i) or ("internal", k).
    internal_children: list[list[tuple[str, int]]] = []

    # Iterative post-order; a frame is
    # [node, label, children done so far, index of the next child to visit].
    stack: list[list] = [[root, _check_nltk_node(root), [], 0]]
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
            stack.append([child, _check_nltk_node(child), [], 0])
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


def _read_brackets(line: str) -> Tree:
    """nltk's bracket reader, its multi-line error squeezed into one line."""
    from nltk import Tree

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
        if "MAX_TREE_DEPTH" in reason:  # nltk's guard against deep (adversarial) input
            limit = re.search(r"\((\d+)\)", reason)  # its stack holds one more than the tree
            most = f" (at most {int(limit.group(1)) - 1} levels)" if limit else ""
            raise ValueError(f"nested too deeply for nltk's bracket reader{most}; trees with "
                             "labels 0..4 (SST's) are read without a depth limit") from None
        if not reason.startswith("expected"):
            raise ValueError(reason) from None
        where = f" {parts[1].rstrip('.')}" if len(parts) > 1 and parts[1].startswith("at") else ""
        raise ValueError(f"malformed brackets: {reason}{where}") from None


def _nltk_node_text(node: Tree) -> str:
    # pformat writes an empty node as "(3 )"; show it as written, "(3)".
    return shorten(node.pformat(margin=1 << 30).replace(" )", ")"))


def _check_nltk_node(node: Tree) -> int:
    """The node's label; ValueError unless it is 0..4 and the node is a preterminal
    ``(label word)`` or has only labelled children."""
    label = node.label()
    if not label:
        raise ValueError(f"node {_nltk_node_text(node)} has no label; expected an integer 0..4")
    if not _INTEGER.fullmatch(label):
        raise ValueError(f"label {shorten(repr(label))} is not an integer (node "
                         f"{_nltk_node_text(node)})")
    # int() of a very long digit string is slow (and refused past 4300 digits): out of range.
    if len(label.lstrip("+-0")) > 1 or not 0 <= int(label) < _NUM_FINE_LABELS:
        raise ValueError(f"label {shorten(label)} is out of range; expected "
                         f"0..{_NUM_FINE_LABELS - 1} (node {_nltk_node_text(node)})")
    value = int(label)
    words = sum(isinstance(child, str) for child in node)
    if not len(node):
        raise ValueError(f"node {_nltk_node_text(node)} has no children; expected a preterminal "
                         "(label word) or labelled children")
    if words and words != len(node):
        raise ValueError(f"node {_nltk_node_text(node)} mixes words and labelled subtrees; "
                         "expected a preterminal (label word) or only labelled children")
    if words > 1:
        raise ValueError(f"preterminal {_nltk_node_text(node)} has {words} words; expected "
                         "exactly one")
    return value
