"""Train, evaluate and checkpoint the sentiment classifiers (Tai, Socher & Manning 2015, §5.1).

The pieces used by ``python -m treelstm train|eval|compare`` and ``examples/``:

* :class:`TrainConfig` -- every setting of a run; its defaults are Tai et al.'s set-up.
* :func:`train` -- the epoch loop: AdaGrad, dev accuracy each epoch, ``checkpoint.pt`` (everything
  needed to resume exactly) and ``best.pt`` (best dev accuracy), test evaluated once at the end
  with the best weights, ``metrics.json`` and a learning-curve PNG.
* :func:`evaluate`, :func:`predict` -- accuracies and logits of a model on a list of trees.
* :func:`save_checkpoint`, :func:`load_checkpoint`, :func:`load_model` -- state_dict + JSON config
  files, read back with ``torch.load(weights_only=True)``.
* :func:`compare` -- the Tree-LSTM and the ``nn.LSTM`` baseline on the same data and budget, as
  one table.

Library code here logs (``logging.getLogger("treelstm.training")``) and returns values; it never
prints. tqdm (optional) and matplotlib (optional) are imported only when used.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import json
import logging
import math
import os
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .baseline import LSTMClassifier
from .data import (IGNORE_INDEX, NUM_CLASSES, VIEWS, SentimentTree, Vocab, collate_sequences,
                   collate_trees, load_vectors, read_ptb)
from .files import atomic_write, check_no_run, remove_stale_temp_files, write_text
from .models import BACKENDS, CELLS, TreeLSTMClassifier

__all__ = ["DEFAULT_DATA", "MODEL_KINDS", "COMPARE_ROWS", "TrainConfig", "TrainResult",
           "Checkpoint", "LoadedModel", "load_splits", "build_model", "count_parameters",
           "evaluate", "predict", "train", "compare", "comparison_table", "save_checkpoint",
           "load_checkpoint", "load_model", "remove_stale_temp_files", "get_rng_state",
           "set_rng_state", "seed_everything", "plot_learning_curve"]

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

#: The bundled synthetic treebank (``data/sentiment`` of the repository).
DEFAULT_DATA = str(Path(__file__).resolve().parent.parent / "data" / "sentiment")
#: ``--model`` names and their classes.
MODEL_KINDS = {"treelstm": TreeLSTMClassifier, "lstm": LSTMClassifier}
_MODEL_CLASSES = {cls.__name__: cls for cls in MODEL_KINDS.values()}
SPLITS = ("train", "dev", "test")
#: The largest ``seed`` (numpy's global RNG takes 32-bit seeds).
MAX_SEED = 2 ** 32 - 1

CHECKPOINT_FORMAT = "treelstm.checkpoint"
CHECKPOINT_VERSION = 1
# Settings that may change when a run is resumed (the rest must match the checkpoint).
_RESUMABLE_CHANGES = ("epochs", "device", "backend")
# What train() writes to its out_dir.
_OUTPUT_FILES = ("checkpoint.pt", "best.pt", "metrics.json", "learning_curve.png")
# The files that mean an out_dir holds a run.
_RUN_FILES = ("checkpoint.pt", "best.pt", "metrics.json")


# ------------------------------------------------------------------------------- config
@dataclass
class TrainConfig:
    """Every setting of a training run. Defaults: Tai, Socher & Manning (2015), §5.1 / Table 2.

    Attributes:
        model: ``"treelstm"`` (:class:`TreeLSTMClassifier`) or ``"lstm"`` (:class:`LSTMClassifier`).
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
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig: {name} must be a positive integer; got {value!r}")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 0:
            raise ValueError(f"TrainConfig: epochs must be an integer >= 0; got {self.epochs!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or \
                not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"TrainConfig: seed must be an integer in [0, {MAX_SEED}]; got "
                             f"{self.seed!r}")
        if self.max_train is not None and (isinstance(self.max_train, bool)
                                           or not isinstance(self.max_train, int)
                                           or self.max_train < 1):
            raise ValueError(f"TrainConfig: max_train must be a positive integer or None; got "
                             f"{self.max_train!r}")
        if not 0 <= self.dropout <= 1:
            raise ValueError(f"TrainConfig: dropout must be in [0, 1]; got {self.dropout!r}")
        if not self.lr > 0 or not math.isfinite(self.lr):
            raise ValueError(f"TrainConfig: lr must be a positive number; got {self.lr!r}")
        if not self.weight_decay >= 0:
            raise ValueError(f"TrainConfig: weight_decay must be >= 0; got {self.weight_decay!r}")
        if self.clip_grad_norm is not None and (
                isinstance(self.clip_grad_norm, bool)
                or not isinstance(self.clip_grad_norm, (int, float))
                or not 0 < self.clip_grad_norm < math.inf):
            raise ValueError(f"TrainConfig: clip_grad_norm must be a positive number or None; got "
                             f"{self.clip_grad_norm!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Ignores unknown keys (a checkpoint from a newer version)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    @property
    def num_classes(self) -> int:
        return NUM_CLASSES[self.view]


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"device: {error}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: CUDA is not available on this machine")
    return resolved


# -------------------------------------------------------------------------- distributed
#: What torchrun sets in each process; ``init_process_group("env://")`` reads them.
TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class _Group:
    """This process's place in a training run: one process (rank 0 of 1, ``active=False``) or
    one of ``world_size`` torch.distributed processes."""

    rank: int = 0
    world_size: int = 1
    device: Optional[torch.device] = None
    active: bool = False
    owns_process_group: bool = False  # train() initialised it, so train() destroys it

    @property
    def is_main(self) -> bool:
        return self.rank == 0


_SINGLE_PROCESS = _Group()


