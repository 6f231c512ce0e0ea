#!/usr/bin/env python
"""Tree-LSTM vs the nn.LSTM baseline on the same trees and budget: one table (``--help``).

    python examples/compare.py                       # bundled treebank, a few CPU minutes
    python examples/compare.py --epochs 10 --rows treelstm,lstm,bilstm --out runs/compare10

The same as ``python -m treelstm compare``; the logic lives in ``treelstm.training``.
"""
import sys

from treelstm.__main__ import compare_command

if __name__ == "__main__":
    sys.exit(compare_command(prog="compare.py"))
