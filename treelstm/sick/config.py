"""The settings of a relatedness run (``python -m treelstm sick-train``): one dataclass, checked
when made; its defaults are Tai et al.'s set-up for SICK (§5.2)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional

from ..datasets import sick_sample_dir
from ..training.config import MAX_SEED
from .model import ENCODERS

__all__ = ["DEFAULT_SICK_DATA", "RelatednessConfig"]

#: The bundled synthetic sample (package data: :func:`treelstm.datasets.sick_sample_dir`), in
#: the pre-parsed SICK form.
DEFAULT_SICK_DATA = str(sick_sample_dir())


def _is_int_in(value: object, low: int, high: float = math.inf) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and low <= value <= high


@dataclass
class RelatednessConfig:
    """Every setting of a relatedness run.

    Attributes:
        data: directory with ``train/``, ``dev/``, ``test/`` in the pre-parsed SICK form
            (:func:`~treelstm.data.read_sick_splits`).
        models: the encoders to train, each on the same pairs with the same settings, from
            :data:`~treelstm.sick.model.ENCODERS`.
        epochs: passes over the training pairs; the best on dev (Pearson's r) is kept.
        seed: seeds the initial weights and the data order.
        max_train: use only the first ``max_train`` training pairs.
        embed_dim, hidden_size, similarity_size: sizes (300, 150, 50).
        lr, weight_decay: AdaGrad learning rate (0.05) and L2 weight decay on all weights but
            the embedding (1e-4).
        batch_size: pairs per update (25).
        embeddings: optional word-vector file (GloVe text) of ``embed_dim`` dimensions.
        freeze_embeddings: do not update the embedding (Tai et al. keep GloVe fixed).
        device: ``"cpu"``, ``"cuda"``, ... or ``"auto"``.
    """

    # In the order of sick-train's options.
    data: str = DEFAULT_SICK_DATA
    models: tuple = ENCODERS
    epochs: int = 10
    seed: int = 0
    max_train: Optional[int] = None
    embed_dim: int = 300
    hidden_size: int = 150
    similarity_size: int = 50
    lr: float = 0.05
    weight_decay: float = 1e-4
    batch_size: int = 25
    embeddings: Optional[str] = None
    freeze_embeddings: bool = False
    device: str = "cpu"

    def __post_init__(self) -> None:
        self.models = tuple(self.models)
        unknown = [model for model in self.models if model not in ENCODERS]
        if unknown or not self.models:
            raise ValueError(f"RelatednessConfig: models: unknown {unknown}; choose from "
                             f"{', '.join(ENCODERS)}")
        for name in ("embed_dim", "hidden_size", "similarity_size", "batch_size", "epochs"):
            if not _is_int_in(getattr(self, name), 1):
                raise ValueError(f"RelatednessConfig: {name} must be a positive integer; got "
                                 f"{getattr(self, name)!r}")
        if self.max_train is not None and not _is_int_in(self.max_train, 1):
            raise ValueError(f"RelatednessConfig: max_train must be a positive integer or None; "
                             f"got {self.max_train!r}")
        if not _is_int_in(self.seed, 0, MAX_SEED):
            raise ValueError(f"RelatednessConfig: seed must be an integer in [0, {MAX_SEED}]; "
                             f"got {self.seed!r}")
        if not (0 < self.lr < math.inf and 0 <= self.weight_decay < math.inf):
            raise ValueError(f"RelatednessConfig: expected lr > 0 and weight_decay >= 0 "
                             f"(finite); got {self.lr!r} and {self.weight_decay!r}")

    def to_dict(self) -> dict:
        """The settings as a plain dict (JSON-serialisable), as saved in checkpoints;
        ``RelatednessConfig(**config.to_dict())`` is the same config."""
        return dataclasses.asdict(self)
