"""Benchmark: Tree-LSTM executors against sequence LSTMs on the same SST-like binary trees.

One run measures, side by side, on the same batches of sentences -- token ids, embedded by a
trainable ``nn.Embedding`` (``X`` = 300) in every method, ``H`` = 150, input at the leaves only:

- ``native``: :class:`~treelstm.TreeLSTM` (N-ary, arity 2), ``backend="native"``, called as
  :class:`~treelstm.TreeLSTMClassifier` calls it: in training the distinct tokens of the batch
  are embedded and projected once (``input_rows``); at inference the embedding table is the
  input, and with :meth:`~treelstm.TreeLSTM.cache_projections` on (as a
  :class:`~treelstm.Predictor` has it) each vocabulary word's projection, leaf state and terms
  in its parent are kept between batches (built in the warm-up step, not timed);
- ``dgl``: the same model with ``backend="dgl"`` (when ``dgl`` is importable);
- ``lstm``: ``nn.LSTM`` over each tree's leaves (its sentence): the embedded padded batch
  ``[B, T, X]`` through ``pack_padded_sequence`` (as :mod:`treelstm.baseline` does);
- ``lstmcell``: an ``nn.LSTMCell`` loop over time steps (the packed batch shrinking as sentences
  end);
- ``naive``: a per-tree Python recursion calling :class:`~treelstm.NaryTreeLSTMCell` once per node,
  one tree at a time -- the way most Tree-LSTM repositories do it.

``train`` is forward + backward of the sum of every state ``h`` the method computes (all tree
nodes, or all time steps) into all parameters and the embedding (a sparse gradient, so that a
vocabulary-sized gradient buffer, the same for every method, does not hide the differences);
``inference`` is the forward pass under ``torch.no_grad()``. Structure (the
:class:`~treelstm.TreeBatch` and its schedule, the sentence lengths, the token ids) is built before
timing, as a data loader would. Generated sentences draw their tokens from a Zipf law (exponent 1)
over SST's 18,280 training words, which gives SST's share of distinct tokens in a batch (0.61 of
the tokens at 25 sentences, 0.38 at 256); ``--data`` reads real tokens.

Throughput is trees per second, the median over repeats (warm-up excluded); the methods of one
batch size are timed in round robin, so that machine noise hits all of them alike. Slow cells are
capped by a time budget (``--budget``): fewer repeats, and ``naive`` (whose cost is per tree)
timed on the first trees of the batch only; the table marks them ``*`` and says how. On a machine
shared with other work, multi-threaded timings suffer most (the threads of every parallel op wait
for each other): ``--threads 1 --clock cpu`` gives numbers that other load barely moves. Peak
memory is measured in a separate step after timing: on CUDA ``torch.cuda.max_memory_allocated``
minus the memory allocated before the step; on CPU the rise of the process's peak resident set
size (Linux ``VmHWM``, reset through ``/proc/self/clear_refs`` after ``malloc_trim``) over its
resident size before the step -- it sees torch's allocations, which ``tracemalloc`` does not.

Run ``python benchmarks/bench.py --help`` (or ``python -m treelstm bench`` in a checkout);
:func:`main` is the same command as a function. This script is not part of the installed package.

Examples::

    python benchmarks/bench.py                                   # generated SST-like trees
    python benchmarks/bench.py --data /path/to/sst --json bench.json
    python benchmarks/bench.py --quick                           # a smoke test of a few seconds
"""
from __future__ import annotations

import argparse
import ctypes
import dataclasses
import gc
import json
import logging
import math
import os
import platform
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from treelstm.files import same_file, write_text
from treelstm.batch import TreeBatch
from treelstm.cells import NaryTreeLSTMCell
from treelstm.models import TreeLSTM

logger = logging.getLogger(__name__)

METHODS = ("native", "native-nocache", "native-childsum", "dgl", "lstm", "lstmcell", "naive")
MODES = ("train", "inference")
BASELINE = "lstm"
# Methods whose cost is a sum over trees (no batching): over the time budget, they are timed on
# the first trees of the batch only, and their trees/s still holds for the whole batch.
PER_TREE_METHODS = ("naive",)

