"""The SICK metrics (Marelli et al. 2014; Tai et al. 2015, Table 3): Pearson's r and Spearman's
rho from ``scipy.stats``, and the mean squared error, of predicted against gold scores.

Every function takes two 1D sequences of the same length (tensors, arrays or lists; at least 2
values), computes in float64 and returns a Python float.

A constant side (e.g. an untrained or collapsed model that predicts one score for every pair)
has no correlation: :func:`pearson` and :func:`spearman` return ``nan`` for it, without the
``ConstantInputWarning`` scipy would give, and :func:`treelstm.sick.train_relatedness` ranks such
an epoch below every epoch with a real r. A ``nan`` among the values gives ``nan`` as well.

scipy is an optional dependency (``pip install 'treelstm[sick]'``), imported on first use.
"""
from __future__ import annotations

from typing import Sequence, Union

import numpy as np
from torch import Tensor

__all__ = ["pearson", "spearman", "mse"]

ArrayLike = Union[Tensor, np.ndarray, Sequence[float]]


def _stats():
    try:
        from scipy import stats
    except ImportError:
        raise ImportError("pearson and spearman need scipy: pip install 'treelstm[sick]'") \
            from None
    return stats


def _as_pair(prediction: ArrayLike, gold: ArrayLike, caller: str) -> tuple[np.ndarray, np.ndarray]:
    arrays = []
    for value in (prediction, gold):
        if isinstance(value, Tensor):
            value = value.detach().cpu().double().numpy()
        arrays.append(np.asarray(value, dtype=np.float64))
    x, y = arrays
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"{caller}: expected two 1D sequences of the same length; got shapes "
                         f"{list(x.shape)} and {list(y.shape)}")
    if x.shape[0] < 2:
        raise ValueError(f"{caller}: expected at least 2 values; got {x.shape[0]}")
    return x, y


def _constant(x: np.ndarray, y: np.ndarray) -> bool:
    return bool(np.all(x == x[0]) or np.all(y == y[0]))


def pearson(prediction: ArrayLike, gold: ArrayLike) -> float:
    """Pearson's r (``scipy.stats.pearsonr``); ``nan`` if either side is constant."""
    x, y = _as_pair(prediction, gold, "pearson")
    if _constant(x, y):
        return float("nan")
    return float(_stats().pearsonr(x, y).statistic)


def spearman(prediction: ArrayLike, gold: ArrayLike) -> float:
    """Spearman's rho (``scipy.stats.spearmanr``: Pearson's r of the ranks, ties sharing their
    average rank); ``nan`` if either side is constant."""
    x, y = _as_pair(prediction, gold, "spearman")
    if _constant(x, y):
        return float("nan")
    return float(_stats().spearmanr(x, y).statistic)


def mse(prediction: ArrayLike, gold: ArrayLike) -> float:
    """Mean squared error."""
    x, y = _as_pair(prediction, gold, "mse")
    return float(np.mean((x - y) ** 2))
