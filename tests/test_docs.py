"""The documentation's code works: README.md and every page of docs/ (``*.md``, ``*.rst``).

* Every Python block runs: fenced ```python blocks (Markdown / MyST), ``.. code-block:: python``
  and doctest blocks (``>>>``, whose printed output is compared). The blocks of one page run in
  order in one namespace, as a reader would type them, in a fresh temporary directory with the
  repository root on ``sys.path``. A block that needs what a machine may lack says so in a
  comment, ``# needs: sst`` (or ``sick``, ``gpu``, ``dgl``, ``nltk``, ``conllu``, ``scipy``,
  ``matplotlib``; several separated by commas), and is skipped with that reason only when it is
  absent; the real data sets are found as ``$TREELSTM_SST`` / ``$TREELSTM_SICK`` or in
  ``../shared/data/`` beside the checkout, and the blocks get those variables. Later blocks of a
  page must not depend on a skipped one.
* Every command line parses with the real parser: ``python -m treelstm COMMAND ...`` (also run
  as ``examples/train_sst.py``, ``examples/compare.py``, ``examples/train_sick.py`` or through
  ``torchrun``) with :func:`treelstm.cli.main.build_parser`, ``bench`` with
  ``benchmarks/bench.py``'s ``parse_args``; so an option removed or renamed in the code fails
  here. Shell blocks are parsed in full (a line may carry ``# needs: gpu``); inline code in the
  prose too, except that a shortened command there (``python -m treelstm eval``) may leave out
  its required arguments, and then each ``--option`` must be one of the command's. Other
  scripts must exist, ``make TARGET`` must be a target of the Makefile and ``pip install
  '.[EXTRA]'`` name extras of setup.cfg.
* The ``>>>`` examples in the library's docstrings run as doctests, and ``help()`` on the
  public modules' ``forward`` shows their own documentation, not ``nn.Module.forward``'s.
"""
from __future__ import annotations

import argparse
import contextlib
import doctest
import importlib
import importlib.util
import io
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PYTHON_LANGUAGES = {"python", "py", "python3", "pycon"}
SHELL_LANGUAGES = {"bash", "sh", "shell", "console", "shell-session", "zsh"}
# A script run as `python SCRIPT ...` whose command line is a treelstm command's.
SCRIPT_COMMANDS = {"examples/train_sst.py": "train", "examples/compare.py": "compare",
                   "examples/train_sick.py": "sick-train", "benchmarks/bench.py": "bench"}


def doc_files() -> list[Path]:
    pages = [p for p in sorted(DOCS.rglob("*")) if p.suffix in (".md", ".rst")
             and "_build" not in p.relative_to(DOCS).parts]
    return [REPO / "README.md"] + pages


def _name(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


# ------------------------------------------------------------------------------- extraction
@dataclass(frozen=True)
class Block:
    """A code block of a page: its language and text, and the line where its text starts."""

    path: Path
    line: int
    language: str
    text: str

    @property
    def where(self) -> str:
        return f"{_name(self.path)}:{self.line}"


_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>.*)$")
_RST_CODE = re.compile(r"^(?P<indent>\s*)\.\. (?:code-block|code|sourcecode)::\s*(?P<lang>\S*)\s*$")


def markdown_blocks(path: Path, text: str) -> tuple[list[Block], list[tuple[int, str]]]:
    """The fenced blocks of a Markdown / MyST page, and its other lines (numbered from 1)."""
    blocks, prose = [], []
    lines = text.splitlines()
    k = 0
    while k < len(lines):
        match = _FENCE.match(lines[k])
        if not match:
            prose.append((k + 1, lines[k]))
            k += 1
            continue
        fence, info = match["fence"], match["info"].strip()
        directive = re.match(r"\{([\w-]+)\}\s*(.*)", info)
        if directive:  # MyST: ```{code-block} python; other directives hold no code
            info = directive[2] if directive[1] in ("code-block", "code", "sourcecode") else ""
        language = info.split()[0].lower() if info else ""
        end = k + 1
        while end < len(lines) and not (lines[end].strip().startswith(fence[0] * len(fence))
                                        and not lines[end].strip().strip(fence[0])):
            end += 1
        first = k + 1
        while directive and first < end and lines[first].lstrip().startswith(":"):
            first += 1  # the directive's options
        blocks.append(Block(path, first + 1, language, "\n".join(lines[first:end]) + "\n"))
        k = end + 1
    return blocks, prose


