"""How every command starts and ends: ``TREELSTM_KERNELS=1`` without the C kernels (exit 2, before
any work), Ctrl-C (exit 130) and SIGTERM (exit 143) after the clean-up, a closed standard stream,
a reader of standard output that has gone, a full disk -- one line on stderr, never a
traceback."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Optional

#: What a command runs: ``run(args, parser)`` -> exit status.
Run = Callable[[argparse.Namespace, argparse.ArgumentParser], int]


class _Terminated(BaseException):
    """SIGTERM, raised like KeyboardInterrupt so that the same clean-up runs."""


def _raise_terminated(signum, frame) -> None:
    raise _Terminated()


def guarded(run: Run, args: argparse.Namespace, parser: argparse.ArgumentParser,
            interrupted_hint: str = "") -> int:
    """``run(args, parser)``; Ctrl-C (exit 130) and SIGTERM (exit 143) end it with one line
    (``interrupted_hint`` appended) after the clean-up (temporary files removed, earlier outputs
    left as they were)."""
    import signal
    import threading

    if sys.stderr is None:  # closed (2>&-): messages have nowhere to go, but run anyway
        sys.stderr = open(os.devnull, "w")
    if sys.stdout is None:  # closed (>&-)
        if getattr(args, "output", "-") == "-":
            print(f"{parser.prog}: error: standard output is closed; nothing could show the "
                  "results" + (" (give --output FILE)" if hasattr(args, "output") else ""),
                  file=sys.stderr)
            return 2
        sys.stdout = open(os.devnull, "w")
    refused = check_kernels(parser.prog)
    if refused is not None:
        return refused
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return run(args, parser)
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted{interrupted_hint}", file=sys.stderr)
        return 130
    except _Terminated:
        print(f"{parser.prog}: terminated{interrupted_hint}", file=sys.stderr)
        return 143
    except BrokenPipeError:
        return reader_gone()
    except OSError as error:  # e.g. the results printed to a full disk
        print(f"{parser.prog}: error: {error.strerror or error}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"{parser.prog}: error: out of memory (smaller sizes or batches?)",
              file=sys.stderr)
        return 1
    except RuntimeError as error:  # torch reports a failed allocation so
        text = str(error)
        if "alloc" not in text.lower() or "memory" not in text.lower():
            raise
        print(f"{parser.prog}: error: out of memory: {text.strip().splitlines()[0][:200]} "
              "(a huge tree or sentence? smaller inputs or batches)", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def check_kernels(prog: str) -> Optional[int]:
    """``TREELSTM_KERNELS`` before a command starts: set to 1, the C kernels are loaded now (the
    command would fail at its first model call otherwise); another value than 0, 1 or unset is
    refused. One line and exit status 2, or ``None`` when the command may run."""
    if os.environ.get("TREELSTM_KERNELS", "").strip() in ("", "0"):
        return None  # (nothing to check: no torch imported for it)
    from ..engine import kernels

    try:
        kernels.library()  # loads them now with TREELSTM_KERNELS=1, or raises
    except (ValueError, kernels.Unavailable) as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    return None


def reader_gone() -> int:
    """The reader of standard output has gone (e.g. ``| head``): stop quietly. Python would fail
    again flushing stdout at exit, so point it at /dev/null."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
