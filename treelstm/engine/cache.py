"""ProjectionCache: what the native engine keeps between inference calls (the projection of an
input table, the N-ary leaves' per-word terms), and how it tells that a kept value is stale."""
from __future__ import annotations

from typing import Any, Callable, Optional

import torch
from torch import Tensor

from .steps import projection_weight


class ProjectionCache:
    """The projection ``W_ih x`` of every row of an input table (e.g. an embedding's weight),
    kept between calls without autograd -- at inference each vocabulary word is projected once,
    not once per occurrence. Off unless ``enabled`` (:meth:`TreeLSTM.cache_projections`): turn
    it on for inference with fixed weights. It is recomputed when the table or a weight is
    another tensor, another dtype, or changed in place through autograd-tracked ops (an
    ordinary optimizer step, ``load_state_dict``); writes that bypass tensor version counters
    -- in-place writes through ``.data``, fused optimizer kernels -- cannot be seen:
    call :meth:`clear` after those. A table whose projection would take more than
    ``max_bytes`` is not cached (the distinct rows of each batch are projected instead).

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
                   leaves_only: bool) -> Tensor:
        """``table @ W.t()`` in ``dtype``, ``W`` the rows of ``weight_ih`` in use (see
        :func:`projection_weight`), from the cache when all are unchanged."""
        def compute() -> Tensor:
            weight = projection_weight(leaves_only, weight_ih.shape[0] // 4,
                                        weight_ih.to(dtype))
            return table.to(dtype).mm(weight.t())
        return self._kept_value("projection", (table, weight_ih), (dtype, leaves_only), compute)

    def leaf_terms(self, key_tensors: tuple[Optional[Tensor], ...], extra: tuple,
                   compute: Callable[[], Any]) -> Any:
        """``compute()``, kept while the tensors of ``key_tensors`` and ``extra`` are
        unchanged."""
        return self._kept_value("leaf_terms", key_tensors, extra, compute)

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
        self._kept.clear()


def _changed(a: Any, b: Any) -> bool:
    """Whether two parts of a :class:`ProjectionCache` key differ (tensors by identity)."""
    if isinstance(a, tuple):
        return a[0] is not b[0] or a[1] != b[1]
    return a != b
