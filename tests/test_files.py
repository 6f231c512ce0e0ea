"""treelstm.files: atomic replacement of files written in pieces, same-file checks, run guards."""
import os

import pytest

from treelstm.files import AtomicOutput, atomic_write, check_no_run, same_file


def test_atomic_output_replaces_only_when_complete(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text("old\n")
    with AtomicOutput(path) as out:
        out.write("new 1\n")
        assert path.read_text() == "old\n"  # not yet
        out.write("new 2\n")
    assert path.read_text() == "new 1\nnew 2\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_atomic_output_interrupted_keeps_the_old_file(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text("old\n")
    with pytest.raises(KeyboardInterrupt):
        with AtomicOutput(path) as out:
            out.write("half")
            raise KeyboardInterrupt
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_atomic_output_to_a_device_writes_directly():
    with AtomicOutput(os.devnull) as out:
        out.write("nothing\n")
    assert os.path.exists(os.devnull) and not os.path.isfile(os.devnull)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_atomic_output_full_disk_raises_oserror():
    with pytest.raises(OSError):
        with AtomicOutput("/dev/full") as out:
            out.write("x" * 100000)


def test_atomic_write_failure_keeps_the_old_file(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"old")

    def write(file):
        file.write(b"new")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, write)
    assert path.read_bytes() == b"old" and len(list(tmp_path.iterdir())) == 1


def test_same_file_sees_links_and_spellings(tmp_path):
    a = tmp_path / "a.txt"
    a.write_text("x")
    (tmp_path / "link.txt").symlink_to(a)
    os.link(a, tmp_path / "hard.txt")
    assert same_file(a, tmp_path / "link.txt")
    assert same_file(a, tmp_path / "hard.txt")
    assert same_file(a, tmp_path / "sub" / ".." / "a.txt")
    assert not same_file(a, tmp_path / "b.txt")
    assert same_file(tmp_path / "new.txt", tmp_path / "." / "new.txt")  # neither exists


def test_check_no_run(tmp_path):
    check_no_run(tmp_path, ["best.pt"])  # empty: fine
    check_no_run(tmp_path / "missing", ["best.pt"])
    (tmp_path / "best.pt").write_bytes(b"")
    with pytest.raises(FileExistsError, match=r"already holds a run \(best\.pt\); use --resume"
                                              r".*--overwrite"):
        check_no_run(tmp_path, ["checkpoint.pt", "best.pt"])


def test_atomic_write_follows_links_and_writes_non_regular_files_in_place(tmp_path):
    import threading
    from pathlib import Path

    target = tmp_path / "real.json"
    target.write_text("old")
    os.chmod(target, 0o640)
    link = tmp_path / "link.json"
    link.symlink_to(target)
    atomic_write(link, lambda file: file.write(b"new"))
    assert link.is_symlink() and target.read_text() == "new"
    assert (target.stat().st_mode & 0o777) == 0o640
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    atomic_write(fifo, lambda file: file.write(b"through the pipe"))
    reader.join(timeout=10)
    assert received == [b"through the pipe"]
    assert fifo.is_fifo()  # not replaced by a regular file
    atomic_write("/dev/null", lambda file: file.write(b"x"))  # a device stays a device
    assert Path("/dev/null").is_char_device()
