"""treelstm: Child-Sum and N-ary Tree-LSTMs for PyTorch, with nn.LSTM's conventions.

Public API::

    from treelstm import TreeBatch, ChildSumTreeLSTMCell, NaryTreeLSTMCell, TreeLSTM
    from treelstm import TreeLSTMClassifier, LSTMClassifier   # sentiment models (per node / per sentence)
"""
from .batch import TreeBatch
from .cells import ChildSumTreeLSTMCell, NaryTreeLSTMCell
from .baseline import LSTMClassifier
from .classifier import TreeLSTMClassifier
from .models import TreeLSTM

__version__ = "0.1.0"
__all__ = ["TreeBatch", "ChildSumTreeLSTMCell", "NaryTreeLSTMCell", "TreeLSTM", "TreeLSTMClassifier",
           "LSTMClassifier", "__version__"]
