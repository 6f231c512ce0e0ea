"""SICK sentence pairs with relatedness scores (Marelli et al. 2014; SemEval-2014 Task 1).

Two forms of the data exist, and they support different things:

* **Pre-parsed** (what the original Tree-LSTM code of Tai et al. trains on): a directory per split
  with one line per pair in each of ``a.toks``, ``b.toks`` (space-separated tokens),
  ``a.parents``, ``b.parents`` (the dependency head of each token, 1-based, ``0`` = root),
  ``sim.txt`` (the relatedness score, 1..5), and optionally ``a.rels``, ``b.rels`` (relation
  labels) and ``id.txt`` (pair ids). :func:`read_sick` gives a :class:`RelatednessPair` (two
  :class:`~treelstm.data.DependencyTree`) per line: all that the Tree-LSTM and the LSTM need.
* **Original tab-separated files** (``SICK_train.txt``, ``SICK_trial.txt`` = dev,
  ``SICK_test_annotated.txt``): columns ``pair_ID``, ``sentence_A``, ``sentence_B``,
  ``relatedness_score``, ``entailment_judgment``. They hold **no parses**, so no tree model can
  be trained from them without a dependency parser (Tai et al. used the Stanford parser; none is
  bundled here). :func:`read_sick_tsv` gives a :class:`SICKRecord` per line: the sentences, their
  whitespace tokens (enough for a sequence model), the score and the entailment label (which the
  pre-parsed form lacks).

:func:`collate_pairs` batches pairs for :class:`treelstm.sick.RelatednessModel`: both
sentences of every pair in one :class:`~treelstm.TreeBatch` (all left trees, then all right
trees) and the same tokens padded for ``nn.LSTM``.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import torch
from torch import Tensor

from ..batch import TreeBatch
from .collate import checked_items
from .dependency import DependencyTree, _HeadsError, parents_from_heads
from .lines import numbered_lines
from .vocab import Vocab

__all__ = ["SCORE_RANGE", "ENTAILMENT_LABELS", "RelatednessPair", "SICKRecord", "PairInputs",
           "read_sick", "read_sick_splits", "read_sick_tsv", "collate_pairs"]

PathLike = Union[str, "os.PathLike[str]"]

#: Relatedness scores lie in this closed range.
SCORE_RANGE = (1.0, 5.0)
#: The entailment labels of the tab-separated files.
ENTAILMENT_LABELS = ("NEUTRAL", "ENTAILMENT", "CONTRADICTION")
#: The split directories of the pre-parsed form.
SPLITS = ("train", "dev", "test")
_TSV_COLUMNS = ("pair_ID", "sentence_A", "sentence_B", "relatedness_score", "entailment_judgment")
_REQUIRED_FILES = ("a.toks", "b.toks", "a.parents", "b.parents", "sim.txt")


@dataclass
class RelatednessPair:
    """Two parsed sentences and their relatedness ``score`` (1..5); ``pair_id`` from ``id.txt``
    (or the line number)."""

    left: DependencyTree
    right: DependencyTree
    score: float
    pair_id: str


@dataclass
class SICKRecord:
    """One line of a tab-separated SICK file: no parse, so no tree.

    Attributes:
        pair_id: the ``pair_ID`` column.
        sentence_a: the first sentence, as written.
        sentence_b: the second sentence, as written.
        score: the gold relatedness, a number in 1..5.
        entailment: the entailment judgment, ``"NEUTRAL"``, ``"ENTAILMENT"`` or
            ``"CONTRADICTION"``.
    """

    pair_id: str
    sentence_a: str
    sentence_b: str
    score: float
    entailment: str

    @property
    def tokens_a(self) -> list[str]:
        """``sentence_a`` split on whitespace. Not the tokens of the pre-parsed files, which are
        PTB-tokenised (``"man's"`` here is ``"man" "'s"`` there, ``"young,"`` ``"young" ","``)."""
        return self.sentence_a.split()

    @property
    def tokens_b(self) -> list[str]:
        """``sentence_b`` split on whitespace (see :attr:`tokens_a`)."""
        return self.sentence_b.split()


def _read_lines(path: Path) -> list[str]:
    return [line for _, line in numbered_lines(path)]


def _score(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: score {text!r} is not a number") from None
    low, high = SCORE_RANGE
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{where}: score {value} is outside {low:g}..{high:g}")
    return value


def _tree(tokens_line: str, parents_line: str, rels_line: Optional[str], side: str,
          directory: Path, lineno: int, pair_id: str) -> DependencyTree:
    toks_file = directory / f"{side}.toks"
    parents_file = directory / f"{side}.parents"
    tokens = tokens_line.split(" ")
    if not tokens_line or "" in tokens:
        raise ValueError(f"{toks_file}:{lineno}: empty token (empty line, or two spaces in a "
                         "row); expected tokens separated by single spaces")
    try:
        heads = [int(field) for field in parents_line.split()]
    except ValueError:
        raise ValueError(f"{parents_file}:{lineno}: expected integers (1-based heads, 0 = root); "
                         f"got {parents_line[:60]!r}") from None
    if len(heads) != len(tokens):
        raise ValueError(f"{parents_file}:{lineno}: {len(heads)} heads for {len(tokens)} tokens "
                         f"in {toks_file.name}; expected one head per token")
    deprels = None
    if rels_line is not None:
        deprels = rels_line.split(" ")
        if len(deprels) != len(tokens):
            raise ValueError(f"{directory / (side + '.rels')}:{lineno}: {len(deprels)} relations "
                             f"for {len(tokens)} tokens; expected one per token")
    try:
        parent = parents_from_heads(heads)
    except _HeadsError as error:
        raise ValueError(f"{parents_file}:{lineno}: {error}") from None
    return DependencyTree(tokens, parent, deprels, f"{pair_id}{side}")


def read_sick(directory: PathLike) -> list[RelatednessPair]:
    """Read one split of the pre-parsed SICK form (see the module docstring).

    Args:
        directory: holds ``a.toks``, ``b.toks``, ``a.parents``, ``b.parents``, ``sim.txt``;
            ``a.rels``/``b.rels`` (both or neither) and ``id.txt`` are read when present.

    Raises:
        FileNotFoundError: a required file is missing (the message says which, and that the
            tab-separated SICK files need :func:`read_sick_tsv`).
        ValueError: naming file and line: files of different lengths, a token / head count
            mismatch, heads that do not form one tree (out of range, several roots, a cycle), a
            score that is not a number in 1..5.
    """
    directory = Path(directory)
    if not directory.is_dir():
        hint = (" (a tab-separated SICK file has no parses: read it with read_sick_tsv)"
                if directory.is_file() else "")
        raise FileNotFoundError(f"{directory}: not a directory{hint}; expected a directory with "
                                f"{', '.join(_REQUIRED_FILES)}")
    missing = [name for name in _REQUIRED_FILES if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{directory}: missing {', '.join(missing)}; the pre-parsed SICK "
                                f"form needs {', '.join(_REQUIRED_FILES)} (the tab-separated "
                                "SICK_*.txt files have no parses: read_sick_tsv)")
    names = list(_REQUIRED_FILES)
    with_rels = [(directory / f"{side}.rels").is_file() for side in "ab"]
    if any(with_rels) and not all(with_rels):
        raise FileNotFoundError(f"{directory}: has {'a' if with_rels[0] else 'b'}.rels but not "
                                f"{'b' if with_rels[0] else 'a'}.rels; expected both or neither")
    if all(with_rels):
        names += ["a.rels", "b.rels"]
    if (directory / "id.txt").is_file():
        names.append("id.txt")
    files = {name: _read_lines(directory / name) for name in names}
    for lines in files.values():  # a final newline-terminated empty line is not a pair
        while lines and not lines[-1].strip():
            lines.pop()
    counts = {name: len(lines) for name, lines in files.items()}
    if len(set(counts.values())) != 1:
        shown = ", ".join(f"{name} {count}" for name, count in counts.items())
        raise ValueError(f"{directory}: the files have different numbers of lines ({shown}); "
                         "expected one line per pair in each")

    pairs = []
    for i in range(counts["sim.txt"]):
        lineno = i + 1
        pair_id = files["id.txt"][i].strip() if "id.txt" in files else str(lineno)
        trees = [_tree(files[f"{side}.toks"][i], files[f"{side}.parents"][i],
                       files[f"{side}.rels"][i] if all(with_rels) else None, side, directory,
                       lineno, pair_id) for side in "ab"]
        score = _score(files["sim.txt"][i].strip(), f"{directory / 'sim.txt'}:{lineno}")
        pairs.append(RelatednessPair(trees[0], trees[1], score, pair_id))
    return pairs


def read_sick_splits(root: PathLike, splits: Sequence[str] = SPLITS
                     ) -> dict[str, list[RelatednessPair]]:
    """``{split: read_sick(root / split)}`` for ``train``, ``dev``, ``test``."""
    root = Path(root)
    return {split: read_sick(root / split) for split in splits}


def read_sick_tsv(path: PathLike) -> list[SICKRecord]:
    """Read an original tab-separated SICK file (``SICK_train.txt``, ``SICK_trial.txt``,
    ``SICK_test_annotated.txt``; LF or CRLF). These have no parses: see the module docstring.

    Raises:
        ValueError: naming file and line: a header other than ``pair_ID sentence_A sentence_B
            relatedness_score entailment_judgment``, a line without 5 columns, an empty
            sentence, a score that is not a number in 1..5, an unknown entailment label.
    """
    name = os.fspath(path)
    lines = _read_lines(Path(path))
    if not lines or tuple(lines[0].split("\t")) != _TSV_COLUMNS:
        got = lines[0][:80] if lines else "an empty file"
        raise ValueError(f"{name}:1: expected the header {' '.join(_TSV_COLUMNS)} "
                         f"(tab-separated); got {got!r}")
    records = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        columns = line.split("\t")
        if len(columns) != len(_TSV_COLUMNS):
            raise ValueError(f"{name}:{lineno}: {len(columns)} tab-separated columns; expected "
                             f"{len(_TSV_COLUMNS)} ({', '.join(_TSV_COLUMNS)})")
        pair_id, sentence_a, sentence_b, score_text, entailment = columns
        for column, sentence in (("sentence_A", sentence_a), ("sentence_B", sentence_b)):
            if not sentence.strip():
                raise ValueError(f"{name}:{lineno}: {column} is empty")
        if entailment not in ENTAILMENT_LABELS:
            raise ValueError(f"{name}:{lineno}: entailment_judgment {entailment!r}; expected one "
                             f"of {', '.join(ENTAILMENT_LABELS)}")
        records.append(SICKRecord(pair_id, sentence_a, sentence_b,
                                  _score(score_text, f"{name}:{lineno}"), entailment))
    return records


@dataclass
class PairInputs:
    """A batch of ``B`` sentence pairs, both sentences of each, for a tree and a sequence encoder.

    Attributes:
        batch: a :class:`~treelstm.TreeBatch` of ``2B`` dependency trees: the ``B`` left
            sentences, then the ``B`` right ones (tree ``t`` and tree ``B + t`` form pair ``t``).
        token_ids: ``[N]`` the word id of every node (dependency trees: input at every node).
        sequence_ids: ``[2B, T_max]`` the same words per sentence, right-padded with
            ``vocab.pad_index``, sentences in the order of ``batch``.
        lengths: ``[2B]`` words per sentence (kept on the CPU, for ``pack_padded_sequence``).
        scores: ``[B]`` gold relatedness (float).
    """

    batch: TreeBatch
    token_ids: Tensor
    sequence_ids: Tensor
    lengths: Tensor
    scores: Tensor

    @property
    def num_pairs(self) -> int:
        """``B``, the number of sentence pairs."""
        return self.scores.shape[0]

    def to(self, device: Union[str, torch.device]) -> "PairInputs":
        """The same inputs on ``device``, except ``lengths``, which stays on the CPU."""
        return PairInputs(self.batch.to(device), self.token_ids.to(device),
                          self.sequence_ids.to(device), self.lengths, self.scores.to(device))


def collate_pairs(pairs: Sequence[RelatednessPair], vocab: Vocab) -> PairInputs:
    """Batch sentence pairs; see :class:`PairInputs` for the layout.

    Raises:
        TypeError, ValueError: not a non-empty list of :class:`RelatednessPair`.
    """
    pairs = checked_items(pairs, RelatednessPair, "collate_pairs", noun="pair",
                          hint=" (a SICKRecord has no trees)")
    trees = [pair.left for pair in pairs] + [pair.right for pair in pairs]
    for t, tree in enumerate(trees):
        try:
            tree.validate()
        except ValueError as error:
            side = "left" if t < len(pairs) else "right"
            raise ValueError(f"collate_pairs: pair {t % len(pairs)}, {side} sentence: "
                             f"{error}") from None
    batch = TreeBatch.from_parents([tree.parent for tree in trees])
    encoded = [vocab.encode(tree.tokens) for tree in trees]
    lengths = [len(ids) for ids in encoded]
    sequence_ids = torch.full((len(trees), max(lengths)), vocab.pad_index, dtype=torch.long)
    for row, ids in enumerate(encoded):
        sequence_ids[row, :len(ids)] = torch.tensor(ids, dtype=torch.long)
    return PairInputs(batch=batch,
                      token_ids=torch.tensor([i for ids in encoded for i in ids],
                                             dtype=torch.long),
                      sequence_ids=sequence_ids,
                      lengths=torch.tensor(lengths, dtype=torch.long),
                      scores=torch.tensor([pair.score for pair in pairs], dtype=torch.float32))
