"""Speed of the SST/PTB line reader: the nltk-based reference against the hand-written reader.

Reads every line of the ``*.txt`` files in ``--data`` with both readers, in alternating passes
(so that both see the same machine load), checks that they agree, and prints the median time
per pass and per line, and the speed-up.

Examples::

    python benchmarks/ptb_reader.py                          # ../shared/data/sst next to the repo
    python benchmarks/ptb_reader.py --data treelstm/datasets/sentiment --repeats 3
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional

from treelstm.data.ptb import parse_ptb_line, parse_ptb_line_nltk

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "sst"  # ../shared/data/sst from the repository


def read_lines(data: Path, limit: Optional[int]) -> dict[str, list[str]]:
    """The non-blank lines of each ``*.txt`` file in ``data``, at most ``limit`` per file."""
    files = sorted(data.glob("*.txt"))
    if not files:
        raise SystemExit(f"ptb_reader: no *.txt files in {data}")
    lines = {}
    for path in files:
        text = path.read_text(encoding="utf-8-sig").splitlines()
        lines[path.name] = [line for line in text if line.strip()][:limit]
    return lines


def time_pass(read: Callable[[str], object], lines: list[str]) -> float:
    start = time.perf_counter()
    for line in lines:
        read(line)
    return time.perf_counter() - start


def nltk_import_seconds() -> float:
    """How long ``import nltk`` takes in a fresh interpreter (what the reader no longer pays)."""
    code = "import time; t = time.perf_counter(); import nltk; print(time.perf_counter() - t)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    return float(result.stdout)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="folder of SST-style *.txt files (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed passes over all lines per reader (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=None,
                        help="read at most this many lines per file (default: all)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")

    by_file = read_lines(args.data, args.limit)
    lines = [line for file_lines in by_file.values() for line in file_lines]
    print(f"data: {args.data.resolve()}")
    print("files: " + ", ".join(f"{name} ({len(v)} lines)" for name, v in by_file.items()))
    print(f"python {sys.version.split()[0]}; import nltk (fresh interpreter): "
          f"{nltk_import_seconds():.2f} s")

    mismatches = sum(parse_ptb_line(line) != parse_ptb_line_nltk(line) for line in lines)
    print(f"{len(lines)} lines; trees that differ between the readers: {mismatches}")

    readers = {"nltk reference": parse_ptb_line_nltk, "fast reader": parse_ptb_line}
    seconds: dict[str, list[float]] = {name: [] for name in readers}
    for _ in range(args.repeats):
        for name, read in readers.items():
            seconds[name].append(time_pass(read, lines))

    print()
    print(f"{'reader':<16}{'median s':>10}{'min s':>10}{'max s':>10}{'us/line':>10}"
          f"{'speed-up':>10}")
    reference = statistics.median(seconds["nltk reference"])
    for name, times in seconds.items():
        median = statistics.median(times)
        print(f"{name:<16}{median:>10.3f}{min(times):>10.3f}{max(times):>10.3f}"
              f"{1e6 * median / len(lines):>10.1f}{reference / median:>9.1f}x")
    print(f"({args.repeats} passes each over all {len(lines)} lines, alternating; medians)")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