# Shape of SST (train split, 8544 trees): sentence length ~ Gamma(k, theta) with its mean 19.1
# and standard deviation 9.3; at each internal node the left share (a - 1) / (a + b - 2) of its
# a + b leaves falls in ten bins [0, 0.1), ..., [0.9, 1] with these frequencies (SST is mostly
# right-branching). The generated trees have SST's mean height (about 10 for 19 leaves).
SST_LENGTH_SHAPE, SST_LENGTH_SCALE = 4.22, 4.53
SST_MAX_LENGTH = 60
SST_LEFT_SHARE_BINS = (0.530, 0.049, 0.055, 0.041, 0.025, 0.062, 0.030, 0.015, 0.013, 0.181)
SST_VOCAB_SIZE = 18280  # distinct tokens of SST's training split


# ---------------------------------------------------------------------------------- trees
@dataclass(frozen=True)
class BinaryTree:
    """A constituency tree: leaves are nodes ``0..num_leaves-1`` in sentence order, with the
    token ids ``token_ids`` ``[num_leaves]``."""

    parent: list[int]
    position: list[int]
    num_leaves: int
    token_ids: tuple[int, ...] = ()


def random_binary_tree(num_leaves: int, rng: random.Random) -> BinaryTree:
    """A binary tree over ``num_leaves`` leaves, split like SST; internal nodes in post-order."""
    num_nodes = 2 * num_leaves - 1
    parent, position = [-1] * num_nodes, [-1] * num_nodes
    next_id = num_leaves
    # Explicit stack of spans [low, high) of leaves; a span is pushed again once its halves are done.
    stack: list[tuple[int, int, int, list[int]]] = [(0, num_leaves, 0, [])]
    while stack:
        low, high, stage, done = stack.pop()
        if high - low == 1:
            node = low
        elif stage == 0:
            share = (rng.choices(range(10), SST_LEFT_SHARE_BINS)[0] + rng.random()) / 10
            split = low + 1 + min(round(share * (high - low - 2)), high - low - 2)
            halves: list[int] = []
            stack.append((low, high, 1, halves))
            stack.append((split, high, 0, halves))
            stack.append((low, split, 0, halves))
            continue
        else:
            node = next_id
            next_id += 1
            for slot, child in enumerate(done):
                parent[child], position[child] = node, slot
        if stack:
            stack[-1][3].append(node)
    return BinaryTree(parent, position, num_leaves)


def random_sst_like_trees(num_trees: int, seed: int = 0) -> list[BinaryTree]:
    """``num_trees`` random binary trees with SST's sentence lengths and branching, and tokens
    drawn from a Zipf law over :data:`SST_VOCAB_SIZE` words (see the module doc)."""
    rng = random.Random(seed)
    lengths = [min(SST_MAX_LENGTH, max(1, round(rng.gammavariate(SST_LENGTH_SHAPE,
                                                                   SST_LENGTH_SCALE))))
               for _ in range(num_trees)]
    frequency = 1.0 / np.arange(1, SST_VOCAB_SIZE + 1)
    tokens = np.random.default_rng(seed).choice(SST_VOCAB_SIZE, size=sum(lengths),
                                                p=frequency / frequency.sum())
    starts = np.cumsum([0] + lengths)
    return [dataclasses.replace(random_binary_tree(n, rng),
                                token_ids=tuple(tokens[start:start + n].tolist()))
            for n, start in zip(lengths, starts)]


def read_tree_dir(path: os.PathLike) -> list[BinaryTree]:
    """The trees of a directory of PTB bracketed files (``train.txt`` if present, else every
    ``*.txt``), e.g. SST's ``trainDevTestTrees_PTB``."""
    from treelstm.data import read_ptb

    directory = Path(path)
    if not directory.is_dir():
        raise ValueError(f"bench: --data {str(path)!r} is not a directory")
    files = [directory / "train.txt"] if (directory / "train.txt").is_file() else \
        sorted(directory.glob("*.txt"))
    if not files:
        raise ValueError(f"bench: --data {str(path)!r} holds no .txt files of bracketed trees")
    trees = [tree for file in files for tree in read_ptb(file)]
    ids: dict[str, int] = {}
    return [BinaryTree(tree.parent, tree.child_positions(), len(tree.tokens),
                       tuple(ids.setdefault(token, len(ids)) for token in tree.tokens))
            for tree in trees]


