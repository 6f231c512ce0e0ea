"""The epoch loop of :func:`train`: one process's run is a :class:`_Run` (model, optimizer,
vocabulary, history, best epoch) whose methods are the steps: start or resume, one epoch (one
update per batch, dev accuracy, checkpoints), and the test of the best weights at the end.

Library code: it logs (``logging.getLogger("treelstm.training")``) and returns values; it never
prints. tqdm (optional) is imported only when a progress bar is asked for.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple, Optional, Union, cast

import numpy as np
import torch
from torch import nn

from ..checks import all_finite
from ..data import SentimentTree, Vocab, load_vectors
from ..files import PathLike, run_lock, write_text
from ..iterate import chunks
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .config import SPLITS, TrainConfig, resolve_device
from .distributed import (_SINGLE_PROCESS, _all_sum, _barrier, _broadcast, _gather_rng_state,
                          _Group, _seed_rank, _start_distributed)
from .evaluation import (_collate, _loss_sum, _root_labels, build_model,
                         count_parameters, evaluate, load_splits)
from ..progress import Progress, track
from .plot import plot_learning_curve
from .resume import _data_fingerprint, _open_out_dir
from .step import batch_name, checked_loss, guarded_update, shorten_list
from .seed import _epoch_order, get_rng_state, seed_everything, set_rng_state

__all__ = ["TrainResult", "train"]

logger = logging.getLogger(__package__)  # "treelstm.training", as before the split into modules

class TrainResult(NamedTuple):
    """What :func:`train` returns: ``metrics`` (as in ``metrics.json``), the ``model`` with its
    weights after the last epoch (test metrics are from the best epoch), its ``vocab``."""

    metrics: dict
    model: nn.Module
    vocab: Vocab


def train(config: TrainConfig, out_dir: Optional[PathLike] = None, resume: bool = False,
          progress: Union[bool, Progress] = False,
          splits: Optional[dict[str, list[SentimentTree]]] = None,
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
            bit for bit, as an uninterrupted run on the same device and threads; on CUDA,
            whose ``index_add_`` adds in any order, only under
            ``torch.use_deterministic_algorithms(True)``). ``config.epochs`` may be raised to
            train on.
        overwrite: start afresh in an ``out_dir`` that already holds a run, replacing its files
            as the new run writes them. Without ``resume`` or ``overwrite`` such an ``out_dir``
            is refused (FileExistsError), so a finished run is never lost by accident.
        progress: ``True`` for tqdm bars (if tqdm is installed), or a callable
            ``progress(iterable, total, description)`` (:mod:`treelstm.progress`).
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
    # one run at a time in an out_dir (a second one is refused); not across torchrun's ranks,
    # where rank 0 alone writes and a refusal there would leave the others waiting
    lock = run_lock(out_dir) if out_dir is not None and not group.active else \
        contextlib.nullcontext()
    try:
        with lock:
            return _train(config, out_dir, resume, progress if group.is_main else False, splits,
                          on_epoch_end, group, overwrite)
    finally:
        if group.owns_process_group:
            import torch.distributed as dist

            # Tearing Gloo down while a peer still reads the last broadcast aborts the process.
            if sys.exc_info()[0] is None:
                dist.barrier()
            dist.destroy_process_group()


def _train(config: TrainConfig, out_dir: Optional[Path], resume: bool,
           progress: Union[bool, Progress],
           splits: Optional[dict[str, list[SentimentTree]]],
           on_epoch_end: Optional[Callable[[int, dict], None]], group: _Group,
           overwrite: bool = False) -> TrainResult:
    """:func:`train` in one process of ``group``."""
    # an active group has its device (_start_distributed)
    device = cast(torch.device, group.device) if group.active else resolve_device(config.device)
    splits = _checked_splits(config, splits)
    checkpoint = _open_out_dir(config, out_dir, resume, overwrite, group, splits["train"])
    run = _Run.start(config, out_dir, splits, device, group, progress, checkpoint)
    for epoch in range(run.start_epoch, config.epochs):
        if run.stop_early():
            break
        run.run_epoch(epoch, on_epoch_end)
    return run.finish()


def _checked_splits(config: TrainConfig,
                    splits: Optional[dict[str, list[SentimentTree]]]) -> dict:
    """``splits`` (read from ``config.data`` if ``None``), the training trees cut to
    ``config.max_train``; ValueError if a split has no trees."""
    if splits is None:
        splits = load_splits(config.data, config.view)
    splits = dict(splits)
    if config.max_train is not None:
        splits["train"] = splits["train"][:config.max_train]
    for split in SPLITS:
        if not splits.get(split):
            raise ValueError(f"train: the {split} split has no trees")
    return splits


@dataclass
class _Run:
    """One process's training run: what changes together as it trains (model, optimizer, the
    history and best epoch on dev) and what it trains on. The steps of :func:`train` are its
    methods, so each reads the state it needs instead of taking it as arguments."""

    config: TrainConfig
    out_dir: Optional[Path]
    splits: dict[str, list[SentimentTree]]
    device: torch.device
    group: _Group
    progress: Union[bool, Progress]
    vocab: Vocab
    model: nn.Module
    optimizer: torch.optim.Optimizer
    fingerprint: Optional[str]  # of the training trees, stored in the checkpoints
    runner: Optional[nn.Module] = None  # what to call: model, or its DistributedDataParallel
    history: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=dict)  # {"epoch", "dev"} of the best epoch so far
    best_state: Optional[dict] = None  # its weights, when there is no out_dir for best.pt
    start_epoch: int = 0

    @property
    def checkpoint_path(self) -> Optional[Path]:
        return self.out_dir / "checkpoint.pt" if self.out_dir is not None else None

    @classmethod
    def start(cls, config: TrainConfig, out_dir: Optional[Path], splits: dict,
              device: torch.device, group: _Group,
              progress: Union[bool, Progress],
              checkpoint: Optional[Checkpoint]) -> "_Run":
        """Seed, build the model and its optimizer; restore ``checkpoint`` when resuming."""
        seed_everything(config.seed)
        train_trees = splits["train"]
        vocab = checkpoint.vocab if checkpoint else Vocab.build(tree.tokens for tree in train_trees)
        model = build_model(config, len(vocab))
        if config.embeddings and checkpoint is None:
            _, coverage = load_vectors(config.embeddings, vocab, embedding=model.embedding)
            logger.info("word vectors for %d of %d words (%.1f%%) from %s", coverage.found,
                        coverage.total, 100 * coverage.fraction, config.embeddings)
        if config.freeze_embeddings:
            model.embedding.weight.requires_grad_(False)
        if config.embedding_lr is not None:
            logger.info("embedding: plain SGD at lr %g (--embedding-lr), the other weights "
                        "AdaGrad at lr %g", config.embedding_lr, config.lr)
        model.to(device)
        # fused: one pass over each parameter instead of five ops (the embedding is most of the
        # parameters and of a step's time); the same update up to float rounding
        sgd_embedding = config.embedding_lr is not None
        optimizer = torch.optim.Adagrad([p for p in model.parameters() if p.requires_grad and
                                         not (sgd_embedding and p is model.embedding.weight)],
                                        lr=config.lr, weight_decay=config.weight_decay,
                                        fused=device.type in ("cpu", "cuda"))
        _seed_rank(config.seed, group)
        run = cls(config, out_dir, splits, device, group, progress, vocab, model, optimizer,
                  fingerprint=_data_fingerprint(train_trees) if out_dir is not None else None)
        if checkpoint is not None:
            run._restore(checkpoint)
        run._wrap_distributed()
        return run

    def _restore(self, checkpoint: Checkpoint) -> None:
        """Weights, optimizer, RNG states, history and best epoch of ``checkpoint``."""
        # _load_resumable checked that its optimizer, RNG state and epoch are set
        group = self.group
        try:
            self.model.load_state_dict(checkpoint.state_dict)
            self.optimizer.load_state_dict(cast(dict, checkpoint.optimizer))
            self._check_optimizer_settings()
            rank_states = cast(dict, checkpoint.rng_state).get("ranks")
            if group.active and rank_states is not None and len(rank_states) == group.world_size:
                set_rng_state(rank_states[group.rank])
            else:
                set_rng_state(cast(dict, checkpoint.rng_state))
                _seed_rank(self.config.seed, group, cast(int, checkpoint.epoch))
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError,
                OverflowError) as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise ValueError(f"{self.checkpoint_path}: cannot resume: its model, optimizer or RNG "
                             f"state does not fit this run's settings: {type(error).__name__}: "
                             f"{reason[:300]}") from None
        self.start_epoch = cast(int, checkpoint.epoch)
        self.history = checkpoint.extra.get("history", [])
        self.best = checkpoint.extra.get("best", {})
        if group.is_main:
            logger.info("resuming %s after epoch %d", self.checkpoint_path, self.start_epoch)


    def _check_weights_finite(self, epoch: int) -> None:
        """FloatingPointError, before anything is written, if an update made a weight infinite
        or NaN (finite gradients can still overflow a weight, e.g. with a huge --lr)."""
        bad = [name for name, p in self.model.named_parameters() if not all_finite(p)]
        if bad:
            raise FloatingPointError(f"epoch {epoch + 1}: the weights {shorten_list(bad)} are "
                                     "no longer finite after the updates (try a smaller --lr or "
                                     "--clip-grad-norm); nothing of this epoch was written")

    def _check_optimizer_settings(self) -> None:
        """ValueError unless the loaded optimizer state has this run's learning rate and weight
        decay (a crafted checkpoint could change them behind the settings' back)."""
        for group in self.optimizer.param_groups:
            for key, expected in (("lr", self.config.lr),
                                  ("weight_decay", self.config.weight_decay)):
                if group.get(key) != expected:
                    raise ValueError(f"the optimizer state has {key}={group.get(key)!r}, the "
                                     f"settings {key}={expected!r}")
    def _wrap_distributed(self) -> None:
        if not self.group.active:
            return
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel

        # device_ids=None: the batches are already on the device (DDP would try to copy the
        # TreeBatch itself).
        self.runner = DistributedDataParallel(self.model)
        if self.group.is_main:
            logger.info("distributed training: %d processes, backend %s, %s per process",
                        self.group.world_size, dist.get_backend(), self.device)

    # ------------------------------------------------------------------------- an epoch
    def stop_early(self) -> bool:
        """``config.patience`` epochs in a row without a better dev accuracy (every rank gets
        rank 0's answer, which alone keeps the history)."""
        patience = self.config.patience
        if patience is None:
            return False
        stop = None
        if self.group.is_main:
            stop = bool(self.best) and len(self.history) - self.best["epoch"] >= patience
            if stop:
                logger.info("stopping early (--patience %d): no better dev accuracy in the last "
                            "%d epoch%s (best: epoch %d)", patience, patience,
                            "s" if patience != 1 else "", self.best["epoch"])
        return bool(_broadcast(stop, self.group))

    def run_epoch(self, epoch: int, on_epoch_end: Optional[Callable[[int, dict], None]]) -> None:
        """Train on every rank; then rank 0 evaluates on dev, keeps the best epoch and writes
        the files while the other ranks wait."""
        group = self.group
        train_metrics = self.train_epoch(epoch)
        train_metrics["trees"] = len(self.splits["train"])
        self._check_weights_finite(epoch)
        # Every rank's RNG state (a collective: all ranks take part, whatever their out_dir).
        rank_rng_state = _gather_rng_state(group) if group.active else None
        if not group.is_main:
            _barrier(group)  # rank 0 evaluates on dev and writes the files
            return
        dev = evaluate(self.model, self.splits["dev"], self.vocab, device=self.device,
                       progress=self.progress, description="dev")
        improved = not self.best or dev["root_acc"] > self.best["dev"]["root_acc"]
        record = {"epoch": epoch + 1, "train": train_metrics, "dev": dev, "best": improved}
        self.history.append(record)
        if improved:
            self._keep_best(epoch + 1, dev)
        logger.info("epoch %d/%d: train loss %.4f, train root acc %.2f%%, dev root acc %.2f%%%s, "
                    "%.0f trees/s", epoch + 1, self.config.epochs, train_metrics["loss"],
                    100 * train_metrics["root_acc"], 100 * dev["root_acc"],
                    " (best)" if improved else "", train_metrics["trees_per_s"])
        if self.out_dir is not None:
            save_checkpoint(cast(Path, self.checkpoint_path), self.model, self.vocab,
                            self.config.to_dict(), optimizer=self.optimizer, epoch=epoch + 1,
                            rng_state=rank_rng_state or get_rng_state(),
                            extra={"history": self.history, "best": self.best,
                                   "data_fingerprint": self.fingerprint})
            self._write_metrics(self._summary(None))
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, record)
        _barrier(group)

    def _keep_best(self, epoch: int, dev: dict) -> None:
        """``epoch`` (counted from 1) is the best on dev so far: ``best.pt``, or a copy of its
        weights in memory."""
        self.best = {"epoch": epoch, "dev": dev}
        if self.out_dir is not None:
            save_checkpoint(self.out_dir / "best.pt", self.model, self.vocab,
                            self.config.to_dict(), epoch=epoch,
                            extra={"dev": dev, "data_fingerprint": self.fingerprint})
        else:
            self.best_state = copy.deepcopy(self.model.state_dict())

    def train_epoch(self, epoch: int) -> dict:
        """One pass over the training trees. FloatingPointError (before the update, so the
        weights stay finite) if a batch's loss or gradient is NaN or infinite.

        Distributed (``group.active``, ``runner`` the ``DistributedDataParallel`` wrapper of
        ``model``): every rank walks the same global batches and takes every ``world_size``-th
        tree of each, from its rank on. Its loss is its trees' sum over the global batch size,
        times ``world_size`` since DDP averages the gradients over the ranks: the update is that
        of one process on the whole batch, however unevenly the trees fall.
        """
        self.model.train()
        trees = self.splits["train"]
        order = _epoch_order(len(trees), self.config.seed, epoch)
        batches = list(chunks(order, self.config.batch_size))
        epoch_loss_sum = 0.0
        root_correct = 0
        start = time.perf_counter()
        bar = track(self.progress, batches, len(batches),
                    f"epoch {epoch + 1}/{self.config.epochs}")
        for batch_number, batch_order in enumerate(bar, start=1):
            where = functools.partial(batch_name, epoch, batch_number, batches)
            loss_value, correct = self._step(batch_order, where)
            epoch_loss_sum += loss_value * len(batch_order)
            root_correct += correct
            if hasattr(bar, "set_postfix"):  # a tqdm bar
                bar.set_postfix(loss=f"{loss_value:.3f}")
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        root_correct = int(_all_sum([root_correct], self.group)[0])
        seconds = time.perf_counter() - start
        return {"loss": epoch_loss_sum / len(trees), "root_acc": root_correct / len(trees),
                "seconds": seconds, "trees_per_s": len(trees) / seconds}

    def _step(self, batch_order: np.ndarray, where: Callable[[], str]) -> tuple[float, int]:
        """One update on the global batch ``batch_order`` (this rank's share of it). Returns the
        batch's mean loss (over every rank) and this rank's correctly classified roots."""
        group = self.group
        share = batch_order[group.rank::group.world_size]
        # A rank with no tree in a short last batch must still join DDP's gradient all-reduce:
        # it runs the batch's first tree with weight 0.
        trees = [self.splits["train"][i] for i in (share if len(share) else batch_order[:1])]
        inputs = _collate(self.model, trees, self.vocab).to(self.device)
        loss_sum, root_logits = _loss_sum(self.model, inputs, self.config.phrase_loss,
                                          self.runner)
        loss = loss_sum / len(batch_order)
        if group.active:
            loss = loss * (group.world_size if len(share) else 0.0)
            local_sum = float(loss_sum.detach()) if len(share) else 0.0
            loss_value = _all_sum([local_sum], group)[0] / len(batch_order)
        else:
            loss_value = float(loss.detach())
        checked_loss(loss_value, where)
        guarded_update(self.model, self.optimizer, loss, where, self.config.clip_grad_norm,
                       self.config.embedding_lr)
        if not len(share):
            return loss_value, 0
        return loss_value, int((root_logits.argmax(dim=1) == _root_labels(inputs)).sum())

    # ---------------------------------------------------------------------------- the end
    def finish(self) -> TrainResult:
        """Rank 0 tests once, with the best weights on dev (the last weights if no epoch was
        run), and writes ``metrics.json`` and the learning curve; every rank gets its metrics.
        The model keeps its last weights."""
        if not self.group.is_main:
            return TrainResult(_broadcast(None, self.group), self.model, self.vocab)
        final_state = copy.deepcopy(self.model.state_dict())
        self._load_best_weights()
        test = evaluate(self.model, self.splits["test"], self.vocab, device=self.device,
                        progress=self.progress, description="test")
        logger.info("test (best dev epoch %s): root acc %.2f%%", self.best.get("epoch"),
                    100 * test["root_acc"])
        metrics = self._summary(test)
        self.model.load_state_dict(final_state)
        if self.out_dir is not None:
            self._write_metrics(metrics)
            if self.history:
                plot_learning_curve(self.history, self.out_dir / "learning_curve.png",
                                    title=f"{self.config.model} ({self.config.view})")
        return TrainResult(_broadcast(metrics, self.group), self.model, self.vocab)

    def _load_best_weights(self) -> None:
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        elif self.best and self.out_dir is not None:
            best_checkpoint = load_checkpoint(self.out_dir / "best.pt")
            if best_checkpoint.epoch != self.best["epoch"]:
                # e.g. a run killed after writing best.pt and before checkpoint.pt, resumed with
                # fewer epochs: that best.pt is of an epoch this history does not have.
                raise ValueError(f"{best_checkpoint.path}: holds epoch {best_checkpoint.epoch}, "
                                 f"but the best epoch on dev is {self.best['epoch']}; resume "
                                 "with more --epochs or start again")
            try:
                self.model.load_state_dict(best_checkpoint.state_dict)
            except RuntimeError as error:
                raise ValueError(f"{best_checkpoint.path}: does not fit this run's model: "
                                 f"{str(error).strip().splitlines()[0][:300]}") from None

    def _summary(self, test: Optional[dict]) -> dict:
        """The metrics of the run so far (``metrics.json``); ``test``: ``None`` until the end."""
        history = self.history
        train_seconds = sum(record["train"]["seconds"] for record in history)
        trained = sum(record["train"]["trees"] for record in history)
        return {"config": self.config.to_dict(), "model_class": type(self.model).__name__,
                "num_parameters": count_parameters(self.model), "vocab_size": len(self.vocab),
                "num_trees": {split: len(trees) for split, trees in self.splits.items()},
                "epochs_done": len(history), "history": history,
                "stopped_early": len(history) < self.config.epochs and test is not None,
                "best_epoch": self.best.get("epoch"), "best_dev": self.best.get("dev"),
                "train_trees_per_s": trained / train_seconds if train_seconds > 0 else None,
                "test": test,
                "inference_trees_per_s": test["trees_per_s"] if test else None}

    def _write_metrics(self, metrics: dict) -> None:
        # called with an out_dir only
        write_text(cast(Path, self.out_dir) / "metrics.json", json.dumps(metrics, indent=2) + "\n")
