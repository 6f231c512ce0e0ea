"""Files written so that nothing a user had is lost: atomic replacement, same-file checks.

* :func:`atomic_write` -- a whole file written through a temporary file and renamed over the
  target (checkpoints, metrics).
* :class:`AtomicOutput` -- the same for a stream of text written bit by bit (``predict -o``);
  the target is replaced only when the stream is complete.
* :func:`remove_stale_temp_files` -- what a writer killed mid-write left behind.
* :func:`same_file` -- whether two paths name one file (symlinks, hard links, ``./a`` vs ``a``),
  so an output is never an input.
"""
from __future__ import annotations

import contextlib
import glob
import io
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence, Union

__all__ = ["atomic_write", "write_text", "AtomicOutput", "remove_stale_temp_files", "same_file",
           "run_lock", "LOCK_NAME",
           "check_no_run"]

PathLike = Union[str, "os.PathLike[str]"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: Temporary files are ``.<name>.treelstm-<pid>-<random>.tmp`` beside their target: the pid
#: tells a live writer's file from one a killed writer left (see remove_stale_temp_files).
_TEMP_TAG = "treelstm"


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.{_TEMP_TAG}-{os.getpid()}-"


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (this process counts as alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's: keep its file
    return True


def _in_place(path: PathLike) -> bool:
    """Whether ``path`` must be written in place, not replaced: it exists (after links) and is
    no regular file -- a device (``/dev/null``, ``/dev/full``, a terminal), a FIFO or socket,
    standard output through ``/dev/stdout`` or ``/proc/self/fd/1`` -- or a directory (whose
    ``open`` then fails with the usual error)."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False  # no such file yet (or a dangling link): a new file, written atomically


def _fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (POSIX); a no-op where directories cannot be
    opened (Windows)."""
    try:
        handle = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def _unlink_quietly(name: str) -> None:
    try:
        os.unlink(name)
    except FileNotFoundError:
        pass


def atomic_write(path: PathLike, write: Callable[[io.BufferedWriter], object]) -> None:
    """Call ``write(file)`` on a temporary file in ``path``'s directory, fsync it, ``os.replace``
    it over ``path``, fsync the directory: a reader (or a process killed at any moment, or a
    power cut) sees the old file or the new one, never a mix. A symlink is followed (its target
    is replaced, the link stays), an existing file keeps its permissions, and a path that is no
    regular file (``/dev/null``, a FIFO: :func:`_in_place`) is written in place. A process
    killed mid-write leaves its temporary file behind; :func:`remove_stale_temp_files` clears
    them."""
    if _in_place(path):
        with open(path, "wb") as file:
            write(file)
        return
    target = Path(os.path.realpath(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = (os.stat(target).st_mode & 0o7777) if target.exists() else 0o666 & ~_umask()
    handle, temp_name = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=".tmp",
                                         dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp_name, mode)  # mkstemp makes 0600
        os.replace(temp_name, target)
    except BaseException:
        _unlink_quietly(temp_name)
        raise
    _fsync_directory(target.parent)


def write_text(path: PathLike, text: str) -> None:
    """:func:`atomic_write` of UTF-8 text."""
    atomic_write(path, lambda file: file.write(text.encode("utf-8")))


class AtomicOutput:
    """A text file written in pieces that replaces ``path`` only when complete.

    Use as a context manager: ``with AtomicOutput(path) as out: out.write(...)``. The text goes
    to a temporary file beside ``path``; a clean exit (or :meth:`commit`) renames it over
    ``path``, an exception removes it and leaves ``path`` as it was. A symlink is followed (the
    file it points to is replaced, the link stays) and an existing file keeps its permissions.
    A path that is no regular file (``/dev/stdout``, ``/proc/self/fd/1`` on a pipe, a FIFO, a
    device: :func:`_in_place`) is written directly: it cannot be replaced.
    """

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        self._temp_name: Optional[str] = None
        self.committed = False
        target = Path(os.path.realpath(path))
        if _in_place(path):
            self.file = open(self.path, "w", encoding="utf-8")
            return
        self.path = target  # a link stays a link: its target is what gets replaced
        self._mode = (os.stat(target).st_mode & 0o7777) if target.exists() else \
            0o666 & ~_umask()
        handle, self._temp_name = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=".tmp",
                                                   dir=target.parent)
        self.file = os.fdopen(handle, "w", encoding="utf-8")

    def write(self, text: str) -> int:
        return self.file.write(text)

    def flush(self) -> None:
        self.file.flush()

    def commit(self) -> None:
        """Finish: flush, fsync and rename over ``path`` (OSError if the disk is full)."""
        if self.file.closed:
            return
        if self._temp_name is None:
            self.file.close()
            self.committed = True
            return
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            os.chmod(self._temp_name, self._mode)
            os.replace(self._temp_name, self.path)
        except BaseException:
            self.discard()
            raise
        self.committed = True
        _fsync_directory(self.path.parent)

    def discard(self) -> None:
        """Drop what was written; ``path`` keeps its old content (or stays absent). Nothing
        after :meth:`commit`."""
        if self.committed:
            return
        try:
            self.file.close()
        except OSError:
            pass
        if self._temp_name is not None:
            _unlink_quietly(self._temp_name)

    def __enter__(self) -> "AtomicOutput":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()


def remove_stale_temp_files(directory: PathLike, names: Sequence[str]) -> list[Path]:
    """Delete the temporary files that writers of ``directory/<name>`` killed mid-write left
    behind (``.<name>.treelstm-<pid>-*.tmp`` of a process that no longer exists); returns them.
    Files of a live writer, and any other file, are left alone."""
    directory = Path(directory)
    removed = []
    for name in names:
        pattern = re.compile(rf"\.{re.escape(name)}\.{_TEMP_TAG}-(\d+)-[^/]*\.tmp")
        for stale in directory.glob(f".{glob.escape(name)}.{_TEMP_TAG}-*.tmp"):
            match = pattern.fullmatch(stale.name)
            if match is None or _alive(int(match.group(1))):
                continue
            try:
                stale.unlink()
            except FileNotFoundError:
                continue
            removed.append(stale)
    return removed


def same_file(first: PathLike, second: PathLike) -> bool:
    """Whether the two paths name one file: the same inode when both exist (symlinks and hard
    links included), else the same resolved path."""
    try:
        return os.path.samefile(first, second)
    except OSError:  # one of them does not exist (yet)
        return Path(first).resolve() == Path(second).resolve()


def check_no_run(directory: PathLike, names: Sequence[str], resumable: bool = True) -> None:
    """FileExistsError unless ``directory`` holds none of ``names`` (the files a run writes): a
    finished run is never replaced by accident. The message names the command-line ways on
    (``--resume`` when ``resumable``, ``--overwrite``); the library's are the keyword arguments
    of the same names."""
    directory = Path(directory)
    found = [name for name in names if (directory / name).exists()]
    if found:
        ways = "--resume to continue it, " if resumable else ""
        raise FileExistsError(f"{directory} already holds a run ({', '.join(found)}); use "
                              f"{ways}--overwrite to start again and replace it, or choose "
                              "another --out")


#: The file :func:`run_lock` locks in a directory while a run writes there.
LOCK_NAME = ".treelstm.lock"
_held_locks: set[str] = set()  # the directories this process holds (run_lock is re-entrant)


@contextlib.contextmanager
def run_lock(directory: PathLike) -> Iterator[None]:
    """Hold an exclusive lock on ``directory/.treelstm.lock`` (``flock``: the system drops it
    when the process ends, however it ends) while a run (``train``, ``compare``,
    ``sick-train``) writes to ``directory``, so that a second run started on the same folder
    is refused instead of mixing its files in: FileExistsError naming the folder and the
    process (its pid is written in the file). This process may take its own lock again
    (``compare`` and the ``train`` it calls). The holder removes the file when it is done (a
    killed holder leaves it, unlocked, and the next run takes it). Without ``fcntl`` (Windows)
    there is no lock."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(directory)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    if key in _held_locks:
        yield
        return
    path = directory / LOCK_NAME
    descriptor = _locked_descriptor(path, directory, fcntl)
    try:
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode())
        _held_locks.add(key)
        try:
            yield
        finally:
            _held_locks.discard(key)
            _unlink_quietly(str(path))  # before the lock goes: see _locked_descriptor
    finally:
        os.close(descriptor)  # releases the lock


def _locked_descriptor(path: Path, directory: Path, fcntl: Any) -> int:
    """An open descriptor of ``path`` holding its ``flock``. A lock file is removed by its
    holder before it is unlocked, so a lock taken on a file no longer at ``path`` (opened just
    before that removal) is no lock: it is dropped and ``path`` opened again."""
    while True:
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
        except OSError as error:
            raise FileExistsError(f"{path}: cannot open the lock file of this folder "
                                  f"({error.strerror or error}); remove it or choose another "
                                  "--out") from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = os.read(descriptor, 32).decode("ascii", "replace").strip() or "?"
            os.close(descriptor)
            raise FileExistsError(f"{directory}: another run (process {owner}) is writing there "
                                  f"(it holds {LOCK_NAME}); wait for it to end, or choose "
                                  "another --out") from None
        try:
            same = os.stat(path).st_ino == os.fstat(descriptor).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return descriptor
        os.close(descriptor)
