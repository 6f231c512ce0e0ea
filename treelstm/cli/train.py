"""``train``, ``eval`` and ``compare``: sentiment classifiers on SST-style trees, thin wrappers
around :mod:`treelstm.training` (imported when a command runs, not when its parser is built)."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
from typing import Optional

from .command import Command, fail, setup
from .defaults import COMPARE_ROW_LABELS, DEFAULT_COMPARE_ROWS, DEFAULT_DATA, TRAIN_DEFAULTS
from .options import (add_eval_options, add_model_options, add_run_options, add_training_options,
                      positive_int, seed_list, wrap)

_COMPARE_EPOCHS = 8  # measured: the 3 default rows take about 75 s on one free CPU core

#: TrainConfig fields that are not options of their own (``train`` sets them from other flags;
#: ``compare`` per row). ``tests/test_training.py`` checks that every other field is an option.
CONFIG_FIELDS_SET_BY_COMMANDS = {"train": ("phrase_loss",),
                                 "compare": ("model", "bidirectional", "phrase_loss")}


def _config(args: argparse.Namespace, **fixed):
    """The TrainConfig of the options: each field from the option of its name (``--embed-dim``
    -> ``embed_dim``), ``fixed`` for the fields a command sets itself."""
    from ..training import TrainConfig

    values = {field.name: getattr(args, field.name) for field in dataclasses.fields(TrainConfig)
              if field.name not in fixed and hasattr(args, field.name)}
    return TrainConfig(**values, **fixed)


def _pct(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


# ---------------------------------------------------------------------------------- train
def train_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    """The parser of ``python -m treelstm train`` (``prog``: the program name its
    usage and errors show). Builds without importing torch."""
    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
        description=wrap("Train a sentiment classifier on SST-style trees: a Tree-LSTM (a "
                         "label for every phrase) or an nn.LSTM baseline (a label for the "
                         "sentence), as in Tai, Socher & Manning (2015), Table 2."),
        epilog=wrap("Writes to --out: checkpoint.pt (latest epoch: model, optimizer, epoch, RNG "
                    "states; for --resume), best.pt (best dev root accuracy), metrics.json "
                    "(per-epoch history, best dev, test) and learning_curve.png. The test split "
                    "is evaluated once, at the end, with best.pt.",
                    "example: python examples/train_sst.py --model treelstm --epochs 5 "
                    "--out runs/tree",
                    "several processes (torch.distributed, DistributedDataParallel): torchrun "
                    "--nproc_per_node=4 examples/train_sst.py --distributed --out runs/tree; "
                    "across machines add torchrun's --nnodes, --node_rank (or --rdzv_backend=c10d "
                    "--rdzv_endpoint=HOST:PORT) on each."))
    parser.add_argument("--model", choices=("treelstm", "lstm"), default=TRAIN_DEFAULTS.model,
                        help="'treelstm': Tree-LSTM over the parse tree, loss on every node; "
                             "'lstm': nn.LSTM over the words, loss on the sentence "
                             "(default: %(default)s)")
    parser.add_argument("--view", choices=("fine", "binary"), default=TRAIN_DEFAULTS.view,
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
    add_model_options(parser)
    add_training_options(parser, epochs=TRAIN_DEFAULTS.epochs)
    add_run_options(parser, out="runs/sst-<model>-<view>")
    _add_train_run_options(parser)
    return parser


def _add_train_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--resume", action="store_true",
                        help="continue from --out/checkpoint.pt if it exists: the run ends with "
                             "the same weights as an uninterrupted one (bit for bit with the "
                             "same --device and --threads; on a GPU, whose index_add_ adds in "
                             "any order, up to float rounding); --epochs may be raised to train "
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


def _run_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..training import train

    if args.root_loss_only and args.model != "treelstm":
        parser.error("--root-loss-only is for --model treelstm (the LSTM is supervised at the "
                     "root only anyway)")
    # With --distributed only rank 0 logs and prints (a missing RANK is reported by train()).
    main_rank = not args.distributed or os.environ.get("RANK", "0") == "0"
    args.quiet = args.quiet or not main_rank
    progress = setup(args)
    out = args.out.replace("<model>", args.model).replace("<view>", args.view)
    try:
        config = _config(args, phrase_loss=not args.root_loss_only)
        metrics = train(config, out, resume=args.resume, progress=progress,
                        distributed=args.distributed, overwrite=args.overwrite).metrics
    except (ValueError, FileNotFoundError, FileExistsError, FloatingPointError) as error:
        return fail(parser, error)
    except OSError as error:  # e.g. a full disk while writing a checkpoint
        return fail(parser, error, status=1)
    if main_rank:
        print(_train_summary(metrics, config.view, out))
    return 0


def _train_summary(metrics: dict, view: str, out: str) -> str:
    test, dev = metrics["test"], metrics["best_dev"] or {}
    stopped = (f" (stopped early: --patience {metrics['config']['patience']})"
               if metrics.get("stopped_early") else "")
    lines = [f"best epoch {metrics['best_epoch']} of {metrics['epochs_done']}{stopped}: dev root "
             f"accuracy {_pct(dev.get('root_acc'))}",
             f"test root accuracy {_pct(test['root_acc'])} ({view})"]
    if view == "fine":
        lines.append(f"test binary root accuracy {_pct(test['binary_root_acc'])} (from the fine "
                     "predictions, non-neutral roots)")
    if test["phrase_acc"] is not None:
        lines.append(f"test all-phrase accuracy {_pct(test['phrase_acc'])}")
    lines.append(f"written to {out}/: metrics.json, learning_curve.png, checkpoint.pt, best.pt")
    return "\n".join(lines)


train_command = Command(
    train_parser, _run_train, "train a Tree-LSTM or the LSTM baseline on sentiment trees",
    interrupted_hint="; checkpoint.pt holds the last finished epoch: --resume goes on from there")


# ----------------------------------------------------------------------------------- eval
def eval_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    """The parser of ``python -m treelstm eval`` (``prog``: the program name its
    usage and errors show). Builds without importing torch."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Evaluate a checkpoint (best.pt or checkpoint.pt) on a split.")
    parser.add_argument("checkpoint", help="a checkpoint written by 'train'")
    parser.add_argument("--data", metavar="DIR", default=None,
                        help="directory with <split>.txt (default: the --data of training)")
    parser.add_argument("--split", choices=("train", "dev", "test"), default="test",
                        help="which file to evaluate (default: %(default)s)")
    add_eval_options(parser, items="trees")
    return parser


