"""Runs in worker processes, a few at a time (``compare --jobs``): one spawned process per run,
its result sent back through a pipe. A run whose process dies without a result (``kill -9``,
the out-of-memory killer) is an error naming it, not a hang; the workers ignore Ctrl-C, and
whatever ends the caller (an error, Ctrl-C, SIGTERM) stops the runs still going."""
from __future__ import annotations

import contextlib
import multiprocessing
import signal
import threading
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Hashable, Iterator, Sequence, cast

__all__ = ["prefixed", "run_in_processes"]


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """SIGINT ignored while a process is started: it keeps that (no traceback from each worker
    on Ctrl-C; this process stops them). Only the main thread may change signal handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _child(target: Callable[..., Any], args: tuple, connection: Connection) -> None:
    try:
        result: tuple[str, Any] = ("ok", target(*args))
    except BaseException as error:  # noqa: BLE001 - every failure goes back to the caller
        result = ("error", error)
    try:
        connection.send(result)
    except BrokenPipeError:  # the caller is gone: nobody to tell
        pass
    except Exception as error:  # noqa: BLE001 - e.g. an exception that does not pickle
        connection.send(("error", RuntimeError(f"{type(result[1]).__name__}: {result[1]}"
                                               f" (could not be sent back: {error})")))
    finally:
        connection.close()


def run_in_processes(target: Callable[..., Any], tasks: Sequence[tuple[Hashable, tuple]],
                     jobs: int, name: Callable[[Hashable], str] = str
                     ) -> Iterator[tuple[Hashable, Any]]:
    """``(key, target(*args))`` for each ``(key, args)`` of ``tasks``, as each run ends, with
    at most ``jobs`` spawned processes at a time (``target`` and ``args`` must pickle).

    A run that raises ends the iteration with that exception, its message prefixed with
    ``name(key)`` (ValueError, FloatingPointError, OSError, RuntimeError; others as they are);
    a process that ends without a result is a RuntimeError naming the run and its exit code.
    Runs still going are terminated when the iteration ends early for any reason.
    """
    context = multiprocessing.get_context("spawn")
    pending = list(tasks)
    running: dict[Connection, tuple[Hashable, Any]] = {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                key, args = pending.pop(0)
                receive, send = context.Pipe(duplex=False)
                process = context.Process(target=_child, args=(target, args, send), daemon=True)
                with _sigint_ignored():
                    process.start()
                send.close()  # the child holds the other end: EOF here when it is gone
                running[receive] = (key, process)
            for ready in wait(list(running)):
                receive = cast(Connection, ready)
                key, process = running.pop(receive)
                try:
                    kind, value = receive.recv()
                except EOFError:
                    process.join()
                    raise RuntimeError(f"{name(key)}: its process ended (exit code "
                                       f"{process.exitcode}) without a result: killed, e.g. by "
                                       "the out-of-memory killer?") from None
                finally:
                    receive.close()
                process.join()
                if kind == "error":
                    if isinstance(value, (ValueError, FloatingPointError, OSError, RuntimeError)):
                        raise prefixed(value, name(key)) from None
                    raise value
                yield key, value
    finally:
        for receive, (_, process) in running.items():
            process.terminate()
        for receive, (_, process) in running.items():
            process.join()
            receive.close()


def prefixed(error: BaseException, prefix: str) -> BaseException:
    """``error`` again, of its type, its message starting with ``prefix`` and a colon."""
    try:
        return type(error)(f"{prefix}: {error}")
    except Exception:  # noqa: BLE001 - a type that takes other arguments
        return RuntimeError(f"{prefix}: {type(error).__name__}: {error}")
