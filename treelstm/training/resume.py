"""May this ``out_dir``'s checkpoint resume this run? The same settings (but ``epochs``,
``device``, ``backend``), the same training trees, and a history and ``best.pt`` as
:func:`~treelstm.training.train` writes them; ValueError naming the file otherwise."""
from __future__ import annotations

import dataclasses
import hashlib
import logging
from pathlib import Path
from typing import Optional, Sequence

from ..checks import is_int, is_number
from ..data import SentimentTree, Vocab
from .checkpoint import Checkpoint, load_checkpoint
from .config import TrainConfig

logger = logging.getLogger(__package__)  # "treelstm.training", as before the split into modules

# Settings that may change when a run is resumed (the rest must match the checkpoint).
_RESUMABLE_CHANGES = ("epochs", "device", "backend")


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
    if checkpoint.epoch > config.epochs:
        raise ValueError(f"{checkpoint_path}: cannot resume: it has {checkpoint.epoch} epochs "
                         f"done, more than --epochs {config.epochs}; raise --epochs to train on "
                         "(or evaluate best.pt with 'eval')")
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
                and all(is_number(record["train"].get(key))
                        for key in ("loss", "root_acc", "seconds", "trees"))
                and is_number(record["dev"].get("root_acc"))):
            fail(f"history record {number} is not an epoch record ({{'epoch': {number}, "
                 "'train': {...}, 'dev': {...}})")
    if not isinstance(best, dict):
        fail(f"'best' should be a dict; got {type(best).__name__}")
    if history and not (is_int(best.get("epoch"))
                        and 1 <= best["epoch"] <= len(history)
                        and isinstance(best.get("dev"), dict)
                        and is_number(best["dev"].get("root_acc"))):
        fail(f"'best' should name an epoch in 1..{len(history)} and its dev metrics; got "
             f"{best!r:.80}")


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
