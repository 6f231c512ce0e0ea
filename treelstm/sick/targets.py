r"""Relatedness scores as distributions over the classes :math:`1..K` and back (Tai et al. 2015,
§4.2): the sparse training target, the expected score of a prediction, the KL-divergence loss."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .model import NUM_SCORE_CLASSES

__all__ = ["target_distribution", "expected_score", "relatedness_loss"]


def target_distribution(scores: Tensor, num_classes: int = NUM_SCORE_CLASSES) -> Tensor:
    r"""The sparse target :math:`p` with :math:`r^\top p = y` (Tai et al., §4.2).

    For a score :math:`y \in [1, K]`: :math:`p_{\lfloor y \rfloor} = \lfloor y \rfloor - y + 1`,
    :math:`p_{\lfloor y \rfloor + 1} = y - \lfloor y \rfloor`, all other :math:`p_i = 0` (classes
    counted from 1).

    Args:
        scores: ``[B]`` in ``[1, num_classes]``.

    Returns:
        ``[B, num_classes]``, rows summing to 1, in ``scores``' float dtype.

    Raises:
        ValueError: a score outside ``[1, num_classes]`` or not finite.
    """
    scores = torch.as_tensor(scores)
    if not scores.is_floating_point():
        scores = scores.to(torch.get_default_dtype())
    if scores.dim() != 1:
        raise ValueError(f"target_distribution: Expected scores to be 1D [B], got "
                         f"{scores.dim()}D instead")
    if scores.numel() and not (torch.isfinite(scores).all() and scores.min() >= 1
                               and scores.max() <= num_classes):
        raise ValueError(f"target_distribution: scores must lie in [1, {num_classes}]; got "
                         f"values from {float(scores.min())} to {float(scores.max())}")
    floor = scores.floor().clamp(max=num_classes - 1)  # y = K: all mass on class K
    low = (floor - 1).long()  # 0-based column of class floor(y)
    upper_mass = scores - floor
    target = torch.zeros(scores.shape[0], num_classes, dtype=scores.dtype, device=scores.device)
    target.scatter_(1, low[:, None], (1 - upper_mass)[:, None])
    target.scatter_(1, (low + 1)[:, None], upper_mass[:, None])
    return target


def expected_score(log_probs: Tensor) -> Tensor:
    r""":math:`\hat{y} = r^\top \hat{p}`, ``[B, K]`` log-probabilities -> ``[B]`` scores in
    ``[1, K]``."""
    ratings = torch.arange(1, log_probs.shape[1] + 1, dtype=log_probs.dtype,
                           device=log_probs.device)
    return log_probs.exp() @ ratings


def relatedness_loss(log_probs: Tensor, scores: Tensor) -> Tensor:
    r""":math:`\frac{1}{B} \sum_k \mathrm{KL}(p^{(k)} \,\|\, \hat{p}^{(k)}_\theta)`: the
    KL-divergence from the sparse targets of ``scores`` ``[B]`` to the predicted distributions
    (``log_probs`` ``[B, K]``), averaged over the pairs."""
    target = target_distribution(scores.to(log_probs.dtype), log_probs.shape[1])
    return F.kl_div(log_probs, target, reduction="batchmean")
