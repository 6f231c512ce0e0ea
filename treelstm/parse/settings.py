"""Every setting of a parser's training (:class:`ParserSettings`), as its files store them."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from ..checks import check_positive_ints, check_probability, is_int, is_number


@dataclass(frozen=True)
class ParserSettings:
    """Every setting of :func:`train_parser` (stored in its files; a resumed run must match all
    of them but ``epochs`` and ``data``). The defaults train on SST's 8,544 trees in about 5
    minutes on one CPU thread (dev F1 71.6%; ``benchmarks/parser_eval.py``)."""

    epochs: int = 10
    seed: int = 0
    embed_dim: int = 100
    hidden_size: int = 200
    mlp_size: int = 200
    num_layers: int = 1
    dropout: float = 0.3
    #: Probability of replacing a training word by the unknown word, so that its vector learns
    #: to stand for the words parsing will meet that training did not.
    word_dropout: float = 0.1
    lr: float = 2e-3
    batch_size: int = 32
    clip_grad_norm: float = 5.0
    lower: bool = True
    #: Where the trees came from (recorded for ``parser eval``, never read by the library).
    data: Optional[str] = None

    def validate(self) -> None:
        check_positive_ints("ParserSettings", epochs=self.epochs, embed_dim=self.embed_dim,
                            hidden_size=self.hidden_size, mlp_size=self.mlp_size,
                            num_layers=self.num_layers, batch_size=self.batch_size)
        if not is_int(self.seed) or self.seed < 0:
            raise ValueError(f"ParserSettings: seed must be an integer >= 0; got {self.seed!r}")
        check_probability("ParserSettings", "dropout", self.dropout)
        check_probability("ParserSettings", "word_dropout", self.word_dropout)
        for name in ("lr", "clip_grad_norm"):
            value = getattr(self, name)
            if not is_number(value) or not 0 < value < math.inf:
                raise ValueError(f"ParserSettings: {name} must be a positive number; got "
                                 f"{value!r}")
        if not isinstance(self.lower, bool):
            raise ValueError(f"ParserSettings: lower must be True or False; got {self.lower!r}")
        if self.data is not None and not isinstance(self.data, str):
            raise ValueError(f"ParserSettings: data must be a str or None; got {self.data!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "ParserSettings":
        """The settings of a file; ValueError on an unknown or bad field."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown parser settings {unknown}")
        settings = cls(**values)
        settings.validate()
        return settings

    def model_kwargs(self) -> dict:
        return {"embed_dim": self.embed_dim, "hidden_size": self.hidden_size,
                "mlp_size": self.mlp_size, "num_layers": self.num_layers,
                "dropout": self.dropout}
