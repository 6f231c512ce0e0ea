"""End-to-end ``predict`` speed: the Tree-LSTM checkpoint against the LSTM checkpoint on the same
lines, in the same run, as a user runs it (a fresh ``python -m treelstm predict`` process each
time: start-up, checkpoint, parsing, batching, the model, JSON out).

    python benchmarks/predict_e2e.py --make-checkpoints runs/predict-bench   # once: 1 epoch each
    python benchmarks/predict_e2e.py runs/predict-bench/treelstm/best.pt runs/predict-bench/lstm/best.pt

Per checkpoint, the median over ``--repeats`` runs (interleaved, so that a busy machine slows
both alike) of: the wall time of the process; the time from its start to the first JSON line
on its standard output; the trees/s that ``predict`` reports itself (from its first line read to
its last line written, start-up and checkpoint loading excluded); and trees/s over the whole
wall time. The last column is the ratio to the first checkpoint's.
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "sst"
_RATE = re.compile(r"predict: (\d+) trees in [0-9.]+ s: (\d+) trees/s")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="End-to-end predict speed of checkpoints on the same lines (fresh processes, "
                    "medians of interleaved repeats).",
        epilog="Make the checkpoints once with --make-checkpoints DIR (1 epoch of train on "
               "--data each: the weights do not change the speed, the vocabulary size does).")
    parser.add_argument("checkpoints", nargs="*", help="best.pt files; the first is the "
                        "reference of the ratio column")
    parser.add_argument("--input", type=Path, default=None,
                        help="lines to label (default: --data's test.txt)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="an SST directory (default: ../shared/data/sst)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per checkpoint (default: 5)")
    parser.add_argument("--threads", type=int, default=1, help="predict --threads (default: 1)")
    parser.add_argument("--extra", default="", help="more predict options, e.g. '--workers 1'")
    parser.add_argument("--make-checkpoints", metavar="DIR", type=Path, default=None,
                        help="train DIR/treelstm and DIR/lstm for 1 epoch on --data, then stop")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.make_checkpoints is None and not args.checkpoints:
        parser.error("give checkpoints, or --make-checkpoints DIR")
    return args


def make_checkpoints(out: Path, data: Path) -> None:
    for model in ("treelstm", "lstm"):
        command = [sys.executable, "-m", "treelstm", "train", "--model", model, "--data",
                   str(data), "--epochs", "1", "--out", str(out / model), "--quiet",
                   "--overwrite", "--threads", "1"]
        print(" ".join(command), file=sys.stderr)
        subprocess.run(command, check=True, cwd=ROOT)
        print(out / model / "best.pt")


def run_once(checkpoint: str, input_path: Path, threads: int, extra: list[str]) -> dict:
    """One predict process: its wall time, time to the first record and reported rate."""
    with tempfile.TemporaryDirectory() as scratch:
        errors = Path(scratch) / "stderr"
        command = [sys.executable, "-m", "treelstm", "predict", checkpoint, str(input_path),
                   "--threads", str(threads), *extra]
        with open(errors, "w") as stderr:
            start = time.perf_counter()
            process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr)
            first = process.stdout.readline()
            first_time = time.perf_counter() - start
            lines = 1 + sum(1 for _ in process.stdout) if first else 0
            status = process.wait()
            wall = time.perf_counter() - start
        message = errors.read_text()
    if status != 0:
        raise SystemExit(f"predict failed (exit {status}): {' '.join(command)}\n{message[-2000:]}")
    match = _RATE.search(message)
    if match is None:
        raise SystemExit(f"no throughput line in predict's stderr:\n{message[-2000:]}")
    return {"wall": wall, "first": first_time, "rate": int(match.group(2)), "records": lines}


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.make_checkpoints is not None:
        make_checkpoints(args.make_checkpoints, args.data)
        return
    input_path = args.input or args.data / "test.txt"
    extra = args.extra.split()
    results = {checkpoint: [] for checkpoint in args.checkpoints}
    for _ in range(args.repeats):
        for checkpoint in args.checkpoints:
            results[checkpoint].append(run_once(checkpoint, input_path, args.threads, extra))
    print(f"predict end to end: {input_path}, --threads {args.threads} {args.extra}".rstrip()
          + f", median of {args.repeats}")
    print("| checkpoint | records | wall s | first record s | predict's trees/s "
          "| trees/s over wall | x first |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    reference = None
    for checkpoint, runs in results.items():
        wall = statistics.median(r["wall"] for r in runs)
        first = statistics.median(r["first"] for r in runs)
        rate = statistics.median(r["rate"] for r in runs)
        records = runs[0]["records"]
        reference = reference or rate
        print(f"| {checkpoint} | {records} | {wall:.2f} | {first:.2f} | {rate:.0f} | "
              f"{records / wall:.0f} | {rate / reference:.2f} |")


if __name__ == "__main__":
    main()
