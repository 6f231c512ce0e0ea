"""Command line: ``python -m treelstm {train,eval,compare,predict,sick-train,sick-eval} ...``
(``--help`` on each).

The commands are thin wrappers around :mod:`treelstm.training` (``predict``: around
:mod:`treelstm.predict`; ``sick-*``: around :mod:`treelstm.sick`); ``examples/train_sst.py``,
``examples/compare.py`` and ``examples/train_sick.py`` call :func:`train_command`,
:func:`compare_command` and :func:`sick_train_command`.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import sys
import textwrap
from typing import Optional, Sequence

from .training import (COMPARE_ROWS, DEFAULT_COMPARE_ROWS, DEFAULT_DATA, MAX_SEED, TrainConfig,
                       compare, load_checkpoint, load_splits, resolve_device, train)

_DEFAULTS = TrainConfig()
_COMPARE_EPOCHS = 8  # measured: the 3 default rows take about 75 s on one free CPU core


# Option types: argparse names the option in the error ("argument --seed: expected ...").
def _integer(text: str, low: int, high: Optional[int], expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < low or (high is not None and value > high):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
    return value


def _positive_int(text: str) -> int:
    return _integer(text, 1, None, "a positive integer")


def _non_negative_int(text: str) -> int:
    return _integer(text, 0, None, "an integer >= 0")


#: Bounds that keep absurd values from reaching torch (a segfault at 100,000 threads, an
#: allocation of terabytes): far above any sensible setting.
MAX_THREADS, MAX_SIZE, MAX_LAYERS = 1024, 65536, 256
_FLOAT32_MAX = 3.4028234663852886e38


def _threads(text: str) -> int:
    return _integer(text, 0, MAX_THREADS, f"an integer in [0, {MAX_THREADS}]")


def _size(text: str) -> int:
    return _integer(text, 1, MAX_SIZE, f"an integer in [1, {MAX_SIZE}]")


def _layers(text: str) -> int:
    return _integer(text, 1, MAX_LAYERS, f"an integer in [1, {MAX_LAYERS}]")


def _seed(text: str) -> int:
    return _integer(text, 0, MAX_SEED, f"an integer in [0, {MAX_SEED}]")


def _number(text: str, accept, expected: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not math.isfinite(value) or not accept(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
    return value


def _positive_float(text: str) -> float:
    return _number(text, lambda v: 0 < v <= _FLOAT32_MAX, "a positive number")


def _non_negative_float(text: str) -> float:
    return _number(text, lambda v: 0 <= v <= _FLOAT32_MAX, "a number >= 0")


def _probability(text: str) -> float:
    return _number(text, lambda v: 0 <= v <= 1, "a probability in [0, 1]")


def _device(text: str) -> str:
    """A device name torch knows and this machine has ('auto' too); kept as written."""
    try:
        resolve_device(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--embed-dim", type=_size, default=_DEFAULTS.embed_dim,
                       help="word vector size (default: %(default)s)")
    group.add_argument("--hidden-size", type=_size, default=_DEFAULTS.hidden_size,
                       help="size of the (Tree-)LSTM state h and c (default: %(default)s)")
    group.add_argument("--num-layers", type=_layers, default=_DEFAULTS.num_layers,
                       help="stacked (Tree-)LSTM layers (default: %(default)s)")
    group.add_argument("--cell", choices=("nary", "childsum"), default=_DEFAULTS.cell,
                       help="Tree-LSTM cell: 'nary' (arity 2, ordered children: the binary "
                            "constituency Tree-LSTM of Tai et al.) or 'childsum' "
                            "(default: %(default)s)")
    group.add_argument("--backend", choices=("native", "dgl"), default=_DEFAULTS.backend,
                       help="Tree-LSTM executor: 'native' (level-scheduled torch) or 'dgl' "
                            "(needs the dgl package) (default: %(default)s)")
    group.add_argument("--dropout", type=_probability, default=_DEFAULTS.dropout,
                       help="dropout before the output layer, and between layers "
                            "(default: %(default)s)")
    group.add_argument("--embeddings", metavar="FILE", default=None,
                       help="word-vector text file (GloVe, or word2vec text with a header) to "
                            "initialise the embedding; its dimension must equal --embed-dim "
                            "(default: random initialisation)")
    group.add_argument("--freeze-embeddings", action="store_true",
                       help="do not update the embedding during training")


def _add_training_options(parser: argparse.ArgumentParser, epochs: int) -> None:
    group = parser.add_argument_group("training (defaults: Tai et al. 2015)")
    group.add_argument("--data", metavar="DIR", default=DEFAULT_DATA, type=os.path.abspath,
                       help="directory with train.txt, dev.txt and test.txt, one SST-style "
                            "bracketed tree per line (default: the bundled synthetic treebank, "
                            "treelstm/datasets/sentiment)")
    group.add_argument("--max-train", type=_positive_int, metavar="N", default=None,
                       help="use only the first N training trees, for quick runs "
                            "(default: all)")
    group.add_argument("--epochs", type=_positive_int, default=epochs,
                       help="passes over the training trees (default: %(default)s)")
    group.add_argument("--seed", type=_seed, default=_DEFAULTS.seed,
                       help="seed of python, numpy and torch and of the data order "
                            "(default: %(default)s)")
    group.add_argument("--lr", type=_positive_float, default=_DEFAULTS.lr,
                       help="AdaGrad learning rate (default: %(default)s)")
    group.add_argument("--weight-decay", type=_non_negative_float, default=_DEFAULTS.weight_decay,
                       help="L2 weight decay (default: %(default)s)")
    group.add_argument("--batch-size", type=_positive_int, default=_DEFAULTS.batch_size,
                       help="trees per update (default: %(default)s)")
    group.add_argument("--clip-grad-norm", type=_positive_float, metavar="MAX",
                       default=_DEFAULTS.clip_grad_norm,
                       help="rescale the gradients before each update so that their total 2-norm "
                            "is at most MAX (torch.nn.utils.clip_grad_norm_); a NaN or infinite "
                            "loss or gradient stops training either way (default: no clipping, "
                            "as Tai et al.)")


def _add_run_options(parser: argparse.ArgumentParser, out: str) -> None:
    group = parser.add_argument_group("run")
    group.add_argument("--out", metavar="DIR", default=out,
                       help="output directory (default: %(default)s)")
    group.add_argument("--device", type=_device, default=_DEFAULTS.device,
                       help="'cpu', 'cuda', 'cuda:1', ... or 'auto' (CUDA when available) "
                            "(default: %(default)s)")
    group.add_argument("--threads", type=_threads, default=1,
                       help="torch CPU threads; batches of small trees gain little from more, "
                            "and they slow down on a busy machine. 0: torch's default "
                            "(default: %(default)s)")
    group.add_argument("--quiet", action="store_true",
                       help="no progress bars and no per-epoch log (progress bars are also off "
                            "when stderr is not a terminal)")


def _setup(args: argparse.Namespace) -> bool:
    """Logging and threads; returns whether to show progress bars."""
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(message)s", stream=sys.stderr)
    return not args.quiet and sys.stderr.isatty()


def _config(args: argparse.Namespace, **fixed) -> TrainConfig:
    """The TrainConfig of the options: each field from the option of its name (``--embed-dim``
    -> ``embed_dim``), ``fixed`` for the fields a command sets itself."""
    values = {field.name: getattr(args, field.name) for field in dataclasses.fields(TrainConfig)
              if field.name not in fixed and hasattr(args, field.name)}
    return TrainConfig(**values, **fixed)


#: TrainConfig fields that are not options of their own (``train`` sets them from other flags;
#: ``compare`` per row). ``tests/test_training.py`` checks that every other field is an option.
CONFIG_FIELDS_SET_BY_COMMANDS = {"train": ("phrase_loss",),
                                 "compare": ("model", "view", "bidirectional", "phrase_loss")}


class _Terminated(BaseException):
    """SIGTERM, raised like KeyboardInterrupt so that the same clean-up runs."""


def _raise_terminated(signum, frame) -> None:
    raise _Terminated()


_INTERRUPTED_HINTS = {"_run_train": "; checkpoint.pt holds the last finished epoch: --resume "
                                    "goes on from there"}


def _guarded(run, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``run(args, parser)``; Ctrl-C (exit 130) and SIGTERM (exit 143) end it with one line
    after the clean-up (temporary files removed, earlier outputs left as they were)."""
    import signal
    import threading

    if sys.stderr is None:  # closed (2>&-): messages have nowhere to go, but run anyway
        sys.stderr = open(os.devnull, "w")
    if sys.stdout is None:  # closed (>&-)
        if getattr(args, "output", "-") == "-":
            print(f"{parser.prog}: error: standard output is closed; nothing could show the "
                  "results" + (" (give --output FILE)" if hasattr(args, "output") else ""),
                  file=sys.stderr)
            return 2
        sys.stdout = open(os.devnull, "w")
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    hint = _INTERRUPTED_HINTS.get(getattr(run, "__name__", ""), "")
    try:
        return run(args, parser)
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted{hint}", file=sys.stderr)
        return 130
    except _Terminated:
        print(f"{parser.prog}: terminated{hint}", file=sys.stderr)
        return 143
    except BrokenPipeError:
        return _reader_gone()
    except OSError as error:  # e.g. the results printed to a full disk
        print(f"{parser.prog}: error: {error.strerror or error}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"{parser.prog}: error: out of memory (smaller sizes or batches?)",
              file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _invoke(make_parser, run, argv: Optional[Sequence[str]], prog: Optional[str]) -> int:
    """Parse ``argv`` with the command's parser and run it (the ``*_command`` functions)."""
    parser = make_parser(prog)
    return _guarded(run, parser.parse_args(argv), parser)


def _wrap(*paragraphs: str) -> str:
    return "\n\n".join(textwrap.fill(p, width=88) for p in paragraphs)


def _fail(parser: argparse.ArgumentParser, error: Exception, status: int = 2) -> int:
    parser.exit(status, f"{parser.prog}: error: {error}\n")
    return status


# ---------------------------------------------------------------------------------- train
def train_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_wrap("Train a sentiment classifier on SST-style trees: a Tree-LSTM (a "
                          "label for every phrase) or an nn.LSTM baseline (a label for the "
                          "sentence), as in Tai, Socher & Manning (2015), Table 2."),
        epilog=_wrap("Writes to --out: checkpoint.pt (latest epoch: model, optimizer, epoch, RNG "
                     "states; for --resume), best.pt (best dev root accuracy), metrics.json "
                     "(per-epoch history, best dev, test) and learning_curve.png. The test split "
                     "is evaluated once, at the end, with best.pt.",
                     "example: python examples/train_sst.py --model treelstm --epochs 5 "
                     "--out runs/tree",
                     "several processes (torch.distributed, DistributedDataParallel): torchrun "
                     "--nproc_per_node=4 examples/train_sst.py --distributed --out runs/tree; "
                     "across machines add torchrun's --nnodes, --node_rank (or --rdzv_backend=c10d "
                     "--rdzv_endpoint=HOST:PORT) on each."))
    parser.add_argument("--model", choices=("treelstm", "lstm"), default=_DEFAULTS.model,
                        help="'treelstm': Tree-LSTM over the parse tree, loss on every node; "
                             "'lstm': nn.LSTM over the words, loss on the sentence "
                             "(default: %(default)s)")
    parser.add_argument("--view", choices=("fine", "binary"), default=_DEFAULTS.view,
                        help="'fine': 5 classes; 'binary': neutral-root trees dropped, "
                             "negative/positive, neutral phrases ignored in the loss "
                             "(ignore_index=-1) (default: %(default)s)")
    parser.add_argument("--bidirectional", action="store_true",
                        help="read both directions: a bidirectional LSTM, or a bidirectional "
                             "Tree-LSTM (a top-down pass after the bottom-up one, so every "
                             "phrase sees the whole sentence)")
    parser.add_argument("--root-loss-only", action="store_true",
                        help="--model treelstm only: supervise the root label only (default: "
                             "the loss sums over every labelled node)")
    _add_model_options(parser)
    _add_training_options(parser, epochs=_DEFAULTS.epochs)
    _add_run_options(parser, out="runs/sst-<model>-<view>")
    parser.add_argument("--resume", action="store_true",
                        help="continue from --out/checkpoint.pt if it exists: the run ends with "
                             "the same weights as an uninterrupted one (bit for bit with the "
                             "same --device and --threads); --epochs may be raised to train "
                             "longer; the other settings must match the checkpoint (and "
                             "best.pt must be this run's)")
    parser.add_argument("--overwrite", action="store_true",
                        help="start afresh even if --out already holds a run, replacing its "
                             "files (default: refuse, so that a finished run is never lost)")
    parser.add_argument("--distributed", action="store_true",
                        help="one of the processes started by torchrun: DistributedDataParallel "
                             "(NCCL on cuda:LOCAL_RANK, Gloo on the CPU), each process takes "
                             "its share of every batch of --batch-size trees, so the updates are "
                             "those of a single process; rank 0 evaluates, logs and writes --out")
    return parser


