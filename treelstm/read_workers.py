"""Reading lines into trees in worker processes (``predict --workers N``).

Turning a line into a tree -- PTB bracket parsing, JSON, and above all plain text through a
parser (:mod:`treelstm.parse`) -- runs on one core beside the model unless it is given to other
processes. :func:`read_ahead` has a thread pull the windows of lines and hand each to
:class:`ReadWorkers` (``N`` worker processes, parts of at most :data:`PART_LINES` lines) while
the caller runs the model on the window before: one window is read ahead, results come back in
input order as soon as they are read (not when the next window has arrived), and at most two
windows are held.

The workers are forked from the caller (they inherit the predictor and its parser; nothing is
pickled but lines and trees), so this needs the ``fork`` start method (Linux; the default
there). Each worker runs torch with one thread, ignores Ctrl-C, which the caller handles, stops
at once on SIGTERM, and is killed when the caller dies (``kill -9`` included). The caller kills
them at once when it stops early (Ctrl-C, an error) and at exit; a worker that dies (killed, out
of memory) or cannot be started is a :class:`WorkerDied` naming ``--workers``, not a hang.
"""
from __future__ import annotations

import atexit
import ctypes
import multiprocessing
import os
import queue
import signal
import threading
import time
from multiprocessing.connection import Connection, wait
from typing import (TYPE_CHECKING, Any, Generator, Iterable, Iterator, NamedTuple, Optional, TypeVar, Union,
                    cast)

from .cpus import check_worker_count
from .data import SentimentTree
from .iterate import chunks

if TYPE_CHECKING:
    from .predict import Predictor

__all__ = ["ReadWorkers", "WorkerDied", "PART_LINES", "read_ahead"]

#: Lines per task given to a worker: small enough to spread a window over the workers, large
#: enough for the parser's batches (plain text: 128-line parts read 1.3 s of SST test with 2
#: workers, 256-line parts 1.0 s) and for sending the lines and the trees back to cost little.
PART_LINES = 256

