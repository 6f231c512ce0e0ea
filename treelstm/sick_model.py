r"""Semantic relatedness of sentence pairs (SICK): the model of Tai, Socher & Manning (2015), §4.2.

Each sentence is encoded to a vector: by a Child-Sum :class:`~treelstm.TreeLSTM` over its
dependency tree (the root's :math:`h`; input at every word), or, as the baseline, by ``nn.LSTM``
over its words (the last :math:`h`). A pair's representations :math:`h_L, h_R` are compared by a
small network that predicts a distribution over the scores :math:`1..K` (:class:`RelatednessModel`),
trained with a KL-divergence loss towards a sparse target distribution
(:func:`target_distribution`, :func:`relatedness_loss`). The prediction is the distribution's
expected score (:func:`expected_score`), evaluated by :func:`pearson`, :func:`spearman` and
:func:`mse` against the gold scores.

:func:`train_relatedness` trains with Tai et al.'s settings (AdaGrad, learning rate 0.05, L2
1e-4 on all weights but the embedding, batches of 25) and keeps the epoch with the best dev
Pearson's r; ``examples/train_sick.py`` runs both encoders on the same pairs.
"""
from __future__ import annotations

import copy
import logging
import math
import time
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from .data.sick import SCORE_RANGE, PairInputs, RelatednessPair, collate_pairs
from .data.vocab import Vocab
from .models import TreeLSTM
from .progress import Progress, track

__all__ = ["ENCODERS", "NUM_SCORE_CLASSES", "RelatednessModel", "target_distribution",
           "expected_score", "relatedness_loss", "pearson", "spearman", "mse",
           "predict_scores", "evaluate_relatedness", "train_relatedness"]

logger = logging.getLogger(__name__)

#: Sentence encoders of :class:`RelatednessModel`.
ENCODERS = ("treelstm", "lstm")
#: SICK scores run over 1..5.
NUM_SCORE_CLASSES = int(SCORE_RANGE[1])

ArrayLike = Union[Tensor, np.ndarray, Sequence[float]]


