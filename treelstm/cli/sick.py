"""``sick-train`` and ``sick-eval``: semantic relatedness of sentence pairs (SICK), thin wrappers
around :mod:`treelstm.sick` (imported when a command runs, not when its parser is built)."""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from typing import TYPE_CHECKING, Optional, cast

from .command import Command, fail, setup
from .defaults import SICK_DEFAULTS, SICK_ENCODERS
from .options import (add_budget_options, add_eval_options, add_run_options, layer_size,
                      non_negative_float, positive_float, positive_int, seed_list, wrap)

if TYPE_CHECKING:
    from ..sick import RelatednessModel


# ----------------------------------------------------------------------------- sick-train
def _sick_models(text: str) -> tuple:
    """``--models``: comma-separated encoders of the relatedness model."""
    models = tuple(model.strip() for model in text.split(",") if model.strip())
    unknown = [model for model in models if model not in SICK_ENCODERS]
    if unknown or not models:
        raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from "
                                         f"{', '.join(SICK_ENCODERS)}")
    return models


def sick_train_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    """The parser of ``python -m treelstm sick-train`` (``prog``: the program name its
    usage and errors show). Builds without importing torch."""
    # "resolve": this command's --out (below) replaces the one of add_run_options.
    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter, conflict_handler="resolve",
        description=wrap("Semantic relatedness of sentence pairs (SICK): train the dependency "
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
        epilog=wrap("Writes to --out, each file atomically: <model>/best.pt per model (the "
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
    _add_sick_training_options(parser, SICK_DEFAULTS)
    add_run_options(parser, out="")
    # "cpu", not train's "auto": as the example had
    parser.set_defaults(device=SICK_DEFAULTS.device)
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="write <model>/best.pt, results.json and results.md here (default: "
                             "print only); a folder that already holds them is refused unless "
                             "--overwrite")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the run already in --out")
    parser.add_argument("--seeds", type=seed_list, metavar="S1,S2,...", default=None,
                        help="one run per seed (instead of --seed), each in --out/seed-<seed>/, "
                             "and one table of mean ± sample standard deviation (n - 1) "
                             "(default: --seed alone)")
    parser.add_argument("--resume", action="store_true",
                        help="with --seeds and --out: keep the seeds already finished there "
                             "(same settings) and train the others (a seed killed mid-run is "
                             "trained again)")
    return parser


def _add_sick_training_options(parser: argparse.ArgumentParser, defaults) -> None:
    """sick-train's options for the fields of ``defaults`` (a RelatednessConfig's) but device."""
    parser.add_argument("--data", metavar="DIR", default=defaults.data,
                        help="directory with train/, dev/, test/ (default: the bundled "
                             "treelstm/datasets/sick_sample, synthetic pairs written by this "
                             "project)")
    parser.add_argument("--models", type=_sick_models, default=",".join(defaults.models),
                        help="comma-separated encoders to train, from treelstm, lstm "
                             "(default: %(default)s)")
    add_budget_options(parser, epochs=defaults.epochs, seed=defaults.seed, items="pairs",
                       seeded="the initial weights and the data order")
    parser.add_argument("--embed-dim", type=layer_size, default=defaults.embed_dim,
                        help="word vector size (default: %(default)s)")
    parser.add_argument("--hidden-size", type=layer_size, default=defaults.hidden_size,
                        help="encoder memory size (default: %(default)s)")
    parser.add_argument("--similarity-size", type=layer_size, default=defaults.similarity_size,
                        help="hidden layer of the similarity network (default: %(default)s)")
    parser.add_argument("--lr", type=positive_float, default=defaults.lr,
                        help="AdaGrad learning rate (default: %(default)s)")
    parser.add_argument("--weight-decay", type=non_negative_float, default=defaults.weight_decay,
                        help="L2 weight decay, not on the embedding (default: %(default)s)")
    parser.add_argument("--batch-size", type=positive_int, default=defaults.batch_size,
                        help="pairs per update (default: %(default)s)")
    parser.add_argument("--embeddings", metavar="FILE", default=None,
                        help="word vectors (GloVe text format) of --embed-dim dimensions")
    parser.add_argument("--freeze-embeddings", action="store_true",
                        help="keep the embedding fixed, as Tai et al. (sensible only with "
                             "--embeddings)")


def _needs_scipy(parser: argparse.ArgumentParser) -> None:
    """One line (exit 2) before any work if scipy, which the metrics use, is missing."""
    import importlib.util

    if importlib.util.find_spec("scipy") is None:
        fail(parser, ValueError("Pearson's r and Spearman's rho need scipy: pip install "
                                "'.[sick]' in a checkout (or pip install scipy)"))


def _run_sick_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..sick import (RelatednessConfig, results_table, train_relatedness_run,
                        train_relatedness_seeds)

    _needs_scipy(parser)
    progress = setup(args)
    try:
        config = RelatednessConfig(**{field.name: getattr(args, field.name)
                                      for field in dataclasses.fields(RelatednessConfig)})
        if args.resume and (args.seeds is None or not args.out or args.overwrite):
            parser.error("--resume needs --seeds and --out, and excludes --overwrite")
        if args.seeds is not None:
            report = train_relatedness_seeds(config, args.seeds, args.out,
                                             overwrite=args.overwrite, progress=progress,
                                             resume=args.resume)
        else:
            report = train_relatedness_run(config, args.out, overwrite=args.overwrite,
                                           progress=progress)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        return fail(parser, error)
    except OSError as error:  # e.g. a full disk while writing a checkpoint
        return fail(parser, error, status=1)
    if args.seeds is not None:
        print(report["table"])
        if args.out:
            print(f"written to {args.out}/: results.json, results.md, seed-<seed>/ per seed",
                  file=sys.stderr)
        return 0
    print(results_table(report["results"]))
    if args.out:
        written = ", ".join(f"{model}/best.pt" for model in config.models)
        print(f"written to {args.out}/: results.json, results.md, {written}", file=sys.stderr)
    return 0


sick_train_command = Command(
    sick_train_parser, _run_sick_train,
    "SICK relatedness: Tree-LSTM vs LSTM baseline on sentence pairs, one table")


# ------------------------------------------------------------------------------ sick-eval
def sick_eval_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    """The parser of ``python -m treelstm sick-eval`` (``prog``: the program name its
    usage and errors show). Builds without importing torch."""
    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
        description=wrap("Evaluate a relatedness checkpoint (a best.pt of 'sick-train') on a "
                         "split of SICK pairs in the pre-parsed form: Pearson's r, Spearman's "
                         "rho and the mean squared error of its predicted scores against the "
                         "gold scores (r and rho are nan for a constant prediction: null "
                         "with --json)."),
        epilog=wrap("Exit status: 0 done; 2 bad options, a checkpoint that is unreadable or "
                    "not a relatedness model's, or unreadable data (one line on stderr).",
                    "example: python -m treelstm sick-eval runs/sick/treelstm/best.pt --data "
                    "../shared/data/sick --split test --json"))
    parser.add_argument("checkpoint", help="a best.pt written by 'sick-train'")
    parser.add_argument("--data", metavar="DIR", default=None,
                        help="directory with train/, dev/, test/ (default: the --data of "
                             "training, stored in the checkpoint)")
    parser.add_argument("--split", choices=("train", "dev", "test"), default="test",
                        help="which directory of --data to evaluate (default: %(default)s)")
    add_eval_options(parser, items="pairs")
    return parser


def _run_sick_eval(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from pathlib import Path

    _needs_scipy(parser)
    from ..data import read_sick
    from ..sick import DEFAULT_SICK_DATA, evaluate_relatedness, load_relatedness_model
    from ..training.config import resolve_device

    progress = setup(args)
    device = resolve_device(args.device)
    try:
        model, vocab, config = load_relatedness_model(args.checkpoint, map_location=device)
        data = args.data or config.get("data") or DEFAULT_SICK_DATA
        if not isinstance(data, str):
            raise ValueError(f"{args.checkpoint}: its training settings name data {data!r}; "
                             "expected a directory (give --data)")
        pairs = read_sick(Path(data) / args.split)
        # load_relatedness_model builds a RelatednessModel, the one class it accepts
        metrics = evaluate_relatedness(cast("RelatednessModel", model), pairs, vocab,
                                       batch_size=args.batch_size, device=device,
                                       progress=progress)
    except (ValueError, OSError) as error:
        return fail(parser, error)
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


sick_eval_command = Command(
    sick_eval_parser, _run_sick_eval,
    "Pearson's r, Spearman's rho, MSE of a relatedness checkpoint on a split")
