"""Weight layouts kept between calls: the contiguous ``U^T`` of a parameter, made once and used
while the parameter's bytes are those it was made from.

The N-ary inference call multiplies each level's children by ``U^T``; MKL runs a product of a few
rows up to twice as fast from a contiguous ``U^T`` as from the transposed view, and the
transposing copy (:func:`.kernels.transposed`) costs ~0.1-0.2 ms a call for ``H = 150``. Kept,
the copy is made once per weight version: each call compares the parameter with a copy of the
bytes the layout was made from (``memcmp``, a quarter of the copy's time, and it stops at the
first difference), so a change by any route -- an optimizer step, ``load_state_dict``, a write
through ``.data`` or a NumPy view, which torch's version counter does not always see -- makes
a new layout, never a stale result.

What is kept, and for what: only :class:`torch.nn.Parameter` objects (a module's weights, called
again and again; a weight computed per call would pay the copy for nothing), of at most
:data:`MAX_ELEMENTS` elements, each with twice its own size (the copy and the layout), freed
with the parameter.
"""
from __future__ import annotations

import contextlib
import ctypes
import threading
import weakref
from typing import Callable, NamedTuple, Optional, cast

from torch import Tensor, nn

from . import kernels

#: parameters larger than this (16 MiB of float32) get a new layout per call: the kept pair
#: would double a large model's memory
MAX_ELEMENTS = 1 << 22


class _Kept(NamedTuple):
    owner: "weakref.ref[Tensor]"
    source: Tensor  # the bytes the layout was made from
    layout: Tensor


_kept: dict[tuple[int, int], _Kept] = {}  # (id of the parameter, width)
_lock = threading.RLock()  # (re-entrant: a collection inside it may call _forget)
_memcmp: Optional[Callable[..., int]] = None
_memcmp_looked = False


def _compare() -> Optional[Callable[..., int]]:
    """The C library's ``memcmp``, or ``None`` where it cannot be found."""
    global _memcmp, _memcmp_looked
    if not _memcmp_looked:  # (the flag after the value, as kernels.sgemm_address)
        with contextlib.suppress(OSError, AttributeError):
            function = ctypes.CDLL(None).memcmp
            function.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
            function.restype = ctypes.c_int
            _memcmp = function
        _memcmp_looked = True
    return _memcmp


def _same_bytes(compare: Callable[..., int], kept: Tensor, weight: Tensor) -> bool:
    return kept.shape == weight.shape and kept.dtype == weight.dtype and \
        weight.is_contiguous() and \
        compare(kept.data_ptr(), weight.data_ptr(), weight.numel() * weight.element_size()) == 0


def transposed(weight: Tensor, width: int) -> Optional[Tensor]:
    """``weight^T``, contiguous, with zero columns up to ``width``
    (:func:`.kernels.transposed` of all its rows), kept for a parameter (see the module doc);
    ``None`` where :func:`.kernels.transposed` cannot make it. The result is shared: read it,
    never write it."""
    compare = _compare()
    if compare is None or not isinstance(weight, nn.Parameter) or \
            weight.numel() > MAX_ELEMENTS:
        return kernels.transposed(weight, ((0, weight.shape[0]),), width)
    key = (id(weight), width)
    kept = _kept.get(key)
    if kept is not None and kept.owner() is weight and _same_bytes(compare, kept.source, weight):
        return kept.layout
    # the layout from the copy it is checked against: a write to the weight meanwhile (another
    # thread's) cannot leave a layout that disagrees with the kept bytes
    source = weight.detach().clone()
    layout = kernels.transposed(source, ((0, source.shape[0]),), width)
    if layout is None:
        return None
    owner: "weakref.ref[Tensor]" = weakref.ref(cast(Tensor, weight),
                                               lambda ref: _forget(key, ref))
    kept = _Kept(owner, source, layout)
    with _lock:
        _kept[key] = kept
    return layout


def _forget(key: tuple[int, int], owner: "weakref.ref[Tensor]") -> None:
    """A kept parameter is gone: drop its layout (unless the key has been reused since)."""
    with _lock:
        kept = _kept.get(key)
        if kept is not None and kept.owner is owner:
            del _kept[key]


def kept_bytes() -> int:
    """The memory the kept layouts hold (their copies included)."""
    return sum(k.source.nbytes + k.layout.nbytes for k in list(_kept.values()))
