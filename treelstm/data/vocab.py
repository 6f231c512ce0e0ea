"""Token vocabulary: string <-> id, with padding (id 0) and unknown-word (id 1) entries."""
from __future__ import annotations

import json
import os
from collections import Counter
from typing import Iterable, Sequence, Union

from ..checks import is_int

__all__ = ["Vocab"]

PathLike = Union[str, "os.PathLike[str]"]

_FORMAT = "treelstm.Vocab"
_VERSION = 1


class Vocab:
    """A fixed token -> id mapping.

    ``itos[0]`` is the padding token and ``itos[1]`` the unknown-word token; the rest are tokens
    by decreasing count (ties alphabetically). Unknown tokens map to :attr:`unk_index`. With
    ``lower=True`` tokens are lower-cased on the way in (build and lookup).

    Example::

        >>> vocab = Vocab.build([["a", "b", "a"]])
        >>> vocab.itos
        ['<pad>', '<unk>', 'a', 'b']
        >>> vocab.encode(["a", "zzz"])
        [2, 1]
    """

    #: The id of the padding token, ``itos[0]``.
    pad_index = 0
    #: The id of the unknown-word token, ``itos[1]``, that unknown tokens map to.
    unk_index = 1

    def __init__(self, itos: Sequence[str], lower: bool = False, unk: str = "<unk>",
                 pad: str = "<pad>"):
        itos = list(itos)
        if len(itos) < 2 or itos[self.pad_index] != pad or itos[self.unk_index] != unk:
            raise ValueError(f"Vocab: itos must start with pad {pad!r} and unk {unk!r}; got "
                             f"{itos[:2]!r}")
        bad = next((t for t in itos if not isinstance(t, str)), None)
        if bad is not None:
            raise TypeError(f"Vocab: tokens must be str; got {bad!r} ({type(bad).__name__})")
        stoi = {token: index for index, token in enumerate(itos)}
        if len(stoi) != len(itos):
            duplicate = next(t for t, n in Counter(itos).items() if n > 1)
            raise ValueError(f"Vocab: token {duplicate!r} appears more than once in itos")
        self.itos = itos
        self.stoi = stoi
        self.lower = bool(lower)
        self.unk = unk
        self.pad = pad

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], min_count: int = 1,
              lower: bool = False, unk: str = "<unk>", pad: str = "<pad>") -> "Vocab":
        """Count tokens and keep those seen at least ``min_count`` times.

        Args:
            token_lists: an iterable of token lists, e.g. ``[tree.tokens for tree in trees]``.
            min_count: minimum count for a token to get its own id.
            lower: lower-case tokens when building and looking up.
            unk, pad: the special tokens (ids 1 and 0).
        """
        if not is_int(min_count) or min_count < 1:
            raise ValueError(f"Vocab.build: min_count must be an integer >= 1, got {min_count!r}")
        if unk == pad:
            raise ValueError(f"Vocab.build: unk and pad must differ, both are {unk!r}")
        if isinstance(token_lists, str):
            raise TypeError("Vocab.build: expected an iterable of token lists, got a str")
        counts: Counter[str] = Counter()
        for i, tokens in enumerate(token_lists):
            if isinstance(tokens, str):
                raise TypeError(f"Vocab.build: expected an iterable of token lists; item {i} is "
                                f"the str {tokens[:30]!r}. For one sentence pass [tokens].")
            for token in tokens:
                if not isinstance(token, str):
                    raise TypeError(f"Vocab.build: tokens must be str; item {i} holds {token!r} "
                                    f"({type(token).__name__})")
                counts[token.lower() if lower else token] += 1
        kept = sorted((t for t, n in counts.items() if n >= min_count and t not in (pad, unk)),
                      key=lambda t: (-counts[t], t))
        return cls([pad, unk, *kept], lower=lower, unk=unk, pad=pad)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return (token.lower() if self.lower else token) in self.stoi

    def __getitem__(self, token: str) -> int:
        """The id of ``token`` (:attr:`unk_index` if unknown)."""
        return self.stoi.get(token.lower() if self.lower else token, self.unk_index)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """``[n]`` tokens -> ``[n]`` ids."""
        if isinstance(tokens, str):
            raise TypeError("Vocab.encode: expected a list of tokens, got a str")
        return [self[token] for token in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """``[n]`` ids -> ``[n]`` tokens."""
        return [self.itos[int(i)] for i in ids]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocab):
            return NotImplemented
        return (self.itos, self.lower, self.unk, self.pad) == (
            other.itos, other.lower, other.unk, other.pad)

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, lower={self.lower}, unk={self.unk!r}, pad={self.pad!r})"

    # ------------------------------------------------------------------ files
    def save(self, path: PathLike) -> None:
        """Write the vocabulary as JSON (UTF-8)."""
        data = {"format": _FORMAT, "version": _VERSION, "lower": self.lower, "unk": self.unk,
                "pad": self.pad, "itos": self.itos}
        with open(path, "w", encoding="utf-8") as file:
            json.dump(data, file, ensure_ascii=False, indent=0)
            file.write("\n")

    @classmethod
    def load(cls, path: PathLike) -> "Vocab":
        """Read a vocabulary written by :meth:`save`; ValueError naming the file if it is not
        one."""
        name = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as file:
                data = json.load(file)
        except json.JSONDecodeError as error:
            raise ValueError(f"{name}: not a valid vocabulary JSON file ({error})") from None
        except UnicodeDecodeError as error:
            raise ValueError(f"{name}: not valid UTF-8 ({error.reason} at byte "
                             f"{error.start})") from None
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f"{name}: expected a JSON object with \"format\": {_FORMAT!r}; got "
                             f"{type(data).__name__}")
        if data.get("version") != _VERSION:
            raise ValueError(f"{name}: vocabulary version {data.get('version')!r}; this library "
                             f"reads version {_VERSION}")
        expected = {"lower": bool, "unk": str, "pad": str, "itos": list}
        for key, kind in expected.items():
            if not isinstance(data.get(key), kind):
                raise ValueError(f"{name}: field {key!r} should be a {kind.__name__}, got "
                                 f"{data.get(key)!r:.40}")
        try:
            return cls(data["itos"], lower=data["lower"], unk=data["unk"], pad=data["pad"])
        except (TypeError, ValueError) as error:
            raise ValueError(f"{name}: {error}") from None
