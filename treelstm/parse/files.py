"""A parser's files: what :func:`~treelstm.parse.train_parser` writes (:data:`PARSER_FILES`),
reading them back (:func:`read_parser`, :func:`load_parser`), and whether a run in a folder
may be resumed with the current settings and trees."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import torch

from ..checks import is_int, is_number
from ..data import Vocab
from ..files import PathLike
from .model import _MODEL_CLASSES, SpanParser
from .settings import ParserSettings

logger = logging.getLogger(__package__)  # "treelstm.parse", as before the split into modules

#: What :func:`train_parser` writes to its ``out_dir``.
PARSER_FILES = ("parser.pt", "checkpoint.pt", "metrics.json")


@dataclass
class ParserFile:
    """The content of a file :func:`train_parser` writes, as :func:`read_parser` reads it."""

    path: str
    parser: SpanParser
    settings: ParserSettings
    epoch: Optional[int]
    extra: dict

    @property
    def vocab(self) -> Vocab:
        return self.parser.vocab


def read_parser(path: PathLike, map_location: Union[str, torch.device] = "cpu") -> ParserFile:
    """Read ``parser.pt`` (or ``checkpoint.pt``) as :func:`~treelstm.training.load_checkpoint`
    reads a classifier: ``torch.load(weights_only=True)`` (never runs code from the file), the
    SHA-256 digest, every field's type, the vocabulary against the weights; the parser is in
    eval mode on ``map_location``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: naming the file, if it is truncated, corrupt, not a treelstm file, or holds
            another model than a :class:`SpanParser` or settings that do not fit it.
    """
    from ..training.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(path, map_location=map_location, model_classes=_MODEL_CLASSES)
    name = checkpoint.path
    try:
        settings = ParserSettings.from_dict(checkpoint.config)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}: damaged parser settings: {error}") from None
    model_config = dict(checkpoint.model_config)
    model_config.pop("vocab_size", None)  # load_checkpoint checked it against the vocabulary
    try:
        parser = SpanParser(checkpoint.vocab, **model_config)
        parser.load_state_dict(checkpoint.state_dict)
    except (TypeError, ValueError, RuntimeError) as error:
        raise ValueError(f"{name}: the stored weights do not fit a SpanParser (or its "
                         f"settings): {type(error).__name__}: {error}") from None
    if model_config != settings.model_kwargs():
        raise ValueError(f"{name}: the model's settings {model_config} differ from the training "
                         f"settings {settings.model_kwargs()}: a damaged or edited file")
    parser.to(map_location).eval()
    return ParserFile(name, parser, settings, checkpoint.epoch, checkpoint.extra)


def load_parser(path: PathLike, map_location: Union[str, torch.device] = "cpu"
                ) -> tuple[SpanParser, Vocab]:
    """``(parser, vocab)`` from a file :func:`train_parser` wrote (checked as
    :func:`read_parser` checks it); the parser is in eval mode on ``map_location``."""
    loaded = read_parser(path, map_location)
    return loaded.parser, loaded.vocab


def _load_resumable(out_dir: Path, config: ParserSettings, fingerprints: dict):
    """``out_dir/checkpoint.pt`` checked against this run, or ``None`` if there is none."""
    from ..training.checkpoint import load_checkpoint
    from ..training.resume import _check_rng_state

    path = out_dir / "checkpoint.pt"
    if not path.is_file():
        others = [name for name in ("parser.pt", "metrics.json") if (out_dir / name).exists()]
        if path.exists() or others:
            raise ValueError(f"{path}: cannot resume: " + (
                "not a file" if path.exists() else
                f"missing, but {out_dir} holds {' and '.join(others)} of a run") +
                "; use --overwrite to start again and replace it, or another --out")
        logger.info("%s not found: starting from scratch", path)
        return None
    checkpoint = load_checkpoint(path, model_classes=_MODEL_CLASSES)
    _check_same_run(checkpoint, config, fingerprints)
    if checkpoint.optimizer is None or checkpoint.rng_state is None or checkpoint.epoch is None:
        raise ValueError(f"{path}: cannot resume: the checkpoint holds no optimizer / RNG state "
                         "/ epoch")
    _check_rng_state(checkpoint)
    history, best = checkpoint.extra.get("history"), checkpoint.extra.get("best")
    if not isinstance(history, list) or len(history) != checkpoint.epoch or \
            not all(isinstance(record, dict) for record in history) or \
            not isinstance(best, dict) or \
            (history and not (is_int(best.get("epoch")) and 1 <= best["epoch"] <= len(history)
                              and isinstance(best.get("dev"), dict)
                              and is_number(best["dev"].get("f1")))):
        raise ValueError(f"{path}: cannot resume: its history and best epoch are not those "
                         "train_parser writes")
    if checkpoint.epoch > config.epochs:
        raise ValueError(f"{path}: cannot resume: it has {checkpoint.epoch} epochs done, more "
                         f"than --epochs {config.epochs}; raise --epochs to train on")
    if history:
        best_path = out_dir / "parser.pt"
        if not best_path.is_file():
            raise ValueError(f"{best_path}: missing; cannot resume without it")
        best_file = load_checkpoint(best_path, model_classes=_MODEL_CLASSES)
        _check_same_run(best_file, config, fingerprints)
        # The best epoch so far, or the next one (killed between parser.pt and checkpoint.pt).
        if best_file.epoch not in (best["epoch"], checkpoint.epoch + 1):
            raise ValueError(f"{best_path}: holds epoch {best_file.epoch!r}, but {path} has its "
                             f"best dev epoch at {best['epoch']}: not this run's parser.pt; "
                             "cannot resume")
    return checkpoint


def _check_same_run(checkpoint, config: ParserSettings, fingerprints: dict) -> None:
    """ValueError naming the file unless it was written with ``config`` (but ``epochs`` and
    ``data``) on the same trees."""
    saved = checkpoint.config
    current = config.to_dict()
    for key, value in current.items():
        if key in ("epochs", "data"):
            continue
        if saved.get(key, "<missing>") != value:
            raise ValueError(f"{checkpoint.path}: cannot resume: the checkpoint has "
                             f"{key}={saved.get(key, '<missing>')!r}, this run {key}={value!r}; "
                             "only epochs may change")
    saved_fingerprints = checkpoint.extra.get("fingerprints")
    for split, fingerprint in fingerprints.items():
        if not isinstance(saved_fingerprints, dict) or saved_fingerprints.get(split) != fingerprint:
            raise ValueError(f"{checkpoint.path}: cannot resume: the {split} trees differ from "
                             "those the checkpoint was trained on")

