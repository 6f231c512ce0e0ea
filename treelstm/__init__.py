"""treelstm: Child-Sum and N-ary Tree-LSTMs for PyTorch, with nn.LSTM's conventions.

Public API::

    from treelstm import TreeBatch, ChildSumTreeLSTMCell, NaryTreeLSTMCell, TreeLSTM
    from treelstm import TreeLSTMClassifier, LSTMClassifier   # sentiment models (per node / per sentence)
    from treelstm import Predictor        # batched inference from a checkpoint (treelstm.predict)

The names are imported from their modules on first use (PEP 562), so that ``import treelstm``
-- and with it ``python -m treelstm --help`` -- does not load torch.
"""
from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["TreeBatch", "ChildSumTreeLSTMCell", "NaryTreeLSTMCell", "TreeLSTM",
           "TreeLSTMClassifier", "LSTMClassifier", "Predictor", "__version__"]

# Public name -> the module (relative to this package) that defines it.
_EXPORTS = {
    "TreeBatch": ".batch",
    "ChildSumTreeLSTMCell": ".cells", "NaryTreeLSTMCell": ".cells",
    "LSTMClassifier": ".baseline",
    "TreeLSTMClassifier": ".classifier",
    "TreeLSTM": ".models",
    "Predictor": ".predict",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
            return importlib.import_module(f".{name}", __name__)  # a submodule: treelstm.data
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # the next lookup does not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # the same names, for type checkers and IDEs
    from .baseline import LSTMClassifier
    from .batch import TreeBatch
    from .cells import ChildSumTreeLSTMCell, NaryTreeLSTMCell
    from .classifier import TreeLSTMClassifier
    from .models import TreeLSTM
    from .predict import Predictor
