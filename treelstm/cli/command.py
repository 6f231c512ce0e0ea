"""A command of ``python -m treelstm``: its parser and what it runs, callable on its own; and
the first and last steps its run shares with the others (logging and threads, a one-line error)."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable, NamedTuple, Optional, Sequence

from .guard import Run, guarded


class Command(NamedTuple):
    """One command: ``make_parser(prog)`` builds its parser (no torch: ``--help`` stays fast),
    ``run(args, parser)`` does the work and returns the exit status, ``help`` is its line in
    ``python -m treelstm --help``, ``interrupted_hint`` ends the line of an interrupted run.

    ``command(argv, prog)`` runs it as a program of its own (``examples/train_sst.py`` calls
    ``train_command(prog="train_sst.py")``) and returns the exit status."""

    make_parser: Callable[[Optional[str]], argparse.ArgumentParser]
    run: Run
    help: str
    interrupted_hint: str = ""

    def __call__(self, argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
        parser = self.make_parser(prog)
        return guarded(self.run, parser.parse_args(argv), parser, self.interrupted_hint)


def setup(args: argparse.Namespace) -> bool:
    """Logging and threads; returns whether to show progress bars."""
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(message)s", stream=sys.stderr)
    return not args.quiet and sys.stderr.isatty()


def fail(parser: argparse.ArgumentParser, error: Exception, status: int = 2) -> int:
    """``prog: error: ...`` on stderr and exit with ``status`` (argparse's way, no usage line)."""
    parser.exit(status, f"{parser.prog}: error: {error}\n")
    return status