def rst_blocks(path: Path, text: str) -> tuple[list[Block], list[tuple[int, str]]]:
    """``.. code-block:: LANG`` blocks and doctest blocks (``>>>`` paragraphs) of an rst page."""
    blocks, prose = [], []
    lines = text.splitlines()
    k = 0
    while k < len(lines):
        match = _RST_CODE.match(lines[k])
        if match:
            indent = len(match["indent"])
            k += 1
            while k < len(lines) and lines[k].strip().startswith(":"):  # options
                k += 1
            start = k
            while k < len(lines) and (not lines[k].strip() or
                                      len(lines[k]) - len(lines[k].lstrip()) > indent):
                k += 1
            body = lines[start:k]
            first = next((i for i, line in enumerate(body) if line.strip()), 0)
            blocks.append(Block(path, start + first + 1, match["lang"].lower(),
                                _dedent(body[first:])))
            continue
        if lines[k].lstrip().startswith(">>>"):
            start = k
            while k < len(lines) and lines[k].strip():
                k += 1
            blocks.append(Block(path, start + 1, "pycon", _dedent(lines[start:k])))
            continue
        prose.append((k + 1, lines[k]))
        k += 1
    return blocks, prose


def _dedent(lines: list[str]) -> str:
    width = min((len(line) - len(line.lstrip()) for line in lines if line.strip()), default=0)
    return "\n".join(line[width:] for line in lines).rstrip() + "\n"


def page(path: Path) -> tuple[list[Block], list[tuple[int, str]]]:
    text = path.read_text(encoding="utf-8")
    return markdown_blocks(path, text) if path.suffix == ".md" else rst_blocks(path, text)


def python_blocks(path: Path) -> list[Block]:
    return [block for block in page(path)[0] if block.language in PYTHON_LANGUAGES]


# ------------------------------------------------------------------------------ requirements
def _data_dir(name: str) -> Optional[Path]:
    """The real data set ``name`` (``sst``, ``sick``): ``$TREELSTM_<NAME>`` or the shared data
    folder beside the checkout (``../shared/data/<name>``), if it exists."""
    candidates = [os.environ.get(f"TREELSTM_{name.upper()}"), REPO.parent / "shared" / "data" / name]
    return next((Path(c) for c in candidates if c and Path(c).is_dir()), None)


def _importable(module: str) -> Callable[[], bool]:
    return lambda: importlib.util.find_spec(module) is not None


def _dgl_works() -> bool:
    try:
        from treelstm.dgl import import_dgl

        import_dgl()
        return True
    except ImportError:
        return False


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


#: ``# needs: NAME`` -> (is it here?, what is missing when it is not).
REQUIREMENTS: dict[str, tuple[Callable[[], bool], str]] = {
    "sst": (lambda: _data_dir("sst") is not None,
            "the real SST data is absent ($TREELSTM_SST or ../shared/data/sst)"),
    "sick": (lambda: _data_dir("sick") is not None,
             "the real SICK data is absent ($TREELSTM_SICK or ../shared/data/sick)"),
    "gpu": (_cuda, "no CUDA device"),
    "cuda": (_cuda, "no CUDA device"),
    "dgl": (_dgl_works, "dgl is not installed (pip install '.[dgl]')"),
    "nltk": (_importable("nltk"), "nltk is not installed"),
    "conllu": (_importable("conllu"), "conllu is not installed (pip install '.[data]')"),
    "scipy": (_importable("scipy"), "scipy is not installed"),
    "matplotlib": (_importable("matplotlib"), "matplotlib is not installed"),
}
_NEEDS = re.compile(r"#\s*needs:\s*([\w, -]+)")


def needs(text: str) -> list[str]:
    """The requirements a block (or command line) names in ``# needs:`` comments."""
    return [name.strip().lower() for match in _NEEDS.finditer(text)
            for name in match[1].split(",") if name.strip()]


