"""The command line's ``--help`` in the docs, taken from the real parsers when the docs are built,
so that the pages cannot drift from them.

* ``.. cli-help:: COMMAND``: what ``python -m treelstm COMMAND --help`` prints, as a literal
  block; ``COMMAND`` is a sub-command of :func:`treelstm.cli.main.build_parser` or ``bench``
  (whose parser is ``benchmarks/bench.py``'s); without an argument, ``python -m treelstm
  --help``.
* ``.. cli-commands::``: a section per command (every sub-command, in the parser's order), each
  with its ``--help``: a command added to the parser appears without editing the page.
"""
from __future__ import annotations

import contextlib
import io
import os

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles


def command_help(command: str) -> str:
    """What ``python -m treelstm COMMAND --help`` prints (at a fixed width of 100 columns)."""
    from treelstm.cli.main import build_parser, main

    old_columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal's width
    try:
        if not command:
            return build_parser().format_help()
        if command == "bench":  # its parser lives in benchmarks/bench.py and exits on --help
            text = io.StringIO()
            with contextlib.redirect_stdout(text), contextlib.suppress(SystemExit):
                main(["bench", "--help"])
            return text.getvalue()
        parser = build_parser()
        subparsers = next(action for action in parser._actions if action.choices
                          and command in action.choices)
        return subparsers.choices[command].format_help()
    finally:
        if old_columns is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old_columns


class CliHelp(SphinxDirective):
    optional_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        command = self.arguments[0] if self.arguments else ""
        try:
            text = command_help(command)
        except StopIteration:
            raise self.error(f"cli-help: no command {command!r} in python -m treelstm") from None
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


def command_names() -> list[str]:
    """The sub-commands of ``python -m treelstm``, in the parser's order."""
    from treelstm.cli.main import build_parser

    parser = build_parser()
    subparsers = next(action for action in parser._actions if action.choices)
    return list(subparsers.choices)


class CliCommands(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        text = StringList()
        for name in command_names():
            title = f"``{name}``"
            for line in (title, "-" * len(title), "", f".. cli-help:: {name}", ""):
                text.append(line, "<cli-commands>")
        container = nodes.container()
        nested_parse_with_titles(self.state, text, container)
        return container.children


def setup(app):
    app.add_directive("cli-help", CliHelp)
    app.add_directive("cli-commands", CliCommands)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
