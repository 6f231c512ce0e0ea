"""How many worker processes make sense: the CPUs this process may run on. (No torch here: the
command line checks ``--workers`` before it loads torch.)"""
from __future__ import annotations

import os


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def check_worker_count(owner: str, name: str, value: object) -> None:
    """ValueError unless ``value`` is an integer in ``[0, usable_cpus()]``: more worker
    processes than CPUs only contend (and a typo like 100000 would fork that many)."""
    cpus = usable_cpus()
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= cpus:
        raise ValueError(f"{owner}: {name} must be an integer in [0, {cpus}] (the CPUs this "
                         f"process may use); got {value!r}")
