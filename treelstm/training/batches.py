"""An epoch's training batches with their collated inputs: made in the training process, each
just before its update, or ahead of the updates in ``torch.utils.data.DataLoader`` worker
processes (``TrainConfig.loader_workers``), so that collation overlaps the model's work.

Either way the batches are the same, in the same order: the epoch order is fixed before (see
:func:`~treelstm.training.seed._epoch_order`), collation draws no random numbers, and the
DataLoader gets its own ``torch.Generator`` so that starting its workers does not draw from
torch's global one (dropout's). A run with workers is the same run, bit for bit, and it may be
resumed with another number of them.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

__all__ = ["epoch_batches"]


class _Collated(Dataset):
    """Item ``batch_order`` (an array of tree indices, given by the sampler): the batch and its
    collated inputs."""

    def __init__(self, inputs_of: Callable[[np.ndarray], Any]) -> None:
        self.inputs_of = inputs_of

    def __getitem__(self, batch_order: np.ndarray) -> tuple[np.ndarray, Any]:
        return batch_order, self.inputs_of(batch_order)


def _as_is(item: Any) -> Any:
    """The DataLoader's ``collate_fn``: an item is already a batch."""
    return item


def epoch_batches(batches: Sequence[np.ndarray], inputs_of: Callable[[np.ndarray], Any],
                  workers: int) -> Iterator[tuple[np.ndarray, Any]]:
    """``(batch_order, inputs_of(batch_order))`` for each of ``batches``, in order; with
    ``workers`` > 0 the inputs are made in that many DataLoader worker processes (two batches
    ahead per worker), which end with the epoch. ``inputs_of`` is called in the workers: it
    must draw no random numbers."""
    if workers == 0:
        for batch_order in batches:
            yield batch_order, inputs_of(batch_order)
        return
    loader = DataLoader(_Collated(inputs_of), batch_size=None, sampler=list(batches),
                        num_workers=workers, collate_fn=_as_is, prefetch_factor=2,
                        generator=torch.Generator().manual_seed(0))
    yield from loader