def missing(text: str, where: str) -> Optional[str]:
    """Why a block cannot run here (its first missing requirement), or ``None``."""
    for name in needs(text):
        if name not in REQUIREMENTS:
            pytest.fail(f"{where}: unknown requirement '# needs: {name}'; known: "
                        f"{', '.join(REQUIREMENTS)}")
        available, reason = REQUIREMENTS[name]
        if not available():
            return f"{where}: {reason}"
    return None


# ------------------------------------------------------------------------------- Python blocks
def _python_cases() -> Iterator:
    for path in doc_files():
        for k, block in enumerate(python_blocks(path)):
            yield pytest.param(path, k, id=f"{_name(path)}:{block.line}")


@dataclass
class PageRun:
    """The state of one page's blocks: their namespace, directory and the first failure."""

    namespace: dict
    directory: Path
    failed: Optional[str] = None


@pytest.fixture(scope="module")
def page_runs() -> dict[Path, PageRun]:
    return {}


def run_block(block: Block, run: PageRun) -> None:
    """Execute (or doctest) ``block`` in the page's namespace; its line numbers in tracebacks
    are the page's."""
    if block.text.lstrip().startswith(">>>"):
        parser = doctest.DocTestParser()
        test = parser.get_doctest(block.text, run.namespace, block.where, str(block.path),
                                  block.line - 1)
        report = io.StringIO()
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS
                                       | doctest.NORMALIZE_WHITESPACE)
        runner.run(test, out=report.write, clear_globs=False)
        if runner.failures:
            pytest.fail(f"{block.where}: doctest failed\n{report.getvalue()}", pytrace=False)
        return
    code = compile("\n" * (block.line - 1) + block.text, str(block.path), "exec")
    exec(code, run.namespace)


@pytest.mark.parametrize("path, index", list(_python_cases()))
def test_python_block_runs(path, index, page_runs, tmp_path_factory, monkeypatch, one_thread):
    block = python_blocks(path)[index]
    run = page_runs.get(path)
    if run is None:
        directory = tmp_path_factory.mktemp(path.stem)
        run = page_runs[path] = PageRun({"__name__": "__main__"}, directory)
    if run.failed:
        pytest.skip(f"an earlier block of this page failed ({run.failed})")
    reason = missing(block.text, block.where)
    if reason:
        pytest.skip(reason)
    monkeypatch.chdir(run.directory)
    monkeypatch.syspath_prepend(str(REPO))
    for name in ("sst", "sick"):  # blocks find the real data through these, from any folder
        if _data_dir(name) is not None:
            monkeypatch.setenv(f"TREELSTM_{name.upper()}", str(_data_dir(name).resolve()))
    try:
        run_block(block, run)
    except BaseException:
        run.failed = block.where
        raise


# ------------------------------------------------------------------------------- command lines
@dataclass(frozen=True)
class CommandLine:
    path: Path
    line: int
    text: str
    inline: bool  # from inline code in the prose: possibly shortened

    @property
    def where(self) -> str:
        return f"{_name(self.path)}:{self.line}"


def _logical_lines(block: Block) -> Iterator[tuple[int, str]]:
    """The block's lines with ``\\`` continuations joined, and the number of the first."""
    pending, start = "", None
    for offset, raw in enumerate(block.text.splitlines()):
        line = re.sub(r"^\s*\$ ", "", raw) if start is None else raw
        if start is None:
            start = block.line + offset
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        yield start, pending + line
        pending, start = "", None
    if pending:
        yield start, pending


_INLINE = re.compile(r"(?<!`)(`+)(?!`)((?:(?!\n[ \t]*\n).)+?)(?<!`)\1(?!`)", re.DOTALL)
# A line (or a simple command after | ; &&) that starts one of the programs checked below.
_COMMAND_START = re.compile(r"(?:^|[|;&]\s*)(?:\S+=\S+\s+)*(?:\S*python3?\s|torchrun\s|make\s|pip\s)")


