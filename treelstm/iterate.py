"""Cutting a sequence into batches (training, evaluation, SICK)."""
from __future__ import annotations

from typing import Any, Iterator, Sequence, TypeVar

import numpy as np

__all__ = ["chunks"]

#: What :func:`chunks` cuts: a list, or an array of indices.
Items = TypeVar("Items", Sequence[Any], np.ndarray)


def chunks(items: Items, size: int) -> Iterator[Items]:
    """``items[0:size]``, ``items[size:2 * size]``, ...; the last one may be shorter."""
    for start in range(0, len(items), size):
        yield items[start:start + size]