def tree_stats(trees: Sequence[BinaryTree]) -> dict:
    """Mean tokens, nodes and height of ``trees``."""
    batch = TreeBatch.from_parents([t.parent for t in trees], [t.position for t in trees])
    heights = batch.height[batch.roots].double()
    return {"num_trees": len(trees),
            "mean_tokens": sum(t.num_leaves for t in trees) / len(trees),
            "mean_nodes": batch.num_nodes / len(trees),
            "mean_height": float(heights.mean()), "max_height": int(heights.max())}


# ---------------------------------------------------------------------------------- workload
@dataclass
class Workload:
    """One batch of trees with everything each method needs, built before timing.

    ``token_ids`` ``[L]`` holds the leaves' tokens, tree by tree in sentence order;
    ``leaf_index`` ``[L]`` their node ids in ``batch``; ``lengths`` the leaves per tree;
    ``vocab_size`` the rows of the embedding (the last row is padding).
    """

    trees: list[BinaryTree]
    batch: TreeBatch
    leaf_index: Tensor
    lengths: list[int]
    token_ids: Tensor
    vocab_size: int

    @classmethod
    def build(cls, trees: list[BinaryTree], device: torch.device, vocab_size: int
              ) -> "Workload":
        batch = TreeBatch.from_parents([t.parent for t in trees],
                                       [t.position for t in trees]).to(device)
        batch.level_order  # the schedule is part of the data, built once per batch
        lengths = [t.num_leaves for t in trees]
        offsets = batch.offsets.tolist()
        leaf_index = torch.tensor([offset + i for offset, n in zip(offsets, lengths)
                                   for i in range(n)], device=device)
        token_ids = torch.tensor([i for t in trees for i in t.token_ids], device=device)
        return cls(trees, batch, leaf_index, lengths, token_ids, vocab_size)

    def prefix(self, num_trees: int) -> "Workload":
        """The first ``num_trees`` trees."""
        if num_trees >= len(self.trees):
            return self
        return Workload.build(self.trees[:num_trees], self.token_ids.device, self.vocab_size)

    @property
    def padding_id(self) -> int:
        return self.vocab_size - 1


@dataclass
class Config:
    input_size: int = 300
    hidden_size: int = 150
    device: str = "cpu"
    seed: int = 0


# ---------------------------------------------------------------------------------- methods
def _embedding(work: Workload, config: Config) -> nn.Embedding:
    """Every method's embedding: the same weights (seeded), a sparse gradient (module doc)."""
    torch.manual_seed(config.seed)
    return nn.Embedding(work.vocab_size, config.input_size, padding_idx=work.padding_id,
                        sparse=True).to(config.device)


def _train_or_infer(parameters: list[Tensor], train: bool,
                    loss_fn: Callable[[], Tensor]) -> Callable[[], None]:
    """A step: ``loss_fn()`` under ``no_grad`` (inference), or its backward (train)."""
    if not train:
        def step() -> None:
            with torch.no_grad():
                loss_fn()
        return step

    def step() -> None:
        for tensor in parameters:
            tensor.grad = None
        loss_fn().backward()
    return step