def command_lines(path: Path) -> list[CommandLine]:
    blocks, prose = page(path)
    found = []
    for block in blocks:
        if block.language in SHELL_LANGUAGES:
            for line, text in _logical_lines(block):
                if _COMMAND_START.search(text.strip() + " "):
                    found.append(CommandLine(path, line, text.strip(), inline=False))
    numbers = [number for number, _ in prose]
    text = "\n".join(line for _, line in prose)
    for match in _INLINE.finditer(text):
        code = " ".join(match[2].split())
        if path.suffix == ".rst" and len(match[1]) != 2:
            continue  # rst: ``literal``; `text` is a role or a reference
        if _COMMAND_START.search(code + " "):
            line = numbers[text.count("\n", 0, match.start())]
            found.append(CommandLine(path, line, code, inline=True))
    return found


def _segments(text: str) -> list[list[str]]:
    """The simple commands of a shell line: split on ``|``, ``&&``, ``||``, ``;``; comments and
    ``...`` (an elided rest) dropped."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    segments, current = [], []
    for token in lexer:
        if token in ("|", "||", "&&", ";", "&", ">", ">>", "<", "2>"):
            if token in (">", ">>", "<", "2>"):
                next(lexer, None)  # the redirection's file
                continue
            segments.append(current)
            current = []
        elif token not in ("...", "…"):
            current.append(token)
    segments.append(current)
    return [segment for segment in segments if segment]


def _strip_env(tokens: list[str]) -> list[str]:
    while tokens and re.fullmatch(r"[A-Za-z_]\w*=\S*", tokens[0]):
        tokens = tokens[1:]
    return tokens


@dataclass(frozen=True)
class Invocation:
    """A treelstm command as ``argv`` for its parser (``command`` ``None``: a script that is
    not one of the commands, checked to exist)."""

    command: Optional[str]
    argv: list
    script: Optional[str] = None


def invocation(tokens: list[str]) -> Optional[Invocation]:
    """What a simple command runs, if it is treelstm's; ``None`` for any other program."""
    tokens = _strip_env(tokens)
    if not tokens:
        return None
    program, rest = tokens[0], tokens[1:]
    if program == "torchrun":  # torchrun [its --options] (SCRIPT | -m MODULE) args
        while rest and rest[0].startswith("-") and rest[0] != "-m":
            option = rest.pop(0)
            if "=" not in option and rest and not rest[0].startswith("-") and \
                    not rest[0].endswith(".py"):
                rest.pop(0)  # the option's value: --nnodes 2
        return _python_target(rest)
    if re.fullmatch(r"(?:\S*/)?python3?(?:\.\d+)?", program):
        return _python_target(rest)
    return None


def _python_target(rest: list[str]) -> Optional[Invocation]:
    if rest[:2] == ["-m", "treelstm"]:
        argv = rest[2:]
        if not argv or argv[0].startswith("-"):
            return Invocation("", argv)
        return Invocation(argv[0], argv[1:])
    if rest and rest[0].endswith(".py"):
        script = rest[0]
        return Invocation(SCRIPT_COMMANDS.get(script), rest[1:], script)
    return None  # python -c ..., another module: not ours


def _subparsers(parser: argparse.ArgumentParser) -> dict:
    return next(action.choices for action in parser._actions
                if isinstance(action, argparse._SubParsersAction))


def command_parser(command: str) -> argparse.ArgumentParser:
    """The parser of ``python -m treelstm COMMAND`` (``""``: the top level)."""
    from treelstm.cli.main import build_parser

    parser = build_parser()
    if command == "":
        return parser
    commands = _subparsers(parser)
    if command not in commands:
        pytest.fail(f"python -m treelstm has no command {command!r} (commands: "
                    f"{', '.join(commands)}, bench)", pytrace=False)
    return commands[command]


@contextlib.contextmanager
def exact_options() -> Iterator[None]:
    """Parse without argparse's abbreviations, so that ``--batch`` in a page does not pass for
    ``--batch-size`` (nor an option renamed in the code for its new, longer name)."""
    get_option_tuples = argparse.ArgumentParser._get_option_tuples
    argparse.ArgumentParser._get_option_tuples = lambda self, option_string: []
    try:
        yield
    finally:
        argparse.ArgumentParser._get_option_tuples = get_option_tuples


