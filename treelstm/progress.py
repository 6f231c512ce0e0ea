"""Progress reporting. Library code takes ``progress``: ``False``/``None`` (none), ``True`` (a
tqdm bar when tqdm is installed) or any callable ``progress(iterable, total, description)``
that returns an iterable over the same items (e.g. a logger, or a bar of your own)."""
from __future__ import annotations

from typing import Callable, Iterable, Optional, TypeVar, Union

__all__ = ["Progress", "tqdm_bar", "track"]

T = TypeVar("T")
#: ``progress(iterable, total, description) -> iterable`` over the same items.
Progress = Callable[[Iterable, Optional[int], str], Iterable]


def tqdm_bar(iterable: Optional[Iterable[T]] = None, total: Optional[int] = None,
             description: str = "", unit: str = "batch", leave: bool = False):
    """A tqdm bar over ``iterable`` (to stderr), or ``iterable`` itself without tqdm (an
    optional dependency). With ``iterable=None`` a bar to ``update()`` by hand, or ``None``."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, total=total, desc=description, leave=leave, unit=unit)


def track(progress: Union[bool, None, Progress], iterable: Iterable[T], total: Optional[int],
          description: str) -> Iterable[T]:
    """``iterable`` reported through ``progress`` (see the module docstring)."""
    if progress is None or progress is False:
        return iterable
    if progress is True:
        return tqdm_bar(iterable, total, description)
    if not callable(progress):
        raise TypeError(f"progress must be a bool or a callable (iterable, total, description); "
                        f"got {type(progress).__name__}")
    return progress(iterable, total, description)
