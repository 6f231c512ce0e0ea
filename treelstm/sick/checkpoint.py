"""Relatedness checkpoints (``best.pt`` of ``python -m treelstm sick-train``): the files of
:mod:`treelstm.training.checkpoint` (atomic write, SHA-256 digest,
``torch.load(weights_only=True)``, field checks) holding a
:class:`~treelstm.sick.RelatednessModel`."""
from __future__ import annotations

from typing import Optional, Union

import torch

from ..data.vocab import Vocab
from ..files import PathLike
from ..training.checkpoint import LoadedModel, load_model, save_checkpoint
from .model import RelatednessModel

__all__ = ["save_relatedness_checkpoint", "load_relatedness_model"]

_MODEL_CLASSES = {"RelatednessModel": RelatednessModel}


def save_relatedness_checkpoint(path: PathLike, model: RelatednessModel, vocab: Vocab,
                                config: Optional[dict] = None, epoch: Optional[int] = None,
                                extra: Optional[dict] = None) -> None:
    """Write ``model`` (weights + constructor config), ``vocab``, the run's settings
    (``config``), the epoch the weights are from and ``extra`` (e.g. dev metrics) atomically."""
    save_checkpoint(path, model, vocab, config, epoch=epoch, extra=extra,
                    model_classes=_MODEL_CLASSES)


def load_relatedness_model(path: PathLike,
                           map_location: Union[str, torch.device] = "cpu") -> LoadedModel:
    """``(model, vocab, config)`` from :func:`save_relatedness_checkpoint`'s file; the model is
    in eval mode on ``map_location``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: naming the file: corrupt, not a treelstm checkpoint, or one of another model
            (e.g. a sentiment classifier's ``best.pt``).
    """
    return load_model(path, map_location=map_location, model_classes=_MODEL_CLASSES)
