#!/usr/bin/env python
"""Train a Tree-LSTM (or the nn.LSTM baseline) on sentiment trees; ``--help`` for the options.

    python examples/train_sst.py --model treelstm --epochs 5 --out runs/tree
    python examples/train_sst.py --model lstm --view binary --out runs/lstm-binary
    python examples/train_sst.py --model treelstm --out runs/tree --epochs 10 --resume

The same as ``python -m treelstm train``; the logic lives in ``treelstm.training``.
"""
import sys

from treelstm.__main__ import train_command

if __name__ == "__main__":
    sys.exit(train_command(prog="train_sst.py"))
