"""The Tree-LSTM and the ``nn.LSTM`` baseline trained on the same data with the same budget, as
one markdown table (``python -m treelstm compare``)."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union, cast

import torch

from ..checks import is_positive_int
from ..files import PathLike, check_no_run, run_lock, write_text
from ..progress import Progress, track
from ..seeds import seed_dir, spread
from ..seeds import summary as mean_std
from .config import TrainConfig, resolve_device
from .evaluation import load_splits
from .loop import train
from .workers import prefixed, run_in_processes
from .loop import _checked_splits
from .resume import _RUN_FILES, _load_resumable

__all__ = ["COMPARE_ROWS", "DEFAULT_COMPARE_ROWS", "PAPER_HIDDEN_SIZES", "comparison_table",
           "compare", "summarize_runs"]

logger = logging.getLogger(__package__)  # "treelstm.training", as before the split into modules

#: The rows that :func:`~treelstm.training.compare` can train, name -> (label, model, the
#: settings changed from the config).
COMPARE_ROWS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "treelstm": ("Tree-LSTM", "treelstm", {"phrase_loss": True, "bidirectional": False}),
    "treelstm-root": ("Tree-LSTM, root labels only", "treelstm",
                      {"phrase_loss": False, "bidirectional": False}),
    "childsum": ("Child-Sum Tree-LSTM", "treelstm",
                 {"phrase_loss": True, "bidirectional": False, "cell": "childsum"}),
    "bitreelstm": ("Bidirectional Tree-LSTM", "treelstm",
                   {"phrase_loss": True, "bidirectional": True}),
    "lstm": ("LSTM", "lstm", {"bidirectional": False}),
    "bilstm": ("Bidirectional LSTM", "lstm", {"bidirectional": True}),
    "lstm2": ("2-layer LSTM", "lstm", {"bidirectional": False, "num_layers": 2}),
}
DEFAULT_COMPARE_ROWS = ("treelstm", "treelstm-root", "lstm")
#: ``sizes="paper"``: each row's hidden size from Tai, Socher & Manning (2015), Table 1, where
#: they were chosen to give the models similar parameter counts (the bidirectional Tree-LSTM,
#: not in the paper, keeps the Tree-LSTM's 150). With this library's cells the counts differ
#: (the bidirectional LSTM has the most); the tables show them.
PAPER_HIDDEN_SIZES = {"treelstm": 150, "treelstm-root": 150, "childsum": 168, "bitreelstm": 150,
                      "lstm": 168, "bilstm": 150, "lstm2": 108}
SIZES = ("same", "paper")

# The columns of each view's table: (header, split, metric).
_COLUMNS = {
    "fine": [("fine root dev", "dev", "root_acc"), ("fine root test", "test", "root_acc"),
             ("binary root dev", "dev", "binary_root_acc"),
             ("binary root test", "test", "binary_root_acc"),
             ("all-phrase test", "test", "phrase_acc")],
    "binary": [("binary root dev", "dev", "root_acc"), ("binary root test", "test", "root_acc"),
               ("binary phrase test", "test", "phrase_acc")],
}


def _metric(metrics: dict, split: str, name: str) -> Optional[float]:
    values = (metrics["best_dev"] or {}) if split == "dev" else metrics["test"]
    return values.get(name)


def summarize_runs(runs: Sequence[dict], view: str = "fine") -> dict:
    """Mean, sample standard deviation and every value of each table column over ``runs`` (the
    metrics of one row's seeds), as ``{column: {"mean", "std", "values"}}``; a column that a
    run lacks (the LSTM's all-phrase accuracy) is left out."""
    summary = {}
    columns = [(header, split, name) for header, split, name in _COLUMNS[view]]
    columns += [("train trees/s", "", "train_trees_per_s"),
                ("inference trees/s", "", "inference_trees_per_s"), ("best epoch", "", "best_epoch")]
    for header, split, name in columns:
        values = [_metric(run, split, name) if split else run.get(name) for run in runs]
        if any(value is None for value in values):
            continue
        summary[header] = mean_std([cast(float, value) for value in values])
    return summary


def comparison_table(results: dict[str, Union[dict, list[dict]]], caption: str = "",
                     view: str = "fine") -> str:
    """A markdown table of :func:`train` metrics, one row per entry of ``results`` (keys of
    :data:`~treelstm.training.comparison.COMPARE_ROWS` get their label, other keys are shown as
    they are). An entry is one run's metrics, or a list of runs (seeds) shown as mean ± sample
    standard deviation."""
    header = ([column[0] for column in _COLUMNS[view]]
              + ["parameters", "train trees/s", "inference trees/s"])
    lines = ["| model | " + " | ".join(header) + " |",
             "|" + "|".join(["---"] + ["---:"] * len(header)) + "|"]
    for row, entry in results.items():
        runs = entry if isinstance(entry, list) else [entry]
        cells = [COMPARE_ROWS[row][0] if row in COMPARE_ROWS else row]
        cells += [spread([_metric(run, split, name) for run in runs], 100, 1)
                  for _, split, name in _COLUMNS[view]]
        cells += [f"{runs[0]['num_parameters']:,}",
                  spread([run["train_trees_per_s"] for run in runs], 1, 0),
                  spread([run["inference_trees_per_s"] for run in runs], 1, 0)]
        lines.append("| " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    return f"{caption}\n\n{table}\n" if caption else table + "\n"


def _compare_caption(config: TrainConfig, rows: Sequence[str], first: dict,
                     seeds: Sequence[int], sizes: str) -> str:
    device = resolve_device(config.device)
    threads = f", {torch.get_num_threads()} torch thread(s)" if device.type == "cpu" else ""
    counts = first["num_trees"]
    classes = "5 classes" if config.view == "fine" else \
        "2 classes, neutral-root sentences dropped, neutral phrases not in the loss"
    seed_text = (f"seed {seeds[0]}" if len(seeds) == 1 else
                 f"seeds {', '.join(map(str, seeds))} (mean ± sample standard deviation over "
                 f"the {len(seeds)} runs)")
    hidden = (f"hidden {config.hidden_size}" if sizes == "same" else
              "the hidden sizes of Tai et al.'s Table 1 (" + ", ".join(
                  f"{COMPARE_ROWS[row][0]} {PAPER_HIDDEN_SIZES[row]}" for row in rows) +
              "; chosen there to give the models similar parameter counts; with this "
              "library's cells the counts differ, see the parameters column)")
    embedding_update = ("kept fixed" if config.freeze_embeddings else
                        "updated by AdaGrad" if config.embedding_lr is None else
                        f"updated by plain SGD at lr {config.embedding_lr}, no weight decay")
    layers = (f", {config.num_layers} layers" + (" (the 2-layer LSTM: 2)" if "lstm2" in rows
                                                 else "") if config.num_layers != 1 else "")
    epochs = f"{config.epochs} epoch{'s' if config.epochs != 1 else ''}"
    stopping = (epochs if config.patience is None else
                f"at most {epochs} (a run stops early after {config.patience} epoch"
                f"{'s' if config.patience != 1 else ''} in a row without a better dev "
                "accuracy)")
    selection = "fine root accuracy" if config.view == "fine" else "binary root accuracy"
    parts = [
        f"Accuracy (%) on {config.data} ({counts['train']} train / {counts['dev']} dev / "
        f"{counts['test']} test trees, {classes}). Every model: {stopping}, {seed_text}, the "
        f"same training order, embedding {config.embed_dim}"
        f"{' (pre-trained vectors)' if config.embeddings else ' (random init)'} "
        f"{embedding_update}, {hidden}{layers}, AdaGrad lr {config.lr}, weight decay "
        f"{config.weight_decay}, batch {config.batch_size}, dropout {config.dropout}; dev and "
        f"test use the epoch with the best {selection} on dev.",
    ]
    if "treelstm" in rows or "bitreelstm" in rows:
        parts.append(f"Tree-LSTM: {config.cell} cell, loss on every phrase (Tai et al.).")
    if "childsum" in rows:
        parts.append("Child-Sum Tree-LSTM: the same constituency trees, children summed.")
    if "treelstm-root" in rows:
        parts.append("Tree-LSTM, root labels only: the same model with the baseline's "
                     "supervision (sentence label only).")
    if any(COMPARE_ROWS[row][1] == "lstm" for row in rows):
        parts.append("LSTM: nn.LSTM over the words in order, loss on the sentence label only.")
    if config.view == "fine":
        parts.append("Binary: from each fine-grained model's predictions on the non-neutral "
                     "roots (positive iff p(3)+p(4) > p(0)+p(1)); no separate binary model is "
                     "trained.")
        parts.append("All-phrase: every node of the test trees (n/a: the LSTM labels sentences "
                     "only).")
    else:
        parts.append("Binary models trained on the binary view (Tai et al.'s binary task); "
                     "binary phrase: every non-neutral node of the test trees (n/a for the "
                     "LSTM).")
    parts.append(f"Throughput on {device.type}{threads}, batching included; training at batch "
                 f"{config.batch_size} (mean over epochs), inference at batch 256 on the test "
                 "set.")
    return " ".join(parts)


def _row_config(config: TrainConfig, row: str, seed: int, sizes: str) -> TrainConfig:
    _, model, changes = COMPARE_ROWS[row]
    if sizes == "paper":
        changes = {**changes, "hidden_size": PAPER_HIDDEN_SIZES[row]}
    return dataclasses.replace(config, model=model, seed=seed, **changes)


def _train_in_worker(row: str, seed: int, config: dict, out_dir: Optional[Path], resume: bool,
                     overwrite: bool, threads: int, log_level: int, parent: int) -> dict:
    """One run of :func:`compare` in a worker process: its metrics. The worker logs as
    compare's process does (``log_level``), each line prefixed with its run; it stops (after
    writing its epoch) once compare's process ``parent`` is gone (killed: nobody would read the
    result, and a ``--resume`` must not find the run still writing)."""
    torch.set_num_threads(threads)
    package = logging.getLogger("treelstm")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(f"[{row}, seed {seed}] %(message)s"))
    package.addHandler(handler)
    package.setLevel(log_level)

    def stop_if_orphaned(epoch: int, record: Optional[dict] = None) -> None:
        if os.getppid() != parent:
            raise SystemExit(f"compare's process {parent} is gone; stopped after epoch {epoch}")

    stop_if_orphaned(0)
    return train(TrainConfig.from_dict(config), out_dir, resume=resume, overwrite=overwrite,
                 on_epoch_end=stop_if_orphaned).metrics


def compare(config: TrainConfig, out_dir: Optional[PathLike] = None,
            progress: Union[bool, Progress] = False,
            rows: Sequence[str] = DEFAULT_COMPARE_ROWS, overwrite: bool = False,
            seeds: Optional[Sequence[int]] = None, jobs: int = 1, resume: bool = False,
            sizes: str = "same") -> dict:
    """Train each row of :data:`~treelstm.training.comparison.COMPARE_ROWS` named in ``rows``
    on the same data (``config.data`` in ``config.view``) with the same budget and tabulate
    them.

    Args:
        seeds: train every row once per seed and show mean ± sample standard deviation
            (``None``: ``config.seed`` alone).
        jobs: runs at a time, each in a process of its own with this process's number of torch
            threads (``1``: one after the other in this process).
        resume: go on with the runs already in ``out_dir`` (each as ``train(resume=True)``: a
            finished run is only tested again, an interrupted one resumes bit for bit).
        sizes: ``"same"`` (``config.hidden_size`` for every row) or ``"paper"``
            (:data:`~treelstm.training.comparison.PAPER_HIDDEN_SIZES`).

    Returns ``{"results": {row: metrics}, "table": markdown, "caption": str}`` for one seed;
    with ``seeds``, ``"runs": {row: {seed: metrics}}`` and ``"summary": {row:``
    :func:`summarize_runs` ``}`` instead of ``"results"``. With ``out_dir`` also writes
    ``compare.md``, ``compare.json`` and each run in ``out_dir/<row>/`` (with ``seeds``:
    ``out_dir/<row>/seed-<seed>/``). An ``out_dir`` that holds a comparison (or a run) is
    refused (FileExistsError) before anything is trained, unless ``overwrite`` or ``resume``.
    """
    unknown = [row for row in rows if row not in COMPARE_ROWS]
    if len(set(rows)) != len(rows):
        raise ValueError(f"compare: rows must not repeat; got {list(rows)!r}")
    if unknown or not rows:
        raise ValueError(f"compare: rows must be a non-empty list of {tuple(COMPARE_ROWS)}; "
                         f"got {list(rows)!r}")
    if seeds is not None and (not seeds or len(set(seeds)) != len(seeds)):
        raise ValueError(f"compare: seeds must be a non-empty list without repeats; got "
                         f"{seeds!r}")
    if not is_positive_int(jobs):
        raise ValueError(f"compare: jobs must be a positive integer; got {jobs!r}")
    if sizes not in SIZES:
        raise ValueError(f"compare: sizes must be one of {SIZES}; got {sizes!r}")
    if resume and overwrite:
        raise ValueError("compare: resume and overwrite exclude each other")
    config.validate()
    run_seeds = list(seeds) if seeds is not None else [config.seed]
    out_dir = Path(out_dir) if out_dir is not None else None

    def run_dir(row: str, seed: int) -> Optional[Path]:
        if out_dir is None:
            return None
        return seed_dir(out_dir / row, seed) if seeds is not None else out_dir / row

    if out_dir is not None and not overwrite and not resume:
        check_no_run(out_dir, ("compare.md", "compare.json"))
        for row in rows:
            for seed in run_seeds:
                check_no_run(cast(Path, run_dir(row, seed)), _RUN_FILES)
    plan = [(row, seed, _row_config(config, row, seed, sizes)) for row in rows
            for seed in run_seeds]
    with run_lock(out_dir) if out_dir is not None else contextlib.nullcontext():
        if out_dir is not None:
            _check_layout(out_dir, rows, seeds is not None)
        splits = load_splits(config.data, config.view) if jobs == 1 or resume else None
        if resume and out_dir is not None:
            _check_resumable_runs(plan, run_dir, cast(dict, splits))
        result = _train_and_tabulate(config, plan, run_dir, out_dir, splits, progress, overwrite,
                                     resume, jobs, seeds, sizes)
    return result


def _check_layout(out_dir: Path, rows: Sequence[str], per_seed: bool) -> None:
    """ValueError if ``out_dir`` holds runs in the other layout (one run per row, or a folder
    per seed): the two would mix in one folder, and the files of one would stay beside the
    other's table."""
    for row in rows:
        single = any((out_dir / row / name).exists() for name in _RUN_FILES)
        several = any((out_dir / row).glob("seed-*"))
        if (per_seed and single) or (not per_seed and several):
            found, asked = (("a single-seed run", "--seeds") if per_seed else
                            ("runs per seed (seed-*/)", "one seed"))
            raise ValueError(f"{out_dir / row}: holds {found}; a compare with {asked} would "
                             "mix its runs with those; choose another --out")


def _check_resumable_runs(plan: list, run_dir: Callable[[str, int], Optional[Path]],
                          splits: dict) -> None:
    """Before anything is trained: every run already in the out dir may resume as planned (the
    same settings and data, and the same patience, which the table's caption states)."""
    for row, seed, run_config in plan:
        directory = cast(Path, run_dir(row, seed))
        checkpoint = _load_resumable(directory, run_config,
                                     _checked_splits(run_config, splits)["train"])
        if checkpoint is not None and checkpoint.config.get("patience") != run_config.patience:
            def said(patience: Optional[int]) -> str:
                return "no --patience" if patience is None else f"--patience {patience}"

            raise ValueError(f"{directory / 'checkpoint.pt'}: cannot resume in compare: it was "
                             f"trained with {said(checkpoint.config.get('patience'))}, this run "
                             f"has {said(run_config.patience)} (the table states one patience "
                             "for all runs)")


def _train_and_tabulate(config: TrainConfig, plan: list,
                        run_dir: Callable[[str, int], Optional[Path]], out_dir: Optional[Path],
                        splits: Optional[dict], progress: Union[bool, Progress],
                        overwrite: bool, resume: bool, jobs: int,
                        seeds: Optional[Sequence[int]], sizes: str) -> dict:
    """Train the runs of ``plan`` and write the table (see :func:`compare`)."""
    rows = list(dict.fromkeys(row for row, _, _ in plan))
    run_seeds = list(dict.fromkeys(seed for _, seed, _ in plan))
    if jobs == 1:
        finished = {}
        for row, seed, run_config in plan:
            logger.info("training %s", _run_name((row, seed)))
            try:
                finished[row, seed] = train(run_config, run_dir(row, seed), progress=progress,
                                            splits=splits, overwrite=overwrite,
                                            resume=resume).metrics
            except (ValueError, FloatingPointError) as error:
                raise prefixed(error, _run_name((row, seed))) from None
    else:
        finished = _train_in_processes(plan, run_dir, resume, overwrite, jobs, progress)
    runs = {row: {seed: finished[row, seed] for seed in run_seeds} for row in rows}
    caption = _compare_caption(config, rows, finished[plan[0][0], plan[0][1]], run_seeds,
                               sizes)
    table = comparison_table({row: list(runs[row].values()) for row in rows}, caption,
                             view=config.view)
    result: dict[str, Any] = {"table": table, "caption": caption}
    if seeds is None:
        result["results"] = {row: runs[row][config.seed] for row in rows}
    else:
        result["seeds"] = run_seeds
        result["runs"] = runs
        result["summary"] = {row: summarize_runs(list(runs[row].values()), config.view)
                             for row in rows}
    if out_dir is not None:
        write_text(out_dir / "compare.md", table)
        write_text(out_dir / "compare.json", json.dumps(result, indent=2) + "\n")
    return result


def _run_name(key: Any) -> str:
    """``"Tree-LSTM, seed 3"`` for the run ``(row, seed)``."""
    row, seed = key
    return f"{COMPARE_ROWS[row][0]}, seed {seed}"


def _train_in_processes(plan: list, run_dir: Callable[[str, int], Optional[Path]],
                        resume: bool, overwrite: bool, jobs: int,
                        progress: Union[bool, Progress]) -> dict:
    """The runs of ``plan`` ``(row, seed, config)``, ``jobs`` at a time, each in a spawned
    process of its own (:func:`~treelstm.training.workers.run_in_processes`), logged as each
    ends."""
    threads, level, parent = torch.get_num_threads(), logger.getEffectiveLevel(), os.getpid()
    tasks = [((row, seed), (row, seed, run_config.to_dict(), run_dir(row, seed), resume,
                            overwrite, threads, level, parent))
             for row, seed, run_config in plan]
    finished: dict = {}
    runs = run_in_processes(_train_in_worker, tasks, jobs, name=_run_name)
    for key, metrics in track(progress, runs, len(plan),
                              f"{len(plan)} runs, {min(jobs, len(plan))} at a time"):
        finished[key] = metrics
        logger.info("%s: best epoch %s of %d, dev %.2f%%, test %.2f%%", _run_name(key),
                    metrics["best_epoch"], metrics["epochs_done"],
                    100 * (_metric(metrics, "dev", "root_acc") or 0.0),
                    100 * metrics["test"]["root_acc"])
    return finished
