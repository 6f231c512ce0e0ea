"""Small named checks of user input shared by the modules (one message for one mistake)."""
from __future__ import annotations

from typing import Any, TypeGuard

import torch
from torch import Tensor

__all__ = ["is_int", "is_positive_int", "is_number", "shorten", "check_positive_ints",
           "check_probability", "check_input_tensor", "all_finite"]


def all_finite(tensor: Tensor) -> bool:
    """Whether every entry of ``tensor`` is finite (no NaN, no infinity): its sum, when that is
    finite (a NaN or an infinity anywhere makes the sum one), else ``torch.isfinite`` entry by
    entry (a sum of finite entries can overflow). Several times as fast as
    ``torch.isfinite(tensor).all()`` alone on the CPU, for a checkpoint's embedding at each
    load. Integer and bool tensors are finite."""
    if not (tensor.is_floating_point() or tensor.is_complex()):
        return True
    return bool(torch.isfinite(tensor.sum())) or bool(torch.isfinite(tensor).all())


def is_int(value: Any) -> TypeGuard[int]:
    """``value`` is an ``int`` and not a ``bool`` (which Python counts as one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_positive_int(value: Any) -> bool:
    """``value`` is an ``int`` (not a ``bool``) and at least 1."""
    return is_int(value) and value >= 1


def is_number(value: Any) -> bool:
    """``value`` is an ``int`` or ``float`` and not a ``bool``."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_positive_ints(owner: str, **values: Any) -> None:
    """ValueError naming the first of ``values`` (``name=value``, checked in order) that is not a
    positive ``int``: ``"owner: name must be a positive integer; got value"``."""
    for name, value in values.items():
        if not is_positive_int(value):
            raise ValueError(f"{owner}: {name} must be a positive integer; got {value!r}")


def check_probability(owner: str, name: str, value: Any) -> None:
    """ValueError unless ``value`` is a number in [0, 1] (e.g. a dropout probability)."""
    if not is_number(value) or not 0 <= value <= 1:
        raise ValueError(f"{owner}: {name} must be a number in [0, 1]; got {value!r}")


def shorten(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters with ``...`` (for quoting input in messages)."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


def check_input_tensor(owner: str, name: str, value: Any, weight: Tensor) -> None:
    """TypeError/ValueError unless ``value`` is a floating-point tensor on ``weight``'s device
    and, outside ``torch.autocast`` (which picks the compute dtype itself), of its dtype -- as
    ``nn.LSTM`` checks its input."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{owner}: Expected {name} to be a Tensor; got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{owner}: Expected floating-point {name} (the parameters are "
                        f"{weight.dtype}), got dtype {value.dtype}")
    if value.device != weight.device:
        raise ValueError(f"{owner}: Expected {name} on the parameters' device {weight.device}, "
                         f"got {value.device}")
    if value.dtype != weight.dtype and not torch.is_autocast_enabled(value.device.type):
        raise ValueError(f"{owner}: Expected {name} of the parameters' dtype {weight.dtype}, got "
                         f"{value.dtype}; convert one with .to(), or run under torch.autocast")
