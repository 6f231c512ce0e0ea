"""One optimizer update, guarded: backward, a gradient that is not finite stops training
before the step (naming where and which parameters), optional clipping, the step, and the
embedding's own plain-SGD update. Shared by the sentiment loop (:func:`~treelstm.training.train`)
and SICK (:func:`~treelstm.sick.train_relatedness`)."""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence, cast

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["checked_loss", "guarded_update", "shorten_list"]


def shorten_list(items: list, shown: int = 8) -> str:
    """``"[a, b, c, ...]"``: at most ``shown`` items."""
    return "[" + ", ".join(map(str, items[:shown])) + (", ...]" if len(items) > shown else "]")


def parameter_names(model: nn.Module, tensors: Sequence[Tensor]) -> list[str]:
    """The names in ``model`` of ``tensors`` (its parameters)."""
    ids = {id(t) for t in tensors}
    return [name for name, p in model.named_parameters() if id(p) in ids]


def batch_name(epoch: int, batch_number: int, batches: Sequence[np.ndarray],
               items: str = "training trees") -> str:
    """``"epoch 2, batch 3 of 6 (training trees [...])"`` for error messages (``epoch``
    from 0, ``batch_number`` from 1)."""
    which = shorten_list(np.asarray(batches[batch_number - 1]).tolist())
    return f"epoch {epoch + 1}, batch {batch_number} of {len(batches)} ({items} {which})"


def checked_loss(loss_value: float, where: Callable[[], str]) -> float:
    """``loss_value``, or FloatingPointError naming ``where()`` if it is NaN or infinite."""
    if not math.isfinite(loss_value):
        raise FloatingPointError(f"{where()}: the loss is {loss_value}; stopped before the "
                                 "update")
    return loss_value


def guarded_update(model: nn.Module, optimizer: torch.optim.Optimizer, loss: Tensor,
                   where: Callable[[], str], clip_grad_norm: Optional[float] = None,
                   embedding_lr: Optional[float] = None) -> None:
    """Backward, then ``optimizer``'s step, the gradients clipped to a total 2-norm of
    ``clip_grad_norm`` if set; FloatingPointError naming ``where()`` and the parameters instead
    of the step if the gradient norm is not finite. With ``embedding_lr``, ``model.embedding``
    (left out of ``optimizer``) then moves by ``-embedding_lr`` times its gradient, as Tai et
    al.'s ``emb:updateParameters(emb_learning_rate)``."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    embedding = cast(nn.Embedding, model.embedding).weight if embedding_lr is not None else None
    optimizer.zero_grad()
    if embedding is not None:  # not one of the optimizer's: its gradient must not add up
        embedding.grad = None
    loss.backward()
    gradients = [p.grad for p in parameters if p.grad is not None]
    grad_norm = torch.nn.utils.get_total_norm(gradients)
    if not torch.isfinite(grad_norm):
        bad = [p for p in parameters if p.grad is not None and not torch.isfinite(p.grad).all()]
        which = (f"in {shorten_list(parameter_names(model, bad))}" if bad
                 else "(every entry finite: the norm overflowed)")
        raise FloatingPointError(f"{where()}: the gradient norm is {float(grad_norm)} {which}; "
                                 "stopped before the update (try --clip-grad-norm or a smaller "
                                 "--lr)")
    if clip_grad_norm is not None:
        torch.nn.utils.clip_grads_with_norm_(parameters, clip_grad_norm, grad_norm)
    optimizer.step()
    if embedding is not None and embedding.grad is not None:
        with torch.no_grad():
            embedding.add_(embedding.grad, alpha=-cast(float, embedding_lr))
