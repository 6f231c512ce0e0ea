"""A relatedness run (``python -m treelstm sick-train``, ``examples/train_sick.py``): each encoder
of a :class:`~treelstm.sick.RelatednessConfig` trained on the same pairs, its best dev epoch
scored once on test, saved as ``<encoder>/best.pt``, and one table of the results."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import time
from pathlib import Path
from typing import Optional, Sequence, Union, cast

import torch

from ..data.sick import RelatednessPair, read_sick_splits
from ..data.vectors import load_vectors
from ..data.vocab import Vocab
from ..files import PathLike, check_no_run, run_lock, write_text
from ..progress import Progress
from ..seeds import seed_dir, spread, summary
from .checkpoint import save_relatedness_checkpoint
from .config import RelatednessConfig
from .model import ENCODER_NAMES, ENCODERS, RelatednessModel
from .train import evaluate_relatedness, train_relatedness

__all__ = ["RUN_FILES", "train_relatedness_run", "train_relatedness_seeds", "results_table",
           "seeds_table"]

logger = logging.getLogger(__name__)

#: What a run writes to its ``out`` directory (a directory holding any of them is refused
#: unless ``overwrite``).
RUN_FILES = ("results.json", "results.md") + tuple(f"{name}/best.pt" for name in ENCODERS)


def results_table(results: dict) -> str:
    """A Markdown table, one row per encoder of ``results`` (:func:`train_relatedness_run`)."""
    lines = ["| model | best epoch | dev r | test r | test rho | test MSE | parameters | "
             "train s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, result in results.items():
        test = result["test"]
        lines.append(f"| {ENCODER_NAMES[name]} | {result['best_epoch']} | "
                     f"{result['best_dev']['pearson']:.4f} | {test['pearson']:.4f} | "
                     f"{test['spearman']:.4f} | {test['mse']:.4f} | "
                     f"{result['parameters']:,} | {result['train_seconds']:.1f} |")
    return "\n".join(lines)


def _train_encoder(config: RelatednessConfig, encoder: str, splits: dict,
                   train_pairs: list[RelatednessPair], vocab: Vocab, out: Optional[Path],
                   progress: Union[bool, Progress]) -> dict:
    """Train one encoder, write its ``best.pt`` (with ``out``), score it on test."""
    start = time.perf_counter()
    torch.manual_seed(config.seed)
    model = RelatednessModel(len(vocab), embed_dim=config.embed_dim,
                             hidden_size=config.hidden_size,
                             similarity_size=config.similarity_size, encoder=encoder)
    if config.embeddings:
        load_vectors(config.embeddings, vocab, embedding=model.embedding)
    run = train_relatedness(model, train_pairs, splits["dev"], vocab, epochs=config.epochs,
                            lr=config.lr, weight_decay=config.weight_decay,
                            batch_size=config.batch_size, seed=config.seed,
                            freeze_embeddings=config.freeze_embeddings, device=config.device,
                            progress=progress)
    if out is not None:  # the model holds the best dev epoch's weights
        save_relatedness_checkpoint(out / encoder / "best.pt", model, vocab, config.to_dict(),
                                    epoch=run["best_epoch"], extra={"best_dev": run["best_dev"]})
    test = evaluate_relatedness(model, splits["test"], vocab, device=config.device)
    logger.info("%s: test r %.4f, rho %.4f, MSE %.4f (best dev epoch %d)", ENCODER_NAMES[encoder],
                test["pearson"], test["spearman"], test["mse"], run["best_epoch"])
    return {"best_epoch": run["best_epoch"], "best_dev": run["best_dev"], "test": test,
            "history": run["history"], "train_seconds": run["train_seconds"],
            "wall_seconds": time.perf_counter() - start,
            "parameters": sum(p.numel() for p in model.parameters())}


def train_relatedness_run(config: RelatednessConfig, out: Optional[PathLike] = None,
                          overwrite: bool = False,
                          progress: Union[bool, Progress] = False) -> dict:
    """Train every encoder of ``config.models`` on the same pairs; score each on test once.

    The vocabulary is the (lower-cased) training pairs' words. With ``out``, writes
    ``out/<encoder>/best.pt`` (the best dev epoch's weights, vocabulary and ``config``;
    :func:`~treelstm.sick.load_relatedness_model` reads it), ``results.json`` (settings, per
    encoder: best epoch, dev and test metrics, history) and ``results.md`` (the table), each
    atomically.

    Returns:
        ``{"settings": config.to_dict(), "results": {encoder: {"best_epoch", "best_dev",
        "test", "history", "train_seconds", "wall_seconds", "parameters"}}}``.

    Raises:
        FileExistsError: ``out`` already holds a run (:data:`~treelstm.sick.run.RUN_FILES`)
            and not ``overwrite``; checked before anything is read or trained.
        FileNotFoundError, ValueError: unreadable data or word vectors (naming the file).
    """
    out = None if out is None else Path(out)
    with run_lock(out) if out is not None else contextlib.nullcontext():
        return _train_relatedness_run(config, out, overwrite, progress)


def _train_relatedness_run(config: RelatednessConfig, out: Optional[Path], overwrite: bool,
                           progress: Union[bool, Progress]) -> dict:
    if out is not None and any(out.glob("seed-*/results.json")):
        raise ValueError(f"{out}: holds runs per seed (seed-*/); a single run would mix with "
                         "them; choose another --out")
    if out is not None and not overwrite:
        check_no_run(out, RUN_FILES, resumable=False)
    splits = read_sick_splits(config.data)
    train_pairs = splits["train"][:config.max_train]
    vocab = Vocab.build((tokens for pair in train_pairs
                         for tokens in (pair.left.tokens, pair.right.tokens)), lower=True)
    logger.info("%s: %d / %d / %d pairs (train / dev / test), vocabulary %d", config.data,
                len(train_pairs), len(splits["dev"]), len(splits["test"]), len(vocab))
    results = {encoder: _train_encoder(config, encoder, splits, train_pairs, vocab, out, progress)
               for encoder in config.models}
    report = {"settings": config.to_dict(), "results": results}
    if out is not None:
        write_text(out / "results.json", json.dumps(report, indent=2) + "\n")
        write_text(out / "results.md", results_table(results) + "\n")
    return report


# The columns of :func:`seeds_table`: (header, where in an encoder's result, digits).
_SEED_COLUMNS = (("best epoch", ("best_epoch",), 1), ("dev r", ("best_dev", "pearson"), 4),
                 ("test r", ("test", "pearson"), 4), ("test rho", ("test", "spearman"), 4),
                 ("test MSE", ("test", "mse"), 4))


def _value(result: dict, path: tuple) -> float:
    for key in path:
        result = result[key]
    return float(result)  # type: ignore[arg-type]


def seeds_table(runs: dict) -> str:
    """A Markdown table of :func:`train_relatedness_seeds`'s ``runs``: per encoder, each column
    as mean ± sample standard deviation over the seeds."""
    seeds = ", ".join(map(str, runs))
    lines = [f"Seeds {seeds}: each cell is the mean ± sample standard deviation (n - 1) over the "
             f"{len(runs)} runs (one value: a single run).", "",
             "| model | " + " | ".join(header for header, _, _ in _SEED_COLUMNS)
             + " | parameters | train s |", "|---|" + "---:|" * (len(_SEED_COLUMNS) + 2)]
    first = next(iter(runs.values()))["results"]
    for encoder in first:
        results = [run["results"][encoder] for run in runs.values()]
        cells = [spread([_value(result, path) for result in results], digits=digits)
                 for _, path, digits in _SEED_COLUMNS]
        lines.append(f"| {ENCODER_NAMES[encoder]} | " + " | ".join(cells)
                     + f" | {results[0]['parameters']:,} | "
                     + spread([result["train_seconds"] for result in results]) + " |")
    return "\n".join(lines)


def _finished_run(directory: Path, config: RelatednessConfig) -> Optional[dict]:
    """The report in ``directory/results.json`` if it is a finished run of ``config``; ``None``
    if there is none (or only part of one: a run killed before its results); ValueError if it
    is a run of other settings."""
    path = directory / "results.json"
    if not path.is_file():
        return None
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        settings = report["settings"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a sick-train report ({error}); use --overwrite") from None
    expected = json.loads(json.dumps(config.to_dict()))  # as JSON has it (lists, not tuples)
    if isinstance(settings, dict) and isinstance(settings.get("data"), str):  # the same folder
        same = os.path.realpath(settings["data"]) == os.path.realpath(expected["data"])
        settings = {**settings, "data": expected["data"] if same else settings["data"]}
    if settings != expected:
        changed = sorted(key for key in set(settings) | set(expected)
                         if settings.get(key) != expected.get(key))
        raise ValueError(f"{path}: a run with other settings ({', '.join(changed)}); --resume "
                         "keeps only runs of the same settings")
    return report


def train_relatedness_seeds(config: RelatednessConfig, seeds: Sequence[int],
                            out: Optional[PathLike] = None, overwrite: bool = False,
                            progress: Union[bool, Progress] = False,
                            resume: bool = False) -> dict:
    """:func:`train_relatedness_run` once per seed (``config.seed`` replaced), into
    ``out/seed-<seed>/``; then ``out/results.json`` (every run, and per encoder and column the
    mean, sample standard deviation and values) and ``out/results.md`` (:func:`seeds_table`).

    Returns:
        ``{"settings" (without "seed"), "seeds", "runs": {seed: report}, "summary": {encoder:
        {column: {"mean", "std", "values"}}}, "table"}``.

    With ``resume``, a seed whose folder holds a finished run of the same settings is kept
    (read back, not trained); any other seed is trained afresh.

    Raises:
        FileExistsError: ``out`` or a seed's folder already holds a run and neither
            ``overwrite`` nor ``resume``; checked before anything is trained.
        ValueError: ``out`` holds a single-seed run; with ``resume``, a finished seed of other
            settings.
    """
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"train_relatedness_seeds: seeds must be a non-empty list without "
                         f"repeats; got {list(seeds)!r}")
    if resume and (overwrite or out is None):
        raise ValueError("train_relatedness_seeds: resume needs an out and excludes overwrite")
    out = None if out is None else Path(out)
    with run_lock(out) if out is not None else contextlib.nullcontext():
        return _train_seeds(config, seeds, out, overwrite, progress, resume)


def _train_seeds(config: RelatednessConfig, seeds: Sequence[int], out: Optional[Path],
                 overwrite: bool, progress: Union[bool, Progress], resume: bool) -> dict:
    if out is not None:
        if any((out / name).exists() for name in RUN_FILES if "/" in name):
            raise ValueError(f"{out}: holds a single-seed run (<model>/best.pt); runs per seed "
                             "would mix with it; choose another --out")
        if not overwrite and not resume:
            check_no_run(out, ("results.json", "results.md"), resumable=False)
            for seed in seeds:
                check_no_run(seed_dir(out, seed), RUN_FILES, resumable=False)
    runs = {}
    for seed in seeds:
        seed_config = dataclasses.replace(config, seed=seed)
        done = _finished_run(seed_dir(out, seed), seed_config) if resume and out else None
        if done is not None:
            logger.info("seed %d: finished in %s, kept", seed, seed_dir(cast(Path, out), seed))
            runs[seed] = done
            continue
        logger.info("seed %d", seed)
        runs[seed] = train_relatedness_run(seed_config,
                                           None if out is None else seed_dir(out, seed),
                                           overwrite=overwrite or resume, progress=progress)
    columns = _SEED_COLUMNS + (("train s", ("train_seconds",), 1),)
    summaries = {encoder: {header: summary([_value(run["results"][encoder], path)
                                            for run in runs.values()])
                           for header, path, _ in columns}
                 for encoder in config.models}
    table = seeds_table(runs)
    settings = {key: value for key, value in config.to_dict().items() if key != "seed"}
    report = {"settings": settings, "seeds": list(seeds), "runs": runs,
              "summary": summaries, "table": table}
    if out is not None:
        write_text(out / "results.json", json.dumps(report, indent=2) + "\n")
        write_text(out / "results.md", table + "\n")
    return report
