#!/usr/bin/env python
"""Semantic relatedness of SICK-style pairs: Child-Sum Tree-LSTM vs nn.LSTM (Tai et al. 2015).

    python examples/train_sick.py                                   # bundled sample, seconds
    python examples/train_sick.py --data ../shared/data/sick --epochs 10 --out runs/sick

Both encoders are trained on the same pairs with the same settings (sizes, optimizer, epochs,
seed); each keeps its best epoch on dev (Pearson's r), which is then scored once on test.
Prints Pearson's r, Spearman's rho and the MSE of each, and writes them to --out.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO / "data" / "sick_sample"
MODELS = {"treelstm": "Dependency Tree-LSTM (Child-Sum)", "lstm": "LSTM"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="train_sick.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n\n")[0] + "\n\nData: a directory with train/, dev/ and "
        "test/, each in the pre-parsed SICK form of the original Tree-LSTM code (a.toks, b.toks, "
        "a.parents, b.parents, sim.txt; a.rels, b.rels, id.txt optional). The tab-separated "
        "SICK_*.txt files have no parses and cannot train a Tree-LSTM.",
        epilog="Defaults follow Tai et al.: memory 150, similarity layer 50, AdaGrad lr 0.05, "
               "L2 1e-4 (not on the embedding), batch 25. Tai et al. keep 300-d GloVe vectors "
               "fixed; without --embeddings the vectors here are random and trained (tokens "
               "lower-cased).")
    parser.add_argument("--data", metavar="DIR", default=str(DEFAULT_DATA),
                        help="directory with train/, dev/, test/ (default: the bundled "
                             "data/sick_sample, synthetic pairs written by this project)")
    parser.add_argument("--models", default="treelstm,lstm",
                        help="comma-separated encoders to train, from treelstm, lstm "
                             "(default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=10, help="(default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the initial weights and the data order (default: "
                             "%(default)s)")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="write results.json and results.md here (default: print only); a "
                             "folder that already holds them is refused unless --overwrite")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the results already in --out")
    parser.add_argument("--max-train", type=int, metavar="N", default=None,
                        help="use only the first N training pairs (default: all)")
    parser.add_argument("--embed-dim", type=int, default=300, help="(default: %(default)s)")
    parser.add_argument("--hidden-size", type=int, default=150,
                        help="encoder memory size (default: %(default)s)")
    parser.add_argument("--similarity-size", type=int, default=50,
                        help="hidden layer of the similarity network (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=0.05, help="AdaGrad (default: %(default)s)")
    parser.add_argument("--weight-decay", type=float, default=1e-4, help="(default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=25, help="(default: %(default)s)")
    parser.add_argument("--embeddings", metavar="FILE", default=None,
                        help="word vectors (GloVe text format) of --embed-dim dimensions")
    parser.add_argument("--freeze-embeddings", action="store_true",
                        help="keep the embedding fixed, as Tai et al. (sensible only with "
                             "--embeddings)")
    parser.add_argument("--device", default="cpu", help="(default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads, 0: torch's default (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch log")
    return parser


def table(results: dict) -> str:
    lines = ["| model | best epoch | dev r | test r | test rho | test MSE | parameters | "
             "train s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, result in results.items():
        test = result["test"]
        lines.append(f"| {MODELS[name]} | {result['best_epoch']} | "
                     f"{result['best_dev']['pearson']:.4f} | {test['pearson']:.4f} | "
                     f"{test['spearman']:.4f} | {test['mse']:.4f} | "
                     f"{result['parameters']:,} | {result['train_seconds']:.1f} |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        parser.error(f"--models: unknown {unknown}; choose from {', '.join(MODELS)}")
    for name in ("epochs", "embed_dim", "hidden_size", "similarity_size", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer")

    import torch

    from treelstm.data import Vocab, load_vectors, read_sick_splits
    from treelstm.files import check_no_run, write_text
    from treelstm.sick_model import RelatednessModel, evaluate_relatedness, train_relatedness
    from treelstm.training import MAX_SEED, resolve_device

    if not 0 <= args.seed <= MAX_SEED:
        parser.error(f"--seed must be an integer in [0, {MAX_SEED}]")
    try:
        resolve_device(args.device)
        if args.out and not args.overwrite:  # before training, not after
            check_no_run(args.out, ("results.json", "results.md"), resume_hint="")
    except (ValueError, FileExistsError) as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(message)s", stream=sys.stderr)
    try:
        splits = read_sick_splits(args.data)
    except (ValueError, FileNotFoundError) as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    train_pairs = splits["train"][:args.max_train] if args.max_train else splits["train"]
    vocab = Vocab.build((tokens for pair in train_pairs
                         for tokens in (pair.left.tokens, pair.right.tokens)), lower=True)
    print(f"{args.data}: {len(train_pairs)} / {len(splits['dev'])} / {len(splits['test'])} "
          f"pairs (train / dev / test), vocabulary {len(vocab)}", file=sys.stderr)

    results = {}
    for name in models:
        torch.manual_seed(args.seed)
        model = RelatednessModel(len(vocab), embed_dim=args.embed_dim,
                                 hidden_size=args.hidden_size,
                                 similarity_size=args.similarity_size, encoder=name)
        if args.embeddings:
            try:
                load_vectors(args.embeddings, vocab, embedding=model.embedding)
            except (ValueError, FileNotFoundError) as error:
                parser.exit(2, f"{parser.prog}: error: {error}\n")
        start = time.perf_counter()
        run = train_relatedness(model, train_pairs, splits["dev"], vocab, epochs=args.epochs,
                                lr=args.lr, weight_decay=args.weight_decay,
                                batch_size=args.batch_size, seed=args.seed,
                                freeze_embeddings=args.freeze_embeddings, device=args.device)
        test = evaluate_relatedness(model, splits["test"], vocab, device=args.device)
        results[name] = {"best_epoch": run["best_epoch"], "best_dev": run["best_dev"],
                         "test": test, "history": run["history"],
                         "train_seconds": run["train_seconds"],
                         "wall_seconds": time.perf_counter() - start,
                         "parameters": sum(p.numel() for p in model.parameters())}
        print(f"{MODELS[name]}: test r {test['pearson']:.4f}, rho {test['spearman']:.4f}, "
              f"MSE {test['mse']:.4f} (best dev epoch {run['best_epoch']})", file=sys.stderr)

    print(table(results))
    if args.out:
        out = Path(args.out)
        settings = {key: value for key, value in vars(args).items()}
        write_text(out / "results.json", json.dumps({"settings": settings, "results": results},
                                                    indent=2) + "\n")
        write_text(out / "results.md", table(results) + "\n")
        print(f"written to {out}/results.json and {out}/results.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
