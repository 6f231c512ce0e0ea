"""treelstm: Child-Sum and N-ary Tree-LSTMs for PyTorch, with nn.LSTM's conventions.

Public API::

    from treelstm import TreeBatch, ChildSumTreeLSTMCell, NaryTreeLSTMCell, TreeLSTM
    from treelstm import TreeLSTMClassifier, LSTMClassifier   # sentiment models (per node / per sentence)
    from treelstm import Predictor        # batched inference from a checkpoint (treelstm.predict)

The names are imported from their modules on first use (PEP 562), so that ``import treelstm``
-- and with it ``python -m treelstm --help`` -- does not load torch.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), submodules=True)


if TYPE_CHECKING:  # the same names, for type checkers and IDEs
    from .baseline import LSTMClassifier
    from .batch import TreeBatch
    from .cells import ChildSumTreeLSTMCell, NaryTreeLSTMCell
    from .classifier import TreeLSTMClassifier
    from .models import TreeLSTM
    from .predict import Predictor
