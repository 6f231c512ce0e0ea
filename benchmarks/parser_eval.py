"""Unlabeled bracket F1 of the span parser against two baseline trees, and its parse speed.

Reads ``--data/<split>.txt`` (SST test by default), builds right-branching and balanced trees
and the trained parser's trees for the same sentences, and prints one markdown table:
precision, recall, F1 (evalb-style: spans of two or more words but the whole sentence,
micro-averaged) and exact match. Then times parsing the split (``--repeats`` passes, median)
on one thread.

Examples::

    python benchmarks/parser_eval.py runs/parser/parser.pt   # ../shared/data/sst, test split
    python benchmarks/parser_eval.py runs/parser/parser.pt --split dev --repeats 1
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Optional

import torch

from treelstm.data import read_ptb
from treelstm.parse import balanced, bracket_f1, load_parser, right_branching

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "sst"  # ../shared/data/sst from the repository


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parser_file", metavar="PARSER.pt", type=Path,
                        help="a parser written by 'python -m treelstm parser train'")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="folder of SST-style <split>.txt files (default: %(default)s)")
    parser.add_argument("--split", choices=("train", "dev", "test"), default="test",
                        help="which file (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=256,
                        help="sentences per forward pass (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed parsing passes over the split (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.batch_size < 1:
        parser.error("--repeats and --batch-size must be at least 1")

    torch.set_num_threads(1)
    trees = read_ptb(args.data / f"{args.split}.txt")
    sentences = [tree.tokens for tree in trees]
    span_parser, _ = load_parser(args.parser_file)
    seconds, parsed = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        parsed = span_parser.parse(sentences, batch_size=args.batch_size)
        seconds.append(time.perf_counter() - start)
    rows = {"right-branching": bracket_f1(trees, [right_branching(s) for s in sentences]),
            "balanced": bracket_f1(trees, [balanced(s) for s in sentences]),
            f"span parser ({args.parser_file})": bracket_f1(trees, parsed)}

    words = sum(len(s) for s in sentences)
    print(f"{args.data / args.split}.txt: {len(trees)} sentences, {words} words; unlabeled "
          f"brackets, evalb-style; parser {span_parser.extra_repr()}")
    print()
    print("| trees | precision | recall | F1 | exact match |")
    print("|---|---:|---:|---:|---:|")
    for name, row in rows.items():
        print(f"| {name} | {100 * row['precision']:.2f} | {100 * row['recall']:.2f} | "
              f"{100 * row['f1']:.2f} | {100 * row['exact']:.2f} |")
    median = statistics.median(seconds)
    print()
    print(f"parse speed (1 thread, CPU, batches of {args.batch_size}): "
          f"{len(sentences) / median:.0f} sentences/s, {words / median:.0f} words/s "
          f"(median of {args.repeats} passes: {median:.2f} s; min {min(seconds):.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