T = TypeVar("T")
Read = list[Union[SentimentTree, ValueError, TypeError]]

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _start_worker(parent: int) -> None:
    """A worker's set-up, once, before its first part."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    # Not the parent's handlers (the command line's turns SIGTERM into an exception): a worker
    # told to stop -- by a user, by the system -- stops at once, even while it is blocked
    # writing its result.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _exit_with_parent(parent)
    import torch

    torch.set_num_threads(1)


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


def _serve(predictor: "Predictor", parent: int, connection: Connection) -> None:
    """A worker: read ``(lines, format)`` parts from ``connection`` and send back their trees
    (or the error that reading raised), in order, until ``None`` or the end of the pipe."""
    _start_worker(parent)
    while True:
        try:
            task = connection.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        lines, format = task
        try:
            reply: tuple = ("trees", predictor.read_items(lines, format))
        except Exception as error:  # sent as text: it may not pickle
            reply = ("error", f"{type(error).__name__}: {error}")
        connection.send(reply)


class WorkerDied(RuntimeError):
    """A worker process died (killed, out of memory) while it read lines, or could not be
    started."""


class ReadWorkers:
    """``workers`` processes that read lines into trees for ``predictor`` (see the module
    docstring), each with its own pipe: parts go to them in turn and come back in the same
    order. A worker that dies -- even halfway through sending a result -- is seen on its own
    pipe (its end closes) and is a :class:`WorkerDied`, never a wait forever. A context manager
    that stops them on exit.

    Raises:
        ValueError: ``workers`` is not a positive integer, or this platform cannot fork.
        WorkerDied: a process could not be started.
    """

    def __init__(self, predictor: "Predictor", workers: int) -> None:
        check_worker_count("ReadWorkers", "workers", workers)
        if workers == 0:
            raise ValueError("ReadWorkers: workers must be at least 1")
        if "fork" not in multiprocessing.get_all_start_methods():
            raise ValueError("--workers needs the 'fork' start method, which this platform "
                             "lacks; run without --workers")
        self.predictor, self.workers = predictor, workers
        context = multiprocessing.get_context("fork")
        self._processes: list = []
        self._connections: list[Connection] = []
        self._sent = 0  # parts sent, and taken back: part k goes to worker k % workers
        self._taken = 0
        # If the caller exits before close() -- a second Ctrl-C during the first one's clean-up
        # -- the workers are killed at exit. (They are daemon processes too.)
        atexit.register(self._kill)
        try:
            for _ in range(workers):
                ours, theirs = context.Pipe()
                process = context.Process(target=_serve, args=(predictor, os.getpid(), theirs),
                                          name="treelstm-read-worker", daemon=True)
                process.start()
                theirs.close()  # only the worker holds its end: its death closes the pipe
                self._processes.append(process)
                self._connections.append(ours)
        except OSError as error:  # fork failed: no memory, too many processes
            self.close(abort=True)
            raise WorkerDied(f"could not start the --workers processes: "
                             f"{error.strerror or error}") from error

    def send(self, part: list[Union[str, bytes]], format: str) -> None:
        """Send one part to the next worker in turn; its trees come from :meth:`result`, in the
        order sent. Blocks while that worker's pipe is full (it is busy, or its results wait
        to be taken: take them in another thread, or first)."""
        worker = self._sent % self.workers
        try:
            self._connections[worker].send((part, format))
        except (EOFError, OSError) as error:  # its end closed: it died
            raise self._died() from error
        self._sent += 1

    def result(self, parts: int) -> Read:
        """The trees (or errors) of the next ``parts`` parts, in line order, each tree checked
        against the model (:meth:`~treelstm.predict.Predictor.check_tree`) here."""
        trees: Read = []
        for _ in range(parts):
            worker = self._taken % self.workers
            connection, process = self._connections[worker], self._processes[worker]
            try:
                # the pipe, or the process's end: whichever comes first
                wait([connection, process.sentinel])
                kind, value = connection.recv()
            except (EOFError, OSError) as error:
                raise self._died() from error
            if kind == "error":
                raise RuntimeError(f"a --workers process failed reading lines: {value}")
            self._taken += 1
            trees += value
        return [self.predictor.checked(tree) for tree in trees]

    def _died(self) -> WorkerDied:
        return WorkerDied(f"a --workers process died (killed, or out of memory?) while "
                          f"reading lines (one of {self.workers} worker processes)")

    def close(self, abort: bool = False) -> None:
        """Stop the workers: told to finish (at the end of the input: they have no work left),
        or killed at once with ``abort`` (Ctrl-C, an error, a caller that stopped early), so
        that neither a busy worker nor one blocked writing its result holds the caller up."""
        if not abort:
            for connection in self._connections:
                try:
                    connection.send(None)
                except OSError:
                    pass
            for process in self._processes:
                process.join(timeout=5)
        for process in self._kill():
            process.join()
        for connection in self._connections:
            connection.close()
        atexit.unregister(self._kill)

    def _kill(self) -> list:
        """Kill the worker processes still running (SIGKILL); returns them all."""
        for process in self._processes:
            if process.exitcode is None:
                process.kill()
        return list(self._processes)

    def __enter__(self) -> "ReadWorkers":
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self.close(abort=exc_type is not None)


def read_ahead(predictor: "Predictor", windows: Iterable[T], lines_of: Any, format: str,
               workers: int) -> Generator[tuple[T, Read], None, None]:
    """``(window, its trees)`` for each of ``windows``, in order; ``lines_of(window)`` gives the
    lines to read. Without workers (``0``) each window is read when it is asked for. With
    workers, a thread pulls the windows from ``windows`` and hands them to the workers, at most
    one ahead of the window the caller has: a window's trees come as soon as they are read,
    whether or not the next window has arrived (a slow stream waits for nothing), and the next
    window is read while the caller works on this one."""
    if workers == 0:
        for window in windows:
            yield window, predictor.to_trees(lines_of(window), format)
        return
    ahead = _ReadAhead(predictor, iter(windows), lines_of, format, workers)
    finished = False
    try:
        while True:
            item = ahead.results.get()
            if item is _END:
                finished = True
                return
            if isinstance(item, _Failed):
                raise item.error
            window, first, parts = item
            trees = first + cast(ReadWorkers, ahead.readers).result(parts)
            ahead.slots.release()  # its parts are read: the next window may go to the workers
            yield window, trees
    finally:
        ahead.stop(abort=not finished)


_END = object()


class _Failed(NamedTuple):
    error: BaseException


class _ReadAhead:
    """The thread of :func:`read_ahead`: pulls windows, starts the workers at the first (after
    reading its first line here: what that loads lazily -- nltk, the parser's first pass, ~0.7 s
    for text -- is then loaded once, before the fork, not once per worker) and submits each
    window when a slot is free. Forking from this thread also keeps the main thread's signal
    handling as it is: Ctrl-C lands there, not in the middle of a fork."""

    def __init__(self, predictor: "Predictor", windows: Iterator[T], lines_of: Any, format: str,
                 workers: int) -> None:
        self.predictor, self.windows, self.lines_of = predictor, windows, lines_of
        self.format, self.workers = format, workers
        self.readers: Optional[ReadWorkers] = None
        self.results: queue.Queue = queue.Queue()
        self.slots = threading.Semaphore(1)  # windows submitted and not yet handed out
        self._stopped = threading.Event()
        self._lock = threading.Lock()  # held while the workers start, and to stop them
        threading.Thread(target=self._run, name="treelstm-read-ahead", daemon=True).start()

    def _run(self) -> None:
        try:
            while True:
                self.slots.acquire()
                if self._stopped.is_set():
                    return
                window = next(self.windows, _END)
                if window is _END or self._stopped.is_set():
                    self.results.put(_END)
                    return
                lines = self.lines_of(window)
                first: Read = []
                if self.readers is None:  # (read outside the lock: a stop need not wait for it)
                    first, lines = self.predictor.to_trees(lines[:1], self.format), lines[1:]
                with self._lock:
                    if self._stopped.is_set():
                        return
                    if self.readers is None:
                        self.readers = ReadWorkers(self.predictor, self.workers)
                    readers = self.readers
                # The caller learns of the window before its parts are sent, so that it takes
                # results while they are sent: a worker whose results were not taken would
                # stop reading parts, and a send to it would wait forever. (Outside the lock:
                # a send blocks while a worker is busy.)
                parts = list(chunks(lines, PART_LINES))
                self.results.put((window, first, len(parts)))
                for part in parts:
                    readers.send(part, self.format)
        except BaseException as error:  # handed to the caller, in order
            self.results.put(_Failed(error))

    def stop(self, abort: bool) -> None:
        """Stop the thread at its next window, and the workers (see :meth:`ReadWorkers.close`)."""
        self._stopped.set()
        self.slots.release()  # a thread waiting for a slot sees the stop
        # A second Ctrl-C in the ~0.1 s this takes would cut the clean-up short (tracebacks at
        # exit): ignored until the workers are gone.
        quiet = abort and threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if quiet else None
        try:
            with self._lock:  # not while the workers are starting
                if self.readers is not None:
                    self.readers.close(abort=abort)
        finally:
            if quiet:
                signal.signal(signal.SIGINT, previous)
