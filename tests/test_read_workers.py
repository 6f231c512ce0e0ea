"""predict --workers (treelstm.read_workers): the records of worker processes against reading in
process (trees, JSON, plain text through a parser, bad lines, several windows and parts), a
worker that dies, early stops, and the CLI option."""
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nltk
import pytest
import torch

from treelstm import TreeLSTMClassifier
from treelstm.data import Vocab, tokenize
from treelstm.predict import LineError, Predictor, predict_records
from treelstm import read_workers

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread
ROOT = Path(__file__).resolve().parents[1]

WORDS = "the plot is not a good movie great bad".split()


def right_branching(text):
    tokens = tokenize(text)
    tree = nltk.Tree("X", [tokens[-1]])
    for token in reversed(tokens[:-1]):
        tree = nltk.Tree("X", [nltk.Tree("W", [token]), tree])
    return tree


@pytest.fixture(scope="module")
def predictor():
    torch.manual_seed(0)
    vocab = Vocab.build([WORDS])
    model = TreeLSTMClassifier(len(vocab), 5, embed_dim=8, hidden_size=6)
    return Predictor(model, vocab, parser=right_branching)


def lines(count=300):
    """Trees, JSON, plain text, blank lines and bad lines, mixed."""
    shapes = ["(2 good)\n", "(1 (2 not) (3 good))\n", "the plot is great\n",
              json.dumps({"parent": [2, 2, -1], "tokens": ["bad", "movie"]}) + "\n",
              "\n", "(3 (2 a) (2 b) (2 c) (2 d))\n"]
    out = [shapes[k % len(shapes)] for k in range(count)]
    out[37] = "(2 (2 unbalanced)\n"
    if count > 211:
        out[211] = '{"parent": [0], "tokens": ["x"]}\n'
    return out


@pytest.fixture
def small_parts(monkeypatch):
    monkeypatch.setattr(read_workers, "PART_LINES", 7)  # many parts per window


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_give_the_records_of_reading_in_process(predictor, small_parts, workers):
    expected = list(predict_records(predictor, lines(), batch_trees=16, window=50,
                                    skip_bad=True))
    got = list(predict_records(predictor, lines(), batch_trees=16, window=50, skip_bad=True,
                               workers=workers))
    assert got == expected
    assert [r["line"] for r in got if "error" in r] == [38, 212]
    assert len(got) == 250  # the blank lines have no record
    assert not _live_children()  # the workers are gone


def test_a_bad_line_stops_as_it_does_in_process(predictor, small_parts):
    def run(workers):
        records = []
        with pytest.raises(LineError) as error:
            for record in predict_records(predictor, lines(), batch_trees=16, window=50,
                                          workers=workers):
                records.append(record)
        return records, error.value.lineno

    assert run(2) == run(0)
    assert run(2)[1] == 38
    assert not _live_children()


def test_stopping_early_stops_the_workers(predictor, small_parts):
    records = predict_records(predictor, lines(), batch_trees=16, window=50, skip_bad=True,
                              workers=2)
    assert next(records)["line"] == 1
    assert multiprocessing.active_children()
    records.close()
    assert not _live_children()


def test_a_worker_that_dies_is_an_error_not_a_hang(predictor):
    def dying(text):  # the workers inherit the predictor and its parser (forked, not pickled)
        if "plot" in text and multiprocessing.parent_process() is not None:
            os.kill(os.getpid(), signal.SIGKILL)
        return right_branching(text)

    killer = Predictor(predictor.model, predictor.vocab, parser=dying)
    with pytest.raises(RuntimeError, match=r"a --workers process died"):
        list(predict_records(killer, ["(2 good)\n"] * 40 + ["the plot\n"], batch_trees=8,
                             window=16, workers=2))
    assert not _live_children()


@pytest.mark.parametrize("workers", [-1, 1.5, True, 100_000])
def test_bad_worker_counts(predictor, workers):
    with pytest.raises(ValueError, match="workers must be"):
        list(predict_records(predictor, ["(2 good)\n"], workers=workers))


def test_cli_workers_option(tmp_path, predictor):
    from treelstm.training import save_checkpoint

    checkpoint = tmp_path / "model.pt"
    save_checkpoint(checkpoint, predictor.model, predictor.vocab, {})
    source = tmp_path / "in.txt"
    source.write_text("".join(lines(120)))  # no --parser: the plain text lines are errors
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    def run(*extra):
        return subprocess.run([sys.executable, "-m", "treelstm", "predict", str(checkpoint),
                               str(source), "--skip-bad", "--window", "40", *extra], cwd=ROOT,
                              capture_output=True, text=True, timeout=120, env=env)

    alone, workers = run(), run("--workers", "2")
    assert alone.returncode == 0 and workers.returncode == 0, workers.stderr
    assert workers.stdout == alone.stdout and alone.stdout
    for bad in ("-2", "100000"):  # more than the CPUs: refused before any fork
        refused = run("--workers", bad)
        assert refused.returncode == 2 and "--workers" in refused.stderr, refused.stderr
    assert "worker processes" in run("--help").stdout


