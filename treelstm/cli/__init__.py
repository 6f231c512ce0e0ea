"""The command line, ``python -m treelstm
{train,eval,compare,predict,sick-train,sick-eval,parser,parse,bench}``
(``--help`` on each): one module a concept.

* ``options`` -- option types (argparse names the option in an error) and shared option groups;
* ``defaults`` -- the library's defaults the parsers show, checked against the library in tests;
* ``guard`` -- how a run ends: signals (exit 130, 143), closed streams, one-line errors;
* ``command`` -- :class:`Command`: a parser factory and a run function, callable on its own;
* ``streams`` -- what ``predict`` and ``parse`` share: the same-file refusal, atomic output;
* ``train`` (``train``, ``eval``, ``compare``), ``predict``, ``sick`` (``sick-train``,
  ``sick-eval``), ``parse`` (``parser``, ``parse``), ``bench`` -- the commands;
* ``main`` -- the sub-parser tree and ``main()`` (``from treelstm.cli.main import main``; not
  re-exported here, where it would hide its module).

Building a parser, and ``--help``, imports neither torch nor the library's modules that do: the
commands import :mod:`treelstm.training`, :mod:`treelstm.predict` and :mod:`treelstm.sick` when
they run. ``examples/`` call ``train_command``, ``compare_command`` and ``sick_train_command``
(:class:`Command` objects, also importable from ``treelstm.__main__``).
"""
from .bench import bench_command
from .command import Command
from .main import COMMANDS, build_parser
from .predict import predict_command, predict_parser
from .sick import sick_eval_command, sick_eval_parser, sick_train_command, sick_train_parser
from .train import (CONFIG_FIELDS_SET_BY_COMMANDS, compare_command, compare_parser, eval_command,
                    eval_parser, train_command, train_parser)

__all__ = ["COMMANDS", "CONFIG_FIELDS_SET_BY_COMMANDS", "Command", "bench_command",
           "build_parser", "compare_command", "compare_parser", "eval_command", "eval_parser",
           "predict_command", "predict_parser", "sick_eval_command", "sick_eval_parser",
           "sick_train_command", "sick_train_parser", "train_command", "train_parser"]