def _distributed_device(device: str, local_rank: int) -> torch.device:
    """``cuda:LOCAL_RANK`` for ``"auto"`` (with CUDA) and ``"cuda"``, else the CPU."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    resolved = resolve_device(device)
    if resolved.type != "cuda":
        return resolved
    if resolved.index is not None and resolved.index != local_rank:
        raise ValueError(f"distributed training: device {device!r}, but each process uses "
                         f"cuda:LOCAL_RANK (here cuda:{local_rank}); give --device cuda or auto")
    if local_rank >= torch.cuda.device_count():
        raise ValueError(f"distributed training: LOCAL_RANK={local_rank}, but this machine has "
                         f"{torch.cuda.device_count()} CUDA device(s); start at most that many "
                         "processes per machine (torchrun --nproc_per_node)")
    return torch.device("cuda", local_rank)


def _start_distributed(device: str) -> _Group:
    """Join the torch.distributed run that torchrun started (``env://``: the variables of
    :data:`TORCHRUN_VARIABLES`), or the process group the caller already initialised. Backend:
    NCCL on CUDA, Gloo on the CPU."""
    import torch.distributed as dist

    if not dist.is_available():
        raise ValueError("distributed training: this build of torch has no torch.distributed")
    if dist.is_initialized():
        rank, world_size = dist.get_rank(), dist.get_world_size()
        local_rank = int(os.environ.get("LOCAL_RANK", rank))
        owns = False
    else:
        missing = [name for name in TORCHRUN_VARIABLES if not os.environ.get(name)]
        if missing:
            raise ValueError(f"distributed training needs the environment variables "
                             f"{', '.join(TORCHRUN_VARIABLES)} that torchrun sets (missing: "
                             f"{', '.join(missing)}); start it with e.g. 'torchrun "
                             "--nproc_per_node=2 examples/train_sst.py --distributed ...'")
        try:
            rank, local_rank, world_size = (int(os.environ[name])
                                            for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))
        except ValueError:
            raise ValueError("distributed training: RANK, LOCAL_RANK and WORLD_SIZE must be "
                             "integers; got " + ", ".join(f"{name}={os.environ[name]!r}" for name
                                                          in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))
                             ) from None
        owns = True
    resolved = _distributed_device(device, local_rank)
    if resolved.type == "cuda":
        torch.cuda.set_device(resolved)
    if owns:
        dist.init_process_group(backend="nccl" if resolved.type == "cuda" else "gloo",
                                init_method="env://")
    return _Group(rank=rank, world_size=world_size, device=resolved, active=True,
                  owns_process_group=owns)


def _broadcast(value: Any, group: _Group) -> Any:
    """``value`` of rank 0, on every rank."""
    if not group.active:
        return value
    import torch.distributed as dist

    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def _all_sum(values: Sequence[float], group: _Group) -> list[float]:
    """The sums over the ranks of ``values`` (float64)."""
    if not group.active:
        return list(values)
    import torch.distributed as dist

    totals = torch.tensor(values, dtype=torch.float64, device=group.device)
    dist.all_reduce(totals)
    return totals.tolist()


def _barrier(group: _Group) -> None:
    if group.active:
        import torch.distributed as dist

        dist.barrier()


def _gather_rng_state(group: _Group) -> dict:
    """:func:`get_rng_state` of rank 0, with every rank's under ``"ranks"`` when distributed (a
    resumed run restores each rank's dropout stream)."""
    state = get_rng_state()
    if not group.active:
        return state
    import torch.distributed as dist

    states: list = [None] * group.world_size
    dist.all_gather_object(states, state)
    return {**states[0], "ranks": states}


def _seed_rank(seed: int, group: _Group, *more: int) -> None:
    """Give ranks other than 0 their own torch stream (dropout masks), from (seed, rank)."""
    if group.active and group.rank > 0:
        torch.manual_seed(int(np.random.SeedSequence([seed, group.rank, *more])
                              .generate_state(1)[0]))


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
    if isinstance(model, TreeLSTMClassifier):
        return collate_trees(trees, vocab)
    return collate_sequences(trees, vocab)


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _progress(iterable, total: int, enabled: bool, description: str):
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # optional dependency: no bar
        return iterable
    return tqdm(iterable, total=total, desc=description, leave=False, unit="batch")


# -------------------------------------------------------------------------------- model
def build_model(config: TrainConfig, vocab_size: int) -> nn.Module:
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
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _forward(model: nn.Module, inputs,
             runner: Optional[nn.Module] = None) -> tuple[Tensor, Optional[Tensor]]:
    """``(root_logits [T, C], node_logits [N, C] or None)``. ``runner``: what to call instead of
    ``model`` (its ``DistributedDataParallel`` wrapper)."""
    runner = model if runner is None else runner
    if isinstance(model, TreeLSTMClassifier):
        node_logits, root_logits = runner(inputs)
        return root_logits, node_logits
    return runner(inputs), None


def _root_labels(inputs) -> Tensor:
    return inputs.root_labels if hasattr(inputs, "root_labels") else inputs.labels


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


