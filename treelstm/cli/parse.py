"""``parser train|eval`` and ``parse``: the unlabeled span parser of :mod:`treelstm.parse`
(imported when a command runs, not when its parser is built), and text -> bracketed trees that
``predict`` reads."""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from types import SimpleNamespace
from typing import Optional

from .command import Command, fail, setup
from .defaults import DEFAULT_DATA
from .streams import close_streams, open_streams, output_problem, reporter, run_stream
from .options import (add_budget_options, add_device_option, add_threads_option, layer_count,
                      layer_size, positive_float, positive_int, probability, wrap)

#: The defaults of :class:`treelstm.parse.ParserSettings`, field by field (checked against the
#: library in ``tests/test_parse.py``; repeated here so that ``--help`` loads no torch).
PARSER_DEFAULTS = SimpleNamespace(
    epochs=10, seed=0, embed_dim=100, hidden_size=200, mlp_size=200, num_layers=1, dropout=0.3,
    word_dropout=0.1, lr=2e-3, batch_size=32, clip_grad_norm=5.0, lower=True, data=None)
_SPLITS = ("train", "dev", "test")
_ASCII_SPACE = re.compile(r"[ \t\n\r\f\v]+")  # as the PTB reader splits fields (not U+00A0)
_BRACKET = re.compile(r"[()]")
_METHODS = (("right-branching", "right_branching"), ("balanced", "balanced"),
            ("parser", "parser"))


# --------------------------------------------------------------------------- parser train
def parser_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
        description=wrap("An unlabeled binary constituency parser learned from a treebank's own "
                         "trees (SST): the span-based parser of Stern, Andreas & Klein (2017) "
                         "-- a BiLSTM over the words, an MLP score for every span, the best "
                         "binary tree by CKY -- trained with the structured hinge loss. 'parse' "
                         "uses it on text."),
        epilog=wrap("example: python -m treelstm parser train --data ../shared/data/sst --out "
                    "runs/parser && python -m treelstm parser eval runs/parser/parser.pt"))
    actions = parser.add_subparsers(dest="parser_action", metavar="ACTION", required=True,
                                    title="actions")
    train = actions.add_parser(
        "train", help="train a parser on train.txt, keeping the best epoch on dev.txt",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=wrap("Train the span parser on DIR/train.txt (one bracketed tree per line, "
                         "as SST; labels unused) and keep the epoch with the best unlabeled "
                         "bracket F1 on DIR/dev.txt."),
        epilog=wrap("Writes to --out: parser.pt (the best epoch on dev; for 'parser eval' and "
                    "'parse'), checkpoint.pt (latest epoch: weights, optimizer, epoch, RNG "
                    "states; for --resume) and metrics.json (per-epoch history), each through "
                    "a temporary file renamed over the old one."))
    _add_train_options(train)
    train.set_defaults(parser=train)
    evaluate = actions.add_parser(
        "eval", help="unlabeled bracket scores of a parser and of two baseline trees",
        description="Unlabeled bracket precision, recall and F1 (evalb-style: spans of two or "
                    "more words but the whole sentence, micro-averaged) of a parser on a split, "
                    "beside right-branching and balanced trees, and its parse speed.")
    _add_eval_options(evaluate)
    evaluate.set_defaults(parser=evaluate)
    return parser


def _add_train_options(parser: argparse.ArgumentParser) -> None:
    defaults = PARSER_DEFAULTS
    parser.add_argument("--data", metavar="DIR", default=DEFAULT_DATA, type=os.path.abspath,
                        help="directory with train.txt and dev.txt, one bracketed tree per line "
                             "(default: the bundled synthetic treebank)")
    parser.add_argument("--out", metavar="DIR", default="runs/parser",
                        help="output directory (default: %(default)s)")
    add_budget_options(parser, epochs=defaults.epochs, seed=defaults.seed, items="trees",
                       seeded="the weights, the data order and dropout")
    parser.add_argument("--resume", action="store_true",
                        help="continue from --out/checkpoint.pt if it exists: the same result as "
                             "an uninterrupted run; --epochs may be raised, the other settings "
                             "must match")
    parser.add_argument("--overwrite", action="store_true",
                        help="start afresh even if --out holds a run, replacing its files "
                             "(default: refuse)")
    model = parser.add_argument_group("model and optimizer")
    model.add_argument("--embed-dim", type=layer_size, default=defaults.embed_dim,
                       help="word vector size (default: %(default)s)")
    model.add_argument("--hidden-size", type=layer_size, default=defaults.hidden_size,
                       help="LSTM state size per direction (default: %(default)s)")
    model.add_argument("--mlp-size", type=layer_size, default=defaults.mlp_size,
                       help="hidden size of the span-scoring MLP (default: %(default)s)")
    model.add_argument("--num-layers", type=layer_count, default=defaults.num_layers,
                       help="stacked BiLSTM layers (default: %(default)s)")
    model.add_argument("--dropout", type=probability, default=defaults.dropout,
                       help="dropout on word vectors and LSTM states (default: %(default)s)")
    model.add_argument("--word-dropout", type=probability, default=defaults.word_dropout,
                       help="probability of replacing a training word by the unknown word "
                            "(default: %(default)s)")
    model.add_argument("--keep-case", action="store_true",
                       help="a vocabulary of words as written (default: lower-cased)")
    model.add_argument("--lr", type=positive_float, default=defaults.lr,
                       help="Adam learning rate (default: %(default)s)")
    model.add_argument("--batch-size", type=positive_int, default=defaults.batch_size,
                       help="sentences per update (default: %(default)s)")
    model.add_argument("--clip-grad-norm", type=positive_float, metavar="MAX",
                       default=defaults.clip_grad_norm,
                       help="rescale gradients to a total 2-norm of at most MAX "
                            "(default: %(default)s)")
    add_device_option(parser)
    add_threads_option(parser)
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars and no per-epoch log (progress bars are also off "
                             "when stderr is not a terminal)")


