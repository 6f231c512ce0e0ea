"""CoNLL-U files (Universal Dependencies) -> :class:`~treelstm.data.DependencyTree`.

One sentence per block of lines, blocks separated by a blank line; ``#`` lines are comments
(``# sent_id = ...``); every other line is a token with 10 tab-separated columns
``ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC``. Lines are parsed with the ``conllu``
package (``pip install conllu``, in the ``data`` extra).

What becomes the tree: the *words*, the lines whose ID is an integer, in file order, which must
be ``1, 2, ..., n``. Node ``i`` is word ``i + 1``, its parent the word of its HEAD (``0`` = root
-> ``-1``), and every node has input (its FORM). Two kinds of lines are skipped on purpose:

* multiword tokens (ID ``1-2``, e.g. Spanish ``del`` = ``de`` + ``el``): their words follow as
  ordinary lines, and the tree is over those words;
* empty nodes (ID ``5.1``, enhanced dependencies only): they have no HEAD in the basic tree.

Validation (``ValueError`` naming file, line and sentence): fewer or more than 10 columns, an ID
or HEAD that does not parse, word IDs not ``1..n`` in order, a missing HEAD (``_``), a HEAD out
of range, no root or several roots, a cycle, a sentence without words, bad UTF-8.
"""
from __future__ import annotations

import os
from typing import Iterable, Iterator, Optional, Union

from .dependency import DependencyTree, _HeadsError, parents_from_heads
from .lines import numbered_lines

__all__ = ["read_conllu", "iter_conllu", "parse_conllu"]

PathLike = Union[str, "os.PathLike[str]"]

_NUM_COLUMNS = 10


def _conllu():
    try:
        import conllu
    except ImportError:  # optional dependency
        raise ImportError("reading CoNLL-U needs the 'conllu' package: pip install conllu "
                          "(or pip install 'treelstm[data]')") from None
    return conllu


def read_conllu(path: PathLike) -> list[DependencyTree]:
    """All sentences of a CoNLL-U file (UTF-8, LF or CRLF) as dependency trees, in file order.

    Raises:
        ValueError: a malformed sentence; the message starts with ``"<path>:<line>: sentence
            <sent_id>: "`` (``sentence #k`` when it has no ``sent_id``).
        ImportError: the ``conllu`` package is not installed.
    """
    return list(iter_conllu(path))


def iter_conllu(path: PathLike) -> Iterator[DependencyTree]:
    """The sentences of a CoNLL-U file one at a time (the file is not loaded whole); see
    :func:`read_conllu`."""
    yield from _trees(numbered_lines(path), os.fspath(path))


def parse_conllu(text: str, name: str = "<string>") -> list[DependencyTree]:
    """The sentences of CoNLL-U ``text``; errors name ``name`` and the line, as
    :func:`read_conllu`."""
    if not isinstance(text, str):
        raise TypeError(f"parse_conllu: expected a str, got {type(text).__name__}")
    return list(_trees(enumerate(text.splitlines(), start=1), name))


def _blocks(lines: Iterable[tuple[int, str]]) -> Iterator[list[tuple[int, str]]]:
    """Runs of non-blank lines: one sentence each."""
    block: list[tuple[int, str]] = []
    for lineno, line in lines:
        if line.strip():
            block.append((lineno, line))
        elif block:
            yield block
            block = []
    if block:
        yield block


def _trees(lines: Iterable[tuple[int, str]], name: str) -> Iterator[DependencyTree]:
    conllu = _conllu()
    for index, block in enumerate(_blocks(lines), start=1):
        yield _sentence(conllu, block, index, name)


def _sentence(conllu, block: list[tuple[int, str]], index: int, name: str) -> DependencyTree:
    token_lines = [(lineno, line) for lineno, line in block if not line.startswith("#")]
    comments = [line for _, line in block if line.startswith("#")]
    # The sentence's name for messages: its sent_id if the comments have one.
    sent_id: Optional[str] = None
    for comment in comments:
        key, _, value = comment[1:].partition("=")
        if key.strip() == "sent_id" and value.strip():
            sent_id = value.strip()
    label = f"sentence {sent_id}" if sent_id else f"sentence #{index}"

    def fail(lineno: int, reason: str) -> ValueError:
        return ValueError(f"{name}:{lineno}: {label}: {reason}")

    if not token_lines:
        raise fail(block[0][0], "no word lines, only comments; expected at least one word")
    tokens = []
    for lineno, line in token_lines:
        columns = line.split("\t")
        if len(columns) != _NUM_COLUMNS:
            raise fail(lineno, f"{len(columns)} tab-separated columns; expected {_NUM_COLUMNS} "
                               "(ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC)")
        try:
            parsed = conllu.parse_token_and_metadata(line)
        except Exception as error:  # conllu.ParseException and whatever its field parsers raise
            raise fail(lineno, f"cannot parse the token line: {error}") from None
        tokens.append((lineno, parsed[0]))

    words: list[str]
    words, heads, deprels, word_lines = [], [], [], []
    for lineno, token in tokens:
        token_id = token["id"]
        if isinstance(token_id, tuple):  # "1-2" multiword token or "5.1" empty node: skipped
            continue
        expected = len(words) + 1
        if token_id != expected:
            raise fail(lineno, f"word ID {token_id}; expected {expected} (word IDs must be 1, 2, "
                               "3, ... in order)")
        if token["head"] is None:
            raise fail(lineno, f"word {token_id} ({token['form']!r}) has no HEAD ('_'); every "
                               "word needs one for a tree")
        words.append(token["form"])
        heads.append(token["head"])
        deprels.append(token["deprel"] if token["deprel"] is not None else "_")
        word_lines.append(lineno)
    if not words:
        raise fail(token_lines[0][0], "only multiword tokens / empty nodes; expected at least "
                                      "one word")
    try:
        parent = parents_from_heads(heads)
    except _HeadsError as error:
        lines = [word_lines[word - 1] for word in error.words] or [word_lines[0]]
        also = f" (lines {', '.join(map(str, lines[:8]))})" if len(lines) > 1 else ""
        raise fail(lines[0], f"{error}{also}") from None
    return DependencyTree(words, parent, deprels, sent_id if sent_id else f"#{index}")
