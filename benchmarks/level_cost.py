"""What a single tree costs: the fixed part of a step and the part per level, native engine
against ``nn.LSTM`` on the same sentence.

A sentence of ``n`` words as a right-branching binary tree has ``n - 1`` levels above its
leaves, and ``nn.LSTM`` takes ``n`` time steps over it; timing both for several ``n`` and fitting
a line through the step times separates what a step pays once (the call, the projection, the
weight gradients, the autograd engine) from what each level or time step adds. The methods and
steps are those of ``benchmarks/bench.py`` (``native``: the N-ary model as a ``Predictor`` runs
it, with kept projections at inference; ``native-nocache``: the plain ``no_grad`` call; a sparse
embedding gradient in training), one tree at a time, 1 thread, CPU clock, median of
``--repeats`` steps after warm-up.

Examples::

    python benchmarks/level_cost.py
    python benchmarks/level_cost.py --words 2,5,9,17,33 --repeats 500
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (the methods of the speed benchmark)
from treelstm.cli.options import positive_int  # noqa: E402

METHODS = ("native", "native-nocache", "lstm")


def right_branching(num_words: int) -> bench.BinaryTree:
    """Words ``0..n-1`` under inner nodes ``n..2n-2``: node ``n + k`` has word ``k`` in slot 0
    and node ``n + k + 1`` (the last inner node: the last two words) in slot 1."""
    parent, position = [-1] * (2 * num_words - 1), [0] * (2 * num_words - 1)
    for k in range(num_words - 1):
        parent[k] = num_words + k
        child = num_words + k + 1 if k < num_words - 2 else num_words - 1
        parent[child], position[child] = num_words + k, 1
    return bench.BinaryTree(parent=parent, position=position, num_leaves=num_words,
                            token_ids=tuple(range(1, num_words + 1)))


def step_seconds(method: str, num_words: int, train: bool, repeats: int) -> float:
    work = bench.Workload.build([right_branching(num_words)], torch.device("cpu"),
                                vocab_size=num_words + 2)
    step = bench.make_step(method, work, bench.Config(), train)
    for _ in range(max(10, repeats // 10)):
        step()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        step()
        times.append(time.process_time() - start)
    return statistics.median(times)


def positive_ints(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}"
                                         ) from None
    if len(values) < 2 or min(values) < 2:
        raise argparse.ArgumentTypeError(f"expected at least two word counts >= 2, got {text!r}")
    return values


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Fixed and per-level cost of a single tree's "
                                     "step, native engine against nn.LSTM (1 thread, CPU clock).")
    parser.add_argument("--words", type=positive_ints, default=[2, 3, 5, 9, 17],
                        help="sentence lengths (default: 2,3,5,9,17)")
    parser.add_argument("--repeats", type=positive_int, default=300,
                        help="timed steps per cell, median taken (default: %(default)s)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    words = args.words
    for mode in ("train", "inference"):
        print(f"{mode}: ms per step of one right-branching tree (levels = words - 1)")
        print(f"{'method':<16}" + "".join(f"{f'{n} words':>10}" for n in words)
              + f"{'fixed ms':>10}{'ms/level':>10}")
        for method in METHODS:
            times = [step_seconds(method, n, mode == "train", args.repeats) * 1e3 for n in words]
            per_level, fixed = np.polyfit(np.array(words, dtype=float) - 1, times, 1)
            print(f"{method:<16}" + "".join(f"{t:>10.3f}" for t in times)
                  + f"{fixed:>10.3f}{per_level:>10.3f}")
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
