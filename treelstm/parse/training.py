"""Training a parser (:func:`train_parser`): the structured hinge loss with cost-augmented
decoding, Adam, the best dev epoch kept, checkpoints after every epoch that resume exactly."""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple, Optional, Sequence, Union, cast

import numpy as np
import torch
from torch import Tensor, nn

from ..data import SentimentTree, Vocab
from ..files import PathLike, check_no_run, remove_stale_temp_files, write_text
from ..progress import Progress, track
from .cky import Span, cky
from .files import PARSER_FILES, _load_resumable, read_parser
from .model import _MODEL_CLASSES, SpanParser, _valid_spans
from .scores import _binary_gold_spans, evaluate_parser
from .settings import ParserSettings

logger = logging.getLogger(__package__)  # "treelstm.parse", as before the split into modules

_SORT_CHUNK = 50  # training batches are cut from length-sorted chunks of this many batches


class ParserTrainResult(NamedTuple):
    """What :func:`train_parser` returns: the parser with the best dev weights (eval mode), the
    per-epoch history and the best epoch ``{"epoch", "dev"}``."""

    parser: SpanParser
    history: list[dict]
    best: dict


def train_parser(train_trees: Sequence[SentimentTree], dev_trees: Sequence[SentimentTree],
                 out_dir: Optional[PathLike] = None, epochs: int = 10, seed: int = 0, *,
                 resume: bool = False, overwrite: bool = False,
                 progress: Union[bool, Progress] = False,
                 device: Union[str, torch.device] = "cpu",
                 on_epoch_end: Optional[Callable[[int, dict], None]] = None,
                 **settings: Any) -> ParserTrainResult:
    """Train a :class:`SpanParser` on ``train_trees`` (structured hinge loss, Adam), keep the
    epoch with the best dev bracket F1.

    Each epoch visits the trees in an order that depends on (seed, epoch) only (batches of
    similar lengths, shuffled). With ``out_dir``, atomically (temporary file + rename):
    ``parser.pt`` whenever dev F1 improves, then ``checkpoint.pt`` (weights, optimizer, epoch,
    RNG states, history) and ``metrics.json`` after every epoch.

    Args:
        train_trees, dev_trees: the trees (labels unused; unary chains are collapsed and wider
            nodes right-binarised for training, and dev is scored against the trees as given).
        out_dir: where the files go; ``None`` keeps everything in memory.
        epochs, seed: passes over the training trees; the seed of the weights, the order and
            the dropout masks.
        resume: continue from ``out_dir/checkpoint.pt`` if it exists; the result is the same,
            bit for bit on one device and thread count, as an uninterrupted run. ``epochs`` may
            be raised to train longer; every other setting and the training trees must match.
        overwrite: start afresh in an ``out_dir`` that holds a run, replacing its files.
        progress: ``True`` for tqdm bars, or ``progress(iterable, total, description)``.
        device: where to train (``"cpu"``, ``"cuda"``, ``"auto"``).
        on_epoch_end: ``on_epoch_end(epoch, record)`` after each epoch's files are written.
        settings: the other fields of :class:`ParserSettings` (``embed_dim``, ``lr``, ...).

    Raises:
        FileExistsError: ``out_dir`` holds a run and neither ``resume`` nor ``overwrite``.
        ValueError: a bad setting, no trees, or (``resume``) a checkpoint that is damaged or
            was written with other settings or training trees.
        FloatingPointError: a NaN or infinite loss (nothing of that epoch is written).
    """
    from ..training.config import resolve_device

    config = ParserSettings(epochs=epochs, seed=seed, **settings)
    config.validate()
    if not train_trees or not dev_trees:
        raise ValueError(f"train_parser: {len(train_trees)} training and {len(dev_trees)} dev "
                         "trees; expected at least one of each")
    out_path = Path(out_dir) if out_dir is not None else None
    if resume and out_path is None:
        raise ValueError("train_parser: resume=True needs an out_dir holding checkpoint.pt")
    device = torch.device(device) if isinstance(device, torch.device) else resolve_device(device)
    run = _ParserRun.start(config, list(train_trees), list(dev_trees), out_path, device,
                           progress, resume, overwrite)
    for epoch in range(run.start_epoch, config.epochs):
        record = run.run_epoch(epoch)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, record)
    return run.finish()


