"""torch.distributed for the tools: who am I, which images are mine, gather, wait.

A tool started by ``torchrun`` (which sets RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE and the
rendezvous variables) calls :func:`init_from_env` once; a plain ``python tools/x.py`` gets
:data:`SINGLE`, a one-process :class:`Dist` whose collectives return their input, and runs exactly
the code it ran before this module existed.

Per-image work is sharded by position: image i of the (deterministically ordered) list goes to
rank i % world (:meth:`Dist.shard`). Every per-image result is written to a cache entry keyed by
content, so after a gather every rank can read every image's result from disk, and a killed
rank's finished entries are reused by a rerun (``--resume`` for train_det).

Backends: ``gloo`` on CPUs, ``nccl`` on GPUs (one GPU per rank: cuda:LOCAL_RANK). Multi-node runs
use torchrun's own rendezvous (``--nnodes``, ``--rdzv-backend c10d``, ``--rdzv-endpoint``);
nothing here depends on the number of nodes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as torch_dist

from data.errors import InputError

log = logging.getLogger(__name__)

T = TypeVar("T")

# A rank may wait at a gather while the slowest rank finishes its shard (or, at test time, while
# rank 0 scores); torch's default (30 min for gloo, 10 min for nccl) is too short on COCO.
COLLECTIVE_TIMEOUT = timedelta(hours=6)


@dataclass(frozen=True)
class Dist:
    """This process's place in the job: global rank / world, and rank / world on this node."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes shared outputs (meta.json, models, results) and logs to files."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """More than one process: the collectives below really communicate."""
        return self.world > 1

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's items: those at positions i with i % world == rank, in order."""
        return list(items[self.rank :: self.world])

    def owner(self, index: int) -> int:
        """The rank that :meth:`shard` gives the item at position ``index``."""
        return index % self.world

    def barrier(self) -> None:
        if self.active:
            torch_dist.barrier()

    def all_gather(self, obj: T) -> list[T]:
        """Every rank's ``obj`` (picklable), in rank order, on every rank."""
        if not self.active:
            return [obj]
        out: list[Any] = [None] * self.world
        torch_dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: T) -> T:
        """Rank 0's ``obj`` on every rank (decisions that every rank must take the same way)."""
        if not self.active:
            return obj
        box = [obj]
        torch_dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_sum(self, value: float) -> float:
        """The sum of ``value`` over the ranks (float64)."""
        if not self.active:
            return value
        t = torch.tensor([value], dtype=torch.float64)
        torch_dist.all_reduce(t)
        return float(t.item())


SINGLE = Dist()  # a plain `python tools/x.py`


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise InputError(f"${name}", f"must be an integer, got {value!r}") from None


def init_from_env(device: str = "cpu", threads: int | None = None) -> tuple[Dist, torch.device]:
    """Join the job that torchrun started, or return :data:`SINGLE` without torchrun's variables.

    Sets torch's intra-op threads to ``threads`` when given, else (torchrun only) to
    max(1, cores // LOCAL_WORLD_SIZE), so that the ranks of one node share its cores instead of
    each taking all of them; a single process keeps torch's default. With ``device`` "cuda" each
    rank takes cuda:LOCAL_RANK and the nccl backend.

    The thread count can change the last bits of the conv trunk's output (oneDNN splits the work
    differently), so a run compared with another bit for bit gives both the same ``threads``.

    Returns:
        this process's :class:`Dist` and the device it computes on.
    """
    if threads is not None:
        if threads < 1:
            raise InputError("--threads", f"must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        return SINGLE, torch.device(device)
    d = Dist(_env_int("RANK", 0), world, _env_int("LOCAL_RANK", 0), _env_int("LOCAL_WORLD_SIZE", world))
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(d.local_rank)
        dev = torch.device("cuda", d.local_rank)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT)
    torch.set_num_threads(threads or threads_per_rank(d))
    log.info("rank %d of %d (local %d of %d), %s, %d torch threads", d.rank, d.world, d.local_rank,
             d.local_world, backend, torch.get_num_threads())
    return d, dev


def threads_per_rank(d: Dist) -> int:
    """This node's cores divided among its ranks (at least one each)."""
    return max(1, len(os.sched_getaffinity(0)) // d.local_world)


def close(d: Dist) -> None:
    """Leave the process group (at the end of a tool; nothing for a single process)."""
    if d.active and torch_dist.is_initialized():
        torch_dist.destroy_process_group()
