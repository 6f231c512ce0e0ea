"""The Tree-LSTM and the ``nn.LSTM`` baseline trained on the same data with the same budget, as
one markdown table (``python -m treelstm compare``)."""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import torch

from ..files import PathLike, check_no_run, write_text
from ..progress import Progress
from .config import TrainConfig, resolve_device
from .evaluation import load_splits
from .loop import _RUN_FILES, train

__all__ = ["COMPARE_ROWS", "DEFAULT_COMPARE_ROWS", "comparison_table", "compare"]

logger = logging.getLogger(__package__)  # "treelstm.training", as before the split into modules

#: The rows that :func:`~treelstm.training.compare` can train, name -> (label, model, the
#: settings changed from the config).
COMPARE_ROWS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "treelstm": ("Tree-LSTM", "treelstm", {"phrase_loss": True, "bidirectional": False}),
    "treelstm-root": ("Tree-LSTM, root labels only", "treelstm",
                      {"phrase_loss": False, "bidirectional": False}),
    "bitreelstm": ("Bidirectional Tree-LSTM", "treelstm",
                   {"phrase_loss": True, "bidirectional": True}),
    "lstm": ("LSTM", "lstm", {"bidirectional": False}),
    "bilstm": ("Bidirectional LSTM", "lstm", {"bidirectional": True}),
}
DEFAULT_COMPARE_ROWS = ("treelstm", "treelstm-root", "lstm")


def _percent(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def comparison_table(results: dict[str, dict], caption: str = "") -> str:
    """A markdown table of :func:`train` metrics, one row per entry of ``results`` (keys of
    :data:`~treelstm.training.comparison.COMPARE_ROWS` get their label, other keys are shown as
    they are)."""
    header = ["model", "fine root dev", "fine root test", "binary root dev", "binary root test",
              "all-phrase test", "parameters", "train trees/s", "inference trees/s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * 8) + "|"]
    for row, metrics in results.items():
        dev, test = metrics["best_dev"] or {}, metrics["test"]
        train_speed = metrics["train_trees_per_s"]
        cells = [COMPARE_ROWS[row][0] if row in COMPARE_ROWS else row,
                 _percent(dev.get("root_acc")), _percent(test["root_acc"]),
                 _percent(dev.get("binary_root_acc")), _percent(test["binary_root_acc"]),
                 _percent(test["phrase_acc"]), f"{metrics['num_parameters']:,}",
                 "n/a" if train_speed is None else f"{train_speed:.0f}",
                 f"{metrics['inference_trees_per_s']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    return f"{caption}\n\n{table}\n" if caption else table + "\n"


def _compare_caption(config: TrainConfig, rows: Sequence[str], first: dict) -> str:
    device = resolve_device(config.device)
    threads = f", {torch.get_num_threads()} torch thread(s)" if device.type == "cpu" else ""
    counts = first["num_trees"]
    parts = [
        f"Accuracy (%) on {config.data} ({counts['train']} train / {counts['dev']} dev / "
        f"{counts['test']} test trees, 5 classes). Every model: {config.epochs} epochs, seed "
        f"{config.seed}, the same training order, embedding {config.embed_dim}"
        f"{' (pre-trained vectors)' if config.embeddings else ' (random init)'}, hidden "
        f"{config.hidden_size}, AdaGrad lr {config.lr}, weight decay {config.weight_decay}, "
        f"batch {config.batch_size}, dropout {config.dropout}; dev and test use the epoch with "
        "the best fine root accuracy on dev.",
    ]
    if "treelstm" in rows:
        parts.append(f"Tree-LSTM: {config.cell} cell, loss on every phrase (Tai et al.).")
    if "treelstm-root" in rows:
        parts.append("Tree-LSTM, root labels only: the same model with the baseline's "
                     "supervision (sentence label only).")
    if "lstm" in rows or "bilstm" in rows:
        parts.append("LSTM: nn.LSTM over the words in order, loss on the sentence label only.")
    parts.append("Binary: from each fine-grained model's predictions on the non-neutral roots "
                 "(positive iff p(3)+p(4) > p(0)+p(1)); no separate binary model is trained.")
    parts.append("All-phrase: every node of the test trees (n/a: the LSTM labels sentences "
                 "only).")
    parts.append(f"Throughput on {device.type}{threads}, batching included; training at batch "
                 f"{config.batch_size} (mean over epochs), inference at batch 256 on the test "
                 "set.")
    return " ".join(parts)


def compare(config: TrainConfig, out_dir: Optional[PathLike] = None,
            progress: Union[bool, Progress] = False,
            rows: Sequence[str] = DEFAULT_COMPARE_ROWS, overwrite: bool = False) -> dict:
    """Train each row of :data:`~treelstm.training.comparison.COMPARE_ROWS` named in ``rows``
    on the same data with the same budget and seed (``config``, fine view) and tabulate them.

    Returns ``{"results": {row: metrics}, "table": markdown, "caption": str}``; with ``out_dir``
    also writes ``compare.md``, ``compare.json`` and each row's run in ``out_dir/<row>/``.
    An ``out_dir`` that holds a comparison (or a row's run) is refused (FileExistsError) before
    anything is trained, unless ``overwrite``.
    """
    unknown = [row for row in rows if row not in COMPARE_ROWS]
    if len(set(rows)) != len(rows):
        raise ValueError(f"compare: rows must not repeat; got {list(rows)!r}")
    if unknown or not rows:
        raise ValueError(f"compare: rows must be a non-empty list of {tuple(COMPARE_ROWS)}; "
                         f"got {list(rows)!r}")
    config = dataclasses.replace(config, view="fine")
    out_dir = Path(out_dir) if out_dir is not None else None
    if out_dir is not None and not overwrite:
        check_no_run(out_dir, ("compare.md", "compare.json"), resumable=False)
        for row in rows:
            check_no_run(out_dir / row, _RUN_FILES, resumable=False)
    splits = load_splits(config.data, "fine")
    results = {}
    for row in rows:
        label, model, changes = COMPARE_ROWS[row]
        logger.info("training %s", label)
        run_config = dataclasses.replace(config, model=model, **changes)
        results[row] = train(run_config, out_dir / row if out_dir is not None else None,
                             progress=progress, splits=splits, overwrite=overwrite).metrics
    caption = _compare_caption(config, rows, next(iter(results.values())))
    table = comparison_table(results, caption)
    if out_dir is not None:
        write_text(out_dir / "compare.md", table)
        write_text(out_dir / "compare.json", json.dumps(
            {"caption": caption, "table": table, "results": results}, indent=2) + "\n")
    return {"results": results, "table": table, "caption": caption}