_PARENT = """
import multiprocessing, sys, time
import torch
from treelstm import TreeLSTMClassifier
from treelstm.data import Vocab
from treelstm.predict import Predictor, predict_records
vocab = Vocab.build([["good"]])
predictor = Predictor(TreeLSTMClassifier(len(vocab), 5, embed_dim=4, hidden_size=4), vocab)
records = predict_records(predictor, iter(lambda: "(2 good)\\n", None), batch_trees=4, workers=2)
next(records)
print(" ".join(str(p.pid) for p in multiprocessing.active_children()), flush=True)
time.sleep(600)
"""


def test_workers_go_when_predict_is_killed():
    """kill -9 of the parent: its workers are killed too (no orphans left reading)."""
    parent = subprocess.Popen([sys.executable, "-c", _PARENT], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        pids = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(pids) == 2
        parent.kill()
        parent.wait(timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in pids)
    finally:
        parent.kill()


def _live_children():
    """This process's children still running. (Not active_children() alone: when two threads
    join one killed worker -- the pool's and ours -- the loser's Process object can stay listed
    as started though the process is gone.)"""
    return [p for p in multiprocessing.active_children() if _alive(p.pid)]


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def test_a_worker_stops_on_sigterm_whatever_the_parent_does_with_it(predictor, small_parts):
    """The command line turns SIGTERM into an exception; a worker must not inherit that, or the
    pool cannot stop one blocked writing its result (a hang when another worker died). SIGTERM to
    a worker: it is gone, and the run fails with the message, not a traceback."""
    def raise_on_term(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, raise_on_term)
    try:
        records = predict_records(predictor, lines(3000), batch_trees=16, window=400,
                                  skip_bad=True, workers=2)
        next(records)
        workers = multiprocessing.active_children()
        for worker in workers:
            with open(f"/proc/{worker.pid}/status") as status:
                caught = next(int(line.split()[1], 16) for line in status
                              if line.startswith("SigCgt:"))
            assert not caught & (1 << (signal.SIGTERM - 1)), "SIGTERM caught in a worker"
        os.kill(workers[0].pid, signal.SIGTERM)
        with pytest.raises(RuntimeError, match=r"a --workers process died"):
            list(records)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert not _live_children()


def test_a_window_comes_out_before_the_next_is_read(predictor):
    """A producer that waits for the answers before it sends more input (a slow stream, a
    conversation) is not held up: the first window's records come out while the next window
    is still being read."""
    import threading

    answered = threading.Event()

    def conversation():
        for _ in range(4):  # the first window: one batch of 4
            yield "(2 good)\n"
        assert answered.wait(timeout=20), "the first records never came: read-ahead deadlock"
        yield "(3 (2 very) (3 good))\n"

    records = predict_records(predictor, conversation(), batch_trees=4, workers=2)
    first = [next(records) for _ in range(4)]
    answered.set()
    rest = list(records)
    assert [r["line"] for r in first + rest] == [1, 2, 3, 4, 5]


def test_many_parts_in_one_window_do_not_deadlock(predictor, monkeypatch):
    """A window of 1.5 MB in parts of 3 lines through two workers: all records, in order, and
    the workers gone. Its trees are big enough to fill both ways of a worker's pipe -- the
    deadlock of sending every part before the caller took any trees (the reader of 2026-12-02
    morning hangs here every time). A hang is turned into a failure after 120 s."""
    import faulthandler

    monkeypatch.setattr(read_workers, "PART_LINES", 3)
    trees = (ROOT / "treelstm" / "datasets" / "sentiment" / "train.txt").read_text(
        encoding="utf-8").splitlines()
    big = []
    for start in range(0, 200 * 50, 50):  # 200 lines, each 50 trees under one root
        line = trees[(start + 49) % len(trees)]
        for tree in reversed([trees[(start + j) % len(trees)] for j in range(49)]):
            line = f"(2 {tree} {line})"
        big.append(line)
    assert sum(map(len, big)) > 1_000_000
    faulthandler.dump_traceback_later(120, exit=True)
    try:
        got = list(predict_records(predictor, big, batch_trees=64, window=len(big),
                                   skip_bad=True, workers=2))
    finally:
        faulthandler.cancel_dump_traceback_later()
    assert got == list(predict_records(predictor, big, batch_trees=64, window=len(big),
                                       skip_bad=True))
    assert not _live_children()
