"""Reading lines into trees in worker processes (``predict --workers N``).

Turning a line into a tree -- PTB bracket parsing, JSON, and above all plain text through a
parser (:mod:`treelstm.parse`) -- runs on one core beside the model unless it is given to other
processes. :class:`ReadWorkers` hands each window of lines to ``N`` worker processes in parts of
at most :data:`PART_LINES` lines, while the caller runs the model on the window before: one
window is read ahead, results come back in input order, and at most two windows are held.

The workers are forked from the caller (they inherit the predictor and its parser; nothing is
pickled but lines and trees), so this needs the ``fork`` start method (Linux; the default
there). Each worker runs torch with one thread, ignores Ctrl-C, which the caller handles, and
is killed when the caller dies (``kill -9`` included); a worker that dies (killed, out of
memory) is a ``RuntimeError`` naming ``--workers``, not a hang.
"""
from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Optional, TypeVar, Union, cast

from .cpus import check_worker_count
from .data import SentimentTree
from .iterate import chunks

if TYPE_CHECKING:
    from .predict import Predictor

__all__ = ["ReadWorkers", "PART_LINES", "read_ahead"]

#: Lines per task given to a worker: small enough to spread a window over the workers, large
#: enough for the parser's batches (plain text: 128-line parts read 1.3 s of SST test with 2
#: workers, 256-line parts 1.0 s) and for sending the lines and the trees back to cost little.
PART_LINES = 256

T = TypeVar("T")
Read = list[Union[SentimentTree, ValueError, TypeError]]

_predictor: Optional["Predictor"] = None  # a worker's, set by _start_worker
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _start_worker(predictor: "Predictor", parent: int) -> None:
    global _predictor
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    # Not the parent's handlers (the command line's turns SIGTERM into an exception): a worker
    # told to stop -- by the pool when another died, by a user -- stops at once, even while it
    # is blocked writing its result.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _exit_with_parent(parent)
    import torch

    torch.set_num_threads(1)
    _predictor = predictor


def _exit_with_parent(parent: int) -> None:
    """Have this worker killed when ``parent`` dies (``kill -9`` gives it no chance to stop us):
    Linux's ``PR_SET_PDEATHSIG``, else a thread that watches the parent id."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
            raise OSError(ctypes.get_errno(), "prctl")
    except (OSError, AttributeError):
        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1.0)
            os._exit(1)
        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent:  # it died before we asked
        os._exit(1)


def _read_part(lines: Any, format: str) -> Read:
    if _predictor is None:  # _start_worker sets it in every worker
        raise RuntimeError("read_workers: a worker without its predictor")
    return _predictor.read_items(lines, format)


class ReadWorkers:
    """``workers`` processes that read lines into trees for ``predictor`` (see the module
    docstring); a context manager that stops them on exit.

    Raises:
        ValueError: ``workers`` is not a positive integer, or this platform cannot fork.
    """

    def __init__(self, predictor: "Predictor", workers: int) -> None:
        check_worker_count("ReadWorkers", "workers", workers)
        if workers == 0:
            raise ValueError("ReadWorkers: workers must be at least 1")
        if "fork" not in multiprocessing.get_all_start_methods():
            raise ValueError("--workers needs the 'fork' start method, which this platform "
                             "lacks; run without --workers")
        self.predictor, self.workers = predictor, workers
        self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                         initializer=_start_worker,
                                         initargs=(predictor, os.getpid()))

    def submit(self, lines: list[Union[str, bytes]], format: str) -> list[Future]:
        """Start reading ``lines`` (in parts); :meth:`result` gives the trees."""
        try:
            return [self._pool.submit(_read_part, part, format)
                    for part in chunks(lines, PART_LINES)]
        except BrokenProcessPool as error:
            raise self._died() from error

    def result(self, futures: list[Future]) -> Read:
        """The trees (or errors) of a :meth:`submit`, in line order, each tree checked against
        the model (:meth:`~treelstm.predict.Predictor.check_tree`) here."""
        trees: Read = []
        try:
            for future in futures:
                trees += future.result()
        except BrokenProcessPool as error:
            raise self._died() from error
        return [self.predictor.checked(tree) for tree in trees]

    def _died(self) -> RuntimeError:
        return RuntimeError(f"a --workers process died (killed, or out of memory?) while "
                            f"reading lines (one of {self.workers} worker processes)")

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "ReadWorkers":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def read_ahead(predictor: "Predictor", windows: Iterable[T], lines_of: Any, format: str,
               workers: int) -> Iterator[tuple[T, Read]]:
    """``(window, its trees)`` for each of ``windows``, in order; ``lines_of(window)`` gives the
    lines to read. Without workers (``0``) each window is read when it is asked for; with
    workers, the next window is read while the caller works on this one."""
    if workers == 0:
        for window in windows:
            yield window, predictor.to_trees(lines_of(window), format)
        return
    readers: Optional[ReadWorkers] = None
    try:
        pending: deque[tuple[T, list[Future]]] = deque()
        for window in windows:
            lines = lines_of(window)
            if readers is None:
                # One line read here first: what the first read loads or builds lazily (nltk,
                # the parser's first pass: ~0.7 s for text) is then done once, before the fork,
                # not once in every worker.
                predictor.read_items(lines[:1], format)
                readers = ReadWorkers(predictor, workers)
            pending.append((window, readers.submit(lines, format)))
            if len(pending) == 2:
                done, futures = pending.popleft()
                yield done, readers.result(futures)
        while pending:
            done, futures = pending.popleft()
            yield done, cast(ReadWorkers, readers).result(futures)
    finally:
        if readers is not None:
            readers.close()