def _run_eval(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..training import evaluate, load_checkpoint, load_splits, resolve_device

    progress = setup(args)
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
        return fail(parser, error)
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


eval_command = Command(eval_parser, _run_eval, "evaluate a checkpoint on a split")


# -------------------------------------------------------------------------------- compare
def compare_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    """The parser of ``python -m treelstm compare`` (``prog``: the program name its
    usage and errors show). Builds without importing torch."""
    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
        description=wrap("Train the Tree-LSTM and the nn.LSTM baseline on the same data with "
                         "the same budget (epochs, seed, sizes, optimizer) and print one table: "
                         "fine and binary root accuracy (dev, test), all-phrase accuracy, "
                         "parameters, training and inference trees/s (Tai, Socher & Manning "
                         "2015, Table 2)."),
        epilog=wrap("Rows (--rows): " + "; ".join(f"{name} = {label}" for name, label
                                                   in COMPARE_ROW_LABELS.items()) + ".",
                    "With --view fine, binary accuracy is computed from the fine-grained "
                    "models' predictions on the non-neutral roots; --view binary trains binary "
                    "models (Tai et al.'s binary task).",
                    "Five seeds, two at a time, as in results/: python -m treelstm compare "
                    "--data ../shared/data/sst --rows treelstm,lstm --seeds 0,1,2,3,4 --jobs 2 "
                    "--patience 3 --out runs/sst-fine. Writes --out/compare.md, --out/compare.json and "
                    "each row's run (metrics.json, checkpoints, learning curve) in "
                    "--out/<row>/."))
    parser.add_argument("--rows", default=",".join(DEFAULT_COMPARE_ROWS),
                        help="comma-separated rows to train, from "
                             f"{', '.join(COMPARE_ROW_LABELS)} (default: %(default)s)")
    parser.add_argument("--view", choices=("fine", "binary"), default=TRAIN_DEFAULTS.view,
                        help="'fine': 5 classes; 'binary': binary models trained on the binary "
                             "view (neutral-root trees dropped, neutral phrases ignored in the "
                             "loss), selected on binary dev accuracy (default: %(default)s)")
    parser.add_argument("--seeds", type=seed_list, metavar="S1,S2,...", default=None,
                        help="train every row once per seed (instead of --seed) and show mean "
                             "± sample standard deviation (n - 1); runs go to "
                             "--out/<row>/seed-<seed>/ and every run's metrics to compare.json "
                             "(default: --seed alone, runs in --out/<row>/)")
    parser.add_argument("--jobs", type=positive_int, default=1, metavar="N",
                        help="runs at a time, each in a process of its own with --threads "
                             "threads: on a machine with 2 free cores, --jobs 2. Each log line "
                             "then starts with its run, and each run's result is logged as it "
                             "ends; worth it for runs of minutes (a process takes seconds to "
                             "start) (default: %(default)s)")
    parser.add_argument("--sizes", choices=("same", "paper"), default="same",
                        help="'same': --hidden-size for every row; 'paper': each row's hidden "
                             "size from Tai et al. (2015), Table 1 (LSTM 168, bidirectional LSTM "
                             "150, 2-layer LSTM 108, Tree-LSTM 150, Child-Sum 168), instead of "
                             "--hidden-size; chosen there for similar parameter counts, which "
                             "differ with this library's cells (the table shows them) (default: "
                             "%(default)s)")
    add_model_options(parser)
    add_training_options(parser, epochs=_COMPARE_EPOCHS)
    add_run_options(parser, out="runs/compare")
    parser.add_argument("--resume", action="store_true",
                        help="go on with the runs already in --out: finished runs are tested "
                             "again, interrupted ones resume from their checkpoint.pt (bit for "
                             "bit), missing ones start")
    parser.add_argument("--overwrite", action="store_true",
                        help="train again even if --out already holds a comparison, replacing "
                             "compare.md, compare.json and the folders of the runs it trains "
                             "(other folders are left) (default: refuse)")
    return parser


