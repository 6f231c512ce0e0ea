"""Train and evaluate a :class:`~treelstm.sick.RelatednessModel` (Tai et al. 2015, §4.2 / §5.2).

:func:`train_relatedness` trains with Tai et al.'s settings (AdaGrad, learning rate 0.05, L2 1e-4
on all weights but the embedding, batches of 25) and keeps the epoch with the best dev Pearson's
r; :func:`evaluate_relatedness` scores a model on a list of pairs.
"""
from __future__ import annotations

import copy
import functools
import logging
import math
import time
from typing import Callable, Optional, Sequence, Union, cast

import torch
from torch import Tensor

from ..checks import check_positive_ints
from ..data.sick import RelatednessPair, collate_pairs
from ..data.vocab import Vocab
from ..iterate import chunks
from ..training.seed import _epoch_order
from ..training.step import batch_name, checked_loss, guarded_update
from ..progress import Progress, track
from .metrics import mse, pearson, spearman
from .model import RelatednessModel
from .targets import expected_score, relatedness_loss

__all__ = ["predict_scores", "evaluate_relatedness", "train_relatedness"]

logger = logging.getLogger(__name__)

Device = Union[str, torch.device, None]


def _device_of(model: RelatednessModel, device: Device) -> torch.device:
    return next(model.parameters()).device if device is None else torch.device(device)


@torch.no_grad()
def predict_scores(model: RelatednessModel, pairs: Sequence[RelatednessPair], vocab: Vocab,
                   batch_size: int = 256, device: Device = None,
                   progress: Union[bool, Progress] = False) -> Tensor:
    """Predicted scores ``[len(pairs)]`` (CPU, float32), in eval mode; ``progress`` as in
    :mod:`treelstm.progress`, one step a batch."""
    device = _device_of(model, device)
    was_training = model.training
    model.eval()
    batches = list(chunks(list(pairs), batch_size))
    try:
        scores = [expected_score(model(collate_pairs(chunk, vocab).to(device))).cpu()
                  for chunk in track(progress, batches, len(batches), "predict")]
    finally:
        model.train(was_training)
    return torch.cat(scores) if scores else torch.zeros(0)


def evaluate_relatedness(model: RelatednessModel, pairs: Sequence[RelatednessPair], vocab: Vocab,
                         batch_size: int = 256, device: Device = None,
                         progress: Union[bool, Progress] = False) -> dict:
    """``{"pairs", "pearson", "spearman", "mse", "seconds"}`` of the model's predictions on
    ``pairs`` against their gold scores (:func:`~treelstm.sick.pearson`,
    :func:`~treelstm.sick.spearman`, :func:`~treelstm.sick.mse`; r and rho are ``nan`` for a
    constant prediction)."""
    pairs = list(pairs)
    if len(pairs) < 2:
        raise ValueError(f"evaluate_relatedness: expected at least 2 pairs; got {len(pairs)}")
    start = time.perf_counter()
    predicted = predict_scores(model, pairs, vocab, batch_size=batch_size, device=device,
                               progress=progress)
    seconds = time.perf_counter() - start
    gold = [pair.score for pair in pairs]
    return {"pairs": len(pairs), "pearson": pearson(predicted, gold),
            "spearman": spearman(predicted, gold), "mse": mse(predicted, gold),
            "seconds": seconds}


def _r_or_minus_inf(metrics: dict) -> float:
    # A constant prediction has r = nan; any real r beats it.
    return -math.inf if math.isnan(metrics["pearson"]) else metrics["pearson"]


def _adagrad(model: RelatednessModel, lr: float, weight_decay: float,
             freeze_embeddings: bool) -> torch.optim.Adagrad:
    """AdaGrad with L2 weight decay on every weight but the embedding (Tai et al.)."""
    model.embedding.weight.requires_grad_(not freeze_embeddings)
    others = [p for name, p in model.named_parameters() if not name.startswith("embedding.")]
    groups = [{"params": others, "weight_decay": weight_decay}]
    if not freeze_embeddings:
        groups.append({"params": [model.embedding.weight], "weight_decay": 0.0})
    return torch.optim.Adagrad(groups, lr=lr)