def make_tree_lstm(work: Workload, config: Config, train: bool, backend: str,
                   cache: bool = True, cell: str = "nary") -> Callable[[], None]:
    embedding = _embedding(work, config)
    model = TreeLSTM(config.input_size, config.hidden_size, cell=cell,
                     arity=2 if cell == "nary" else None, backend=backend).to(config.device)
    model.cache_projections(cache and not train)  # as a Predictor does
    if backend == "dgl":
        work.batch.dgl_graph()  # the DGL graph is part of the data, built once per batch

    def loss() -> Tensor:
        if train:  # each distinct token embedded and projected once (as TreeLSTMClassifier)
            distinct, rows = torch.unique(work.token_ids, return_inverse=True)
            output, _ = model(embedding(distinct), work.batch, input_index=work.leaf_index,
                              input_rows=rows)
        else:  # the vocabulary's projection is kept between batches (as TreeLSTMClassifier)
            output, _ = model(embedding.weight, work.batch, input_index=work.leaf_index,
                              input_rows=work.token_ids)
        return output.sum()
    return _train_or_infer([embedding.weight, *model.parameters()], train, loss)


def make_lstm(work: Workload, config: Config, train: bool) -> Callable[[], None]:
    embedding = _embedding(work, config)
    lstm = nn.LSTM(config.input_size, config.hidden_size, batch_first=True).to(config.device)
    # As in treelstm.baseline: padded token ids [B, T] -> embedding -> pack_padded_sequence.
    padded = nn.utils.rnn.pad_sequence(work.token_ids.split(work.lengths), batch_first=True,
                                       padding_value=work.padding_id)
    lengths = torch.tensor(work.lengths)

    def loss() -> Tensor:
        packed = nn.utils.rnn.pack_padded_sequence(embedding(padded), lengths, batch_first=True,
                                                   enforce_sorted=False)
        output, _ = lstm(packed)
        return output.data.sum()
    return _train_or_infer([embedding.weight, *lstm.parameters()], train, loss)


def make_lstmcell(work: Workload, config: Config, train: bool) -> Callable[[], None]:
    embedding = _embedding(work, config)
    cell = nn.LSTMCell(config.input_size, config.hidden_size).to(config.device)
    # The time-major packed layout of nn.LSTM: step t holds the batch_sizes[t] longest sentences.
    sorted_lengths, order = torch.sort(torch.tensor(work.lengths), descending=True, stable=True)
    starts = torch.tensor([0] + work.lengths[:-1]).cumsum(0)
    steps = torch.arange(int(sorted_lengths[0]))
    batch_sizes = (sorted_lengths.unsqueeze(0) > steps.unsqueeze(1)).sum(1).tolist()
    time_major = (starts[order].unsqueeze(0) + steps.unsqueeze(1)).to(config.device)

    def loss() -> Tensor:
        x = embedding(work.token_ids)
        h = x.new_zeros(len(work.lengths), config.hidden_size)
        c = torch.zeros_like(h)
        total = x.new_zeros(())
        for t, n in enumerate(batch_sizes):
            h_t, c_t = cell(x[time_major[t, :n]], (h[:n], c[:n]))
            total = total + h_t.sum()
            h, c = torch.cat([h_t, h[n:]]), torch.cat([c_t, c[n:]])
        return total
    return _train_or_infer([embedding.weight, *cell.parameters()], train, loss)


def make_naive(work: Workload, config: Config, train: bool) -> Callable[[], None]:
    embedding = _embedding(work, config)
    cell = NaryTreeLSTMCell(config.input_size, config.hidden_size, arity=2).to(config.device)
    no_input = embedding.weight.new_zeros(config.input_size)
    no_child = embedding.weight.new_zeros(config.hidden_size)
    children = []
    for tree in work.trees:
        kids: list[list[int]] = [[-1, -1] for _ in tree.parent]
        for node, (parent, slot) in enumerate(zip(tree.parent, tree.position)):
            if parent >= 0:
                kids[parent][slot] = node
        children.append(kids)
    leaf_offsets = [0]
    for n in work.lengths[:-1]:
        leaf_offsets.append(leaf_offsets[-1] + n)

    def loss() -> Tensor:
        x = embedding(work.token_ids)
        total = x.new_zeros(())
        for tree, kids, leaf_offset in zip(work.trees, children, leaf_offsets):
            outputs: list[Tensor] = []

            def visit(node: int) -> tuple[Tensor, Tensor]:
                if node < tree.num_leaves:
                    h, c = cell(x[leaf_offset + node])
                else:
                    states = [visit(k) if k >= 0 else (no_child, no_child) for k in kids[node]]
                    h, c = cell(no_input, (torch.stack([s[0] for s in states]),
                                           torch.stack([s[1] for s in states])))
                outputs.append(h)
                return h, c

            visit(tree.parent.index(-1))
            total = total + torch.stack(outputs).sum()
        return total
    return _train_or_infer([embedding.weight, *cell.parameters()], train, loss)


