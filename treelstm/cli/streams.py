"""What the streaming commands (``predict``, ``parse``) share: one-line errors, the refusal of
an ``--output`` that is one of the files read, and the input and output streams (an
``--output`` file written through :class:`~treelstm.files.AtomicOutput`)."""
from __future__ import annotations

import os
import sys
from typing import IO, Any, Callable, Optional, Sequence, Union

#: ``error(message, status)``: the message on stderr, returns the exit status.
ErrorReporter = Callable[[str, int], int]


def reporter(prog: str) -> ErrorReporter:
    """An :data:`ErrorReporter` writing ``prog: error: message``."""
    def error(message: str, status: int) -> int:
        print(f"{prog}: error: {message}", file=sys.stderr)
        return status
    return error


def output_problem(output: str, input: str, read: Sequence[tuple[str, Optional[str]]]
                   ) -> Optional[str]:
    """Why ``output`` may not be written: it is ``input`` (a path, or the file standard input
    reads) or one of the other files ``read`` (``(what, path)``), also through links."""
    from ..files import same_file

    if output == "-":
        return None
    named = [(what, path) for what, path in read if path is not None]
    if input != "-":
        named.append(("input", input))
    for what, path in named:
        if same_file(output, path):
            return (f"--output {output} is the {what} ({path}); refusing to overwrite it: "
                    "choose another output file")
    if input == "-" and sys.stdin is not None:  # standard input may be a file too
        try:
            stdin, target = os.fstat(sys.stdin.fileno()), os.stat(output)
        except (OSError, ValueError):  # no such output yet, or no real standard input
            return None
        if (stdin.st_dev, stdin.st_ino) == (target.st_dev, target.st_ino):
            return (f"--output {output} is the input (standard input); refusing to "
                    "overwrite it: choose another output file")
    return None


def open_streams(input: str, output: str, error: ErrorReporter) -> Union[int, tuple[IO, IO]]:
    """``(source, sink)``: the input in binary, and standard output or an ``AtomicOutput``
    beside ``output`` (stale temp files of an earlier killed run cleared); or the exit status 2
    after a one-line error. Close them with :func:`close_streams`."""
    from ..files import AtomicOutput, remove_stale_temp_files

    if input == "-" and sys.stdin is None:
        return error("standard input is closed; give an input FILE", 2)
    try:
        source = sys.stdin.buffer if input == "-" else open(input, "rb")
    except OSError as problem:
        return error(f"input {input}: {problem.strerror or problem}", 2)
    try:
        # written beside itself and renamed when complete: an interrupted run leaves the
        # previous file as it was (and the next run clears what a kill -9 left)
        if output != "-":
            target = os.path.realpath(output)
            remove_stale_temp_files(os.path.dirname(target), [os.path.basename(target)])
        sink = sys.stdout if output == "-" else AtomicOutput(output)
    except OSError as problem:
        if source is not sys.stdin.buffer:
            source.close()
        folder = os.path.dirname(output)
        reason = f"the folder {folder} does not exist" if folder and not os.path.isdir(folder) \
            else problem.strerror or problem
        return error(f"--output {output}: {reason}", 2)
    return source, sink  # type: ignore[return-value]


def close_streams(source: IO, sink: IO) -> None:
    """Discard an uncommitted ``AtomicOutput`` (nothing once committed) and close a file."""
    discard = getattr(sink, "discard", None)
    if sink is not sys.stdout and discard is not None:
        discard()
    if source is not sys.stdin.buffer:
        source.close()


def finish_output(sink: IO, failure: Optional[str], where: str,
                  error: ErrorReporter) -> Optional[int]:
    """Flush standard output, or commit the --output file if no line failed; an exit status if
    that went wrong, else None."""
    from .guard import reader_gone

    try:
        if sink is sys.stdout:
            sink.flush()  # the records before a bad line are out already
        elif not failure:
            sink.commit()  # type: ignore[attr-defined]
    except BrokenPipeError:
        return reader_gone()
    except OSError as problem:
        return error(f"{where}: {problem.strerror or problem}", 1)
    return None


def run_stream(body: Callable[[], Optional[str]], name: str, where: str, sink: IO,
               output: Optional[str], error: ErrorReporter, bar: Any = None) -> Optional[int]:
    """Run ``body`` (it reads ``name`` and writes to ``sink``, and returns the message of a bad
    line that stopped it, or ``None``), close the progress ``bar``, then flush standard output or
    commit the ``output`` file (not when a line failed). Returns the exit status of a failure
    (a reader gone, an OSError reading or writing, the bad line), or ``None`` when all went
    through."""
    from .guard import reader_gone

    try:
        failure = body()
    except BrokenPipeError:
        return reader_gone()
    except OSError as problem:  # reading the input, or writing: a full disk
        return error(f"{name} -> {where}: {problem.strerror or problem}", 1)
    finally:
        if bar is not None:
            bar.close()
    status = finish_output(sink, failure, where, error)
    if status is not None:
        return status
    if failure:  # no throughput line after it: it would read as a success
        if sink is not sys.stdout:
            failure += f"; {output} was not written (the previous file is as it was)"
        return error(failure, 1)
    return None