def _loss(model: nn.Module, inputs, phrase_loss: bool) -> tuple[Tensor, Tensor]:
    """Summed cross-entropy per tree, averaged over the trees of the batch (Tai et al.);
    returns ``(loss, root_logits)``."""
    loss, root_logits = _loss_sum(model, inputs, phrase_loss)
    return loss / root_logits.shape[0], root_logits


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
def predict(model: nn.Module, trees: Sequence[SentimentTree], vocab: Vocab,
            batch_size: int = 256, device: Union[str, torch.device, None] = None) -> Tensor:
    """Root logits ``[len(trees), C]`` (CPU), in eval mode."""
    device = next(model.parameters()).device if device is None else torch.device(device)
    was_training = model.training
    model.eval()
    try:
        rows = [_forward(model, _collate(model, chunk, vocab).to(device))[0].cpu()
                for chunk in _chunks(list(trees), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(rows)


@torch.no_grad()
def evaluate(model: nn.Module, trees: Sequence[SentimentTree], vocab: Vocab,
             batch_size: int = 256, device: Union[str, torch.device, None] = None,
             progress: bool = False, description: str = "eval") -> dict:
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
        chunks = _progress(_chunks(trees, batch_size), math.ceil(len(trees) / batch_size),
                           progress, description)
        for chunk in chunks:
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


# -------------------------------------------------------------------------------- RNG
def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global RNG and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def get_rng_state() -> dict:
    """The states of python's ``random``, numpy's global RNG and torch (CPU, and CUDA when
    available) as tensors and plain numbers, so that ``torch.load(weights_only=True)`` reads
    them."""
    version, python_state, python_gauss = random.getstate()
    _, numpy_keys, numpy_pos, numpy_has_gauss, numpy_gauss = np.random.get_state()
    state = {"python": torch.tensor(python_state, dtype=torch.int64),
             "python_version": int(version), "python_gauss": python_gauss,
             "numpy": torch.from_numpy(numpy_keys.astype(np.int64)),
             "numpy_pos": int(numpy_pos), "numpy_has_gauss": int(numpy_has_gauss),
             "numpy_gauss": float(numpy_gauss),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`get_rng_state` returned."""
    random.setstate((state["python_version"], tuple(int(v) for v in state["python"].tolist()),
                     state["python_gauss"]))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"],
                         state["numpy_has_gauss"], state["numpy_gauss"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available() and \
            len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _epoch_order(num_trees: int, seed: int, epoch: int) -> np.ndarray:
    """The training order of ``epoch``: a function of (seed, epoch) only, so a resumed run
    sees the same order as an uninterrupted one."""
    return np.random.default_rng([seed, epoch]).permutation(num_trees)


# -------------------------------------------------------------------------- checkpoints
def _vocab_to_dict(vocab: Vocab) -> dict:
    return {"itos": vocab.itos, "lower": vocab.lower, "unk": vocab.unk, "pad": vocab.pad}


def _checksum(content: dict) -> str:
    """SHA-256 over every field but ``"checksum"``: tensors by dtype, shape and bytes, the rest
    by ``repr``. torch's zip reader does not check the data CRCs, so this is what catches a
    damaged tensor."""
    digest = hashlib.sha256()

    def feed(value: Any) -> None:
        if isinstance(value, Tensor):
            flat = value.detach().cpu().contiguous().reshape(-1)
            digest.update(f"T{flat.dtype}{tuple(value.shape)}".encode())
            digest.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
        elif isinstance(value, dict):
            digest.update(f"D{len(value)}".encode())
            for key in sorted(value, key=repr):
                digest.update(f"K{key!r}".encode())
                feed(value[key])
        elif isinstance(value, (list, tuple)):
            digest.update(f"L{len(value)}".encode())
            for item in value:
                feed(item)
        else:
            digest.update(f"V{value!r}".encode())

    feed({key: value for key, value in content.items() if key != "checksum"})
    return digest.hexdigest()


def save_checkpoint(path: PathLike, model: nn.Module, vocab: Vocab, config: Optional[dict] = None,
                    optimizer: Optional[torch.optim.Optimizer] = None, epoch: Optional[int] = None,
                    rng_state: Optional[dict] = None, extra: Optional[dict] = None) -> None:
    """Write ``model`` (state_dict + its constructor config as JSON) and ``vocab`` atomically.

    Args:
        path: the file; written through a temporary file in the same directory + ``os.replace``.
        model: a :class:`TreeLSTMClassifier` or :class:`LSTMClassifier`.
        vocab: the vocabulary the model's embedding rows follow.
        config: the training settings (JSON-serialisable), e.g. ``TrainConfig.to_dict()``.
        optimizer: to resume training: its ``state_dict()`` is stored too.
        epoch: the number of completed epochs.
        rng_state: :func:`get_rng_state`, to resume with the same random numbers.
        extra: anything else JSON-serialisable (e.g. the training history).
    """
    class_name = type(model).__name__
    if class_name not in _MODEL_CLASSES:
        raise TypeError(f"save_checkpoint: model must be one of {sorted(_MODEL_CLASSES)}; got "
                        f"{class_name}")
    content = {
        "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
        "model_class": class_name,
        "model_config": json.dumps(model.config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "vocab": json.dumps(_vocab_to_dict(vocab)),
        "config": json.dumps(config if config is not None else {}),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "epoch": None if epoch is None else int(epoch),
        "rng_state": rng_state,
        "extra": json.dumps(extra if extra is not None else {}),
    }
    content["checksum"] = _checksum(content)
    atomic_write(path, lambda file: torch.save(content, file))


@dataclass
class Checkpoint:
    """The content of a checkpoint file, as read by :func:`load_checkpoint`."""

    path: str
    model_class: str
    model_config: dict
    state_dict: dict
    vocab: Vocab
    config: dict
    optimizer: Optional[dict]
    epoch: Optional[int]
    rng_state: Optional[dict]
    extra: dict

    def build_model(self) -> nn.Module:
        """The model with the stored weights (ValueError naming the file if they do not fit)."""
        try:
            model = _MODEL_CLASSES[self.model_class](**self.model_config)
            model.load_state_dict(self.state_dict)
        except (TypeError, ValueError, RuntimeError) as error:
            raise ValueError(f"{self.path}: the stored weights do not fit a {self.model_class}: "
                             f"{error}") from None
        return model


class LoadedModel(NamedTuple):
    """What :func:`load_model` returns: the model (eval mode), its vocabulary, the training
    settings."""

    model: nn.Module
    vocab: Vocab
    config: dict


# torch's weights-only unpickler names the global it refused, e.g. "GLOBAL posix.system".
_FORBIDDEN_GLOBAL = re.compile(r"(?:unsupported GLOBAL|Unsupported global: GLOBAL) ([\w.]+)")


def load_checkpoint(path: PathLike, map_location: Union[str, torch.device] = "cpu") -> Checkpoint:
    """Read a file written by :func:`save_checkpoint` with ``torch.load(weights_only=True)``.

    Never runs code from the file: ``weights_only=True`` unpickles tensors and plain
    containers only (a pickled object of any other class, e.g. one whose unpickling would call
    ``os.system``, is refused before anything is called), and it cannot be overridden by
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``. The content is then checked against its SHA-256
    digest (torch's zip reader does not check CRCs), its fields' types, and the vocabulary
    against the model's ``vocab_size``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: naming the file, if it is truncated, corrupt, holds a pickled object other
            than tensors and plain containers, or is not a treelstm checkpoint.
    """
    name = os.fspath(path)
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise ValueError(f"{name}: empty file (0 bytes); expected a treelstm checkpoint")
    try:
        content = torch.load(path, map_location=map_location, weights_only=True)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as error:  # truncated zip, bad pickle, forbidden global, ...
        text = str(error).strip()
        forbidden = _FORBIDDEN_GLOBAL.search(text)
        if forbidden or "Weights only load failed" in text:
            what = f" ({forbidden.group(1)})" if forbidden else ""
            raise ValueError(f"{name}: not a readable treelstm checkpoint: it holds a pickled "
                             f"object other than tensors and plain containers{what}; refused "
                             "without running it") from None
        reason = text.splitlines()[0][:200] if text else "(no message)"
        raise ValueError(f"{name}: not a readable treelstm checkpoint (corrupt or truncated?): "
                         f"{type(error).__name__}: {reason}") from None
    if not isinstance(content, dict) or content.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{name}: not a treelstm checkpoint (expected a dict with format "
                         f"{CHECKPOINT_FORMAT!r})")
    if content.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{name}: checkpoint version {content.get('version')!r}; this library "
                         f"reads version {CHECKPOINT_VERSION}")
    if content.get("checksum") != _checksum(content):
        raise ValueError(f"{name}: checksum mismatch: the checkpoint is damaged")
    expected = {"model_class": str, "model_config": str, "state_dict": dict, "vocab": str,
                "config": str, "extra": str}
    for key, kind in expected.items():
        if not isinstance(content.get(key), kind):
            raise ValueError(f"{name}: checkpoint field {key!r} should be a {kind.__name__}, got "
                             f"{type(content.get(key)).__name__}")
    if content["model_class"] not in _MODEL_CLASSES:
        raise ValueError(f"{name}: unknown model class {content['model_class']!r}; expected one "
                         f"of {sorted(_MODEL_CLASSES)}")
    try:
        model_config = json.loads(content["model_config"])
        vocab_fields = json.loads(content["vocab"])
        config = json.loads(content["config"])
        extra = json.loads(content["extra"])
        vocab = Vocab(vocab_fields["itos"], lower=vocab_fields["lower"], unk=vocab_fields["unk"],
                      pad=vocab_fields["pad"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{name}: damaged checkpoint metadata: {error}") from None
    except RecursionError:
        raise ValueError(f"{name}: damaged checkpoint metadata: JSON nested too deeply") from None
    for key, value in (("model_config", model_config), ("config", config), ("extra", extra)):
        if not isinstance(value, dict):
            raise ValueError(f"{name}: damaged checkpoint metadata: {key} should be a JSON object, "
                             f"got {type(value).__name__}")
    _check_checkpoint_fields(name, content)
    if model_config.get("vocab_size") != len(vocab):
        raise ValueError(f"{name}: the stored vocabulary has {len(vocab)} words but the model was "
                         f"built for vocab_size={model_config.get('vocab_size')!r}: vocabulary "
                         "and weights do not belong together")
    return Checkpoint(path=name, model_class=content["model_class"], model_config=model_config,
                      state_dict=content["state_dict"], vocab=vocab, config=config,
                      optimizer=content.get("optimizer"), epoch=content.get("epoch"),
                      rng_state=content.get("rng_state"), extra=extra)


def _check_checkpoint_fields(name: str, content: dict) -> None:
    """ValueError naming the file and field unless the weights are finite tensors and the
    training fields have their types (a crafted file can carry a valid digest)."""
    for key, value in content["state_dict"].items():
        if not isinstance(key, str) or not isinstance(value, Tensor):
            raise ValueError(f"{name}: checkpoint field 'state_dict' should map names to tensors; "
                             f"got {key!r}: {type(value).__name__}")
        if (value.is_floating_point() or value.is_complex()) and \
                not bool(torch.isfinite(value).all()):
            raise ValueError(f"{name}: weight {key!r} holds NaN or infinite values; refusing a "
                             "model that cannot give valid predictions")
    epoch = content.get("epoch")
    if epoch is not None and (isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0):
        raise ValueError(f"{name}: checkpoint field 'epoch' should be an integer >= 0 or None; "
                         f"got {epoch!r}")
    for key in ("optimizer", "rng_state"):
        value = content.get(key)
        if value is not None and not isinstance(value, dict):
            raise ValueError(f"{name}: checkpoint field {key!r} should be a dict or None; got "
                             f"{type(value).__name__}")


def load_model(path: PathLike, map_location: Union[str, torch.device] = "cpu") -> LoadedModel:
    """``(model, vocab, config)`` from a checkpoint; the model is in eval mode on
    ``map_location``. ValueError naming the file if it is corrupt."""
    checkpoint = load_checkpoint(path, map_location=map_location)
    model = checkpoint.build_model().to(map_location)
    model.eval()
    return LoadedModel(model, checkpoint.vocab, checkpoint.config)


# ---------------------------------------------------------------------------- training
def _check_resumable(saved: dict, config: TrainConfig, path: str) -> None:
    current = config.to_dict()
    # A setting the checkpoint predates had its default value in the run that wrote it.
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)
                if f.default is not dataclasses.MISSING}
    saved = {**{key: value for key, value in defaults.items() if key not in saved}, **saved}
    for key, value in saved.items():
        if key in _RESUMABLE_CHANGES or key not in current:
            continue
        if key == "data" and value is not None:
            same = Path(value).resolve() == Path(current[key]).resolve()
        else:
            same = value == current[key]
        if not same:
            raise ValueError(f"{path}: cannot resume: the checkpoint has {key}={value!r}, this "
                             f"run {key}={current[key]!r}; only {', '.join(_RESUMABLE_CHANGES)} "
                             "may change")


def _data_fingerprint(trees: Sequence[SentimentTree]) -> str:
    """SHA-256 of the training trees (tokens, structure, labels, order): a resumed run must see
    the same data."""
    digest = hashlib.sha256()
    for tree in trees:
        digest.update(repr((tree.tokens, tree.parent, tree.labels)).encode("utf-8"))
    return digest.hexdigest()


def _check_same_data(checkpoint: Checkpoint, trees: Sequence[SentimentTree]) -> None:
    """ValueError naming the checkpoint if the training trees are not those it was trained on."""
    vocab = Vocab.build(tree.tokens for tree in trees)
    if vocab != checkpoint.vocab:
        new = next((w for w in vocab.itos if w not in checkpoint.vocab), None)
        raise ValueError(f"{checkpoint.path}: cannot resume: the training data changed: its "
                         f"vocabulary has {len(vocab)} words, the checkpoint's "
                         f"{len(checkpoint.vocab)}"
                         + (f" (e.g. {new!r} is new)" if new is not None else ""))
    saved = checkpoint.extra.get("data_fingerprint")
    if saved is not None and saved != _data_fingerprint(trees):
        raise ValueError(f"{checkpoint.path}: cannot resume: the training trees (their order, "
                         "structure or labels) differ from those the checkpoint was trained on")


def _parameter_names(model: nn.Module, tensors: Sequence[Tensor]) -> list[str]:
    ids = {id(t) for t in tensors}
    return [name for name, p in model.named_parameters() if id(p) in ids]


def _train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, trees: list[SentimentTree],
                 vocab: Vocab, config: TrainConfig, epoch: int, device: torch.device,
                 progress: bool, group: _Group = _SINGLE_PROCESS,
                 runner: Optional[nn.Module] = None) -> dict:
    """One pass over ``trees``. FloatingPointError (before the update, so the weights stay
    finite) if a batch's loss or gradient is NaN or infinite.

    Distributed (``group.active``, ``runner`` the ``DistributedDataParallel`` wrapper of
    ``model``): every rank walks the same global batches and takes every ``world_size``-th tree
    of each, from its rank on. Its loss is its trees' sum over the global batch size, times
    ``world_size`` since DDP averages the gradients over the ranks: the update is that of one
    process on the whole batch, however unevenly the trees fall.
    """
    model.train()
    order = _epoch_order(len(trees), config.seed, epoch)
    batches = list(_chunks(order, config.batch_size))
    parameters = [p for p in model.parameters() if p.requires_grad]
    epoch_loss_sum = 0.0
    root_correct = 0
    start = time.perf_counter()
    bar = _progress(batches, len(batches), progress, f"epoch {epoch + 1}/{config.epochs}")
    for batch_number, batch_order in enumerate(bar, start=1):
        share = batch_order[group.rank::group.world_size]
        # A rank with no tree in a short last batch must still join DDP's gradient all-reduce:
        # it runs the batch's first tree with weight 0.
        inputs = _collate(model, [trees[i] for i in (share if len(share) else batch_order[:1])],
                          vocab).to(device)
        loss_sum, root_logits = _loss_sum(model, inputs, config.phrase_loss, runner)
        loss = loss_sum / len(batch_order)
        if group.active:
            loss = loss * (group.world_size if len(share) else 0.0)
            local_sum = float(loss_sum.detach()) if len(share) else 0.0
            loss_value = _all_sum([local_sum], group)[0] / len(batch_order)
        else:
            loss_value = float(loss.detach())
        if not math.isfinite(loss_value):
            raise FloatingPointError(f"{_batch_name(epoch, batch_number, batches)}: the loss is "
                                     f"{loss_value}; stopped before the update")
        optimizer.zero_grad()
        loss.backward()
        gradients = [p.grad for p in parameters if p.grad is not None]
        grad_norm = torch.nn.utils.get_total_norm(gradients)
        if not torch.isfinite(grad_norm):
            bad = [p for p in parameters
                   if p.grad is not None and not torch.isfinite(p.grad).all()]
            which = (f"in {_shorten_list(_parameter_names(model, bad))}" if bad
                     else "(every entry finite: the norm overflowed)")
            raise FloatingPointError(f"{_batch_name(epoch, batch_number, batches)}: the gradient "
                                     f"norm is {float(grad_norm)} {which}; stopped before the "
                                     "update (try --clip-grad-norm or a smaller --lr)")
        if config.clip_grad_norm is not None:
            torch.nn.utils.clip_grads_with_norm_(parameters, config.clip_grad_norm, grad_norm)
        optimizer.step()
        epoch_loss_sum += loss_value * len(batch_order)
        if len(share):
            root_correct += int((root_logits.argmax(dim=1) == _root_labels(inputs)).sum())
        if progress and hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{loss_value:.3f}")
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    root_correct = int(_all_sum([root_correct], group)[0])
    seconds = time.perf_counter() - start
    return {"loss": epoch_loss_sum / len(trees), "root_acc": root_correct / len(trees),
            "seconds": seconds, "trees_per_s": len(trees) / seconds}


def _shorten_list(items: list, shown: int = 8) -> str:
    return "[" + ", ".join(map(str, items[:shown])) + (", ...]" if len(items) > shown else "]")


def _batch_name(epoch: int, batch_number: int, batches: list[np.ndarray]) -> str:
    """``"epoch 2, batch 3 of 6 (training trees [...])"`` for error messages (1-based)."""
    trees = _shorten_list(batches[batch_number - 1].tolist())
    return f"epoch {epoch + 1}, batch {batch_number} of {len(batches)} (training trees {trees})"


def _summary(config: TrainConfig, model: nn.Module, vocab: Vocab, splits: dict,
             history: list, best: dict, test: Optional[dict]) -> dict:
    train_seconds = sum(record["train"]["seconds"] for record in history)
    trained = sum(record["train"]["trees"] for record in history)
    return {"config": config.to_dict(), "model_class": type(model).__name__,
            "num_parameters": count_parameters(model), "vocab_size": len(vocab),
            "num_trees": {split: len(trees) for split, trees in splits.items()},
            "epochs_done": len(history), "history": history,
            "best_epoch": best.get("epoch"), "best_dev": best.get("dev"),
            "train_trees_per_s": trained / train_seconds if train_seconds > 0 else None,
            "test": test,
            "inference_trees_per_s": test["trees_per_s"] if test else None}


def _write_metrics(out_dir: Optional[Path], metrics: dict) -> None:
    if out_dir is not None:
        write_text(out_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")


class TrainResult(NamedTuple):
    """What :func:`train` returns: ``metrics`` (as in ``metrics.json``), the ``model`` with its
    weights after the last epoch (test metrics are from the best epoch), its ``vocab``."""

    metrics: dict
    model: nn.Module
    vocab: Vocab


def train(config: TrainConfig, out_dir: Optional[PathLike] = None, resume: bool = False,
          progress: bool = False, splits: Optional[dict[str, list[SentimentTree]]] = None,
          on_epoch_end: Optional[Callable[[int, dict], None]] = None,
          distributed: bool = False, overwrite: bool = False) -> TrainResult:
    """Train ``config.model`` on ``config.data``, pick the best epoch on dev, test it once.

    Each epoch: one pass over the training trees in an order that depends on (seed, epoch)
    only, AdaGrad updates, dev accuracy. With ``out_dir``: ``checkpoint.pt`` after every epoch
    (model, optimizer, epoch, RNG states, history), ``best.pt`` whenever dev root accuracy
    improves, ``metrics.json`` after every epoch and at the end, ``learning_curve.png`` at the
    end. The test split is evaluated once, after the last epoch, with the best weights.

    Args:
        config: the settings.
        out_dir: where the files go; ``None`` keeps everything in memory.
        resume: continue from ``out_dir/checkpoint.pt`` if it exists (the result is the same,
            bit for bit, as an uninterrupted run). ``config.epochs`` may be raised to train on.
        overwrite: start afresh in an ``out_dir`` that already holds a run, replacing its files
            as the new run writes them. Without ``resume`` or ``overwrite`` such an ``out_dir``
            is refused (FileExistsError), so a finished run is never lost by accident.
        progress: tqdm bars (if tqdm is installed).
        splits: ``{"train": [...], "dev": [...], "test": [...]}`` instead of reading
            ``config.data`` (already in ``config.view``).
        on_epoch_end: called as ``on_epoch_end(epoch, record)`` after each epoch's files are
            written (``epoch`` counts from 1); on rank 0 only when distributed.
        distributed: one of the processes started by ``torchrun`` (``env://`` variables; or of
            a process group initialised by the caller): the model is wrapped in
            ``DistributedDataParallel`` (NCCL on ``cuda:LOCAL_RANK``, Gloo on the CPU), each
            rank trains on its share of every global batch of ``config.batch_size`` trees, and
            the updates are those of one process on the same batches (equal within float
            rounding without dropout; with dropout each rank draws its own masks). Rank 0 alone
            evaluates, logs, shows progress and writes the files (the others wait for it), so
            ``out_dir`` need only exist for rank 0; resuming reads it there and broadcasts it.
            Every rank returns the same ``metrics``.

    Returns:
        a :class:`TrainResult`; its ``metrics`` (also ``metrics.json``): config, parameters,
        history (per epoch: train loss and accuracy, dev metrics, seconds), best epoch and its
        dev metrics, test metrics (:func:`evaluate`), training and inference trees/s.

    Raises:
        FileExistsError: ``out_dir`` holds a run (``checkpoint.pt``, ``best.pt`` or
            ``metrics.json``) and neither ``resume`` nor ``overwrite`` was given.
        ValueError: a bad setting; with ``resume``, a checkpoint that is damaged, was written
            with other settings (only ``epochs``, ``device``, ``backend`` may change), or on
            other training trees (vocabulary and a SHA-256 of the trees are compared).
        FloatingPointError: a NaN or infinite loss or gradient, naming the epoch, the batch and
            its trees (and the parameters with non-finite gradients); raised before that
            update, so ``checkpoint.pt`` holds the last finished epoch.
    """
    config.validate()
    out_dir = Path(out_dir) if out_dir is not None else None
    if resume and out_dir is None:
        raise ValueError("train: resume=True needs an out_dir holding checkpoint.pt")
    group = _start_distributed(config.device) if distributed else _SINGLE_PROCESS
    try:
        return _train(config, out_dir, resume, progress and group.is_main, splits, on_epoch_end,
                      group, overwrite)
    finally:
        if group.owns_process_group:
            import torch.distributed as dist

            # Tearing Gloo down while a peer still reads the last broadcast aborts the process.
            if sys.exc_info()[0] is None:
                dist.barrier()
            dist.destroy_process_group()


def _load_resumable(out_dir: Path, config: TrainConfig,
                    train_trees: Sequence[SentimentTree]) -> Optional[Checkpoint]:
    """``out_dir/checkpoint.pt`` checked against this run, or ``None`` if there is none."""
    checkpoint_path = out_dir / "checkpoint.pt"
    if not checkpoint_path.is_file():
        logger.info("%s not found: starting from scratch", checkpoint_path)
        return None
    checkpoint = load_checkpoint(checkpoint_path)
    _check_resumable(checkpoint.config, config, str(checkpoint_path))
    if checkpoint.optimizer is None or checkpoint.rng_state is None or checkpoint.epoch is None:
        raise ValueError(f"{checkpoint_path}: cannot resume: the checkpoint holds no "
                         "optimizer / RNG state / epoch")
    _check_same_data(checkpoint, train_trees)
    _check_run_record(checkpoint)
    best_path = out_dir / "best.pt"
    if checkpoint.extra["history"]:
        if not best_path.is_file():
            raise ValueError(f"{best_path}: missing; cannot resume without it")
        best = load_checkpoint(best_path)
        _check_resumable(best.config, config, str(best_path))
        _check_same_data(best, train_trees)
        # The best epoch so far, or the next one (a run killed between writing best.pt and
        # checkpoint.pt redoes that epoch and writes the same best.pt again).
        expected = (checkpoint.extra["best"]["epoch"], checkpoint.epoch + 1)
        if best.epoch not in expected:
            raise ValueError(f"{best_path}: holds epoch {best.epoch!r}, but {checkpoint_path} "
                             f"has its best dev epoch at {expected[0]}: not this run's best.pt; "
                             "cannot resume")
    return checkpoint


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_run_record(checkpoint: Checkpoint) -> None:
    """ValueError naming the file unless ``extra`` holds a history of ``epoch`` records and the
    best of them, as :func:`train` writes them (a crafted file can carry a valid digest)."""
    def fail(what: str) -> None:
        raise ValueError(f"{checkpoint.path}: cannot resume: {what}")

    history, best = checkpoint.extra.get("history"), checkpoint.extra.get("best")
    if not isinstance(history, list) or len(history) != checkpoint.epoch:
        fail(f"'history' should be a list of {checkpoint.epoch} epoch records; got "
             f"{type(history).__name__}" + (f" of {len(history)}" if isinstance(history, list)
                                            else ""))
    for number, record in enumerate(history, start=1):
        if not (isinstance(record, dict) and record.get("epoch") == number
                and isinstance(record.get("train"), dict) and isinstance(record.get("dev"), dict)
                and all(_is_number(record["train"].get(key))
                        for key in ("loss", "root_acc", "seconds", "trees"))
                and _is_number(record["dev"].get("root_acc"))):
            fail(f"history record {number} is not an epoch record ({{'epoch': {number}, "
                 "'train': {...}, 'dev': {...}})")
    if not isinstance(best, dict):
        fail(f"'best' should be a dict; got {type(best).__name__}")
    if history and not (isinstance(best.get("epoch"), int) and not isinstance(best["epoch"], bool)
                        and 1 <= best["epoch"] <= len(history)
                        and isinstance(best.get("dev"), dict)
                        and _is_number(best["dev"].get("root_acc"))):
        fail(f"'best' should name an epoch in 1..{len(history)} and its dev metrics; got "
             f"{best!r:.80}")


def _train(config: TrainConfig, out_dir: Optional[Path], resume: bool, progress: bool,
           splits: Optional[dict[str, list[SentimentTree]]],
           on_epoch_end: Optional[Callable[[int, dict], None]], group: _Group,
           overwrite: bool = False) -> TrainResult:
    """:func:`train` in one process of ``group``."""
    device = group.device if group.active else resolve_device(config.device)
    if splits is None:
        splits = load_splits(config.data, config.view)
    splits = dict(splits)
    if config.max_train is not None:
        splits["train"] = splits["train"][:config.max_train]
    for split in SPLITS:
        if not splits.get(split):
            raise ValueError(f"train: the {split} split has no trees")
    train_trees = splits["train"]

    checkpoint_path = out_dir / "checkpoint.pt" if out_dir is not None else None
    checkpoint, problem = None, None
    if group.is_main:
        try:
            if out_dir is not None and not resume and not overwrite:
                check_no_run(out_dir, _RUN_FILES)
            if out_dir is not None:
                for stale in remove_stale_temp_files(out_dir, _OUTPUT_FILES):
                    logger.info("removed %s, left by a run killed while writing", stale)
            if resume:
                checkpoint = _load_resumable(out_dir, config, train_trees)
        except (ValueError, OSError) as error:
            if not group.active:
                raise
            problem = error
    # Rank 0 alone reads out_dir; the other ranks get its checkpoint, or its error.
    checkpoint, problem = _broadcast((checkpoint, problem), group)
    if problem is not None:
        raise problem

    seed_everything(config.seed)
    vocab = checkpoint.vocab if checkpoint else Vocab.build(tree.tokens for tree in train_trees)
    model = build_model(config, len(vocab))
    if config.embeddings and checkpoint is None:
        _, coverage = load_vectors(config.embeddings, vocab, embedding=model.embedding)
        logger.info("word vectors for %d of %d words (%.1f%%) from %s", coverage.found,
                    coverage.total, 100 * coverage.fraction, config.embeddings)
    if config.freeze_embeddings:
        model.embedding.weight.requires_grad_(False)
    model.to(device)
    optimizer = torch.optim.Adagrad([p for p in model.parameters() if p.requires_grad],
                                    lr=config.lr, weight_decay=config.weight_decay)
    _seed_rank(config.seed, group)

    history: list[dict] = []
    best: dict = {}
    best_state = None
    start_epoch = 0
    fingerprint = _data_fingerprint(train_trees) if out_dir is not None else None
    if checkpoint is not None:
        try:
            model.load_state_dict(checkpoint.state_dict)
            optimizer.load_state_dict(checkpoint.optimizer)
            rank_states = checkpoint.rng_state.get("ranks")
            if group.active and rank_states is not None and len(rank_states) == group.world_size:
                set_rng_state(rank_states[group.rank])
            else:
                set_rng_state(checkpoint.rng_state)
                _seed_rank(config.seed, group, checkpoint.epoch)
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise ValueError(f"{checkpoint_path}: cannot resume: its model, optimizer or RNG "
                             f"state does not fit this run's settings: {type(error).__name__}: "
                             f"{reason[:300]}") from None
        start_epoch = checkpoint.epoch
        history = checkpoint.extra.get("history", [])
        best = checkpoint.extra.get("best", {})
        if group.is_main:
            logger.info("resuming %s after epoch %d", checkpoint_path, start_epoch)
    runner = None
    if group.active:
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel

        # device_ids=None: the batches are already on the device (DDP would try to copy the
        # TreeBatch itself).
        runner = DistributedDataParallel(model)
        if group.is_main:
            logger.info("distributed training: %d processes, backend %s, %s per process",
                        group.world_size, dist.get_backend(), device)

    for epoch in range(start_epoch, config.epochs):
        train_metrics = _train_epoch(model, optimizer, train_trees, vocab, config, epoch, device,
                                     progress, group, runner)
        train_metrics["trees"] = len(train_trees)
        # Every rank's RNG state (a collective: all ranks take part, whatever their out_dir).
        rank_rng_state = _gather_rng_state(group) if group.active else None
        if not group.is_main:
            _barrier(group)  # rank 0 evaluates on dev and writes the files
            continue
        dev = evaluate(model, splits["dev"], vocab, device=device, progress=progress,
                       description="dev")
        improved = not best or dev["root_acc"] > best["dev"]["root_acc"]
        record = {"epoch": epoch + 1, "train": train_metrics, "dev": dev, "best": improved}
        history.append(record)
        if improved:
            best = {"epoch": epoch + 1, "dev": dev}
            if out_dir is not None:
                save_checkpoint(out_dir / "best.pt", model, vocab, config.to_dict(),
                                epoch=epoch + 1,
                                extra={"dev": dev, "data_fingerprint": fingerprint})
            else:
                best_state = copy.deepcopy(model.state_dict())
        logger.info("epoch %d/%d: train loss %.4f, train root acc %.2f%%, dev root acc %.2f%%%s, "
                    "%.0f trees/s", epoch + 1, config.epochs, train_metrics["loss"],
                    100 * train_metrics["root_acc"], 100 * dev["root_acc"],
                    " (best)" if improved else "", train_metrics["trees_per_s"])
        if out_dir is not None:
            save_checkpoint(checkpoint_path, model, vocab, config.to_dict(), optimizer=optimizer,
                            epoch=epoch + 1,
                            rng_state=rank_rng_state or get_rng_state(),
                            extra={"history": history, "best": best,
                                   "data_fingerprint": fingerprint})
            _write_metrics(out_dir, _summary(config, model, vocab, splits, history, best, None))
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, record)
        _barrier(group)

    if not group.is_main:
        return TrainResult(_broadcast(None, group), model, vocab)
    # Test once, with the best weights on dev (the last weights if no epoch was run).
    final_state = copy.deepcopy(model.state_dict())
    if best_state is not None:
        model.load_state_dict(best_state)
    elif best and out_dir is not None:
        best_checkpoint = load_checkpoint(out_dir / "best.pt")
        if best_checkpoint.epoch != best["epoch"]:
            # e.g. a run killed after writing best.pt and before checkpoint.pt, resumed with
            # fewer epochs: that best.pt is of an epoch this history does not have.
            raise ValueError(f"{best_checkpoint.path}: holds epoch {best_checkpoint.epoch}, but "
                             f"the best epoch on dev is {best['epoch']}; resume with more "
                             "--epochs or start again")
        try:
            model.load_state_dict(best_checkpoint.state_dict)
        except RuntimeError as error:
            raise ValueError(f"{best_checkpoint.path}: does not fit this run's model: "
                             f"{str(error).strip().splitlines()[0][:300]}") from None
    test = evaluate(model, splits["test"], vocab, device=device, progress=progress,
                    description="test")
    logger.info("test (best dev epoch %s): root acc %.2f%%", best.get("epoch"),
                100 * test["root_acc"])
    metrics = _summary(config, model, vocab, splits, history, best, test)
    model.load_state_dict(final_state)
    if out_dir is not None:
        _write_metrics(out_dir, metrics)
        if history:
            plot_learning_curve(history, out_dir / "learning_curve.png",
                                title=f"{config.model} ({config.view})")
    return TrainResult(_broadcast(metrics, group), model, vocab)


def plot_learning_curve(history: list[dict], path: PathLike, title: str = "") -> bool:
    """Train loss, and train / dev root accuracy per epoch, as a PNG (matplotlib Agg).
    Returns ``False`` (and logs) if matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed: no learning curve (pip install matplotlib)")
        return False
    epochs = [record["epoch"] for record in history]
    figure, (loss_axes, acc_axes) = plt.subplots(1, 2, figsize=(9, 3.5))
    loss_axes.plot(epochs, [r["train"]["loss"] for r in history], marker="o", label="train")
    loss_axes.set_xlabel("epoch")
    loss_axes.set_ylabel("loss per tree")
    loss_axes.legend()
    acc_axes.plot(epochs, [100 * r["train"]["root_acc"] for r in history], marker="o",
                  label="train (dropout on)")
    acc_axes.plot(epochs, [100 * r["dev"]["root_acc"] for r in history], marker="o", label="dev")
    if history and history[0]["dev"].get("phrase_acc") is not None:
        acc_axes.plot(epochs, [100 * r["dev"]["phrase_acc"] for r in history], marker=".",
                      linestyle="--", label="dev, all phrases")
    acc_axes.set_xlabel("epoch")
    acc_axes.set_ylabel("root accuracy (%)")
    acc_axes.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    atomic_write(path, lambda file: file.write(buffer.getvalue()))
    return True


# ----------------------------------------------------------------------------- compare
#: The rows :func:`compare` can train: name -> (label, model, settings changed from the config).
COMPARE_ROWS = {
    "treelstm": ("Tree-LSTM", "treelstm", {"phrase_loss": True, "bidirectional": False}),
    "treelstm-root": ("Tree-LSTM, root labels only", "treelstm",
                      {"phrase_loss": False, "bidirectional": False}),
    "bitreelstm": ("Bidirectional Tree-LSTM", "treelstm",
                   {"phrase_loss": True, "bidirectional": True}),
    "lstm": ("LSTM", "lstm", {"bidirectional": False}),
    "bilstm": ("Bidirectional LSTM", "lstm", {"bidirectional": True}),
}
DEFAULT_COMPARE_ROWS = ("treelstm", "treelstm-root", "lstm")


def _percent(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def comparison_table(results: dict[str, dict], caption: str = "") -> str:
    """A markdown table of :func:`train` metrics, one row per entry of ``results`` (keys of
    :data:`COMPARE_ROWS` get their label, other keys are shown as they are)."""
    header = ["model", "fine root dev", "fine root test", "binary root dev", "binary root test",
              "all-phrase test", "parameters", "train trees/s", "inference trees/s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * 8) + "|"]
    for row, metrics in results.items():
        dev, test = metrics["best_dev"] or {}, metrics["test"]
        train_speed = metrics["train_trees_per_s"]
        cells = [COMPARE_ROWS[row][0] if row in COMPARE_ROWS else row,
                 _percent(dev.get("root_acc")), _percent(test["root_acc"]),
                 _percent(dev.get("binary_root_acc")), _percent(test["binary_root_acc"]),
                 _percent(test["phrase_acc"]), f"{metrics['num_parameters']:,}",
                 "n/a" if train_speed is None else f"{train_speed:.0f}",
                 f"{metrics['inference_trees_per_s']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    return f"{caption}\n\n{table}\n" if caption else table + "\n"


def _compare_caption(config: TrainConfig, rows: Sequence[str], first: dict) -> str:
    device = resolve_device(config.device)
    threads = f", {torch.get_num_threads()} torch thread(s)" if device.type == "cpu" else ""
    counts = first["num_trees"]
    parts = [
        f"Accuracy (%) on {config.data} ({counts['train']} train / {counts['dev']} dev / "
        f"{counts['test']} test trees, 5 classes). Every model: {config.epochs} epochs, seed "
        f"{config.seed}, the same training order, embedding {config.embed_dim}"
        f"{' (pre-trained vectors)' if config.embeddings else ' (random init)'}, hidden "
        f"{config.hidden_size}, AdaGrad lr {config.lr}, weight decay {config.weight_decay}, "
        f"batch {config.batch_size}, dropout {config.dropout}; dev and test use the epoch with "
        "the best fine root accuracy on dev.",
    ]
    if "treelstm" in rows:
        parts.append(f"Tree-LSTM: {config.cell} cell, loss on every phrase (Tai et al.).")
    if "treelstm-root" in rows:
        parts.append("Tree-LSTM, root labels only: the same model with the baseline's "
                     "supervision (sentence label only).")
    if "lstm" in rows or "bilstm" in rows:
        parts.append("LSTM: nn.LSTM over the words in order, loss on the sentence label only.")
    parts.append("Binary: from each fine-grained model's predictions on the non-neutral roots "
                 "(positive iff p(3)+p(4) > p(0)+p(1)); no separate binary model is trained.")
    parts.append("All-phrase: every node of the test trees (n/a: the LSTM labels sentences "
                 "only).")
    parts.append(f"Throughput on {device.type}{threads}, batching included; training at batch "
                 f"{config.batch_size} (mean over epochs), inference at batch 256 on the test "
                 "set.")
    return " ".join(parts)


def compare(config: TrainConfig, out_dir: Optional[PathLike] = None, progress: bool = False,
            rows: Sequence[str] = DEFAULT_COMPARE_ROWS, overwrite: bool = False) -> dict:
    """Train each row of :data:`COMPARE_ROWS` named in ``rows`` on the same data with the same
    budget and seed (``config``, fine view) and tabulate them.

    Returns ``{"results": {row: metrics}, "table": markdown, "caption": str}``; with ``out_dir``
    also writes ``compare.md``, ``compare.json`` and each row's run in ``out_dir/<row>/``.
    An ``out_dir`` that holds a comparison (or a row's run) is refused (FileExistsError) before
    anything is trained, unless ``overwrite``.
    """
    unknown = [row for row in rows if row not in COMPARE_ROWS]
    if unknown or not rows:
        raise ValueError(f"compare: rows must be a non-empty list of {tuple(COMPARE_ROWS)}; "
                         f"got {list(rows)!r}")
    config = dataclasses.replace(config, view="fine")
    out_dir = Path(out_dir) if out_dir is not None else None
    if out_dir is not None and not overwrite:
        check_no_run(out_dir, ("compare.md", "compare.json"), resume_hint="")
        for row in rows:
            check_no_run(out_dir / row, _RUN_FILES, resume_hint="")
    splits = load_splits(config.data, "fine")
    results = {}
    for row in rows:
        label, model, changes = COMPARE_ROWS[row]
        logger.info("training %s", label)
        run_config = dataclasses.replace(config, model=model, **changes)
        results[row] = train(run_config, out_dir / row if out_dir is not None else None,
                             progress=progress, splits=splits, overwrite=overwrite).metrics
    caption = _compare_caption(config, rows, next(iter(results.values())))
    table = comparison_table(results, caption)
    if out_dir is not None:
        write_text(out_dir / "compare.md", table)
        write_text(out_dir / "compare.json", json.dumps(
            {"caption": caption, "table": table, "results": results}, indent=2) + "\n")
    return {"results": results, "table": table, "caption": caption}
