"""Option types and the option groups that several commands share.

A type checks one value and raises :class:`argparse.ArgumentTypeError`, so that argparse names
the option in the error (``argument --seed: expected an integer in [0, 4294967295], got -1``).
Nothing here imports torch: only :func:`device_name` does, when a ``--device`` is parsed.
"""
from __future__ import annotations

import argparse
import math
import os
import textwrap
from typing import Any, Callable, Optional

from ..cpus import usable_cpus
from .defaults import DEFAULT_DATA, MAX_SEED, TRAIN_DEFAULTS

#: Bounds that keep absurd values from reaching torch (a segfault at 100,000 threads, an
#: allocation of terabytes): far above any sensible setting.
MAX_THREADS, MAX_SIZE, MAX_LAYERS = 1024, 65536, 256
FLOAT32_MAX = 3.4028234663852886e38


# ---------------------------------------------------------------------------- option types
def integer(text: str, low: int, high: Optional[int], expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < low or (high is not None and value > high):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
    return value


def positive_int(text: str) -> int:
    return integer(text, 1, None, "a positive integer")


def non_negative_int(text: str) -> int:
    return integer(text, 0, None, "an integer >= 0")


def worker_count(text: str) -> int:
    """A number of worker processes: 0 .. the CPUs this process may use (more only contend)."""
    cpus = usable_cpus()
    return integer(text, 0, cpus, f"an integer in [0, {cpus}] (the CPUs this process may use)")


def thread_count(text: str) -> int:
    return integer(text, 0, MAX_THREADS, f"an integer in [0, {MAX_THREADS}]")


def layer_size(text: str) -> int:
    return integer(text, 1, MAX_SIZE, f"an integer in [1, {MAX_SIZE}]")


def layer_count(text: str) -> int:
    return integer(text, 1, MAX_LAYERS, f"an integer in [1, {MAX_LAYERS}]")


def seed_value(text: str) -> int:
    return integer(text, 0, MAX_SEED, f"an integer in [0, {MAX_SEED}]")


def seed_list(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``: seeds, none repeated."""
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isascii() and part.isdigit() for part in parts):
        raise argparse.ArgumentTypeError(f"expected comma-separated seeds (integers in [0, "
                                         f"{MAX_SEED}]), e.g. 0,1,2,3,4; got {text!r}")
    seeds = [seed_value(part) for part in parts]
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"expected comma-separated seeds without repeats, "
                                         f"e.g. 0,1,2,3,4; got {text!r}")
    return seeds


def number(text: str, accept: Callable[[float], bool], expected: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not math.isfinite(value) or not accept(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
    return value


def positive_float(text: str) -> float:
    return number(text, lambda v: 0 < v <= FLOAT32_MAX, "a positive number")


def non_negative_float(text: str) -> float:
    return number(text, lambda v: 0 <= v <= FLOAT32_MAX, "a number >= 0")


def probability(text: str) -> float:
    return number(text, lambda v: 0 <= v <= 1, "a probability in [0, 1]")


def device_name(text: str) -> str:
    """A device name torch knows and this machine has ('auto' too); kept as written."""
    from ..training.config import resolve_device

    try:
        resolve_device(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def wrap(*paragraphs: str) -> str:
    """Paragraphs of a description or epilog (for ``RawDescriptionHelpFormatter``)."""
    return "\n\n".join(textwrap.fill(p, width=88) for p in paragraphs)


# --------------------------------------------------------------- inference: eval, predict ...
def add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", type=device_name, default="cpu",
                        help="'cpu', 'cuda', 'cuda:1', ... (default: %(default)s)")


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=thread_count, default=1,
                        help="torch CPU threads, 0: torch's default (default: %(default)s)")


def add_eval_options(parser: argparse.ArgumentParser, items: str) -> None:
    """The options ``eval`` and ``sick-eval`` share; ``items`` are what a batch holds."""
    add_device_option(parser)
    parser.add_argument("--batch-size", type=positive_int, default=256,
                        help=f"{items} per forward pass (default: %(default)s)")
    add_threads_option(parser)
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


# ------------------------------------------------------- training: train, compare, sick-train
def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--embed-dim", type=layer_size, default=TRAIN_DEFAULTS.embed_dim,
                       help="word vector size (default: %(default)s)")
    group.add_argument("--hidden-size", type=layer_size, default=TRAIN_DEFAULTS.hidden_size,
                       help="size of the (Tree-)LSTM state h and c (default: %(default)s)")
    group.add_argument("--num-layers", type=layer_count, default=TRAIN_DEFAULTS.num_layers,
                       help="stacked (Tree-)LSTM layers (default: %(default)s)")
    group.add_argument("--cell", choices=("nary", "childsum"), default=TRAIN_DEFAULTS.cell,
                       help="Tree-LSTM cell: 'nary' (arity 2, ordered children: the binary "
                            "constituency Tree-LSTM of Tai et al.) or 'childsum' "
                            "(default: %(default)s)")
    group.add_argument("--backend", choices=("native", "dgl"), default=TRAIN_DEFAULTS.backend,
                       help="Tree-LSTM executor: 'native' (level-scheduled torch) or 'dgl' "
                            "(needs the dgl package) (default: %(default)s)")
    group.add_argument("--dropout", type=probability, default=TRAIN_DEFAULTS.dropout,
                       help="dropout before the output layer, and between layers "
                            "(default: %(default)s)")
    group.add_argument("--embeddings", metavar="FILE", default=None,
                       help="word-vector text file (GloVe, or word2vec text with a header) to "
                            "initialise the embedding; its dimension must equal --embed-dim "
                            "(default: random initialisation)")
    group.add_argument("--freeze-embeddings", action="store_true",
                       help="do not update the embedding during training")


def add_budget_options(parser: Any, *, epochs: int, seed: int, items: str, seeded: str) -> None:
    """``--epochs``, ``--seed``, ``--max-train`` of a training command (``parser``: a parser or
    an argument group): how long it trains on how much of the training ``items``, and the seed
    of ``seeded``."""
    parser.add_argument("--epochs", type=positive_int, default=epochs,
                        help=f"passes over the training {items} (default: %(default)s)")
    parser.add_argument("--seed", type=seed_value, default=seed,
                        help=f"seed of {seeded} (default: %(default)s)")
    parser.add_argument("--max-train", type=positive_int, metavar="N", default=None,
                        help=f"use only the first N training {items}, for quick runs (default: "
                             "all)")


def add_training_options(parser: argparse.ArgumentParser, epochs: int) -> None:
    group = parser.add_argument_group("training (defaults: Tai et al. 2015)")
    group.add_argument("--data", metavar="DIR", default=DEFAULT_DATA, type=os.path.abspath,
                       help="directory with train.txt, dev.txt and test.txt, one SST-style "
                            "bracketed tree per line (default: the bundled synthetic treebank, "
                            "treelstm/datasets/sentiment)")
    add_budget_options(group, epochs=epochs, seed=TRAIN_DEFAULTS.seed, items="trees",
                       seeded="python, numpy and torch and of the data order")
    group.add_argument("--lr", type=positive_float, default=TRAIN_DEFAULTS.lr,
                       help="AdaGrad learning rate (default: %(default)s)")
    group.add_argument("--weight-decay", type=non_negative_float,
                       default=TRAIN_DEFAULTS.weight_decay,
                       help="L2 weight decay (default: %(default)s)")
    group.add_argument("--embedding-lr", type=positive_float, metavar="LR",
                       default=TRAIN_DEFAULTS.embedding_lr,
                       help="update the embedding by plain SGD at LR, without weight decay, as "
                            "Tai et al.'s code (0.1 there) (default: the embedding is one of "
                            "AdaGrad's parameters, at --lr)")
    group.add_argument("--patience", type=positive_int, metavar="N",
                       default=TRAIN_DEFAULTS.patience,
                       help="early stopping: end the run after N epochs in a row without a "
                            "better dev root accuracy; the test uses the best epoch either way "
                            "(default: run every epoch)")
    group.add_argument("--batch-size", type=positive_int, default=TRAIN_DEFAULTS.batch_size,
                       help="trees per update (default: %(default)s)")
    group.add_argument("--clip-grad-norm", type=positive_float, metavar="MAX",
                       default=TRAIN_DEFAULTS.clip_grad_norm,
                       help="rescale the gradients before each update so that their total 2-norm "
                            "is at most MAX (torch.nn.utils.clip_grad_norm_); a NaN or infinite "
                            "loss or gradient stops training either way (default: no clipping, "
                            "as Tai et al.)")


def add_run_options(parser: argparse.ArgumentParser, out: str) -> None:
    group = parser.add_argument_group("run")
    group.add_argument("--out", metavar="DIR", default=out,
                       help="output directory (default: %(default)s)")
    group.add_argument("--device", type=device_name, default=TRAIN_DEFAULTS.device,
                       help="'cpu', 'cuda', 'cuda:1', ... or 'auto' (CUDA when available) "
                            "(default: %(default)s)")
    group.add_argument("--threads", type=thread_count, default=1,
                       help="torch CPU threads; batches of small trees gain little from more, "
                            "and they slow down on a busy machine. 0: torch's default "
                            "(default: %(default)s)")
    group.add_argument("--quiet", action="store_true",
                       help="no progress bars and no per-epoch log (progress bars are also off "
                            "when stderr is not a terminal)")
