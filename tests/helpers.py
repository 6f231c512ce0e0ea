"""Checks shared by the test files (like PyG's ``testing/asserts.py``)."""
import copy

import torch


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