def _run_compare(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..training import compare

    progress = setup(args)
    rows = [row.strip() for row in args.rows.split(",") if row.strip()]
    unknown = [row for row in rows if row not in COMPARE_ROW_LABELS]
    if unknown or not rows or len(set(rows)) != len(rows):
        parser.error(f"argument --rows: expected comma-separated rows without repeats, from "
                     f"{', '.join(COMPARE_ROW_LABELS)}; got {args.rows!r}")
    if args.resume and args.overwrite:
        parser.error("--resume and --overwrite exclude each other: --resume keeps the runs in "
                     "--out, --overwrite replaces them")
    try:
        result = compare(_config(args), args.out, progress=progress, rows=rows,
                         overwrite=args.overwrite, seeds=args.seeds, jobs=args.jobs,
                         resume=args.resume, sizes=args.sizes)
    except (ValueError, FileNotFoundError, FileExistsError, FloatingPointError) as error:
        return fail(parser, error)
    except (OSError, RuntimeError) as error:  # a full disk; a run's process killed (--jobs)
        return fail(parser, error, status=1)
    print(result["table"])
    print(f"written to {args.out}/compare.md and {args.out}/compare.json")
    return 0


compare_command = Command(compare_parser, _run_compare,
                          "Tree-LSTM vs LSTM baseline on the same data: one table",
                          interrupted_hint="; --resume goes on with the runs in --out")