class RelatednessModel(nn.Module):
    r"""Relatedness of two sentences: sentence encoder + similarity network (Tai et al. 2015).

    .. math::
        h_\times = h_L \odot h_R, \qquad h_+ = |h_L - h_R|

        h_s = \sigma\big(W^{(\times)} h_\times + W^{(+)} h_+ + b^{(h)}\big)

        \hat{p}_\theta = \mathrm{softmax}\big(W^{(p)} h_s + b^{(p)}\big), \qquad
        \hat{y} = r^\top \hat{p}_\theta, \quad r = [1, 2, \dots, K]

    where :math:`h_L, h_R` are the two sentences' encodings: the root :math:`h` of a Child-Sum
    Tree-LSTM over the dependency tree (``encoder="treelstm"``), or the last :math:`h` of an
    ``nn.LSTM`` over the words (``encoder="lstm"``). One encoder (one set of weights) reads both
    sentences.

    Args:
        vocab_size: rows of the embedding; row ``padding_idx`` stays zero.
        embed_dim: word vector size. Default: 300
        hidden_size: the encoder's state size :math:`H`. Default: 150
        similarity_size: the size of :math:`h_s`. Default: 50
        num_classes: :math:`K`, the number of score classes. Default: 5
        encoder: ``"treelstm"`` or ``"lstm"``. Default: ``"treelstm"``
        num_layers: stacked encoder layers. Default: 1
        padding_idx: the embedding's padding row. Default: 0

    Inputs: inputs
        - **inputs**: :class:`~treelstm.data.PairInputs` of ``B`` pairs (:func:`collate_pairs`).

    Outputs: log_probs
        - **log_probs** of shape `(B, K)`: :math:`\log \hat{p}_\theta` per pair;
          :func:`expected_score` turns it into :math:`\hat{y}`.

    Attributes:
        similarity: ``nn.Linear(2H, similarity_size)``, the weights :math:`[W^{(\times)},
            W^{(+)}]` side by side (it is applied to :math:`[h_\times; h_+]`) and :math:`b^{(h)}`.
        output: ``nn.Linear(similarity_size, K)``, :math:`W^{(p)}` and :math:`b^{(p)}`.
    """

    def __init__(self, vocab_size: int, embed_dim: int = 300, hidden_size: int = 150,
                 similarity_size: int = 50, num_classes: int = NUM_SCORE_CLASSES,
                 encoder: str = "treelstm", num_layers: int = 1,
                 padding_idx: Optional[int] = 0) -> None:
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("embed_dim", embed_dim),
                            ("hidden_size", hidden_size), ("similarity_size", similarity_size),
                            ("num_layers", num_layers)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"RelatednessModel: {name} must be a positive integer; got "
                                 f"{value!r}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"RelatednessModel: num_classes must be an integer >= 2; got "
                             f"{num_classes!r}")
        if encoder not in ENCODERS:
            raise ValueError(f"RelatednessModel: encoder must be one of {ENCODERS}; got "
                             f"{encoder!r}")
        self.vocab_size = vocab_size
        self.embed_dim = embed_dim
        self.hidden_size = hidden_size
        self.similarity_size = similarity_size
        self.num_classes = num_classes
        self.encoder = encoder
        self.num_layers = num_layers
        self.padding_idx = padding_idx
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=padding_idx)
        if encoder == "treelstm":
            self.tree_lstm = TreeLSTM(embed_dim, hidden_size, num_layers=num_layers,
                                      cell="childsum")
        else:
            self.lstm = nn.LSTM(embed_dim, hidden_size, num_layers=num_layers, batch_first=True)
        self.similarity = nn.Linear(2 * hidden_size, similarity_size)
        self.output = nn.Linear(similarity_size, num_classes)

    @property
    def config(self) -> dict:
        """The constructor arguments: ``RelatednessModel(**model.config)`` builds the same
        architecture."""
        return {"vocab_size": self.vocab_size, "embed_dim": self.embed_dim,
                "hidden_size": self.hidden_size, "similarity_size": self.similarity_size,
                "num_classes": self.num_classes, "encoder": self.encoder,
                "num_layers": self.num_layers, "padding_idx": self.padding_idx}

    def encode(self, inputs: PairInputs) -> Tensor:
        """``[2B, H]``: the encoding of every sentence, left sentences first."""
        if self.encoder == "treelstm":
            _, (h_n, _) = self.tree_lstm(self.embedding(inputs.token_ids), inputs.batch)
            return h_n[-1]
        packed = pack_padded_sequence(self.embedding(inputs.sequence_ids), inputs.lengths.cpu(),
                                      batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)
        return h_n[-1]

    def forward(self, inputs: PairInputs) -> Tensor:
        """Predicted relatedness scores ``[B]`` for a :class:`PairInputs` from
        :func:`collate_pairs`."""
        if not isinstance(inputs, PairInputs):
            raise TypeError(f"RelatednessModel: expected PairInputs (from collate_pairs); got "
                            f"{type(inputs).__name__}")
        encoded = self.encode(inputs)
        h_left, h_right = encoded[:inputs.num_pairs], encoded[inputs.num_pairs:]
        h_mult = h_left * h_right
        h_abs_diff = (h_left - h_right).abs()
        h_s = torch.sigmoid(self.similarity(torch.cat([h_mult, h_abs_diff], dim=1)))
        return F.log_softmax(self.output(h_s), dim=1)

    def extra_repr(self) -> str:
        return f"encoder={self.encoder!r}, similarity_size={self.similarity_size}, " \
               f"num_classes={self.num_classes}"


# ------------------------------------------------------------------------------ targets
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


# ------------------------------------------------------------------------------ metrics
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


def pearson(prediction: ArrayLike, gold: ArrayLike) -> float:
    """Pearson's r (``nan`` if either side is constant), in float64."""
    x, y = _as_pair(prediction, gold, "pearson")
    x, y = x - x.mean(), y - y.mean()
    denominator = math.sqrt(float(x @ x) * float(y @ y))
    return float(x @ y) / denominator if denominator > 0 else float("nan")


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank (as ``scipy.stats.rankdata``)."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    average = (starts + ends + 1) / 2.0  # mean of the 1-based ranks starts+1 .. ends
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(average, ends - starts)
    return ranks


def spearman(prediction: ArrayLike, gold: ArrayLike) -> float:
    """Spearman's rho: Pearson's r of the ranks, ties averaged (``nan`` if a side is constant)."""
    x, y = _as_pair(prediction, gold, "spearman")
    return pearson(_ranks(x), _ranks(y))


def mse(prediction: ArrayLike, gold: ArrayLike) -> float:
    """Mean squared error, in float64."""
    x, y = _as_pair(prediction, gold, "mse")
    return float(np.mean((x - y) ** 2))