@dataclass
class _ParserRun:
    """One training run: what changes together (parser, optimizer, history, best epoch) and
    what it trains on; the steps of :func:`train_parser` are its methods."""

    config: ParserSettings
    train_trees: list[SentimentTree]
    dev_trees: list[SentimentTree]
    out_dir: Optional[Path]
    device: torch.device
    progress: Union[bool, Progress]
    parser: SpanParser
    optimizer: torch.optim.Optimizer
    fingerprints: dict
    train_ids: list[list[int]]
    train_gold: list[list[Span]]
    history: list[dict] = dataclasses.field(default_factory=list)
    best: dict = dataclasses.field(default_factory=dict)
    best_state: Optional[dict] = None  # without out_dir: the best epoch's weights
    start_epoch: int = 0

    @classmethod
    def start(cls, config: ParserSettings, train_trees: list[SentimentTree],
              dev_trees: list[SentimentTree], out_dir: Optional[Path], device: torch.device,
              progress: Union[bool, Progress], resume: bool, overwrite: bool) -> "_ParserRun":
        from ..training.resume import _data_fingerprint
        from ..training.seed import seed_everything

        checkpoint = None
        if out_dir is not None:
            if not resume and not overwrite:
                check_no_run(out_dir, PARSER_FILES)
            for stale in remove_stale_temp_files(out_dir, PARSER_FILES):
                logger.info("removed %s, left by a run killed while writing", stale)
        fingerprints = {"train": _data_fingerprint(train_trees),
                        "dev": _data_fingerprint(dev_trees)}
        if resume:  # train_parser refuses resume without an out_dir
            checkpoint = _load_resumable(cast(Path, out_dir), config, fingerprints)
        seed_everything(config.seed)
        vocab = checkpoint.vocab if checkpoint is not None else \
            Vocab.build((tree.tokens for tree in train_trees), lower=config.lower)
        parser = SpanParser(vocab, **config.model_kwargs()).to(device)
        optimizer = torch.optim.Adam(parser.parameters(), lr=config.lr)
        run = cls(config, train_trees, dev_trees, out_dir, device, progress, parser, optimizer,
                  fingerprints, train_ids=[vocab.encode(tree.tokens) for tree in train_trees],
                  train_gold=[_binary_gold_spans(tree) for tree in train_trees])
        if checkpoint is not None:
            run._restore(checkpoint)
        return run

    def _restore(self, checkpoint) -> None:
        from ..training.seed import set_rng_state

        try:
            self.parser.load_state_dict(checkpoint.state_dict)
            self.optimizer.load_state_dict(checkpoint.optimizer)
            for group in self.optimizer.param_groups:
                if group.get("lr") != self.config.lr:
                    raise ValueError(f"the optimizer state has lr={group.get('lr')!r}, the "
                                     f"settings lr={self.config.lr!r}")
            set_rng_state(checkpoint.rng_state)
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as error:
            reason = (str(error).strip().splitlines() or [""])[0]
            raise ValueError(f"{checkpoint.path}: cannot resume: its weights, optimizer or RNG "
                             f"state do not fit this run's settings: {type(error).__name__}: "
                             f"{reason[:300]}") from None
        self.start_epoch = checkpoint.epoch
        self.history = checkpoint.extra["history"]
        self.best = checkpoint.extra["best"]
        logger.info("resuming %s after epoch %d", checkpoint.path, self.start_epoch)

    # ------------------------------------------------------------------------- an epoch
    def run_epoch(self, epoch: int) -> dict:
        from ..training.checkpoint import save_checkpoint
        from ..training.seed import get_rng_state

        train_metrics = self.train_epoch(epoch)
        dev = evaluate_parser(self.parser, self.dev_trees)
        improved = not self.best or dev["f1"] > self.best["dev"]["f1"]
        record = {"epoch": epoch + 1, "train": train_metrics, "dev": dev, "best": improved}
        self.history.append(record)
        if improved:
            self.best = {"epoch": epoch + 1, "dev": dev}
            if self.out_dir is not None:
                save_checkpoint(self.out_dir / "parser.pt", self.parser, self.parser.vocab,
                                self.config.to_dict(), epoch=epoch + 1,
                                extra={"dev": dev, "fingerprints": self.fingerprints},
                                model_classes=_MODEL_CLASSES)
            else:
                self.best_state = {k: v.detach().clone() for k, v in
                                   self.parser.state_dict().items()}
        logger.info("epoch %d/%d: train loss %.4f, dev F1 %.2f%%%s, %.0f sentences/s",
                    epoch + 1, self.config.epochs, train_metrics["loss"], 100 * dev["f1"],
                    " (best)" if improved else "", train_metrics["sentences_per_s"])
        if self.out_dir is not None:
            save_checkpoint(self.out_dir / "checkpoint.pt", self.parser, self.parser.vocab,
                            self.config.to_dict(), optimizer=self.optimizer, epoch=epoch + 1,
                            rng_state=get_rng_state(),
                            extra={"history": self.history, "best": self.best,
                                   "fingerprints": self.fingerprints},
                            model_classes=_MODEL_CLASSES)
            write_text(self.out_dir / "metrics.json", json.dumps(
                {"settings": self.config.to_dict(), "history": self.history, "best": self.best},
                indent=2) + "\n")
        return record

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """The batches of ``epoch``, a function of (seed, epoch) only: a shuffled order, cut
        into chunks sorted by length (little padding), cut into batches, the batches shuffled."""
        rng = np.random.default_rng([self.config.seed, epoch])
        order = rng.permutation(len(self.train_trees))
        lengths = np.array([len(ids) for ids in self.train_ids])
        size = self.config.batch_size
        batches: list[np.ndarray] = []
        for chunk_start in range(0, len(order), size * _SORT_CHUNK):
            chunk = order[chunk_start:chunk_start + size * _SORT_CHUNK]
            chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
            batches.extend(chunk[i:i + size] for i in range(0, len(chunk), size))
        return [batches[i] for i in rng.permutation(len(batches))]

    def train_epoch(self, epoch: int) -> dict:
        parser, config = self.parser, self.config
        parser.train()
        batches = self.epoch_batches(epoch)
        total_loss, start = 0.0, time.perf_counter()
        for batch in track(self.progress, batches, len(batches),
                           f"epoch {epoch + 1}/{config.epochs}"):
            loss = self.hinge_loss(batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"epoch {epoch + 1}: the loss is {loss.item()} on "
                                         f"training trees {batch.tolist()[:8]} (try a smaller "
                                         "lr); nothing of this epoch was written")
            self.optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(parser.parameters(), config.clip_grad_norm)
            self.optimizer.step()
            total_loss += loss.item() * len(batch)
        seconds = time.perf_counter() - start
        return {"loss": total_loss / len(self.train_trees), "seconds": seconds,
                "sentences_per_s": len(self.train_trees) / seconds if seconds else math.inf}

    def hinge_loss(self, batch: np.ndarray) -> Tensor:
        """Mean over the batch of ``max_T [s(T) + D(T)] - s(T*)`` (cost-augmented CKY)."""
        ids = [self.train_ids[i] for i in batch]
        lengths = torch.tensor([len(row) for row in ids], device=self.device)
        token_ids = torch.zeros(len(ids), int(lengths.max()), dtype=torch.long)
        for row, values in enumerate(ids):
            token_ids[row, :len(values)] = torch.tensor(values)
        token_ids = token_ids.to(self.device)
        if self.config.word_dropout > 0:
            dropped = torch.rand(token_ids.shape, device=self.device) < self.config.word_dropout
            token_ids = token_ids.masked_fill(dropped & (token_ids != Vocab.pad_index),
                                              Vocab.unk_index)
        scores = self.parser(token_ids, lengths)
        gold = _span_mask([self.train_gold[i] for i in batch], scores)
        cost = _valid_spans(scores.shape[1], lengths).to(scores.dtype) - gold  # Hamming
        predicted_splits = cky(scores.detach() + cost, lengths).splits
        predicted = _span_mask([_split_spans(splits, n) for splits, n in
                                zip(predicted_splits, lengths.tolist())], scores)
        margins = ((predicted - gold) * scores + predicted * cost).sum(dim=(1, 2))
        return margins.clamp_min(0).mean()

    # ------------------------------------------------------------------------------ end
    def finish(self) -> ParserTrainResult:
        if self.out_dir is not None:
            parser = read_parser(self.out_dir / "parser.pt", map_location=self.device).parser
        else:  # the first epoch is always the best so far, and epochs >= 1
            self.parser.load_state_dict(cast(dict, self.best_state))
            parser = self.parser
        parser.eval()
        return ParserTrainResult(parser, self.history, self.best)


def _split_spans(splits: Mapping[Span, int], length: int) -> list[Span]:
    """Every span of the tree ``splits`` describes: the split ones and the words."""
    return list(splits) + [(k, k + 1) for k in range(length)]


def _span_mask(spans: Sequence[Sequence[Span]], like: Tensor) -> Tensor:
    """``[B, F, F]`` (``like``'s shape and device): 1 at each sentence's spans, else 0."""
    rows = [row for row, sentence in enumerate(spans) for _ in sentence]
    starts = [start for sentence in spans for start, _ in sentence]
    ends = [end for sentence in spans for _, end in sentence]
    mask = torch.zeros_like(like)
    mask[torch.tensor(rows), torch.tensor(starts), torch.tensor(ends)] = 1.0
    return mask
