"""One cell of the speed benchmark measured steadily: the engine and ``nn.LSTM`` timed in turns in
one process (CPU clock, 1 thread), the median of the turns each, and their ratio. Where a bench
run times its methods one after another and a noisy machine moves its ratios by ±10%, turns
see the same machine state; and ``--checkout`` measures another checkout's code (an older one,
for before -> after), so two versions can be run alternately:

    for run in 1 2 3 4 5; do
      for checkout in ../before .; do
        python benchmarks/interleaved.py --checkout $checkout --batch-size 25
      done
    done

Prints one line: ``checkout B=.. method mode: engine .. ms, nn.LSTM .. ms, ratio ..x``.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkout", type=Path, default=Path(__file__).resolve().parents[1],
                        help="the checkout whose treelstm and benchmarks/bench.py are measured "
                             "(default: this one)")
    parser.add_argument("--batch-size", type=int, default=25, help="trees per step (default 25)")
    parser.add_argument("--method", default="native-nocache",
                        help="a bench method: native, native-nocache (default), native-childsum")
    parser.add_argument("--mode", choices=("inference", "train"), default="inference")
    parser.add_argument("--turns", type=int, default=9, help="turns each (default 9)")
    parser.add_argument("--turn-time", type=float, default=0.2,
                        help="seconds of steps per turn (default 0.2)")
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.turns < 1 or args.turn_time <= 0:
        parser.error("--batch-size and --turns must be positive, --turn-time above 0")
    checkout = args.checkout.resolve()
    if not (checkout / "benchmarks" / "bench.py").is_file():
        parser.error(f"--checkout {checkout}: no benchmarks/bench.py there")
    sys.path[:0] = [str(checkout), str(checkout / "benchmarks")]
    import bench  # the checkout's (and through it, its treelstm)
    import torch
    import treelstm

    if Path(treelstm.__file__).resolve().parents[1] != checkout:
        parser.error(f"--checkout {checkout}: treelstm was imported from {treelstm.__file__}")

    torch.set_num_threads(1)
    trees = bench.random_sst_like_trees(8544, seed=0)
    vocab_size = 1 + max(i for t in trees for i in t.token_ids) + 1
    sample = random.Random(f"0-{args.batch_size}").sample(trees, args.batch_size)  # as bench
    work = bench.Workload.build(sample, torch.device("cpu"), vocab_size)
    train = args.mode == "train"
    engine = bench.make_step(args.method, work, bench.Config(), train)
    lstm = bench.make_step("lstm", work, bench.Config(), train)

    def seconds(step, count: int) -> float:
        start = time.process_time()
        for _ in range(count):
            step()
        return (time.process_time() - start) / count

    for step in (engine, lstm):
        for _ in range(5):
            step()
    count = max(1, int(args.turn_time / seconds(engine, 3)))
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(args.turns):
        times[0].append(seconds(engine, count))
        times[1].append(seconds(lstm, count))
    ours, theirs = (statistics.median(t) for t in times)
    print(f"{checkout} B={args.batch_size} {args.method} {args.mode}: engine {ours * 1e3:.3f} "
          f"ms, nn.LSTM {theirs * 1e3:.3f} ms, ratio {theirs / ours:.3f}x")
    return theirs / ours


if __name__ == "__main__":
    main()
