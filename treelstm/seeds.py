"""Several runs of one setting, one per seed: mean ± sample standard deviation (``compare
--seeds``, ``sick-train --seeds``)."""
from __future__ import annotations

import statistics
from pathlib import Path
from typing import Optional, Sequence

__all__ = ["seed_dir", "spread", "summary"]


def seed_dir(out: Path, seed: int) -> Path:
    """Where the run of ``seed`` goes: ``out/seed-<seed>``."""
    return out / f"seed-{seed}"


def summary(values: Sequence[float]) -> dict:
    """``{"mean", "std", "values"}``: ``std`` is the sample standard deviation (n - 1), 0.0 for
    one value."""
    numbers = [float(value) for value in values]
    if not numbers:
        raise ValueError("summary: expected at least one value")
    return {"mean": statistics.mean(numbers),
            "std": statistics.stdev(numbers) if len(numbers) > 1 else 0.0, "values": numbers}


def spread(values: Sequence[Optional[float]], scale: float = 1.0, digits: int = 1) -> str:
    """``"46.7"`` for one value, ``"46.7 ± 0.5"`` (mean ± sample standard deviation, each times
    ``scale``) for several, ``"n/a"`` if there is none or one is ``None``."""
    if not values or any(value is None for value in values):
        return "n/a"
    stats = summary([scale * float(value) for value in values if value is not None])
    if len(values) == 1:
        return f"{stats['mean']:.{digits}f}"
    return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}"
