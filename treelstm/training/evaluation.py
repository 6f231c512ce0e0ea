"""The model on a list of trees: reading the splits, building and collating for a model, the
loss, and :func:`evaluate` (accuracies, eval mode)."""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence, Union, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..baseline import LSTMClassifier
from ..data import IGNORE_INDEX, NUM_CLASSES, SentimentTree, Vocab, read_ptb
from ..files import PathLike
from ..iterate import chunks
from ..progress import Progress, track
from ..models import TreeLSTMClassifier
from .config import SPLITS, TrainConfig

if TYPE_CHECKING:
    from ..classifier import Classifier, SentimentClassifier

__all__ = ["load_splits", "build_model", "count_parameters", "evaluate"]


# --------------------------------------------------------------------------------- data
def load_splits(data_dir: PathLike, view: str = "fine",
                splits: Sequence[str] = SPLITS) -> dict[str, list[SentimentTree]]:
    """Read ``<data_dir>/<split>.txt`` for each split. FileNotFoundError names a missing file."""
    data_dir = Path(data_dir)
    result = {}
    for split in splits:
        path = data_dir / f"{split}.txt"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file; --data must be a directory with "
                                    f"{', '.join(s + '.txt' for s in SPLITS)}")
        result[split] = read_ptb(path, view=view)
        if not result[split]:
            raise ValueError(f"{path}: no trees (view={view!r})")
    return result


def _collate(model: nn.Module, trees: Sequence[SentimentTree], vocab: Vocab):
    return cast("Classifier", model).collate(trees, vocab)


# -------------------------------------------------------------------------------- model
def build_model(config: TrainConfig, vocab_size: int) -> SentimentClassifier:
    """The classifier of ``config.model`` for a vocabulary of ``vocab_size``."""
    if config.model == "treelstm":
        return TreeLSTMClassifier(vocab_size, config.num_classes, embed_dim=config.embed_dim,
                                  hidden_size=config.hidden_size, num_layers=config.num_layers,
                                  cell=config.cell, dropout=config.dropout,
                                  backend=config.backend, bidirectional=config.bidirectional)
    return LSTMClassifier(vocab_size, config.num_classes, embed_dim=config.embed_dim,
                          hidden_size=config.hidden_size, num_layers=config.num_layers,
                          bidirectional=config.bidirectional, dropout=config.dropout)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """The number of scalar parameters of ``model`` (only those with ``requires_grad`` if
    ``trainable_only``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _forward(model: nn.Module, inputs,
             runner: Optional[nn.Module] = None) -> tuple[Tensor, Optional[Tensor]]:
    """``(root_logits [T, C], node_logits [N, C] or None)``. ``runner``: what to call instead of
    ``model`` (its ``DistributedDataParallel`` wrapper)."""
    node_logits, root_logits = (model if runner is None else runner)(inputs)
    return root_logits, node_logits


def _root_labels(inputs) -> Tensor:
    return inputs.root_labels


def _loss_sum(model: nn.Module, inputs, phrase_loss: bool,
              runner: Optional[nn.Module] = None) -> tuple[Tensor, Tensor]:
    """Cross-entropy summed over the trees of the batch (over every labelled node of each with
    ``phrase_loss``); returns ``(loss_sum, root_logits)``."""
    root_logits, node_logits = _forward(model, inputs, runner)
    if node_logits is not None and phrase_loss:
        loss = F.cross_entropy(node_logits, inputs.labels, ignore_index=IGNORE_INDEX,
                               reduction="sum")
    else:
        loss = F.cross_entropy(root_logits, _root_labels(inputs), ignore_index=IGNORE_INDEX,
                               reduction="sum")
    return loss, root_logits


# ---------------------------------------------------------------------------- evaluation
def _binary_from_fine(root_logits: Tensor, fine_labels: Tensor) -> tuple[int, int]:
    """Correct and total binary decisions on non-neutral roots from 5-class logits: positive iff
    p(3) + p(4) > p(0) + p(1) (neutral probability left out)."""
    keep = fine_labels != 2
    probs = root_logits[keep].softmax(dim=1)
    predicted_positive = probs[:, 3:].sum(dim=1) > probs[:, :2].sum(dim=1)
    gold_positive = fine_labels[keep] > 2
    return int((predicted_positive == gold_positive).sum()), int(keep.sum())


@torch.no_grad()
@torch.no_grad()
def evaluate(model: nn.Module, trees: Sequence[SentimentTree], vocab: Vocab,
             batch_size: int = 256, device: Union[str, torch.device, None] = None,
             progress: Union[bool, Progress] = False, description: str = "eval") -> dict:
    """Accuracies of ``model`` on ``trees`` (eval mode).

    Returns a dict with ``trees``, ``root_acc`` (the view's classes), ``binary_root_acc`` (5-class
    models: on non-neutral roots, positive iff p(3)+p(4) > p(0)+p(1); 2-class models: same as
    ``root_acc``), ``phrase_acc`` (Tree-LSTM: every labelled node; ``None`` for the baseline),
    ``loss`` (mean root cross-entropy), ``seconds`` and ``trees_per_s`` (batching included).
    """
    trees = list(trees)
    if not trees:
        raise ValueError("evaluate: expected at least one tree, got none")
    device = next(model.parameters()).device if device is None else torch.device(device)
    was_training = model.training
    model.eval()
    root_correct = binary_correct = binary_total = phrase_correct = phrase_total = 0
    loss_sum = 0.0
    start = time.perf_counter()
    try:
        batches = track(progress, chunks(trees, batch_size), math.ceil(len(trees) / batch_size),
                        description)
        for chunk in batches:
            inputs = _collate(model, chunk, vocab).to(device)
            root_logits, node_logits = _forward(model, inputs)
            labels = _root_labels(inputs)
            root_correct += int((root_logits.argmax(dim=1) == labels).sum())
            loss_sum += float(F.cross_entropy(root_logits, labels, reduction="sum"))
            if root_logits.shape[1] == NUM_CLASSES["fine"]:
                correct, total = _binary_from_fine(root_logits, labels)
                binary_correct += correct
                binary_total += total
            if node_logits is not None:
                labelled = inputs.labels != IGNORE_INDEX
                phrase_correct += int((node_logits.argmax(dim=1)[labelled]
                                       == inputs.labels[labelled]).sum())
                phrase_total += int(labelled.sum())
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    finally:
        model.train(was_training)
    seconds = time.perf_counter() - start
    num_classes = root_logits.shape[1]
    root_acc = root_correct / len(trees)
    if num_classes == NUM_CLASSES["fine"]:
        binary_acc = binary_correct / binary_total if binary_total else None
    else:
        binary_acc = root_acc
    return {"trees": len(trees), "root_acc": root_acc, "binary_root_acc": binary_acc,
            "phrase_acc": phrase_correct / phrase_total if phrase_total else None,
            "loss": loss_sum / len(trees), "seconds": seconds,
            "trees_per_s": len(trees) / seconds if seconds > 0 else float("inf")}