def make_step(method: str, work: Workload, config: Config, train: bool) -> Callable[[], None]:
    if method == "native":
        return make_tree_lstm(work, config, train, "native")
    if method == "native-nocache":
        return make_tree_lstm(work, config, train, "native", cache=False)
    if method == "native-childsum":
        return make_tree_lstm(work, config, train, "native", cache=False, cell="childsum")
    if method == "dgl":
        return make_tree_lstm(work, config, train, "dgl")
    if method == "lstm":
        return make_lstm(work, config, train)
    if method == "lstmcell":
        return make_lstmcell(work, config, train)
    if method == "naive":
        return make_naive(work, config, train)
    raise ValueError(f"bench: unknown method {method!r}; expected one of {METHODS}")


def unavailable_reason(method: str, device: torch.device) -> Optional[str]:
    """Why ``method`` cannot run here, or ``None``."""
    if method != "dgl":
        return None
    try:
        from treelstm.dgl import import_dgl

        import_dgl()
    except ImportError as error:
        return f"dgl not importable ({error.__cause__ or error})"
    return None


# ---------------------------------------------------------------------------------- measuring
def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def _timed(step: Callable[[], None], iterations: int, device: torch.device,
           clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds per call of ``step``, over ``iterations`` calls."""
    _synchronize(device)
    start = clock()
    for _ in range(iterations):
        step()
    _synchronize(device)
    return (clock() - start) / iterations


def _proc_status_kib(field_name: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise OSError(f"no {field_name} in /proc/self/status")


def cpu_peak_memory_supported() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        _proc_status_kib("VmHWM")
        return True
    except OSError:
        return False


def _release_free_memory() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap pages back to the OS
    except (OSError, AttributeError):
        pass


def peak_memory(step: Callable[[], None], device: torch.device) -> Optional[int]:
    """Bytes one call of ``step`` needs on top of what is allocated before it (see module doc)."""
    _release_free_memory()
    if device.type == "cuda":
        _synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        step()
        _synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    if not cpu_peak_memory_supported():  # resets VmHWM to the current VmRSS
        return None
    before = _proc_status_kib("VmRSS")
    step()
    return max(0, _proc_status_kib("VmHWM") - before) * 1024


def memory_method(device: torch.device) -> str:
    if device.type == "cuda":
        return "torch.cuda.max_memory_allocated() - memory_allocated() before the step"
    if cpu_peak_memory_supported():
        return ("peak RSS (VmHWM after a reset via /proc/self/clear_refs) - RSS before the step, "
                "after malloc_trim(0)")
    return "unavailable (needs Linux /proc/self/clear_refs)"


@dataclass
class _Cell:
    """One method at one batch size and mode, while being measured."""

    method: str
    step: Optional[Callable[[], None]] = None
    num_trees: int = 0  # trees per step (fewer than the batch when capped to a prefix)
    iterations: int = 1
    repeats: int = 0
    times: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    status: str = "ok"


def measure_group(methods: Sequence[str], work: Workload, config: Config, train: bool,
                  repeats: int, min_time: float, budget: float,
                  per_tree_seconds: dict[str, float], memory: bool,
                  clock: Callable[[], float] = time.perf_counter) -> list[dict]:
    """Time every method on one workload, in round robin; then measure peak memory."""
    device = torch.device(config.device)
    batch_size = len(work.trees)
    cells = []
    for method in methods:
        cell = _Cell(method)
        cells.append(cell)
        reason = unavailable_reason(method, device)
        if reason is not None:
            cell.status, cell.notes = "unavailable", [reason]
            continue
        estimate = per_tree_seconds.get(method, 0.0) * batch_size
        sub_work = work
        # Estimates come from the last batch size and may be inflated by other work on the
        # machine: skip only hopeless cells; the baseline is always measured.
        if estimate > budget and method in PER_TREE_METHODS:
            keep = max(1, int(budget / 2 / per_tree_seconds[method]))
            sub_work = work.prefix(keep)
            cell.notes.append(f"timed on {keep} of {batch_size} trees (time budget)")
        elif estimate > 4 * budget and method != BASELINE:
            cell.status = "skipped"
            cell.notes.append(f"over budget: ~{estimate:.0f}s per step > 4 x {budget:g}s")
            continue
        try:
            cell.step = make_step(method, sub_work, config, train)
            cell.num_trees = len(sub_work.trees)
            warmup = _timed(cell.step, 1, device, clock)
            if warmup < budget / 4:  # the first call may pay one-off costs (caches, lazy init)
                warmup = min(warmup, _timed(cell.step, 1, device, clock))
        except (RuntimeError, NotImplementedError) as error:  # e.g. DGL graphs on an unsupported device
            cell.status, cell.notes, cell.step = "unavailable", [f"{type(error).__name__}: {error}"], None
            continue
        per_tree_seconds[method] = warmup / cell.num_trees
        cell.iterations = max(1, math.ceil(min_time / max(warmup, 1e-9)))
        cell.repeats = max(1, min(repeats, int(budget / (warmup * cell.iterations))))
        if cell.repeats < repeats:
            cell.notes.append(f"{cell.repeats} of {repeats} repeats (time budget)")

    for r in range(repeats):
        for cell in cells:
            if cell.step is not None and r < cell.repeats:
                cell.times.append(_timed(cell.step, cell.iterations, device, clock))

    rows = []
    for cell in cells:
        row = {"method": cell.method, "mode": "train" if train else "inference",
               "batch_size": batch_size, "status": cell.status, "notes": cell.notes,
               "capped": bool(cell.notes) and cell.status == "ok",
               "trees_measured": cell.num_trees, "iterations": cell.iterations,
               "seconds_per_step": cell.times, "trees_per_s": None, "ratio_to_lstm": None,
               "peak_memory_bytes": None}
        if cell.step is not None:
            row["trees_per_s"] = cell.num_trees / statistics.median(cell.times)
            if memory:
                row["peak_memory_bytes"] = peak_memory(cell.step, device)
            cell.step = None
        rows.append(row)
    baseline = next((row for row in rows if row["method"] == BASELINE and row["trees_per_s"]), None)
    if baseline is not None:
        for row in rows:
            if row["trees_per_s"] is not None:
                row["ratio_to_lstm"] = row["trees_per_s"] / baseline["trees_per_s"]
    return rows


def run_benchmark(trees: Sequence[BinaryTree], methods: Sequence[str], modes: Sequence[str],
                  batch_sizes: Sequence[int], config: Config, repeats: int = 5,
                  min_time: float = 0.2, budget: float = 20.0, memory: bool = True,
                  clock: str = "wall") -> list[dict]:
    """Measure every (mode, batch size, method); returns one row per measurement."""
    rows: list[dict] = []
    device = torch.device(config.device)
    vocab_size = 1 + max((i for t in trees for i in t.token_ids), default=-1) + 1  # + padding
    for mode in modes:
        per_tree_seconds: dict[str, float] = {}
        for batch_size in sorted(batch_sizes):
            # the same trees for every mode and method
            rng = random.Random(f"{config.seed}-{batch_size}")
            sample = rng.sample(list(trees), batch_size) if batch_size <= len(trees) else \
                rng.choices(list(trees), k=batch_size)
            work = Workload.build(sample, device, vocab_size)
            logger.info("bench: %s, batch size %d (%d nodes)", mode, batch_size,
                        work.batch.num_nodes)
            rows += measure_group(methods, work, config, mode == "train", repeats, min_time,
                                  budget, per_tree_seconds, memory, CLOCKS[clock])
    return rows


# ---------------------------------------------------------------------------------- report
def format_table(rows: Sequence[dict]) -> str:
    """One table per mode: trees/s, ratio to nn.LSTM and peak MiB per method and batch size."""
    lines = []
    for mode in MODES:
        mode_rows = [row for row in rows if row["mode"] == mode]
        if not mode_rows:
            continue
        sizes = sorted({row["batch_size"] for row in mode_rows})
        methods = list(dict.fromkeys(row["method"] for row in mode_rows))
        title = "forward+backward" if mode == "train" else "forward, no_grad"
        lines.append(f"{mode} ({title}): trees/s (x nn.LSTM) peak MiB; * = capped by the time "
                     "budget")
        width = max(len("method"), *map(len, methods))
        lines.append(f"{'method':<{width}}" + "".join(f"{'B=' + str(b):>28}" for b in sizes))
        for method in methods:
            text = f"{method:<{width}}"
            for b in sizes:
                row = next((r for r in mode_rows if r["method"] == method and r["batch_size"] == b),
                           None)
                if row is None or row["trees_per_s"] is None:
                    cell = "-" if row is None else row["status"]
                else:
                    memory = row["peak_memory_bytes"]
                    ratio = row["ratio_to_lstm"]
                    cell = (f"{row['trees_per_s']:.0f}{'*' if row['capped'] else ''} "
                            f"({'-' if ratio is None else format(ratio, '.2f')}x) "
                            f"{'-' if memory is None else format(memory / 2 ** 20, '.1f')}")
                text += f"{cell:>28}"
            lines.append(text)
        notes = [f"  {r['method']} B={r['batch_size']}: {'; '.join(r['notes'])}"
                 for r in mode_rows if r["notes"]]
        lines += notes + [""]
    return "\n".join(lines)


def _load_average() -> Optional[list[float]]:
    try:
        return [round(load, 2) for load in os.getloadavg()]
    except OSError:
        return None


def environment(config: Config, threads: int) -> dict:
    device = torch.device(config.device)
    info = {"torch": torch.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "threads": threads, "device": str(device),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "memory_method": memory_method(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    from treelstm.engine import kernels

    info["c_level_steps"] = kernels.status()  # on the CPU in float32 (treelstm/engine/kernels.c)
    try:
        import dgl  # noqa: F401  (only for its version)

        info["dgl"] = dgl.__version__
    except ImportError:
        info["dgl"] = None
    return info


def parse_args(argv: Optional[Sequence[str]] = None,
               prog: str = "python -m treelstm bench") -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Tree-LSTM speed: native engine, DGL, nn.LSTM, an nn.LSTMCell loop and a naive "
                    "per-tree recursion on the same SST-like binary trees; prints a table and "
                    "can write JSON.")
    parser.add_argument("--data", metavar="DIR",
                        help="directory of PTB bracketed trees (SST: train.txt, or every *.txt); "
                             "default: generated trees with SST's length distribution")
    parser.add_argument("--batch-sizes", type=lambda s: [int(b) for b in s.split(",")],
                        help="comma-separated; default 1,25,256,1024 (and 4096 on CUDA)")
    parser.add_argument("--methods", type=lambda s: s.split(","), default=list(METHODS),
                        help=f"comma-separated subset of {','.join(METHODS)} (default: all)")
    parser.add_argument("--modes", type=lambda s: s.split(","), default=list(MODES),
                        help="comma-separated subset of train,inference (default: both)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed repeats per measurement; the median is reported (default 5)")
    parser.add_argument("--min-time", type=float, default=0.2,
                        help="a repeat runs the step enough times to last this many seconds "
                             "(default 0.2)")
    parser.add_argument("--budget", type=float, default=20.0,
                        help="seconds per measurement; slower methods get fewer repeats or fewer "
                             "trees and are marked * (default 20)")
    parser.add_argument("--threads", type=int,
                        help="torch.set_num_threads (default 2 on CPU, torch's default on CUDA)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:k] (default cpu)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall: elapsed time (default); cpu: the process's CPU time, which "
                             "other work on a shared machine does not inflate -- with --threads 1 "
                             "only (with more threads it also counts their waiting)")
    parser.add_argument("--input-size", type=int, default=300, help="X (default 300)")
    parser.add_argument("--hidden-size", type=int, default=150, help="H (default 150)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak memory step")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, one repeat: a smoke test of a few seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    for name in args.methods:
        if name not in METHODS:
            parser.error(f"--methods: unknown method {name!r}; expected some of {METHODS}")
    for name in args.modes:
        if name not in MODES:
            parser.error(f"--modes: unknown mode {name!r}; expected some of {MODES}")
    if args.quick:
        args.batch_sizes = args.batch_sizes or [1, 4]
        args.repeats, args.min_time, args.budget = 1, 0.0, 2.0
        args.input_size, args.hidden_size = 8, 6
    try:
        device = torch.device(args.device)
    except RuntimeError as error:
        parser.error(f"--device {args.device!r}: {error}")
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available on this machine")
    if args.batch_sizes is None:
        args.batch_sizes = [1, 25, 256, 1024] + ([4096] if device.type == "cuda" else [])
    if any(b <= 0 for b in args.batch_sizes) or args.repeats <= 0:
        parser.error("--batch-sizes and --repeats must be positive")
    if args.threads is None and device.type == "cpu":
        args.threads = 2
    if args.clock == "cpu" and (device.type != "cpu" or args.threads != 1):
        parser.error("--clock cpu measures the CPU time of one thread: use it with --threads 1 "
                     "on the CPU")
    return args


def main(argv: Optional[Sequence[str]] = None, prog: str = "python -m treelstm bench") -> dict:
    """Run the benchmark command (see ``--help``); returns what ``--json`` writes."""
    args = parse_args(argv, prog)
    if args.json and args.data and any(same_file(args.json, path)
                                       for path in Path(args.data).glob("*.txt")):
        print(f"{prog}: error: --json {args.json} is one of the --data files; choose another "
              "output file", file=sys.stderr)
        raise SystemExit(2)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    config = Config(args.input_size, args.hidden_size, args.device, args.seed)
    if args.data:
        trees, source = read_tree_dir(args.data), f"PTB files in {args.data}"
    else:
        trees = random_sst_like_trees(max(args.batch_sizes) if args.quick else 8544, args.seed)
        source = "generated (SST length distribution and branching)"
    load_before = _load_average()
    rows = run_benchmark(trees, args.methods, args.modes, args.batch_sizes, config,
                         args.repeats, args.min_time, args.budget, memory=not args.no_memory,
                         clock=args.clock)
    result = {
        "config": {"input_size": args.input_size, "hidden_size": args.hidden_size,
                   "cell": "nary", "arity": 2,
                   "input": "token ids -> nn.Embedding, at the leaves only (input_index)",
                   "batch_sizes": args.batch_sizes, "repeats": args.repeats,
                   "min_time": args.min_time, "budget": args.budget, "clock": args.clock,
                   "seed": args.seed,
                   "methods": args.methods, "modes": args.modes, "baseline": BASELINE},
        # other work on the machine: torch's threads wait for each other at every parallel op,
        # so a busy core slows multi-threaded runs far more than single-threaded ones
        "environment": {**environment(config, torch.get_num_threads()),
                        "load_average_before": load_before, "load_average_after": _load_average()},
        "data": {"source": source, **tree_stats(trees)},
        "results": rows,
    }
    print(f"{source}: {result['data']['num_trees']} trees, "
          f"{result['data']['mean_tokens']:.1f} tokens and {result['data']['mean_nodes']:.1f} "
          f"nodes per tree; X={args.input_size}, H={args.hidden_size}, device {args.device}, "
          f"{torch.get_num_threads()} thread{'s' if torch.get_num_threads() != 1 else ''}; "
          "load average before/after "
          f"{load_before} / {result['environment']['load_average_after']}")
    if torch.device(args.device).type == "cpu":
        print(f"C level steps: {result['environment']['c_level_steps']}")
    if args.json:
        write_text(args.json, json.dumps(result, indent=2))  # atomic: never a half file
    print(format_table(rows))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
