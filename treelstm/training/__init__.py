"""Train, evaluate and checkpoint the sentiment classifiers (Tai, Socher & Manning 2015, §5.1).

The pieces used by ``python -m treelstm train|eval|compare`` and ``examples/``:

* :class:`TrainConfig` -- every setting of a run; its defaults are Tai et al.'s set-up.
* :func:`train` -- the epoch loop: AdaGrad, dev accuracy each epoch, ``checkpoint.pt`` (everything
  needed to resume exactly) and ``best.pt`` (best dev accuracy), test evaluated once at the end
  with the best weights, ``metrics.json`` and a learning-curve PNG.
* :func:`evaluate` -- accuracies of a model on a list of trees (:class:`treelstm.predict.Predictor`
  gives predictions).
* :func:`save_checkpoint`, :func:`load_checkpoint`, :func:`load_model` -- state_dict + JSON config
  files, read back with ``torch.load(weights_only=True)``.
* :func:`compare` -- the Tree-LSTM and the ``nn.LSTM`` baseline on the same data and budget, as
  one table.

One module a concept: ``config`` (settings, device), ``seed`` (RNG seeding and state),
``checkpoint`` (the files), ``distributed`` (torchrun processes), ``evaluation`` (loss,
accuracies), ``resume`` (may a checkpoint resume this run), ``loop`` (:func:`train`), ``plot``
(the learning curve), ``comparison`` (:func:`compare`).

The names below are imported from their modules on first use, so that ``import
treelstm.training.checkpoint`` (what :mod:`treelstm.predict` needs) loads neither the training
loop nor torch.distributed. Library code here logs (``logging.getLogger("treelstm.training")``)
and returns values; it never prints. tqdm (optional) and matplotlib (optional) are imported only
when used.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

__all__ = ["DEFAULT_DATA", "MODEL_KINDS", "COMPARE_ROWS", "TrainConfig", "TrainResult",
           "Checkpoint", "LoadedModel", "load_splits", "build_model", "count_parameters",
           "evaluate", "train", "compare", "comparison_table", "save_checkpoint",
           "load_checkpoint", "load_model", "remove_stale_temp_files", "get_rng_state",
           "set_rng_state", "seed_everything", "plot_learning_curve", "MAX_SEED", "SPLITS",
           "resolve_device", "DEFAULT_COMPARE_ROWS", "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION",
           "TORCHRUN_VARIABLES", "PAPER_HIDDEN_SIZES", "summarize_runs"]

# Public name -> the module (relative to this package) that defines it.
_EXPORTS = {
    "DEFAULT_DATA": ".config", "MODEL_KINDS": ".config", "SPLITS": ".config",
    "MAX_SEED": ".config", "TrainConfig": ".config", "resolve_device": ".config",
    "seed_everything": ".seed", "get_rng_state": ".seed", "set_rng_state": ".seed",
    "CHECKPOINT_FORMAT": ".checkpoint", "CHECKPOINT_VERSION": ".checkpoint",
    "Checkpoint": ".checkpoint", "LoadedModel": ".checkpoint", "save_checkpoint": ".checkpoint",
    "load_checkpoint": ".checkpoint", "load_model": ".checkpoint",
    "TORCHRUN_VARIABLES": ".distributed",
    "load_splits": ".evaluation", "build_model": ".evaluation",
    "count_parameters": ".evaluation", "evaluate": ".evaluation",
    "TrainResult": ".loop", "train": ".loop",
    "plot_learning_curve": ".plot",
    "COMPARE_ROWS": ".comparison", "DEFAULT_COMPARE_ROWS": ".comparison",
    "comparison_table": ".comparison", "compare": ".comparison",
    "PAPER_HIDDEN_SIZES": ".comparison", "summarize_runs": ".comparison",
    "remove_stale_temp_files": "..files",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:  # the same names, for type checkers and IDEs
    from ..files import remove_stale_temp_files
    from .checkpoint import (CHECKPOINT_FORMAT, CHECKPOINT_VERSION, Checkpoint, LoadedModel,
                             load_checkpoint, load_model, save_checkpoint)
    from .comparison import (COMPARE_ROWS, DEFAULT_COMPARE_ROWS, PAPER_HIDDEN_SIZES, compare,
                             comparison_table, summarize_runs)
    from .config import DEFAULT_DATA, MAX_SEED, MODEL_KINDS, SPLITS, TrainConfig, resolve_device
    from .distributed import TORCHRUN_VARIABLES
    from .evaluation import build_model, count_parameters, evaluate, load_splits
    from .loop import TrainResult, train
    from .plot import plot_learning_curve
    from .seed import get_rng_state, seed_everything, set_rng_state
