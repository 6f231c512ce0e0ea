"""``predict``: label trees from a file or standard input with a checkpoint, streaming JSON
Lines; a thin wrapper around :mod:`treelstm.predict` (imported when the command runs)."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Callable, Optional

from .command import Command
from .defaults import PREDICT_DTYPES, PREDICT_FORMATS
from .options import (add_device_option, add_threads_option, positive_int, worker_count,
                      wrap)
from .streams import (ErrorReporter, close_streams, open_streams, output_problem, reporter,
                      run_stream)

_PREDICT_WINDOW = 4096



def predict_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    """The parser of ``python -m treelstm predict`` (``prog``: the program name its
    usage and errors show). Builds without importing torch."""
    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
        description=wrap("Label sentences or trees with a saved classifier (a Tree-LSTM or the "
                         "LSTM baseline), in batches, streaming: the input may be of any "
                         "length.",
                         "Input, one per line: a bracketed tree -- SST's, e.g. "
                         "'(3 (2 a) (3 (2 very) (4 good)))', or a parser's, e.g. '(ROOT (S (NP "
                         "(DT The) (NN movie)) (VP (VBD was) (ADJP (JJ great)))))' (labels are "
                         "not used; unary chains are collapsed and, for a binary N-ary model, "
                         "wider nodes binarised; needs nltk unless the tree is SST's own "
                         "format) -- a JSON object {\"parent\": [...], \"tokens\": [...]} "
                         "whose leaves are nodes 0..n-1 in sentence order and parent -1 marks "
                         "the root, or a sentence of plain text (tokenized as SST is; a "
                         "Tree-LSTM then needs --parser, an LSTM checkpoint does not). Blank "
                         "lines are skipped.",
                         "Output, JSON Lines in input order: {\"line\": N, \"label\": C, "
                         "\"probs\": [...]} per tree (N counts input lines from 1; label and "
                         "probs are the root's), plus \"node_labels\" (one per node, in the "
                         "tree's node order: leaves first) with --node-labels."),
        epilog=wrap("Lines are read --window at a time (the first window is one batch, each "
                    "next one twice the last: the first records come out soon), sorted by size "
                    "within the window, run in batches of at most --batch-trees trees and "
                    "--max-nodes nodes, and written back in input order, so memory stays "
                    "bounded. With --workers N, N forked processes read the next window (two "
                    "windows are held) while the model runs on this one.",
                    "--output is written to a temporary file beside it and renamed when the "
                    "run ends, so an interrupted run leaves a previous file as it was; it may "
                    "not be the input, the checkpoint or the --parser file (refused, also "
                    "through links).",
                    "Exit status: 0 done (with --skip-bad a malformed line becomes "
                    "{\"line\": N, \"error\": \"...\"} and the run goes on); 1 a malformed "
                    "input line, named in the message (on standard output the records of the "
                    "lines before it are written; an --output file is not written at all), or "
                    "output that could not be written (e.g. a full disk), or a --workers "
                    "process that died; 2 bad "
                    "options, or an unreadable checkpoint or input file. A "
                    "progress bar (when stderr is a terminal) and a last line with the "
                    "throughput (trees/s) go to stderr.",
                    "example: python -m treelstm predict runs/sst-tree5/best.pt "
                    "treelstm/datasets/sentiment/test.txt --output predictions.jsonl"))
    parser.add_argument("checkpoint", help="a checkpoint written by 'train' (best.pt)")
    parser.add_argument("input", nargs="?", default="-",
                        help="file of trees, one per line; '-' or nothing: standard input")
    _add_batching_options(parser)
    add_device_option(parser)
    parser.add_argument("--dtype", choices=PREDICT_DTYPES, default=None,
                        help="run under torch.autocast in this dtype (default: float32)")
    parser.add_argument("--parser", metavar="PARSER.pt", default=None, dest="parser_path",
                        help="a parser saved by 'python -m treelstm parser train', to turn "
                             "plain-text lines into trees for a Tree-LSTM checkpoint")
    parser.add_argument("--node-labels", action="store_true",
                        help="also write every node's label (Tree-LSTM checkpoints only)")
    parser.add_argument("--skip-bad", action="store_true",
                        help="write an error record for a malformed line and go on (default: "
                             "stop with exit status 1)")
    add_threads_option(parser)
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar and no throughput line on stderr (the bar is also "
                             "off when stderr is not a terminal)")
    return parser


def _add_batching_options(parser: argparse.ArgumentParser) -> None:
    """--format, --output and how lines are grouped into batches."""
    parser.add_argument("--format", choices=PREDICT_FORMATS, default="auto",
                        help="input lines: 'ptb' bracketed trees, 'jsonl' objects, 'text' "
                             "sentences, or 'auto': decided per line by its first character, "
                             "'(' a tree, '{' JSON, else text; a '(' line with words side "
                             "by side in one bracket, e.g. '(Not bad at all)', is an error "
                             "(default: %(default)s)")
    parser.add_argument("--output", "-o", metavar="FILE", default="-",
                        help="where the JSON lines go; '-': standard output (default)")
    parser.add_argument("--batch-trees", type=positive_int, default=256,
                        help="at most this many trees per forward pass (default: %(default)s)")
    parser.add_argument("--max-nodes", type=positive_int, default=8192,
                        help="at most this many nodes (LSTM: tokens) per forward pass; a larger "
                             "tree runs alone (default: %(default)s)")
    parser.add_argument("--window", type=positive_int, default=_PREDICT_WINDOW,
                        help="input lines held at once, sorted by size for batching "
                             "(default: %(default)s)")
    parser.add_argument("--workers", type=worker_count, default=0, metavar="N",
                        help="read lines into trees (parsing; plain text through --parser) in "
                             "N worker processes, one window ahead of the model, output order "
                             "kept; worth it for plain text through --parser with N >= 2 and "
                             "cores to spare (not for PTB lines, which read faster than trees "
                             "travel between processes) "
                             "(at most the CPUs this process may use; default: 0, in this process; "
                             "Linux only)")


def _run_predict(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import torch

    from ..predict import Predictor
    from ..training.config import resolve_device

    prog = parser.prog
    error = reporter(prog)
    problem = output_problem(args.output, args.input,
                             [("checkpoint", args.checkpoint), ("parser", args.parser_path)])
    if problem:
        return error(problem, 2)
    if args.input == "-" and sys.stdin is None:
        return error("standard input is closed; give an input FILE", 2)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
    except ValueError as problem:
        return error(str(problem), 2)
    predictor = _load(lambda: Predictor.from_checkpoint(args.checkpoint, device=device,
                                                        dtype=args.dtype), "checkpoint",
                      args.checkpoint, error)
    if isinstance(predictor, int):
        return predictor
    if args.node_labels and not predictor.labels_nodes:
        return error(f"--node-labels needs a Tree-LSTM checkpoint; {args.checkpoint} holds an "
                     f"{type(predictor.model).__name__} (sentence labels only)", 2)
    if args.parser_path is not None:
        if not predictor.reads_trees:
            print(f"{prog}: note: --parser is not used: {args.checkpoint} holds an "
                  f"{type(predictor.model).__name__}, which reads the words only",
                  file=sys.stderr)
        else:
            from ..inputs import load_text_parser

            parser_or_status = _load(lambda: load_text_parser(args.parser_path, device=device),
                                     "--parser", args.parser_path, error)
            if isinstance(parser_or_status, int):
                return parser_or_status
            predictor.parser = parser_or_status
    return _predict_to_output(args, predictor, device, error)


def _load(load: Callable, what: str, path: str, error: ErrorReporter):
    """``load()``, or the exit status 2 after a one-line error ``"{what} {path}: {reason}"``."""
    try:
        return load()
    except OSError as problem:
        reason = problem.strerror if problem.filename is not None and problem.strerror else \
            str(problem)
    except ValueError as problem:
        reason = str(problem)
    return error(f"{what} {path}: {reason.removeprefix(f'{path}: ')}", 2)


def _predict_to_output(args: argparse.Namespace, predictor, device, error: ErrorReporter) -> int:
    """Open the input and the output (an --output file: atomically) and stream the records."""
    streams = open_streams(args.input, args.output, error)
    if isinstance(streams, int):
        return streams
    source, sink = streams
    try:  # whatever ends the run (a signal may land anywhere), an uncommitted file goes
        return _stream_predictions(args, predictor, source, sink, device, error)
    finally:
        close_streams(source, sink)


def _stream_predictions(args: argparse.Namespace, predictor, source, sink, device,
                        error: ErrorReporter) -> int:
    """Write the records of ``source``'s lines to ``sink``; commit an --output file only when
    every line went through. Returns the exit status."""
    import time

    from ..predict import LineError, bounded_lines, predict_records
    from ..read_workers import WorkerDied
    from ..progress import tqdm_bar

    name = "<stdin>" if args.input == "-" else args.input
    where = "standard output" if sink is sys.stdout else args.output
    bar = None
    if not args.quiet and sys.stderr.isatty():
        bar = tqdm_bar(description="predict", unit=" trees", leave=True)  # None without tqdm
    records = predict_records(predictor, bounded_lines(source), format=args.format,
                              batch_trees=args.batch_trees, max_nodes=args.max_nodes,
                              window=args.window, node_labels=args.node_labels,
                              skip_bad=args.skip_bad, workers=args.workers)
    counts = {"trees": 0, "errors": 0}
    start = time.perf_counter()

    def write_records() -> Optional[str]:
        try:
            for record in records:
                sink.write(json.dumps(record, allow_nan=False) + "\n")
                counts["errors" if "error" in record else "trees"] += 1
                if bar is not None:
                    bar.update(1)
        except LineError as problem:
            return (f"{name}:{problem.lineno}: {problem.reason} (--skip-bad writes an error "
                    "record and goes on)")
        except WorkerDied as problem:
            return f"{name}: {problem}"
        return None

    status = run_stream(write_records, name, where, sink, args.output, error, bar)
    if status is not None:
        return status
    _report_throughput(args, counts, device, start, name)
    return 0


def _report_throughput(args: argparse.Namespace, counts: dict, device, start: float,
                       name: str) -> None:
    """The last line on stderr: trees/s since ``start`` (``time.perf_counter``), once the device
    has finished its work; a note instead when the input held no lines."""
    import time

    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    if args.quiet:
        return
    if counts["trees"] + counts["errors"] == 0:
        print(f"predict: note: {name} holds no lines to label (empty, or blank lines only): "
              "no records written", file=sys.stderr)
        return
    rate = counts["trees"] / seconds if seconds > 0 else float("inf")
    errors = counts["errors"]
    skipped = f", {errors} bad line{'s' if errors != 1 else ''} skipped" if errors else ""
    trees = counts["trees"]
    workers = f", {args.workers} reading worker{'s' if args.workers != 1 else ''}" \
        if args.workers else ""
    print(f"predict: {trees} tree{'s' if trees != 1 else ''} in {seconds:.2f} s: {rate:.0f} "
          f"trees/s ({device}, {args.dtype or 'float32'}, batches of <= {args.batch_trees} "
          f"trees / {args.max_nodes} nodes{workers}{skipped})", file=sys.stderr)


predict_command = Command(predict_parser, _run_predict,
                          "label trees from a file or stdin with a checkpoint (JSONL)")