# --------------------------------------------------------------------- predict / evaluate
def _chunks(items: Sequence, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


@torch.no_grad()
def predict_scores(model: RelatednessModel, pairs: Sequence[RelatednessPair], vocab: Vocab,
                   batch_size: int = 256,
                   device: Union[str, torch.device, None] = None) -> Tensor:
    """Predicted scores ``[len(pairs)]`` (CPU, float32), in eval mode."""
    device = next(model.parameters()).device if device is None else torch.device(device)
    was_training = model.training
    model.eval()
    try:
        scores = [expected_score(model(collate_pairs(chunk, vocab).to(device))).cpu()
                  for chunk in _chunks(list(pairs), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(scores) if scores else torch.zeros(0)


def evaluate_relatedness(model: RelatednessModel, pairs: Sequence[RelatednessPair], vocab: Vocab,
                         batch_size: int = 256,
                         device: Union[str, torch.device, None] = None) -> dict:
    """``{"pairs", "pearson", "spearman", "mse", "seconds"}`` of the model's predictions on
    ``pairs`` against their gold scores."""
    pairs = list(pairs)
    if len(pairs) < 2:
        raise ValueError(f"evaluate_relatedness: expected at least 2 pairs; got {len(pairs)}")
    start = time.perf_counter()
    predicted = predict_scores(model, pairs, vocab, batch_size=batch_size, device=device)
    seconds = time.perf_counter() - start
    gold = [pair.score for pair in pairs]
    return {"pairs": len(pairs), "pearson": pearson(predicted, gold),
            "spearman": spearman(predicted, gold), "mse": mse(predicted, gold),
            "seconds": seconds}


# ------------------------------------------------------------------------------ training
def _r_or_minus_inf(metrics: dict) -> float:
    # A constant prediction has r = nan; any real r beats it.
    return -math.inf if math.isnan(metrics["pearson"]) else metrics["pearson"]


def train_relatedness(model: RelatednessModel, train_pairs: Sequence[RelatednessPair],
                      dev_pairs: Sequence[RelatednessPair], vocab: Vocab, epochs: int = 10,
                      lr: float = 0.05, weight_decay: float = 1e-4, batch_size: int = 25,
                      seed: int = 0, freeze_embeddings: bool = False,
                      device: Union[str, torch.device, None] = None,
                      on_epoch_end: Optional[Callable[[int, dict], None]] = None,
                      progress: Union[bool, Progress] = False) -> dict:
    """Train with AdaGrad on the KL loss; keep the epoch with the best dev Pearson's r.

    Each epoch visits ``train_pairs`` in an order that depends only on ``(seed, epoch)``. L2
    weight decay applies to every weight but the embedding (Tai et al.). At the end the model
    holds the best epoch's weights.

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
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"train_relatedness: epochs must be a positive integer; got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"train_relatedness: batch_size must be a positive integer; got "
                         f"{batch_size!r}")
    device = next(model.parameters()).device if device is None else torch.device(device)
    model.to(device)
    model.embedding.weight.requires_grad_(not freeze_embeddings)
    others = [p for name, p in model.named_parameters() if not name.startswith("embedding.")]
    groups = [{"params": others, "weight_decay": weight_decay}]
    if not freeze_embeddings:
        groups.append({"params": [model.embedding.weight], "weight_decay": 0.0})
    optimizer = torch.optim.Adagrad(groups, lr=lr)

    history: list[dict] = []
    best_epoch, best_dev, best_state = None, None, None
    train_seconds = 0.0
    for epoch in range(epochs):
        model.train()
        order = np.random.default_rng([seed, epoch]).permutation(len(train_pairs))
        batches = list(_chunks(order, batch_size))
        loss_sum = 0.0
        start = time.perf_counter()
        for batch_order in track(progress, batches, len(batches), f"epoch {epoch + 1}/{epochs}"):
            inputs = collate_pairs([train_pairs[i] for i in batch_order], vocab).to(device)
            loss = relatedness_loss(model(inputs), inputs.scores)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss_sum += float(loss.detach()) * len(batch_order)
        seconds = time.perf_counter() - start
        train_seconds += seconds
        dev = evaluate_relatedness(model, dev_pairs, vocab, device=device)
        record = {"epoch": epoch + 1, "loss": loss_sum / len(train_pairs), "dev": dev,
                  "seconds": seconds}
        history.append(record)
        improved = best_dev is None or _r_or_minus_inf(dev) > _r_or_minus_inf(best_dev)
        if improved:
            best_epoch, best_dev = epoch + 1, dev
            best_state = copy.deepcopy(model.state_dict())
        logger.info("%s epoch %d/%d: train KL %.4f, dev r %.4f rho %.4f MSE %.4f%s",
                    model.encoder, epoch + 1, epochs, record["loss"], dev["pearson"],
                    dev["spearman"], dev["mse"], " (best)" if improved else "")
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, record)
    model.load_state_dict(best_state)
    return {"history": history, "best_epoch": best_epoch, "best_dev": best_dev,
            "train_seconds": train_seconds,
            "train_pairs_per_s": len(train_pairs) * epochs / train_seconds
            if train_seconds > 0 else None}