def parse_bench(argv: list[str], where: str) -> None:
    """``benchmarks/bench.py``'s own ``parse_args`` (its parser and its checks after parsing)."""
    from helpers import load_script

    argv = [arg for arg in argv if arg not in ("-h", "--help")]
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()), \
                exact_options():
            load_script("benchmarks/bench.py").parse_args(argv)
    except SystemExit as exit:
        if exit.code:
            pytest.fail(f"{where}: bench {' '.join(argv)!r} does not parse:\n"
                        f"{errors.getvalue()}", pytrace=False)


def parse_fully(parser: argparse.ArgumentParser, argv: list[str], where: str,
                shortened: bool = False) -> None:
    """``parser.parse_args(argv)``, and the parser's own message as the failure. A
    ``shortened`` command (inline code: ``python -m treelstm eval``) may leave out required
    arguments; its options are checked then (:func:`check_options`)."""
    if any(arg in ("-h", "--help") for arg in argv):
        check_options(parser, [a for a in argv if a not in ("-h", "--help")], where)
        return
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()), \
                exact_options():
            parser.parse_args(argv)
    except SystemExit as exit:
        if not exit.code:
            return
        if shortened and "the following arguments are required" in errors.getvalue():
            check_options(parser, argv, where)
            return
        pytest.fail(f"{where}: {' '.join(argv)!r} does not parse:\n{errors.getvalue()}",
                    pytrace=False)


def check_options(parser: argparse.ArgumentParser, argv: list[str], where: str) -> None:
    """Each ``--option`` of ``argv`` is one of ``parser``'s, and a value after an option with
    choices is one of them."""
    actions = parser._option_string_actions
    for k, arg in enumerate(argv):
        if not arg.startswith("--"):
            continue
        name, _, value = arg.partition("=")
        if name not in actions:
            known = ", ".join(sorted(o for o in actions if o.startswith("--")))
            pytest.fail(f"{where}: {parser.prog} has no option {name} (it has {known})",
                        pytrace=False)
        action = actions[name]
        if not value and action.nargs != 0 and k + 1 < len(argv):
            value = argv[k + 1]
        if action.choices and value and value not in action.choices and \
                not re.fullmatch(r"[A-Z_]+", value):
            pytest.fail(f"{where}: {name} {value}: expected one of {list(action.choices)}",
                        pytrace=False)


def makefile_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([\w.-]+)\s*:(?!=)", text, re.MULTILINE))


def setup_extras() -> set[str]:
    import configparser

    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    return set(config["options.extras_require"])


def check_command_line(command_line: CommandLine) -> int:
    """Check every simple command of the line; the number of treelstm commands checked."""
    checked = 0
    for tokens in _segments(command_line.text):
        tokens = _strip_env(tokens)
        where = command_line.where
        if tokens[:1] == ["make"]:
            unknown = [t for t in tokens[1:] if not t.startswith("-") and "=" not in t
                       and t not in makefile_targets()]
            assert not unknown, f"{where}: no Makefile target {unknown} in {command_line.text!r}"
            continue
        if tokens[:2] == ["pip", "install"] or tokens[1:4] == ["-m", "pip", "install"]:
            for spec in tokens:
                extras = re.fullmatch(r"(?:\.|treelstm)\[([\w,]+)\]", spec)
                if extras:
                    unknown = set(extras[1].split(",")) - setup_extras()
                    assert not unknown, f"{where}: setup.cfg has no extra {sorted(unknown)}"
            continue
        target = invocation(tokens)
        if target is None:
            continue
        if target.script is not None and target.command is None:
            assert (REPO / target.script).is_file(), f"{where}: no script {target.script}"
            continue
        if target.command == "bench":
            parse_bench(target.argv, where)
        else:
            parse_fully(command_parser(target.command), target.argv, where,
                        shortened=command_line.inline)
        checked += 1
    return checked


def _command_cases() -> Iterator:
    for path in doc_files():
        for command_line in command_lines(path):
            yield pytest.param(command_line, id=f"{command_line.where}:{command_line.text[:40]}")


@pytest.mark.parametrize("command_line", list(_command_cases()))
def test_command_line_parses(command_line):
    reason = missing(command_line.text, command_line.where)
    if reason:
        pytest.skip(reason)
    check_command_line(command_line)


