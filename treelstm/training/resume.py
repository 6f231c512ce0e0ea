"""Opening a run's ``out_dir``: refuse one that holds a run (unless resuming or overwriting),
clear what a killed write left, and decide whether its checkpoint may resume this run: the same
settings (but ``epochs``, ``device``, ``backend``, ``patience``), the same training trees, and a
history and ``best.pt`` as :func:`~treelstm.training.train` writes them; ValueError naming the
file otherwise."""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
from pathlib import Path
from typing import NoReturn, Optional, Sequence, cast

import torch

from ..checks import is_int, is_number
from ..data import SentimentTree, Vocab
from ..files import check_no_run, remove_stale_temp_files
from .checkpoint import Checkpoint, load_checkpoint
from .config import TrainConfig
from .distributed import _broadcast, _Group

logger = logging.getLogger(__package__)  # "treelstm.training", as before the split into modules

# What train() writes to its out_dir.
_OUTPUT_FILES = ("checkpoint.pt", "best.pt", "metrics.json", "learning_curve.png")
# The files that mean an out_dir holds a run.
_RUN_FILES = ("checkpoint.pt", "best.pt", "metrics.json")

# Settings that may change when a run is resumed (the rest must match the checkpoint).
_RESUMABLE_CHANGES = ("epochs", "device", "backend", "patience")


def _load_resumable(out_dir: Path, config: TrainConfig,
                    train_trees: Sequence[SentimentTree]) -> Optional[Checkpoint]:
    """``out_dir/checkpoint.pt`` checked against this run, or ``None`` if there is none."""
    checkpoint_path = out_dir / "checkpoint.pt"
    if not checkpoint_path.is_file():
        others = [name for name in ("best.pt", "metrics.json") if (out_dir / name).exists()]
        if checkpoint_path.exists() or others:
            raise ValueError(f"{checkpoint_path}: cannot resume: " + (
                "not a file" if checkpoint_path.exists() else
                f"missing, but {out_dir} holds {' and '.join(others)} of a run") +
                "; use --overwrite to start again and replace it, or another --out")
        logger.info("%s not found: starting from scratch", checkpoint_path)
        return None
    checkpoint = load_checkpoint(checkpoint_path)
    _check_resumable(checkpoint.config, config, str(checkpoint_path))
    if checkpoint.optimizer is None or checkpoint.rng_state is None or checkpoint.epoch is None:
        raise ValueError(f"{checkpoint_path}: cannot resume: the checkpoint holds no "
                         "optimizer / RNG state / epoch")
    _check_same_data(checkpoint, train_trees)
    _check_run_record(checkpoint)
    _check_rng_state(checkpoint)
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



def _is_fraction(value) -> bool:
    """A number in [0, 1] (an accuracy; not NaN)."""
    return is_number(value) and 0 <= value <= 1


def _check_rng_state(checkpoint: Checkpoint) -> None:
    """ValueError naming the file unless ``rng_state`` (and each rank's) has the fields and
    shapes :func:`~treelstm.training.get_rng_state` writes."""
    state = cast(dict, checkpoint.rng_state)  # not None: checked by the callers
    ranks = state.get("ranks")
    for one in [state] + (ranks if isinstance(ranks, list) else []):
        problem = _rng_problem(one)
        if problem:
            raise ValueError(f"{checkpoint.path}: cannot resume: its RNG state is not one "
                             f"get_rng_state writes: {problem}")


def _rng_problem(state) -> str:
    if not isinstance(state, dict):
        return f"a {type(state).__name__}, not a dict"
    shapes = {"python": (625,), "numpy": (624,)}
    for key, shape in shapes.items():
        value = state.get(key)
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape or \
                value.dtype != torch.int64 or bool(((value < 0) | (value >= 2 ** 32)).any()):
            return f"{key!r} should be {shape[0]} 32-bit words"
    if not isinstance(state.get("torch"), torch.Tensor) or state["torch"].dtype != torch.uint8:
        return "'torch' should be a byte tensor"
    if not is_int(state.get("numpy_pos")) or not 0 <= state["numpy_pos"] <= 624:
        return "'numpy_pos' should be an integer in [0, 624]"
    if not is_int(state.get("python_version")) or state.get("numpy_has_gauss") not in (0, 1):
        return "'python_version' / 'numpy_has_gauss' should be integers"
    if not is_number(state.get("numpy_gauss")) or not (
            state.get("python_gauss") is None or is_number(state.get("python_gauss"))):
        return "'numpy_gauss' / 'python_gauss' should be numbers"
    return ""


def _check_run_record(checkpoint: Checkpoint) -> None:
    """ValueError naming the file unless ``extra`` holds a history of ``epoch`` records and the
    best of them, as :func:`train` writes them (a crafted file can carry a valid digest)."""
    def fail(what: str) -> NoReturn:
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
                and all(math.isfinite(record["train"][key]) for key in ("loss", "seconds"))
                and _is_fraction(record["train"]["root_acc"])
                and _is_fraction(record["dev"].get("root_acc"))):
            fail(f"history record {number} is not an epoch record ({{'epoch': {number}, "
                 "'train': {...}, 'dev': {...}})")
    if not isinstance(best, dict):
        fail(f"'best' should be a dict; got {type(best).__name__}")
    if history and not (is_int(best.get("epoch"))
                        and 1 <= best["epoch"] <= len(history)
                        and isinstance(best.get("dev"), dict)
                        and _is_fraction(best["dev"].get("root_acc"))):
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


def _open_out_dir(config: TrainConfig, out_dir: Optional[Path], resume: bool, overwrite: bool,
                  group: _Group, train_trees: Sequence[SentimentTree]) -> Optional[Checkpoint]:
    """The checkpoint to resume from (``None``: start afresh), after refusing an ``out_dir``
    that holds a run (unless ``resume`` or ``overwrite``) and removing what a killed write left.
    Rank 0 alone reads ``out_dir``; the other ranks get its checkpoint, or its error."""
    checkpoint, problem = None, None
    if group.is_main:
        try:
            if out_dir is not None and not resume and not overwrite:
                check_no_run(out_dir, _RUN_FILES)
            if out_dir is not None:
                for stale in remove_stale_temp_files(out_dir, _OUTPUT_FILES):
                    logger.info("removed %s, left by a run killed while writing", stale)
            if resume:  # train() refuses resume without an out_dir
                checkpoint = _load_resumable(cast(Path, out_dir), config, train_trees)
        except (ValueError, OSError) as error:
            if not group.active:
                raise
            problem = error
    checkpoint, problem = _broadcast((checkpoint, problem), group)
    if problem is not None:
        raise problem
    return checkpoint
