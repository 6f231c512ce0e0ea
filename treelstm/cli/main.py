"""``python -m treelstm``: one sub-parser per command, each the command's own parser."""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from .bench import BENCH_HELP, bench_command
from .command import Command
from .guard import guarded
from .parse import parse_command, parser_command
from .predict import predict_command
from .sick import sick_eval_command, sick_train_command
from .train import compare_command, eval_command, train_command

#: name -> the command (its parser factory, runner and line in the command list).
COMMANDS: dict[str, Command] = {
    "train": train_command,
    "eval": eval_command,
    "compare": compare_command,
    "predict": predict_command,
    "sick-train": sick_train_command,
    "sick-eval": sick_eval_command,
    "parser": parser_command,
    "parse": parse_command,
}


def build_parser() -> argparse.ArgumentParser:
    """``python -m treelstm``: one sub-parser per command, each the same parser as the
    command's own (``train_parser`` ...)."""
    parser = argparse.ArgumentParser(
        prog="python -m treelstm",
        description="Tree-LSTMs for sentiment trees and sentence-pair relatedness (Tai, "
                    "Socher & Manning 2015).",
        epilog="--help after a command for its options, e.g. python -m treelstm train --help")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                     title="commands")
    for name, command in COMMANDS.items():
        template = command.make_parser(f"{parser.prog} {name}")
        sub_parser = commands.add_parser(name, parents=[template], add_help=False,
                                         help=command.help, description=template.description,
                                         epilog=template.epilog,
                                         formatter_class=template.formatter_class)
        sub_parser.set_defaults(parser=sub_parser)
    commands.add_parser("bench", help=BENCH_HELP, add_help=False)  # listed; runs its own parser
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m treelstm ARGV``: parse the command line and run the command; returns the exit
    status (0 done, 1 a failure while running, 2 bad options or input files, 130 / 143 Ctrl-C /
    SIGTERM)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # the benchmark parses its own options
        return bench_command(argv[1:], prog="python -m treelstm bench")
    try:  # checking --device loads torch: a second or so in which Ctrl-C may come
        args, unknown = build_parser().parse_known_args(argv)
    except KeyboardInterrupt:
        print("python -m treelstm: interrupted", file=sys.stderr)
        return 130
    if unknown:  # the command's own usage line, not the top level's
        args.parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    command = COMMANDS[args.command]
    return guarded(command.run, args, args.parser, command.interrupted_hint)