# ------------------------------------------------------------------------------- the checker
def test_the_extraction_finds_the_pages_code():
    """The extractor sees the blocks and commands the pages have (it would otherwise pass on
    nothing): the README's Python block and its command lines, a page of each kind."""
    readme = python_blocks(REPO / "README.md")
    assert readme and "TreeBatch.from_parents" in readme[0].text
    commands = [c.text for c in command_lines(REPO / "README.md")]
    assert any(c.startswith("python -m treelstm predict") for c in commands)
    assert any(c.startswith("torchrun") for c in commands)
    assert sum(len(python_blocks(path)) for path in doc_files()) >= 20
    assert sum(len(command_lines(path)) for path in doc_files()) >= 30


def test_the_command_check_refuses_a_removed_option(tmp_path):
    """What the command-line test would say of a page with an option the parser lacks."""
    page_path = tmp_path / "page.md"
    page_path.write_text("```bash\npython -m treelstm train --epochs 2 --no-such-option\n"
                         "python -m treelstm train --epoch 2\n"
                         "cat t.txt | python -m treelstm predict m.pt - --batch 8\n"
                         "python -m treelstm bench --method native\n```\n"
                         "Inline: `python -m treelstm eval --no-such-flag`.\n")
    *full, inline = command_lines(page_path)
    assert len(full) == 4 and not any(c.inline for c in full) and inline.inline
    for command_line, message in zip(full + [inline], ["no-such-option", "--epoch", "--batch",
                                                       "--method", "no-such-flag"]):
        with pytest.raises(pytest.fail.Exception, match=message):
            check_command_line(command_line)
    good = CommandLine(page_path, 1, "torchrun --nproc_per_node=2 examples/train_sst.py "
                       "--distributed --out runs/tree | tee log.txt", inline=False)
    assert check_command_line(good) == 1


# ----------------------------------------------------------------------------- docstrings
def doctest_modules() -> list[str]:
    """The library's modules with ``>>>`` examples in their source."""
    return [".".join(path.relative_to(REPO).with_suffix("").parts)
            for path in sorted((REPO / "treelstm").rglob("*.py"))
            if ">>>" in path.read_text(encoding="utf-8") and path.name != "__main__.py"]


@pytest.mark.parametrize("module_name", doctest_modules())
def test_docstring_examples_run(module_name, one_thread):
    import torch
    import treelstm

    module = importlib.import_module(module_name)
    globs = {"torch": torch, "nn": torch.nn}
    globs.update({name: getattr(treelstm, name) for name in treelstm.__all__})
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = io.StringIO()
    tests = finder.find(module, module_name, globs=dict(globs, **vars(module)))
    for test in tests:
        runner.run(test, out=report.write)
    assert not runner.failures, report.getvalue()
    assert any(test.examples for test in tests), f"{module_name}: no examples found"


#: The modules of the public nn.Modules.
MODULE_FILES = ["treelstm.models", "treelstm.cells", "treelstm.classifier", "treelstm.baseline",
                "treelstm.sick.model"]


def test_help_shows_treelstm_forward():
    """``help(treelstm.TreeLSTM.forward)`` is the Tree-LSTM's documentation, not
    ``nn.Module.forward``'s ("Define the computation performed at every call")."""
    import pydoc

    import treelstm

    text = pydoc.render_doc(treelstm.TreeLSTM.forward, renderer=pydoc.plaintext)
    assert "children before parents" in text and "input_index" in text
    assert "Define the computation" not in text


@pytest.mark.parametrize("module_name", MODULE_FILES)
def test_modules_forward_has_its_own_docstring(module_name):
    """Every public ``nn.Module`` of the library documents its own ``forward``: without a
    docstring, ``help()`` shows ``nn.Module.forward``'s, which is wrong for it."""
    import inspect

    from torch import nn

    module = importlib.import_module(module_name)
    undocumented = [
        f"{name}.forward ({inspect.getsourcefile(cls)}:{inspect.getsourcelines(cls.forward)[1]})"
        for name, cls in vars(module).items()
        if inspect.isclass(cls) and issubclass(cls, nn.Module) and not name.startswith("_")
        and cls.__module__ == module_name and "forward" in vars(cls)
        and not vars(cls)["forward"].__doc__]
    assert not undocumented, f"forward without a docstring: {', '.join(undocumented)}"
