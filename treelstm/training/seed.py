"""Seeding and the state of python's, numpy's and torch's random number generators.

:func:`get_rng_state` returns tensors and plain numbers, so that a checkpoint holding it reads back
with ``torch.load(weights_only=True)``; :func:`_epoch_order` is the training order of an epoch, a
function of (seed, epoch) only.
"""
from __future__ import annotations

import random
from typing import cast

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global RNG and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def get_rng_state() -> dict:
    """The states of python's ``random``, numpy's global RNG and torch (CPU, and CUDA when
    available) as tensors and plain numbers, so that ``torch.load(weights_only=True)`` reads
    them."""
    version, python_state, python_gauss = random.getstate()
    # legacy=True (the default) gives the MT19937 tuple; numpy's stubs default to the dict
    _, numpy_keys, numpy_pos, numpy_has_gauss, numpy_gauss = cast(
        "tuple[str, np.ndarray, int, int, float]", np.random.get_state())
    state = {"python": torch.tensor(python_state, dtype=torch.int64),
             "python_version": int(version), "python_gauss": python_gauss,
             "numpy": torch.from_numpy(numpy_keys.astype(np.int64)),
             "numpy_pos": int(numpy_pos), "numpy_has_gauss": int(numpy_has_gauss),
             "numpy_gauss": float(numpy_gauss),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`get_rng_state` returned."""
    random.setstate((state["python_version"], tuple(int(v) for v in state["python"].tolist()),
                     state["python_gauss"]))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"],
                         state["numpy_has_gauss"], state["numpy_gauss"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available() and \
            len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _epoch_order(num_trees: int, seed: int, epoch: int) -> np.ndarray:
    """The training order of ``epoch``: a function of (seed, epoch) only, so a resumed run
    sees the same order as an uninterrupted one."""
    return np.random.default_rng([seed, epoch]).permutation(num_trees)
