"""``python -m treelstm``: the command line lives in :mod:`treelstm.cli`.

The names below stay importable from here for the scripts that import them
(``from treelstm.__main__ import train_command`` in ``examples/``).
"""
import sys

from .cli import (COMMANDS, CONFIG_FIELDS_SET_BY_COMMANDS, bench_command, build_parser,
                  compare_command, compare_parser, eval_command, eval_parser, predict_command,
                  predict_parser, sick_eval_command, sick_eval_parser, sick_train_command,
                  sick_train_parser, train_command, train_parser)
from .cli.main import main
from .cli.options import MAX_LAYERS, MAX_SIZE, MAX_THREADS

__all__ = ["COMMANDS", "CONFIG_FIELDS_SET_BY_COMMANDS", "MAX_LAYERS", "MAX_SIZE", "MAX_THREADS",
           "bench_command", "build_parser", "compare_command", "compare_parser", "eval_command",
           "eval_parser", "main", "predict_command", "predict_parser", "sick_eval_command",
           "sick_eval_parser", "sick_train_command", "sick_train_parser", "train_command",
           "train_parser"]

if __name__ == "__main__":
    sys.exit(main())
