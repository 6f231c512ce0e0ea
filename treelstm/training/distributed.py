"""Multi-process training: this process's place in a ``torchrun`` run (:class:`_Group`), and the
few collectives :func:`~treelstm.training.train` needs. Every helper is a no-op in a single
process; ``torch.distributed`` is imported only when a run is distributed."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
import torch

from .config import resolve_device
from .seed import get_rng_state

__all__ = ["TORCHRUN_VARIABLES"]

#: What torchrun sets in each process; ``init_process_group("env://")`` reads them.
TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class _Group:
    """This process's place in a training run: one process (rank 0 of 1, ``active=False``) or
    one of ``world_size`` torch.distributed processes."""

    rank: int = 0
    world_size: int = 1
    device: Optional[torch.device] = None
    active: bool = False
    owns_process_group: bool = False  # train() initialised it, so train() destroys it

    @property
    def is_main(self) -> bool:
        return self.rank == 0


_SINGLE_PROCESS = _Group()


def _distributed_device(device: str, local_rank: int) -> torch.device:
    """``cuda:LOCAL_RANK`` for ``"auto"`` (with CUDA) and ``"cuda"``, else the CPU."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    resolved = resolve_device(device)
    if resolved.type != "cuda":
        return resolved
    if resolved.index is not None and resolved.index != local_rank:
        raise ValueError(f"distributed training: device {device!r}, but each process uses "
                         f"cuda:LOCAL_RANK (here cuda:{local_rank}); give --device cuda or auto")
    if local_rank >= torch.cuda.device_count():
        raise ValueError(f"distributed training: LOCAL_RANK={local_rank}, but this machine has "
                         f"{torch.cuda.device_count()} CUDA device(s); start at most that many "
                         "processes per machine (torchrun --nproc_per_node)")
    return torch.device("cuda", local_rank)


def _start_distributed(device: str) -> _Group:
    """Join the torch.distributed run that torchrun started (``env://``: the variables of
    :data:`TORCHRUN_VARIABLES`), or the process group the caller already initialised. Backend:
    NCCL on CUDA, Gloo on the CPU."""
    import torch.distributed as dist

    if not dist.is_available():
        raise ValueError("distributed training: this build of torch has no torch.distributed")
    if dist.is_initialized():
        rank, world_size = dist.get_rank(), dist.get_world_size()
        local_rank = int(os.environ.get("LOCAL_RANK", rank))
        owns = False
    else:
        missing = [name for name in TORCHRUN_VARIABLES if not os.environ.get(name)]
        if missing:
            raise ValueError(f"distributed training needs the environment variables "
                             f"{', '.join(TORCHRUN_VARIABLES)} that torchrun sets (missing: "
                             f"{', '.join(missing)}); start it with e.g. 'torchrun "
                             "--nproc_per_node=2 examples/train_sst.py --distributed ...'")
        try:
            rank, local_rank, world_size = (int(os.environ[name])
                                            for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))
        except ValueError:
            raise ValueError("distributed training: RANK, LOCAL_RANK and WORLD_SIZE must be "
                             "integers; got " + ", ".join(f"{name}={os.environ[name]!r}" for name
                                                          in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))
                             ) from None
        owns = True
    resolved = _distributed_device(device, local_rank)
    if resolved.type == "cuda":
        torch.cuda.set_device(resolved)
    if owns:
        dist.init_process_group(backend="nccl" if resolved.type == "cuda" else "gloo",
                                init_method="env://")
    return _Group(rank=rank, world_size=world_size, device=resolved, active=True,
                  owns_process_group=owns)


def _broadcast(value: Any, group: _Group) -> Any:
    """``value`` of rank 0, on every rank."""
    if not group.active:
        return value
    import torch.distributed as dist

    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def _all_sum(values: Sequence[float], group: _Group) -> list[float]:
    """The sums over the ranks of ``values`` (float64)."""
    if not group.active:
        return list(values)
    import torch.distributed as dist

    totals = torch.tensor(values, dtype=torch.float64, device=group.device)
    dist.all_reduce(totals)
    return totals.tolist()


def _barrier(group: _Group) -> None:
    if group.active:
        import torch.distributed as dist

        dist.barrier()


def _gather_rng_state(group: _Group) -> dict:
    """:func:`get_rng_state` of rank 0, with every rank's under ``"ranks"`` when distributed (a
    resumed run restores each rank's dropout stream)."""
    state = get_rng_state()
    if not group.active:
        return state
    import torch.distributed as dist

    states: list = [None] * group.world_size
    dist.all_gather_object(states, state)
    return {**states[0], "ranks": states}


def _seed_rank(seed: int, group: _Group, *more: int) -> None:
    """Give ranks other than 0 their own torch stream (dropout masks), from (seed, rank)."""
    if group.active and group.rank > 0:
        torch.manual_seed(int(np.random.SeedSequence([seed, group.rank, *more])
                              .generate_state(1)[0]))
