#!/usr/bin/env python
"""Semantic relatedness of SICK-style pairs: Child-Sum Tree-LSTM vs nn.LSTM (Tai et al. 2015).

    python examples/train_sick.py                                   # bundled sample, seconds
    python examples/train_sick.py --data ../shared/data/sick --epochs 10 --out runs/sick
    python -m treelstm sick-eval runs/sick/treelstm/best.pt --split test

Both encoders are trained on the same pairs with the same settings (sizes, optimizer, epochs,
seed); each keeps its best epoch on dev (Pearson's r), which is then scored once on test.
Prints Pearson's r, Spearman's rho and the MSE of each; with --out writes <model>/best.pt and
the results. The same as ``python -m treelstm sick-train``; the logic lives in
``treelstm.sick``.
"""
import sys
from typing import Optional, Sequence

from treelstm.__main__ import sick_train_command


def main(argv: Optional[Sequence[str]] = None) -> int:
    return sick_train_command(argv, prog="train_sick.py")


if __name__ == "__main__":
    sys.exit(main())
