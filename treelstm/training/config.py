"""The settings of a training run (:class:`TrainConfig`) and the device they name."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional

import torch

from ..checks import is_int, is_number, is_positive_int
from ..baseline import LSTMClassifier
from ..data import NUM_CLASSES, VIEWS
from ..datasets import sentiment_dir
from ..models import BACKENDS, CELLS, TreeLSTMClassifier

#: The bundled synthetic treebank (package data: :func:`treelstm.datasets.sentiment_dir`).
DEFAULT_DATA = str(sentiment_dir())
#: ``--model`` names and their classes.
MODEL_KINDS = {"treelstm": TreeLSTMClassifier, "lstm": LSTMClassifier}
SPLITS = ("train", "dev", "test")
#: The largest ``seed`` (numpy's global RNG takes 32-bit seeds).
MAX_SEED = 2 ** 32 - 1


@dataclass
class TrainConfig:
    """Every setting of a training run. Defaults: Tai, Socher & Manning (2015), §5.1 / Table 2.

    Attributes:
        model: ``"treelstm"`` (:class:`~treelstm.TreeLSTMClassifier`) or ``"lstm"``
            (:class:`~treelstm.LSTMClassifier`).
        data: directory with ``train.txt``, ``dev.txt``, ``test.txt`` (SST format).
        view: ``"fine"`` (5 classes) or ``"binary"`` (neutral-root trees dropped, neutral phrases
            ignored in the loss).
        embed_dim, hidden_size, num_layers: sizes (300, 150, 1).
        cell: Tree-LSTM cell, ``"nary"`` (arity 2, for binary constituency trees) or
            ``"childsum"``.
        backend: Tree-LSTM executor, ``"native"`` or ``"dgl"``.
        bidirectional: read both directions: a bidirectional LSTM, or a Tree-LSTM with a
            top-down pass after the bottom-up one.
        dropout: before the output layer (0.5).
        lr, weight_decay: AdaGrad learning rate (0.05) and L2 weight decay (1e-4).
        embedding_lr: if set, the embedding is left out of AdaGrad and updated by plain SGD at
            this learning rate, without weight decay, after each AdaGrad step, as in Tai et al.'s
            code (``emb_learning_rate = 0.1`` and ``emb:updateParameters`` in stanfordnlp/treelstm,
            ``sentiment/TreeLSTMSentiment.lua``). ``None`` (the default): the embedding is one of
            AdaGrad's parameters, at ``lr``, with ``weight_decay``.
        patience: early stopping: end the run after this many epochs in a row without a better
            dev root accuracy (``None``, the default: run every epoch). The test always uses the
            best epoch on dev.
        batch_size: trees per update (25).
        epochs: passes over the training trees.
        seed: seeds python, numpy and torch, and the data order.
        embeddings: optional word-vector file (GloVe / word2vec text) for the embedding.
        freeze_embeddings: do not update the embedding.
        phrase_loss: Tree-LSTM only: the loss sums over every labelled node (as Tai et al.); if
            ``False`` only the root is supervised, like the baseline.
        max_train: use only the first ``max_train`` training trees.
        clip_grad_norm: if set, rescale the gradients before each update so that their total
            2-norm (all parameters together) is at most this, as
            ``torch.nn.utils.clip_grad_norm_``. ``None`` (the default): no clipping, as Tai et
            al. (AdaGrad's per-parameter step sizes already bound the updates; clipping is for
            larger learning rates or exploding gradients on deep trees). Non-finite gradients
            are an error either way.
        device: ``"cpu"``, ``"cuda"``, ... or ``"auto"`` (CUDA when available).
    """

    model: str = "treelstm"
    data: str = DEFAULT_DATA
    view: str = "fine"
    embed_dim: int = 300
    hidden_size: int = 150
    num_layers: int = 1
    cell: str = "nary"
    backend: str = "native"
    bidirectional: bool = False
    dropout: float = 0.5
    lr: float = 0.05
    weight_decay: float = 1e-4
    batch_size: int = 25
    epochs: int = 10
    seed: int = 0
    embeddings: Optional[str] = None
    freeze_embeddings: bool = False
    phrase_loss: bool = True
    max_train: Optional[int] = None
    clip_grad_norm: Optional[float] = None
    device: str = "auto"
    embedding_lr: Optional[float] = None
    patience: Optional[int] = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """ValueError naming the first bad setting."""
        choices = {"model": tuple(MODEL_KINDS), "view": VIEWS, "cell": CELLS, "backend": BACKENDS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"TrainConfig: {name} must be one of {allowed}; got "
                                 f"{getattr(self, name)!r}")
        for name in ("embed_dim", "hidden_size", "num_layers", "batch_size"):
            value = getattr(self, name)
            if not is_int(value) or value < 1:
                raise ValueError(f"TrainConfig: {name} must be a positive integer; got {value!r}")
        if not is_int(self.epochs) or self.epochs < 0:
            raise ValueError(f"TrainConfig: epochs must be an integer >= 0; got {self.epochs!r}")
        if not is_int(self.seed) or \
                not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"TrainConfig: seed must be an integer in [0, {MAX_SEED}]; got "
                             f"{self.seed!r}")
        if self.max_train is not None and not is_positive_int(self.max_train):
            raise ValueError(f"TrainConfig: max_train must be a positive integer or None; got "
                             f"{self.max_train!r}")
        if not is_number(self.dropout) or not 0 <= self.dropout <= 1:
            raise ValueError(f"TrainConfig: dropout must be in [0, 1]; got {self.dropout!r}")
        if not is_number(self.lr) or not self.lr > 0 or not math.isfinite(self.lr):
            raise ValueError(f"TrainConfig: lr must be a positive number; got {self.lr!r}")
        if not is_number(self.weight_decay) or not 0 <= self.weight_decay < math.inf:
            raise ValueError(f"TrainConfig: weight_decay must be >= 0; got {self.weight_decay!r}")
        if self.embedding_lr is not None and (not is_number(self.embedding_lr)
                                              or not 0 < self.embedding_lr < math.inf):
            raise ValueError(f"TrainConfig: embedding_lr must be a positive number or None; got "
                             f"{self.embedding_lr!r}")
        if self.embedding_lr is not None and self.freeze_embeddings:
            raise ValueError("TrainConfig: embedding_lr (the embedding's own learning rate) and "
                             "freeze_embeddings (no update of the embedding) exclude each other")
        if self.patience is not None and not is_positive_int(self.patience):
            raise ValueError(f"TrainConfig: patience must be a positive integer or None; got "
                             f"{self.patience!r}")
        if self.clip_grad_norm is not None and (not is_number(self.clip_grad_norm)
                                                or not 0 < self.clip_grad_norm < math.inf):
            raise ValueError(f"TrainConfig: clip_grad_norm must be a positive number or None; got "
                             f"{self.clip_grad_norm!r}")

    def to_dict(self) -> dict:
        """The settings as a plain dict (JSON-serialisable), as saved in checkpoints;
        :meth:`from_dict` reads it back."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Ignores unknown keys (a checkpoint from a newer version)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    @property
    def num_classes(self) -> int:
        """The number of sentiment classes of ``view``, 5 (``"fine"``) or 2 (``"binary"``)."""
        return NUM_CLASSES[self.view]


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"device: {error}") from None
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r}: expected 'cpu', 'cuda', 'cuda:N' or 'auto'")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: CUDA is not available on this machine")
    return resolved
