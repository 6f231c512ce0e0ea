"""ProjectionCache: what the native engine keeps between inference calls (the projection of an
input table, the N-ary leaves' per-word terms), and how it tells that a kept value is stale."""
from __future__ import annotations

from typing import Any, Callable, Optional, cast

import torch
from torch import Tensor

from .steps import projection_weight


class ProjectionCache:
    """The projection ``W_ih x`` of every row of an input table (e.g. an embedding's weight),
    kept between calls without autograd -- at inference each vocabulary word is projected once,
    not once per occurrence. Off unless ``enabled``
    (:meth:`~treelstm.TreeLSTM.cache_projections`): turn it on for inference with fixed weights.
    It is recomputed when the table or a weight is another tensor, another dtype, or changed in
    place through autograd-tracked ops (an ordinary optimizer step, ``load_state_dict``); writes
    that bypass tensor version counters -- in-place writes through ``.data``, fused optimizer
    kernels -- cannot be seen: call :meth:`clear` after those. A table whose projection would
    take more than ``max_bytes`` is not cached (the distinct rows of each batch are projected
    instead).

    The N-ary engine also keeps, per word, what a leaf with that word adds to its parent's
    pre-activations in each child slot (``U_k h_leaf``), so that nodes whose children are all
    leaves need no matrix product (when that fits in ``max_bytes`` too).
    """

    def __init__(self, max_bytes: int = 256 * 2 ** 20, enabled: bool = False) -> None:
        self.max_bytes = max_bytes
        self.enabled = enabled
        self._kept: dict[str, tuple[tuple, Any]] = {}  # name -> (key, value)

    def fits(self, table: Tensor, weight_ih: Tensor) -> bool:
        """Whether ``table``'s projection may be cached (inference tensors have no version
        counter to tell a change by, so they are not)."""
        if not self.enabled or table.is_inference() or weight_ih.is_inference():
            return False
        return table.shape[0] * weight_ih.shape[0] * table.element_size() <= self.max_bytes

    def projection(self, table: Tensor, weight_ih: Tensor, dtype: torch.dtype,
                   leaves_only: bool, words: Tensor) -> Tensor:
        """``[M, width]``: ``table[words] @ W.t()`` in ``dtype``, ``W`` the rows of ``weight_ih`` in
        use (see ``steps.projection_weight``), from the kept projection of each row of ``table``
        (made the first time a call needs the row, and kept while all are unchanged)."""
        def compute(rows: Tensor) -> tuple[Tensor]:
            weight = projection_weight(leaves_only, weight_ih.shape[0] // 4,
                                        weight_ih.to(dtype))
            return (table.index_select(0, rows).to(dtype).mm(weight.t()),)
        (projection,), place = self.kept_rows("projection", (table, weight_ih),
                                              (dtype, leaves_only), table.shape[0], words,
                                              compute)
        return projection.index_select(0, place)

    def kept_rows(self, name: str, key_tensors: tuple[Optional[Tensor], ...], extra: tuple,
                  num_rows: int, rows: Tensor, compute: Callable[[Tensor], tuple[Tensor, ...]],
                  pad_rows: int = 0) -> tuple[tuple[Tensor, ...], Tensor]:
        """Per-row values of a table of ``num_rows`` rows, kept under ``name`` while the tensors
        of ``key_tensors`` and ``extra`` are unchanged, and computed the first time some call
        needs a row: ``compute(missing)`` gives the values of the rows ``missing`` (distinct
        ids, ascending), one tensor per kind of value, rows in dim -2. So a vocabulary costs
        only the words that inference meets, not the whole table up front.

        Returns:
            ``(tensors, place)``: the kept tensors, whose rows ``0..pad_rows-1`` are zero, and
            ``place`` (like ``rows``) the row of the tensors that holds each of ``rows``.
        """
        kept = self._kept_value(name, key_tensors, extra, lambda: _KeptRows(num_rows, pad_rows))
        place = kept.fill(rows, compute)
        return kept.tensors, place

    def kept_value(self, name: str, key_tensors: tuple[Optional[Tensor], ...], extra: tuple,
                   compute: Callable[[], Any]) -> Any:
        """``compute()``, kept under ``name`` while the tensors of ``key_tensors`` and ``extra``
        are unchanged (e.g. weights prepared for inference)."""
        return self._kept_value(name, key_tensors, extra, compute)

    def _kept_value(self, name: str, key_tensors: tuple[Optional[Tensor], ...], extra: tuple,
                    compute: Callable[[], Any]) -> Any:
        """The value kept under ``name`` if its key still holds, else ``compute()`` kept anew.
        A tensor's part of the key is its identity, version counter and storage address."""
        key = tuple((t, None if t is None else (t._version, t.data_ptr()))
                    for t in key_tensors) + extra
        kept = self._kept.get(name)
        if kept is None or len(kept[0]) != len(key) or any(
                _changed(a, b) for a, b in zip(key, kept[0])):
            self._kept.pop(name, None)  # free the old value first
            self._kept[name] = (key, compute())
        return self._kept[name][1]

    def clear(self) -> None:
        """Forget everything kept: the next calls compute it again."""
        self._kept.clear()


class _KeptRows:
    """Row-wise kept tensors (see :meth:`ProjectionCache.kept_rows`): rows in the order they
    were first needed (after ``pad_rows`` zero rows), and each table row's place among them.
    The tensors are allocated once for the whole table, but memory pages are touched only for
    the rows filled, which sit together at the front. Kept tensors are ordinary tensors, not
    inference tensors, so that a later call outside ``torch.inference_mode`` can still fill
    them."""

    def __init__(self, num_rows: int, pad_rows: int) -> None:
        self.num_rows, self.size = num_rows, pad_rows
        self.tensors: tuple[Tensor, ...] = ()
        self.place: Optional[Tensor] = None  # [num_rows] each row's place; -1: not yet

    def fill(self, rows: Tensor, compute: Callable[[Tensor], tuple[Tensor, ...]]) -> Tensor:
        """Computes the rows of ``rows`` not kept yet; returns the place of each of ``rows``."""
        with torch.no_grad():
            if self.place is None:
                with torch.inference_mode(False):
                    self.place = torch.full((self.num_rows,), -1, dtype=torch.long,
                                            device=rows.device)
            place = self.place.index_select(0, rows)
            if self.tensors and not bool((place < 0).any()):  # all kept: the usual case
                return place
            missing = torch.unique(rows[place < 0])
            self._append(missing, compute(missing))
            return self.place.index_select(0, rows)

    def _append(self, missing: Tensor, values: tuple[Tensor, ...]) -> None:
        if not self.tensors:
            with torch.inference_mode(False):
                self.tensors = tuple(self._allocate(value) for value in values)
        start, stop = self.size, self.size + missing.shape[0]
        for kept, value in zip(self.tensors, values):
            kept[..., start:stop, :] = value
        place = cast(Tensor, self.place)  # made by fill() before it calls _append
        place[missing] = torch.arange(start, stop, device=missing.device)
        self.size = stop

    def _allocate(self, like: Tensor) -> Tensor:
        """``like``'s shape with ``size + num_rows`` rows (dim -2), the first ``size`` zero."""
        tensor = like.new_empty((*like.shape[:-2], self.size + self.num_rows, like.shape[-1]))
        tensor[..., :self.size, :] = 0
        return tensor


def _changed(a: Any, b: Any) -> bool:
    """Whether two parts of a :class:`ProjectionCache` key differ (tensors by identity)."""
    if isinstance(a, tuple):
        return a[0] is not b[0] or a[1] != b[1]
    return a != b
