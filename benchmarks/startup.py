"""Start-up time of the command line: ``python -m treelstm ... --help`` against ``import torch``.

Each command runs in a fresh Python process (as a user types it), ``--repeats`` times in round
robin, so that machine load hits every command alike; the table shows the median wall time per
command, measured around the whole process (interpreter start included) with
``time.perf_counter``. ``python -X importtime -m treelstm predict --help`` shows where the time
of one command goes.

Examples::

    python benchmarks/startup.py                  # 10 repeats
    python benchmarks/startup.py --repeats 5
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

REPO = Path(__file__).resolve().parents[1]

#: label -> the arguments of ``python``.
COMMANDS = {
    "python -m treelstm predict --help": ["-m", "treelstm", "predict", "--help"],
    "python -m treelstm --help": ["-m", "treelstm", "--help"],
    'python -c "import torch"': ["-c", "import torch"],
}


def time_once(arguments: Sequence[str]) -> float:
    """Seconds of one run of ``python *arguments`` in the repository root; output discarded."""
    start = time.perf_counter()
    subprocess.run([sys.executable, *arguments], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(repeats: int) -> dict[str, list[float]]:
    """label -> the wall times of its ``repeats`` runs (the commands taken in turn)."""
    times: dict[str, list[float]] = {label: [] for label in COMMANDS}
    for _ in range(repeats):
        for label, arguments in COMMANDS.items():
            times[label].append(time_once(arguments))
    return times


def table(times: dict[str, list[float]]) -> str:
    """A markdown table: median and fastest run per command."""
    lines = ["| command | median (s) | min (s) | runs |", "|---|---:|---:|---:|"]
    for label, runs in times.items():
        lines.append(f"| `{label}` | {statistics.median(runs):.3f} | {min(runs):.3f} | "
                     f"{len(runs)} |")
    return "\n".join(lines)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Median wall time of 'python -m treelstm predict --help', 'python -m "
                    "treelstm --help' and 'python -c \"import torch\"' (for comparison), each "
                    "in a fresh process; prints a markdown table.")
    parser.add_argument("--repeats", type=_positive_int, default=10,
                        help="runs of each command (default: %(default)s)")
    args = parser.parse_args(argv)
    print(table(measure(args.repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
