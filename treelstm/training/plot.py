"""The learning curve of a run as a PNG; matplotlib (optional) is imported only when used."""
from __future__ import annotations

import io
import logging

from ..files import PathLike, atomic_write

__all__ = ["plot_learning_curve"]

logger = logging.getLogger(__package__)  # "treelstm.training", as before the split into modules


def plot_learning_curve(history: list[dict], path: PathLike, title: str = "") -> bool:
    """Train loss, and train / dev root accuracy per epoch, as a PNG (matplotlib Agg).
    Returns ``False`` (and logs) if matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        logger.warning("matplotlib is not installed: no learning curve (pip install matplotlib)")
        return False
    epochs = [record["epoch"] for record in history]
    figure, (loss_axes, acc_axes) = plt.subplots(1, 2, figsize=(9, 3.5))
    loss_axes.plot(epochs, [r["train"]["loss"] for r in history], marker="o", label="train")
    loss_axes.set_xlabel("epoch")
    loss_axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    loss_axes.set_ylabel("loss per tree")
    loss_axes.legend()
    acc_axes.plot(epochs, [100 * r["train"]["root_acc"] for r in history], marker="o",
                  label="train (dropout on)")
    acc_axes.plot(epochs, [100 * r["dev"]["root_acc"] for r in history], marker="o", label="dev")
    if history and history[0]["dev"].get("phrase_acc") is not None:
        acc_axes.plot(epochs, [100 * r["dev"]["phrase_acc"] for r in history], marker=".",
                      linestyle="--", label="dev, all phrases")
    acc_axes.set_xlabel("epoch")
    acc_axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    acc_axes.set_ylabel("root accuracy (%)")
    acc_axes.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    atomic_write(path, lambda file: file.write(buffer.getvalue()))
    return True