def _train_epoch(model: RelatednessModel, optimizer: torch.optim.Optimizer,
                 train_pairs: Sequence[RelatednessPair], epoch: int, seed: int, batch_size: int,
                 vocab: Vocab, device: torch.device, progress: Union[bool, Progress],
                 description: str) -> float:
    """One pass over ``train_pairs`` in the order of ``(seed, epoch)``, with the guarded update
    of the sentiment loop (a NaN or infinite loss or gradient stops training before the step,
    naming the epoch, batch and pairs). Returns the training loss summed over the pairs."""
    model.train()
    batches = list(chunks(_epoch_order(len(train_pairs), seed, epoch), batch_size))
    loss_sum = 0.0
    for number, indices in enumerate(track(progress, batches, len(batches), description),
                                     start=1):
        inputs = collate_pairs([train_pairs[i] for i in indices], vocab).to(device)
        loss = relatedness_loss(model(inputs), inputs.scores)
        where = functools.partial(batch_name, epoch, number, batches, "training pairs")
        loss_value = checked_loss(float(loss.detach()), where)
        guarded_update(model, optimizer, loss, where)
        loss_sum += loss_value * len(indices)
    return loss_sum


def train_relatedness(model: RelatednessModel, train_pairs: Sequence[RelatednessPair],
                      dev_pairs: Sequence[RelatednessPair], vocab: Vocab, epochs: int = 10,
                      lr: float = 0.05, weight_decay: float = 1e-4, batch_size: int = 25,
                      seed: int = 0, freeze_embeddings: bool = False, device: Device = None,
                      on_epoch_end: Optional[Callable[[int, dict], None]] = None,
                      progress: Union[bool, Progress] = False) -> dict:
    """Train with AdaGrad on the KL loss; keep the epoch with the best dev Pearson's r.

    Each epoch visits ``train_pairs`` in an order that depends only on ``(seed, epoch)``. L2
    weight decay applies to every weight but the embedding (Tai et al.). The updates are the
    sentiment loop's (:mod:`treelstm.training.step`): a NaN or infinite loss or gradient is a
    FloatingPointError naming the epoch, the batch and its pairs, raised before the step. At
    the end the model holds the best epoch's weights.

    Args:
        progress: ``True`` for a tqdm bar per epoch, or a callable
            ``progress(iterable, total, description)`` (:mod:`treelstm.progress`).
        on_epoch_end: called as ``on_epoch_end(epoch, record)`` (``epoch`` from 1).

    Returns:
        ``{"history": [{"epoch", "loss", "dev": evaluate_relatedness(...), "seconds"}, ...],
        "best_epoch", "best_dev", "train_seconds", "train_pairs_per_s"}``.
    """
    train_pairs, dev_pairs = list(train_pairs), list(dev_pairs)
    if not train_pairs:
        raise ValueError("train_relatedness: expected at least one training pair")
    check_positive_ints("train_relatedness", epochs=epochs, batch_size=batch_size)
    device = _device_of(model, device)
    model.to(device)
    optimizer = _adagrad(model, lr, weight_decay, freeze_embeddings)
    history: list[dict] = []
    best: Optional[dict] = None  # {"epoch", "dev", "state"} of the best epoch so far
    for epoch in range(epochs):
        start = time.perf_counter()
        loss_sum = _train_epoch(model, optimizer, train_pairs, epoch, seed, batch_size, vocab,
                                device, progress, f"epoch {epoch + 1}/{epochs}")
        seconds = time.perf_counter() - start
        dev = evaluate_relatedness(model, dev_pairs, vocab, device=device)
        record = {"epoch": epoch + 1, "loss": loss_sum / len(train_pairs), "dev": dev,
                  "seconds": seconds}
        history.append(record)
        improved = best is None or _r_or_minus_inf(dev) > _r_or_minus_inf(best["dev"])
        if improved:
            best = {"epoch": epoch + 1, "dev": dev, "state": copy.deepcopy(model.state_dict())}
        logger.info("%s epoch %d/%d: train KL %.4f, dev r %.4f rho %.4f MSE %.4f%s",
                    model.encoder, epoch + 1, epochs, record["loss"], dev["pearson"],
                    dev["spearman"], dev["mse"], " (best)" if improved else "")
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, record)
    best = cast(dict, best)  # epochs >= 1, and the first epoch is always the best so far
    model.load_state_dict(best["state"])
    train_seconds = sum(record["seconds"] for record in history)
    return {"history": history, "best_epoch": best["epoch"], "best_dev": best["dev"],
            "train_seconds": train_seconds,
            "train_pairs_per_s": len(train_pairs) * epochs / train_seconds
            if train_seconds > 0 else None}
