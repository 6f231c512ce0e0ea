"""Pre-trained word vectors from GloVe / word2vec text files into an ``nn.Embedding``."""
from __future__ import annotations

import math
import os
from contextlib import closing
from dataclasses import dataclass, field
from typing import Optional, Union, cast

import torch
from torch import nn

from ..checks import is_int
from .lines import content_lines
from .vocab import Vocab

__all__ = ["VectorCoverage", "load_vectors"]

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class VectorCoverage:
    """How much of a vocabulary a vector file covered.

    ``total`` counts the vocabulary's words, not the pad and unk entries; ``found`` of them got a
    vector; ``missing`` lists the others in vocabulary order.
    """

    found: int
    total: int
    fraction: float
    missing: list[str] = field(default_factory=list, repr=False)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _header_dim(first_line: str) -> Optional[int]:
    """The dimension from a word2vec header ``"<count> <dim>"``, or None for a vector line."""
    parts = first_line.split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return int(parts[1])
    return None


def load_vectors(path: PathLike, vocab: Vocab, embedding: Optional[nn.Embedding] = None,
                 dim: Optional[int] = None) -> tuple[nn.Embedding, VectorCoverage]:
    """Copy the vectors of vocabulary words from a text vector file into an embedding.

    The file has one ``word v_1 ... v_dim`` line per word (GloVe), optionally after a word2vec
    header line ``"<count> <dim>"``. Fields are separated by single spaces, so a word may contain
    other whitespace; a word containing spaces is accepted when its second field is not a
    number. The file is streamed line by line, and every line is checked. When the vocabulary is
    lower-cased, file words are lower-cased to match, and an already lower-case file word wins over
    a case variant ("the" over "The"); otherwise the first occurrence of a word wins.

    Args:
        path: the vector file (UTF-8).
        vocab: rows are ``vocab[word]``; the pad row is never written.
        embedding: ``nn.Embedding(len(vocab), dim)`` to fill in place; if None a new one is made
            (``padding_idx=vocab.pad_index``, default init for rows without a vector).
        dim: expected vector size; by default the header's, the embedding's, or the first
            line's.

    Returns:
        ``(embedding, coverage)``: the filled ``[len(vocab), dim]`` embedding and a
        :class:`VectorCoverage`.

    Raises:
        ValueError: a line with the wrong number of values, a value that is not a finite float,
            a blank line before the end, bad UTF-8 (message ``"<path>:<line>: ..."``); a dim
            that disagrees with the header or the embedding; an embedding with a row count other
            than ``len(vocab)``; a file without vectors.
    """
    dim = _checked_dim(vocab, embedding, dim)
    name = os.fspath(path)
    rows: dict[int, list[float]] = {}
    exact: set[int] = set()  # rows filled by a word that needed no lower-casing
    lines_read = 0
    with closing(content_lines(path, "'word v_1 ... v_d'")) as lines:
        for lineno, line in lines:
            where = f"{name}:{lineno}"
            line = line.rstrip(" ")
            if lineno == 1:
                header_dim = _header_dim(line)
                if header_dim is not None:
                    if dim is not None and dim != header_dim:
                        raise ValueError(f"{where}: header says dim {header_dim}, expected {dim}")
                    dim = header_dim
                    continue
            word, values, dim = _vector_line(line, dim, where)
            lines_read += 1
            _keep_vector(vocab, word, values, rows, exact)
    if lines_read == 0:
        raise ValueError(f"{name}: no word vectors found")

    if embedding is None:  # dim is known: at least one vector line was read
        embedding = nn.Embedding(len(vocab), cast(int, dim), padding_idx=vocab.pad_index)
    if rows:
        index = torch.tensor(list(rows), dtype=torch.long)
        with torch.no_grad():
            embedding.weight[index.to(embedding.weight.device)] = torch.tensor(
                list(rows.values()), dtype=embedding.weight.dtype, device=embedding.weight.device)
    return embedding, _coverage(vocab, rows)


def _checked_dim(vocab: Vocab, embedding: Optional[nn.Embedding], dim: Optional[int]
                 ) -> Optional[int]:
    """The vector size the arguments ask for (``None``: the file's); TypeError/ValueError for
    arguments that do not fit together."""
    if not isinstance(vocab, Vocab):
        raise TypeError(f"load_vectors: vocab must be a Vocab, got {type(vocab).__name__}")
    if dim is not None and (not is_int(dim) or dim < 1):
        raise ValueError(f"load_vectors: dim must be a positive integer, got {dim!r}")
    if embedding is not None:
        if not isinstance(embedding, nn.Embedding):
            raise TypeError(f"load_vectors: embedding must be an nn.Embedding, got "
                            f"{type(embedding).__name__}")
        if embedding.num_embeddings != len(vocab):
            raise ValueError(f"load_vectors: embedding has {embedding.num_embeddings} rows; "
                             f"expected len(vocab) = {len(vocab)}")
        if dim is not None and dim != embedding.embedding_dim:
            raise ValueError(f"load_vectors: dim={dim} but the embedding has embedding_dim="
                             f"{embedding.embedding_dim}")
        dim = embedding.embedding_dim
    return dim


def _vector_line(line: str, dim: Optional[int], where: str) -> tuple[str, list[float], int]:
    """``(word, values, dim)`` of a line ``word v_1 ... v_dim`` (``dim`` ``None``: the line's
    number of values); ValueError starting with ``where`` for a malformed line."""
    parts = line.split(" ")
    if dim is None:
        dim = len(parts) - 1
        if dim < 1:
            raise ValueError(f"{where}: expected 'word v_1 ... v_d', got {line[:40]!r}")
    if len(parts) < dim + 1 or (len(parts) > dim + 1 and _is_float(parts[1])):
        raise ValueError(f"{where}: expected {dim} values after the word, got "
                         f"{len(parts) - 1}")
    word = " ".join(parts[:-dim])
    try:
        values = [float(v) for v in parts[-dim:]]
    except ValueError:
        bad = next(v for v in parts[-dim:] if not _is_float(v))
        raise ValueError(f"{where}: value {bad[:20]!r} is not a float") from None
    if not all(map(math.isfinite, values)):
        bad = next(v for v in parts[-dim:] if not math.isfinite(float(v)))
        raise ValueError(f"{where}: value {bad!r} is not finite")
    return word, values, dim


def _keep_vector(vocab: Vocab, word: str, values: list[float], rows: dict[int, list[float]],
                 exact: set[int]) -> None:
    """Put ``values`` in ``rows`` at the word's vocabulary row: not the pad row, and a
    lower-cased variant neither replaces a word that needed no lower-casing (``exact``) nor an
    earlier variant."""
    key = word.lower() if vocab.lower else word
    row = vocab.stoi.get(key)
    if row is None or row == vocab.pad_index or row in exact:
        return
    if key == word:
        exact.add(row)
    elif row in rows:
        return
    rows[row] = values


def _coverage(vocab: Vocab, rows: dict[int, list[float]]) -> VectorCoverage:
    words = [i for i in range(len(vocab)) if i not in (vocab.pad_index, vocab.unk_index)]
    missing = [vocab.itos[i] for i in words if i not in rows]
    total = len(words)
    found = total - len(missing)
    return VectorCoverage(found=found, total=total, fraction=found / total if total else 0.0,
                          missing=missing)