def _run_parser(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    action = {"train": _run_parser_train, "eval": _run_parser_eval}[args.parser_action]
    return action(args, getattr(args, "parser", parser))


def _run_parser_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..data import read_ptb
    from ..parse import train_parser

    if not os.path.isdir(args.data):
        return fail(parser, ValueError(f"--data {args.data}: not a directory (expected one "
                                       "holding train.txt and dev.txt)"))
    progress = setup(args)
    try:
        splits = {split: read_ptb(os.path.join(args.data, f"{split}.txt"))
                  for split in ("train", "dev")}
        if args.max_train is not None:
            splits["train"] = splits["train"][:args.max_train]
        result = train_parser(
            splits["train"], splits["dev"], args.out, epochs=args.epochs, seed=args.seed,
            resume=args.resume, overwrite=args.overwrite, progress=progress, device=args.device,
            embed_dim=args.embed_dim, hidden_size=args.hidden_size, mlp_size=args.mlp_size,
            num_layers=args.num_layers, dropout=args.dropout, word_dropout=args.word_dropout,
            lr=args.lr, batch_size=args.batch_size, clip_grad_norm=args.clip_grad_norm,
            lower=not args.keep_case, data=args.data)
    except FileNotFoundError as error:
        return fail(parser, ValueError(f"{error.filename}: no such file (--data needs "
                                       "train.txt and dev.txt)"))
    except (ValueError, FileExistsError, FloatingPointError) as error:
        return fail(parser, error)
    except OSError as error:  # e.g. a full disk while writing a checkpoint
        return fail(parser, error, status=1)
    best = result.best
    print(f"best epoch {best['epoch']} of {len(result.history)}: dev unlabeled F1 "
          f"{100 * best['dev']['f1']:.2f}%")
    print(f"written to {args.out}/: parser.pt, checkpoint.pt, metrics.json")
    return 0


_PARSER_HINT = "; with 'parser train', checkpoint.pt holds the last finished epoch: --resume " \
              "goes on from there"


# ---------------------------------------------------------------------------- parser eval
def _add_eval_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", metavar="PARSER.pt", help="a parser.pt 'parser train' wrote")
    parser.add_argument("--data", metavar="DIR", default=None,
                        help="directory with <split>.txt (default: the --data of training)")
    parser.add_argument("--split", choices=_SPLITS, default="test",
                        help="which file to evaluate (default: %(default)s)")
    parser.add_argument("--json", metavar="FILE", default=None,
                        help="also write the scores to FILE as JSON (atomically)")
    parser.add_argument("--batch-size", type=positive_int, default=256,
                        help="sentences per forward pass (default: %(default)s)")
    add_device_option(parser)
    add_threads_option(parser)
    parser.add_argument("--quiet", action="store_true", help="no log lines")


def _run_parser_eval(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..data import read_ptb
    from ..files import same_file, write_text
    from ..parse import balanced, bracket_f1, evaluate_parser, read_parser, right_branching
    from ..training.config import resolve_device

    setup(args)
    try:
        loaded = read_parser(args.checkpoint, map_location=resolve_device(args.device))
        data = args.data or loaded.settings.data or DEFAULT_DATA
        path = os.path.join(data, f"{args.split}.txt")
        if args.json is not None:
            for what, other in (("parser", args.checkpoint), ("data", path)):
                if same_file(args.json, other):
                    raise ValueError(f"--json {args.json} is the {what} file ({other}); refusing "
                                     "to overwrite it: choose another file")
        trees = read_ptb(path)
    except (ValueError, OSError) as error:
        return fail(parser, error)
    scores = {"right_branching": bracket_f1(trees, [right_branching(t.tokens) for t in trees]),
              "balanced": bracket_f1(trees, [balanced(t.tokens) for t in trees]),
              "parser": evaluate_parser(loaded.parser, trees, batch_size=args.batch_size)}
    print(f"{args.checkpoint} on {path} ({len(trees)} sentences): unlabeled brackets "
          "(evalb-style)")
    print(f"{'':16} {'precision':>9} {'recall':>7} {'F1':>7} {'exact':>7}")
    for label, key in _METHODS:
        row = scores[key]
        print(f"{label:16} {100 * row['precision']:8.2f}% {100 * row['recall']:6.2f}% "
              f"{100 * row['f1']:6.2f}% {100 * row['exact']:6.2f}%")
    print(f"parse speed: {scores['parser']['sentences_per_s']:.0f} sentences/s "
          f"({loaded.parser.device}, threads: {args.threads or 'torch default'})")
    if args.json is not None:
        try:
            write_text(args.json, json.dumps({"parser_file": args.checkpoint, "data": path,
                                              "split": args.split, **scores}, indent=2) + "\n")
        except OSError as error:
            return fail(parser, error, status=1)
    return 0


parser_command = Command(parser_parser, _run_parser,
                         "train / evaluate the unlabeled span parser (parser train|eval)",
                         interrupted_hint=_PARSER_HINT)


# ----------------------------------------------------------------------------------- parse
def parse_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
        description=wrap("Parse tokenised text into binary trees with a parser from 'parser "
                         "train', streaming: one sentence per input line, its words separated "
                         "by spaces (already tokenised, as SST: \"It 's a lovely film .\"); one "
                         "bracketed tree per output line, in input order, with label 2 on "
                         "every node, e.g. \"(2 (2 It) (2 (2 's) ...))\": the input 'predict' "
                         "reads."),
        epilog=wrap("A blank input line gives a blank output line ('predict' skips it), so "
                    "output line N is always input line N. A bracket in a word is refused (SST "
                    "writes -LRB- and -RRB-), as are lines that are not UTF-8 or have more than "
                    "--max-words words.",
                    "Exit status: 0 done (with --skip-bad a bad line gives a blank output line "
                    "and a message on stderr); 1 a bad input line, named in the message (on "
                    "standard output the trees of the lines before it are written; an --output "
                    "file is not written at all), or output that could not be written; 2 bad "
                    "options, or an unreadable parser or input file.",
                    "example: python -m treelstm parse runs/parser/parser.pt sentences.txt -o "
                    "trees.txt && python -m treelstm predict runs/sst/best.pt trees.txt"))
    parser.add_argument("checkpoint", metavar="PARSER.pt", help="a parser.pt 'parser train' wrote")
    parser.add_argument("input", nargs="?", default="-",
                        help="file of sentences, one per line; '-' or nothing: standard input")
    parser.add_argument("--output", "-o", metavar="FILE", default="-",
                        help="where the trees go, written through a temporary file renamed when "
                             "complete; '-': standard output (default)")
    parser.add_argument("--skip-bad", action="store_true",
                        help="a bad line gives a blank output line and the run goes on "
                             "(default: stop with exit status 1)")
    parser.add_argument("--batch-size", type=positive_int, default=256,
                        help="sentences per forward pass (default: %(default)s)")
    parser.add_argument("--tokenize", action="store_true",
                        help="read raw text: tokenize each line as SST is (n't, 's, -LRB-, ...; "
                             "treelstm.data.tokenize) instead of splitting it at spaces")
    parser.add_argument("--max-words", type=positive_int, default=400,
                        help="longest sentence parsed, in words; CKY time grows with the cube "
                             "of the length (default: %(default)s)")
    parser.add_argument("--window", type=positive_int, default=1024,
                        help="input lines held at once (default: %(default)s)")
    add_device_option(parser)
    add_threads_option(parser)
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar and no throughput line on stderr")
    return parser


def _run_parse(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..parse import read_parser
    from ..training.config import resolve_device

    error = reporter(parser.prog)
    problem = output_problem(args.output, args.input, [("parser file", args.checkpoint)])
    if problem:
        return error(problem, 2)
    if args.input == "-" and sys.stdin is None:
        return error("standard input is closed; give an input FILE", 2)
    setup(args)
    try:
        loaded = read_parser(args.checkpoint, map_location=resolve_device(args.device))
    except (ValueError, OSError) as problem:
        return error(str(problem), 2)
    streams = open_streams(args.input, args.output, error)
    if isinstance(streams, int):
        return streams
    source, sink = streams
    try:  # whatever ends the run, an uncommitted --output file goes
        return _stream_trees(args, loaded.parser, source, sink, error)
    finally:
        close_streams(source, sink)


class _BadLine(Exception):
    """An input line that cannot be parsed: ``lineno`` (1-based) and the reason."""

    def __init__(self, lineno: int, reason: str):
        super().__init__(reason)
        self.lineno, self.reason = lineno, reason


def _words(line: bytes, lineno: int, max_words: int, tokenize: bool = False) -> list[str]:
    """The words of one input line (``[]`` for a blank line): split at whitespace, or with
    ``tokenize`` by :func:`treelstm.data.tokenize`; :class:`_BadLine` if it cannot be
    parsed."""
    from ..predict import MAX_LINE_BYTES

    if len(line) > MAX_LINE_BYTES:
        raise _BadLine(lineno, f"longer than {MAX_LINE_BYTES} bytes")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as problem:
        raise _BadLine(lineno, f"not valid UTF-8 ({problem.reason} at byte {problem.start})"
                       ) from None
    if lineno == 1:
        text = text.removeprefix("\ufeff")
    if tokenize:
        from ..data import tokenize as sst_tokens

        words = sst_tokens(text)
    else:
        words = [word for word in _ASCII_SPACE.split(text) if word]
    bracketed = next((word for word in words if _BRACKET.search(word)), None)
    if bracketed is not None:
        raise _BadLine(lineno, f"the word {bracketed[:40]!r} holds a bracket; write -LRB- / -RRB- "
                               "as SST does")
    if len(words) > max_words:
        raise _BadLine(lineno, f"{len(words)} words, more than --max-words {max_words}")
    return words


def _tree_line(tree) -> str:
    from ..data import SentimentTree, to_ptb_string

    return to_ptb_string(SentimentTree(tree.tokens, tree.parent, [2] * len(tree.parent)))


def _window_sentences(args: argparse.Namespace, name: str, window: list,
                      counts: dict) -> tuple[list[list[str]], Optional[str]]:
    """The words of a window's lines (``[]`` for a line skipped with --skip-bad), up to the
    first bad line without --skip-bad, and that line's message."""
    sentences: list[list[str]] = []
    for lineno, line in window:
        try:
            sentences.append(_words(line, lineno, args.max_words, args.tokenize))
        except _BadLine as bad:
            if not args.skip_bad:
                return sentences, (f"{name}:{bad.lineno}: {bad.reason} (--skip-bad writes a "
                                   "blank line and goes on)")
            print(f"{name}:{bad.lineno}: {bad.reason}; skipped (a blank output line)",
                  file=sys.stderr)
            counts["skipped"] += 1
            sentences.append([])
    return sentences, None


def _stream_trees(args: argparse.Namespace, span_parser, source, sink, error) -> int:
    """Parse ``source``'s lines a window at a time and write one line each to ``sink``; commit
    an --output file only when every line went through. Returns the exit status."""
    import time

    from ..predict import bounded_lines, iter_windows
    from ..progress import tqdm_bar

    name = "<stdin>" if args.input == "-" else args.input
    where = "standard output" if sink is sys.stdout else args.output
    bar = None
    if not args.quiet and sys.stderr.isatty():
        bar = tqdm_bar(description="parse", unit=" sentences", leave=True)
    counts = {"sentences": 0, "skipped": 0}
    start = time.perf_counter()
    lines = enumerate(bounded_lines(source), start=1)

    def write_trees() -> Optional[str]:
        for window in iter_windows(lines, args.window, first_window=min(64, args.window)):
            sentences, failure = _window_sentences(args, name, window, counts)
            words = [sentence for sentence in sentences if sentence]
            trees = iter(span_parser.parse(words, batch_size=args.batch_size))
            sink.write("".join((_tree_line(next(trees)) if sentence else "") + "\n"
                               for sentence in sentences))
            counts["sentences"] += len(words)
            if bar is not None:
                bar.update(len(sentences))
            if failure:
                return failure
        return None

    status = run_stream(write_trees, name, where, sink, args.output, error, bar)
    if status is not None:
        return status
    seconds = time.perf_counter() - start
    if not args.quiet and counts["sentences"]:
        skipped = f", bad lines skipped: {counts['skipped']}" if counts["skipped"] else ""
        print(f"parse: {counts['sentences']} sentences in {seconds:.2f} s: "
              f"{counts['sentences'] / max(seconds, 1e-9):.0f} sentences/s ({span_parser.device}"
              f"{skipped})", file=sys.stderr)
    return 0


parse_command = Command(parse_parser, _run_parse,
                        "parse tokenised text into binary trees (lines that predict reads)")
