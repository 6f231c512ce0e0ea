"""Checks shared by the test files (like PyG's ``testing/asserts.py``)."""
import copy
import importlib.util
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def load_script(relative_path: str):
    """The module of a script of the repository that is not part of the package (e.g.
    ``benchmarks/bench.py``), loaded once under its file name."""
    path = REPO / relative_path
    name = f"script_{path.stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules[name]


def root_logits(model, trees, vocab, batch_size=7):
    """An independent path to a classifier's root logits ``[len(trees), C]``: a copy of the model
    in eval mode, no projection cache, fixed-size chunks, ``model.collate`` and one forward each
    under ``no_grad``."""
    reference = copy.deepcopy(model).cpu().eval()
    if hasattr(reference, "tree_lstm"):
        reference.tree_lstm.cache_projections(False)
    rows = []
    with torch.no_grad():
        for start in range(0, len(trees), batch_size):
            inputs = reference.collate(trees[start:start + batch_size], vocab)
            rows.append(reference(inputs).root_logits)
    return torch.cat(rows)