def train_command(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    """``python -m treelstm train``; returns the exit status."""
    return _invoke(train_parser, _run_train, argv, prog)


def _run_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.root_loss_only and args.model != "treelstm":
        parser.error("--root-loss-only is for --model treelstm (the LSTM is supervised at the "
                     "root only anyway)")
    # With --distributed only rank 0 logs and prints (a missing RANK is reported by train()).
    main_rank = not args.distributed or os.environ.get("RANK", "0") == "0"
    args.quiet = args.quiet or not main_rank
    progress = _setup(args)
    out = args.out.replace("<model>", args.model).replace("<view>", args.view)
    try:
        config = _config(args, phrase_loss=not args.root_loss_only)
        metrics = train(config, out, resume=args.resume, progress=progress,
                        distributed=args.distributed, overwrite=args.overwrite).metrics
    except (ValueError, FileNotFoundError, FileExistsError, FloatingPointError) as error:
        return _fail(parser, error)
    except OSError as error:  # e.g. a full disk while writing a checkpoint
        return _fail(parser, error, status=1)
    if not main_rank:
        return 0
    test, dev = metrics["test"], metrics["best_dev"] or {}
    lines = [f"best epoch {metrics['best_epoch']} of {metrics['epochs_done']}: dev root "
             f"accuracy {_pct(dev.get('root_acc'))}",
             f"test root accuracy {_pct(test['root_acc'])} ({config.view})"]
    if config.view == "fine":
        lines.append(f"test binary root accuracy {_pct(test['binary_root_acc'])} (from the fine "
                     "predictions, non-neutral roots)")
    if test["phrase_acc"] is not None:
        lines.append(f"test all-phrase accuracy {_pct(test['phrase_acc'])}")
    lines.append(f"written to {out}/: metrics.json, learning_curve.png, checkpoint.pt, best.pt")
    print("\n".join(lines))
    return 0


def _pct(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


# ----------------------------------------------------------------------------------- eval
def eval_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Evaluate a checkpoint (best.pt or checkpoint.pt) on a split.")
    parser.add_argument("checkpoint", help="a checkpoint written by 'train'")
    parser.add_argument("--data", metavar="DIR", default=None,
                        help="directory with <split>.txt (default: the --data of training)")
    parser.add_argument("--split", choices=("train", "dev", "test"), default="test",
                        help="which file to evaluate (default: %(default)s)")
    _add_eval_options(parser, items="trees")
    return parser


def _add_eval_options(parser: argparse.ArgumentParser, items: str) -> None:
    """The options ``eval`` and ``sick-eval`` share; ``items`` are what a batch holds."""
    parser.add_argument("--device", type=_device, default="cpu",
                        help="'cpu', 'cuda', 'cuda:1', ... (default: %(default)s)")
    parser.add_argument("--batch-size", type=_positive_int, default=256,
                        help=f"{items} per forward pass (default: %(default)s)")
    parser.add_argument("--threads", type=_threads, default=1,
                        help="torch CPU threads, 0: torch's default (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def eval_command(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    """``python -m treelstm eval``; returns the exit status."""
    return _invoke(eval_parser, _run_eval, argv, prog)


def _run_eval(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .training import evaluate

    progress = _setup(args)
    device = resolve_device(args.device)
    try:
        checkpoint = load_checkpoint(args.checkpoint)
        model = checkpoint.build_model().to(device)
        view = checkpoint.config.get("view", "fine")
        data = args.data or checkpoint.config.get("data") or DEFAULT_DATA
        if not isinstance(data, str) or view not in ("fine", "binary"):
            raise ValueError(f"{args.checkpoint}: its training settings name data {data!r} and "
                             f"view {view!r}; expected a directory and 'fine' or 'binary'")
        classes = {"fine": 5, "binary": 2}[view]
        if getattr(model, "num_classes", classes) != classes:
            raise ValueError(f"{args.checkpoint}: a model of {model.num_classes} classes, but its "
                             f"settings say view {view!r} ({classes} classes)")
        trees = load_splits(data, view, splits=(args.split,))[args.split]
    except (ValueError, OSError) as error:
        return _fail(parser, error)
    metrics = evaluate(model, trees, checkpoint.vocab, batch_size=args.batch_size,
                       device=device, progress=progress, description=args.split)
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        print(f"{args.checkpoint} on {data}/{args.split}.txt ({metrics['trees']} trees, {view}): "
              f"root accuracy {_pct(metrics['root_acc'])}, binary root accuracy "
              f"{_pct(metrics['binary_root_acc'])}, all-phrase accuracy "
              f"{_pct(metrics['phrase_acc'])}, {metrics['trees_per_s']:.0f} trees/s")
    return 0


# -------------------------------------------------------------------------------- compare
def compare_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_wrap("Train the Tree-LSTM and the nn.LSTM baseline on the same data with "
                          "the same budget (epochs, seed, sizes, optimizer) and print one table: "
                          "fine and binary root accuracy (dev, test), all-phrase accuracy, "
                          "parameters, training and inference trees/s (Tai, Socher & Manning "
                          "2015, Table 2)."),
        epilog=_wrap("Rows (--rows): " + "; ".join(f"{name} = {label}" for name, (label, _, _)
                                                    in COMPARE_ROWS.items()) + ".",
                     "Binary accuracy is computed from the fine-grained models' predictions on "
                     "the non-neutral roots. Writes --out/compare.md, --out/compare.json and "
                     "each row's run (metrics.json, checkpoints, learning curve) in "
                     "--out/<row>/."))
    parser.add_argument("--rows", default=",".join(DEFAULT_COMPARE_ROWS),
                        help="comma-separated rows to train, from "
                             f"{', '.join(COMPARE_ROWS)} (default: %(default)s)")
    _add_model_options(parser)
    _add_training_options(parser, epochs=_COMPARE_EPOCHS)
    _add_run_options(parser, out="runs/compare")
    parser.add_argument("--overwrite", action="store_true",
                        help="train again even if --out already holds a comparison, replacing "
                             "compare.md, compare.json and the folders of the rows it trains "
                             "(other rows' folders are left) (default: refuse)")
    return parser


def compare_command(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    """``python -m treelstm compare``; returns the exit status."""
    return _invoke(compare_parser, _run_compare, argv, prog)


def _run_compare(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    progress = _setup(args)
    rows = [row.strip() for row in args.rows.split(",") if row.strip()]
    try:
        result = compare(_config(args), args.out, progress=progress, rows=rows,
                         overwrite=args.overwrite)
    except (ValueError, FileNotFoundError, FileExistsError, FloatingPointError) as error:
        return _fail(parser, error)
    except OSError as error:
        return _fail(parser, error, status=1)
    print(result["table"])
    print(f"written to {args.out}/compare.md and {args.out}/compare.json")
    return 0


# -------------------------------------------------------------------------------- predict
_PREDICT_WINDOW = 4096


def predict_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_wrap("Label trees with a saved classifier (a Tree-LSTM or the LSTM "
                          "baseline), in batches, streaming: the input may be of any length.",
                          "Input, one tree per line: PTB brackets as in SST, e.g. "
                          "'(3 (2 a) (3 (2 very) (4 good)))' (its labels must be SST's 0..4 "
                          "but are not used), or a JSON "
                          "object {\"parent\": [...], \"tokens\": [...]} whose leaves are "
                          "nodes 0..n-1 in sentence order and parent -1 marks the root. Blank "
                          "lines are skipped.",
                          "Output, JSON Lines in input order: {\"line\": N, \"label\": C, "
                          "\"probs\": [...]} per tree (N counts input lines from 1; label and "
                          "probs are the root's), plus \"node_labels\" (one per node, in the "
                          "tree's node order: leaves first) with --node-labels."),
        epilog=_wrap("Lines are read --window at a time, sorted by size within the window, run "
                     "in batches of at most --batch-trees trees and --max-nodes nodes, and "
                     "written back in input order, so memory stays bounded.",
                     "--output is written to a temporary file beside it and renamed when the "
                     "run ends, so an interrupted run leaves a previous file as it was; it may "
                     "not be the input or the checkpoint (refused, also through links).",
                     "Exit status: 0 done (with --skip-bad a malformed line becomes "
                     "{\"line\": N, \"error\": \"...\"} and the run goes on); 1 a malformed "
                     "input line, named in the message (on standard output the records of the "
                     "lines before it are written; an --output file is not written at all), or "
                     "output that could not be written (e.g. a full disk); 2 bad "
                     "options, or an unreadable checkpoint or input file. A "
                     "progress bar (when stderr is a terminal) and a last line with the "
                     "throughput (trees/s) go to stderr.",
                     "example: python -m treelstm predict runs/sst-treelstm-fine/best.pt "
                     "treelstm/datasets/sentiment/test.txt --output predictions.jsonl"))
    parser.add_argument("checkpoint", help="a checkpoint written by 'train' (best.pt)")
    parser.add_argument("input", nargs="?", default="-",
                        help="file of trees, one per line; '-' or nothing: standard input")
    parser.add_argument("--format", choices=("auto", "ptb", "jsonl"), default="auto",
                        help="input lines: 'ptb' brackets, 'jsonl' objects, or 'auto': decided "
                             "per line by its first character (default: %(default)s)")
    parser.add_argument("--output", "-o", metavar="FILE", default="-",
                        help="where the JSON lines go; '-': standard output (default)")
    parser.add_argument("--batch-trees", type=_positive_int, default=256,
                        help="at most this many trees per forward pass (default: %(default)s)")
    parser.add_argument("--max-nodes", type=_positive_int, default=8192,
                        help="at most this many nodes (LSTM: tokens) per forward pass; a larger "
                             "tree runs alone (default: %(default)s)")
    parser.add_argument("--window", type=_positive_int, default=_PREDICT_WINDOW,
                        help="input lines held at once, sorted by size for batching "
                             "(default: %(default)s)")
    parser.add_argument("--device", type=_device, default="cpu",
                        help="'cpu', 'cuda', 'cuda:1', ... (default: %(default)s)")
    parser.add_argument("--dtype", choices=("bf16", "fp16"), default=None,
                        help="run under torch.autocast in this dtype (default: float32)")
    parser.add_argument("--node-labels", action="store_true",
                        help="also write every node's label (Tree-LSTM checkpoints only)")
    parser.add_argument("--skip-bad", action="store_true",
                        help="write an error record for a malformed line and go on (default: "
                             "stop with exit status 1)")
    parser.add_argument("--threads", type=_threads, default=1,
                        help="torch CPU threads, 0: torch's default (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar and no throughput line on stderr (the bar is also "
                             "off when stderr is not a terminal)")
    return parser


def _same_file_problem(args: argparse.Namespace) -> Optional[str]:
    """Why ``--output`` may not be written, if it names the input or the checkpoint."""
    from .files import same_file

    if args.output == "-":
        return None
    named = [("checkpoint", args.checkpoint)]
    if args.input != "-":
        named.append(("input", args.input))
    for what, path in named:
        if same_file(args.output, path):
            return (f"--output {args.output} is the {what} ({path}); refusing to overwrite it: "
                    "choose another output file")
    if args.input == "-" and sys.stdin is not None:  # standard input may be a file too
        try:
            stdin, output = os.fstat(sys.stdin.fileno()), os.stat(args.output)
        except (OSError, ValueError):  # no such output yet, or no real stdin
            return None
        if (stdin.st_dev, stdin.st_ino) == (output.st_dev, output.st_ino):
            return (f"--output {args.output} is the input (standard input); refusing to "
                    "overwrite it: choose another output file")
    return None


def predict_command(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    """``python -m treelstm predict``; returns the exit status."""
    return _invoke(predict_parser, _run_predict, argv, prog)


def _run_predict(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from pathlib import Path

    import torch

    from .files import AtomicOutput, remove_stale_temp_files
    from .predict import Predictor

    prog = parser.prog

    def error(message: str, status: int) -> int:
        print(f"{prog}: error: {message}", file=sys.stderr)
        return status

    problem = _same_file_problem(args)
    if problem:
        return error(problem, 2)
    if args.input == "-" and sys.stdin is None:
        return error("standard input is closed; give an input FILE", 2)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
        predictor = Predictor.from_checkpoint(args.checkpoint, device=device, dtype=args.dtype)
    except (ValueError, OSError) as problem:
        return error(str(problem), 2)
    if args.node_labels and not predictor.labels_nodes:
        return error(f"--node-labels needs a Tree-LSTM checkpoint; {args.checkpoint} holds an "
                     f"{type(predictor.model).__name__} (sentence labels only)", 2)

    try:
        source = sys.stdin.buffer if args.input == "-" else open(args.input, "rb")
    except OSError as problem:
        return error(f"{args.input}: {problem.strerror or problem}", 2)
    try:
        # A file is written beside itself and renamed when complete: an interrupted run
        # leaves the previous file as it was (and the next run clears what a kill -9 left).
        if args.output != "-":
            target = Path(os.path.realpath(args.output))  # where AtomicOutput writes
            remove_stale_temp_files(target.parent, [target.name])
        sink = sys.stdout if args.output == "-" else AtomicOutput(args.output)
    except OSError as problem:
        if source is not sys.stdin.buffer:
            source.close()
        return error(f"{args.output}: {problem.strerror or problem}", 2)

    try:  # whatever ends the run (a signal may land anywhere), an uncommitted file goes
        return _stream_predictions(args, predictor, source, sink, device, error)
    finally:
        if sink is not sys.stdout:
            sink.discard()  # nothing once committed
        if source is not sys.stdin.buffer:
            source.close()


def _stream_predictions(args: argparse.Namespace, predictor, source, sink, device,
                        error) -> int:
    """Write the records of ``source``'s lines to ``sink``; commit an --output file only when
    every line went through. Returns the exit status."""
    import time

    import torch

    from .predict import LineError, bounded_lines, predict_records
    from .progress import tqdm_bar

    name = "<stdin>" if args.input == "-" else args.input
    where = "standard output" if sink is sys.stdout else args.output
    bar = None
    if not args.quiet and sys.stderr.isatty():
        bar = tqdm_bar(description="predict", unit=" trees", leave=True)  # None without tqdm
    records = predict_records(predictor, bounded_lines(source), format=args.format,
                              batch_trees=args.batch_trees, max_nodes=args.max_nodes,
                              window=args.window, node_labels=args.node_labels,
                              skip_bad=args.skip_bad)
    counts = {"trees": 0, "errors": 0}
    failure: Optional[str] = None
    start = time.perf_counter()
    try:
        for record in records:
            sink.write(json.dumps(record, allow_nan=False) + "\n")
            counts["errors" if "error" in record else "trees"] += 1
            if bar is not None:
                bar.update(1)
    except LineError as problem:
        failure = (f"{name}:{problem.lineno}: {problem.reason} (--skip-bad writes an error record "
                   "and goes on)")
    except BrokenPipeError:
        return _reader_gone()
    except OSError as problem:  # reading the input, or writing: a full disk
        return error(f"{name} -> {where}: {problem.strerror or problem}", 1)
    finally:
        if bar is not None:
            bar.close()
    try:
        if sink is sys.stdout:
            sink.flush()  # the records before a bad line are out already
        elif failure:
            failure += f"; {args.output} was not written (the previous file is as it was)"
        else:
            sink.commit()
    except BrokenPipeError:
        return _reader_gone()
    except OSError as problem:
        return error(f"{where}: {problem.strerror or problem}", 1)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    if not args.quiet and counts["trees"] + counts["errors"] > 0:
        rate = counts["trees"] / seconds if seconds > 0 else float("inf")
        skipped = f", {counts['errors']} bad lines skipped" if counts["errors"] else ""
        print(f"predict: {counts['trees']} trees in {seconds:.2f} s: {rate:.0f} trees/s "
              f"({device}, {args.dtype or 'float32'}, batches of <= {args.batch_trees} trees / "
              f"{args.max_nodes} nodes{skipped})", file=sys.stderr)
    return error(failure, 1) if failure else 0


def _reader_gone() -> int:
    """The reader of standard output has gone (e.g. ``| head``): stop quietly. Python would fail
    again flushing stdout at exit, so point it at /dev/null."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


# ----------------------------------------------------------------------------- sick-train
def _sick_models(text: str) -> tuple:
    """``--models``: comma-separated encoders of the relatedness model."""
    from .sick import ENCODERS

    models = tuple(model.strip() for model in text.split(",") if model.strip())
    unknown = [model for model in models if model not in ENCODERS]
    if unknown or not models:
        raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from {', '.join(ENCODERS)}")
    return models


def sick_train_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    from .sick import RelatednessConfig

    defaults = RelatednessConfig()
    # "resolve": this command's --out (below) replaces the one of _add_run_options.
    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter, conflict_handler="resolve",
        description=_wrap("Semantic relatedness of sentence pairs (SICK): train the dependency "
                          "(Child-Sum) Tree-LSTM and the nn.LSTM baseline on the same pairs with "
                          "the same settings (sizes, optimizer, epochs, seed), as in Tai, Socher "
                          "& Manning (2015), Table 3. Each keeps its best epoch on dev (Pearson's "
                          "r), which is then scored once on test: Pearson's r, Spearman's rho "
                          "and the MSE, printed as one table.",
                          "Data: a directory with train/, dev/ and test/, each in the pre-parsed "
                          "SICK form of the original Tree-LSTM code (a.toks, b.toks, a.parents, "
                          "b.parents, sim.txt; a.rels, b.rels, id.txt optional). The "
                          "tab-separated SICK_*.txt files have no parses and cannot train a "
                          "Tree-LSTM."),
        epilog=_wrap("Writes to --out, each file atomically: <model>/best.pt per model (the "
                     "best dev epoch's weights, vocabulary and settings; for 'sick-eval'), "
                     "results.json (settings; per model: best epoch, dev and test metrics, "
                     "per-epoch history) and results.md (the table). Without --out nothing is "
                     "written.",
                     "Defaults follow Tai et al.: memory 150, similarity layer 50, AdaGrad lr "
                     "0.05, L2 1e-4 (not on the embedding), batch 25. Tai et al. keep 300-d "
                     "GloVe vectors fixed; without --embeddings the vectors here are random and "
                     "trained (tokens lower-cased).",
                     "example: python -m treelstm sick-train --data ../shared/data/sick --out "
                     "runs/sick, then python -m treelstm sick-eval runs/sick/treelstm/best.pt"))
    _add_sick_training_options(parser, defaults)
    _add_run_options(parser, out="")
    parser.set_defaults(device=defaults.device)  # "cpu", not train's "auto": as the example had
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="write <model>/best.pt, results.json and results.md here (default: "
                             "print only); a folder that already holds them is refused unless "
                             "--overwrite")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the run already in --out")
    return parser


def _add_sick_training_options(parser: argparse.ArgumentParser, defaults) -> None:
    """sick-train's options for the fields of ``defaults`` (a RelatednessConfig) but device."""
    parser.add_argument("--data", metavar="DIR", default=defaults.data,
                        help="directory with train/, dev/, test/ (default: the bundled "
                             "treelstm/datasets/sick_sample, synthetic pairs written by this "
                             "project)")
    parser.add_argument("--models", type=_sick_models, default=",".join(defaults.models),
                        help="comma-separated encoders to train, from treelstm, lstm "
                             "(default: %(default)s)")
    parser.add_argument("--epochs", type=_positive_int, default=defaults.epochs,
                        help="passes over the training pairs (default: %(default)s)")
    parser.add_argument("--seed", type=_seed, default=defaults.seed,
                        help="seed of the initial weights and the data order (default: "
                             "%(default)s)")
    parser.add_argument("--max-train", type=_positive_int, metavar="N", default=None,
                        help="use only the first N training pairs (default: all)")
    parser.add_argument("--embed-dim", type=_size, default=defaults.embed_dim,
                        help="word vector size (default: %(default)s)")
    parser.add_argument("--hidden-size", type=_size, default=defaults.hidden_size,
                        help="encoder memory size (default: %(default)s)")
    parser.add_argument("--similarity-size", type=_size, default=defaults.similarity_size,
                        help="hidden layer of the similarity network (default: %(default)s)")
    parser.add_argument("--lr", type=_positive_float, default=defaults.lr,
                        help="AdaGrad learning rate (default: %(default)s)")
    parser.add_argument("--weight-decay", type=_non_negative_float, default=defaults.weight_decay,
                        help="L2 weight decay, not on the embedding (default: %(default)s)")
    parser.add_argument("--batch-size", type=_positive_int, default=defaults.batch_size,
                        help="pairs per update (default: %(default)s)")
    parser.add_argument("--embeddings", metavar="FILE", default=None,
                        help="word vectors (GloVe text format) of --embed-dim dimensions")
    parser.add_argument("--freeze-embeddings", action="store_true",
                        help="keep the embedding fixed, as Tai et al. (sensible only with "
                             "--embeddings)")


def sick_train_command(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    """``python -m treelstm sick-train`` (``examples/train_sick.py``); returns the exit status."""
    return _invoke(sick_train_parser, _run_sick_train, argv, prog)


def _run_sick_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .sick import RelatednessConfig, results_table, train_relatedness_run

    progress = _setup(args)
    try:
        config = RelatednessConfig(**{field.name: getattr(args, field.name)
                                      for field in dataclasses.fields(RelatednessConfig)})
        report = train_relatedness_run(config, args.out, overwrite=args.overwrite,
                                       progress=progress)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        return _fail(parser, error)
    except OSError as error:  # e.g. a full disk while writing a checkpoint
        return _fail(parser, error, status=1)
    print(results_table(report["results"]))
    if args.out:
        written = ", ".join(f"{model}/best.pt" for model in config.models)
        print(f"written to {args.out}/: results.json, results.md, {written}", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------------ sick-eval
def sick_eval_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_wrap("Evaluate a relatedness checkpoint (a best.pt of 'sick-train') on a "
                          "split of SICK pairs in the pre-parsed form: Pearson's r, Spearman's "
                          "rho and the mean squared error of its predicted scores against the "
                          "gold scores (r and rho are nan for a constant prediction: null "
                          "with --json)."),
        epilog=_wrap("Exit status: 0 done; 2 bad options, a checkpoint that is unreadable or "
                     "not a relatedness model's, or unreadable data (one line on stderr).",
                     "example: python -m treelstm sick-eval runs/sick/treelstm/best.pt --data "
                     "../shared/data/sick --split test --json"))
    parser.add_argument("checkpoint", help="a best.pt written by 'sick-train'")
    parser.add_argument("--data", metavar="DIR", default=None,
                        help="directory with train/, dev/, test/ (default: the --data of "
                             "training, stored in the checkpoint)")
    parser.add_argument("--split", choices=("train", "dev", "test"), default="test",
                        help="which directory of --data to evaluate (default: %(default)s)")
    _add_eval_options(parser, items="pairs")
    return parser


def sick_eval_command(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    """``python -m treelstm sick-eval``; returns the exit status."""
    return _invoke(sick_eval_parser, _run_sick_eval, argv, prog)


def _run_sick_eval(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from pathlib import Path

    from .data import read_sick
    from .sick import DEFAULT_SICK_DATA, evaluate_relatedness, load_relatedness_model

    progress = _setup(args)
    device = resolve_device(args.device)
    try:
        model, vocab, config = load_relatedness_model(args.checkpoint, map_location=device)
        data = args.data or config.get("data") or DEFAULT_SICK_DATA
        if not isinstance(data, str):
            raise ValueError(f"{args.checkpoint}: its training settings name data {data!r}; "
                             "expected a directory (give --data)")
        pairs = read_sick(Path(data) / args.split)
        metrics = evaluate_relatedness(model, pairs, vocab, batch_size=args.batch_size,
                                       device=device, progress=progress)
    except (ValueError, OSError) as error:
        return _fail(parser, error)
    if args.json:
        shown = {key: None if isinstance(value, float) and math.isnan(value) else value
                 for key, value in metrics.items()}
        print(json.dumps({"checkpoint": args.checkpoint, "data": data, "split": args.split,
                          **shown}, indent=2))
    else:
        print(f"{args.checkpoint} on {Path(data) / args.split} ({metrics['pairs']} pairs): "
              f"Pearson's r {metrics['pearson']:.4f}, Spearman's rho {metrics['spearman']:.4f}, "
              f"MSE {metrics['mse']:.4f}")
    return 0


# ----------------------------------------------------------------------------------- main
def bench_command(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    """``python -m treelstm bench``: runs ``benchmarks/bench.py`` of the source checkout this
    package is imported from, with its own command line (``--help``). The benchmark is not part
    of the installed package: without a checkout, one line says so (exit status 2)."""
    import importlib.util
    from pathlib import Path

    prog = prog or "python -m treelstm bench"
    root = Path(__file__).resolve().parents[1]
    script = root / "benchmarks" / "bench.py"
    if not (script.is_file() and (root / "setup.cfg").is_file()):
        print(f"{prog}: the speed benchmark is benchmarks/bench.py of the source repository, not "
              "part of the installed package; run it from a checkout: python "
              "benchmarks/bench.py --help", file=sys.stderr)
        return 2
    spec = importlib.util.spec_from_file_location("treelstm_bench", script)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # dataclasses look their module up there
    spec.loader.exec_module(bench)  # imports DGL etc. only when benchmarking
    bench.main(argv, prog)
    return 0


#: name -> (parser factory, runner, one line for the command list).
COMMANDS = {
    "train": (train_parser, _run_train,
              "train a Tree-LSTM or the LSTM baseline on sentiment trees"),
    "eval": (eval_parser, _run_eval, "evaluate a checkpoint on a split"),
    "compare": (compare_parser, _run_compare,
                "Tree-LSTM vs LSTM baseline on the same data: one table"),
    "predict": (predict_parser, _run_predict,
                "label trees from a file or stdin with a checkpoint (JSONL)"),
    "sick-train": (sick_train_parser, _run_sick_train,
                   "SICK relatedness: Tree-LSTM vs LSTM baseline on sentence pairs, one table"),
    "sick-eval": (sick_eval_parser, _run_sick_eval,
                  "Pearson's r, Spearman's rho, MSE of a relatedness checkpoint on a split"),
}
_BENCH_HELP = "speed benchmark: native, DGL, nn.LSTM, LSTMCell loop, recursion (its own --help)"


def build_parser() -> argparse.ArgumentParser:
    """``python -m treelstm``: one sub-parser per command, each the same parser as the
    command's own (``train_parser`` ...)."""
    parser = argparse.ArgumentParser(
        prog="python -m treelstm",
        description="Tree-LSTMs for sentiment trees and sentence-pair relatedness (Tai, "
                    "Socher & Manning 2015).",
        epilog="--help after a command for its options, e.g. python -m treelstm train --help")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                     title="commands")
    for name, (make_parser, run, help_text) in COMMANDS.items():
        template = make_parser(f"{parser.prog} {name}")
        command = commands.add_parser(name, parents=[template], add_help=False, help=help_text,
                                      description=template.description,
                                      epilog=template.epilog,
                                      formatter_class=template.formatter_class)
        command.set_defaults(run=run, parser=command)
    commands.add_parser("bench", help=_BENCH_HELP, add_help=False)  # listed; runs its own parser
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # the benchmark parses its own options
        return bench_command(argv[1:], prog="python -m treelstm bench")
    args, unknown = build_parser().parse_known_args(argv)
    if unknown:  # the command's own usage line, not the top level's
        args.parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return _guarded(args.run, args, args.parser)


if __name__ == "__main__":
    sys.exit(main())
