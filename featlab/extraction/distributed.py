"""Sharded extraction under ``torchrun``: who computes which chunk, and the few messages
the ranks exchange (torch.distributed, gloo — only small Python objects travel).

``torchrun --nproc_per_node=N [--nnodes M --rdzv-backend c10d --rdzv-endpoint HOST:PORT]
-m featlab extract ...`` starts N x M copies of the command with ``RANK``, ``WORLD_SIZE``
and ``LOCAL_RANK`` set. Each copy

1. loads the dataset, rank 0 first (so a COCO selection cache is built once, then read);
2. waits for rank 0 to take the store's writer lock, create or check the store, register
   the conditions and list the chunks still missing (one ``plan``, broadcast to all, so
   every rank sees the same work whatever its view of a shared file system);
3. computes the chunks :func:`assign_chunks` gives it — disjoint, deterministic — and
   writes their parts itself (each part is written whole then renamed, as in one process);
4. meets the others (the summaries are gathered), after which rank 0 writes the index.

Lock: rank 0 holds the flock on ``STORE/.lock`` for the whole job; the other ranks write
only the parts of the plan rank 0 made under that lock, never clean up, never index. A
second job on the same store fails to take the lock on its rank 0, and every rank of that
job stops with the same one-line error. A job killed in any rank (torchrun then stops the
others) leaves only complete parts; rerunning with any number of ranks, or in one plain
process, lists what is missing again and computes only that.

Part contents depend only on (condition, chunk, seed), never on the rank, so the store is
byte-identical to a one-process run. Every rank uses ``cuda:LOCAL_RANK`` when CUDA is
present (``--device auto`` or ``cuda``), the CPU otherwise.
"""
from __future__ import annotations

import contextlib
import datetime
import logging
import os
from dataclasses import dataclass

import torch

from ..backbones.base import resolve_device
from ..errors import FeatlabError

log = logging.getLogger(__name__)
TIMEOUT_ENV = "FEATLAB_DIST_TIMEOUT"  # seconds a rank waits for the others (default 12 h)


@dataclass
class RankContext:
    """This process's place in the job (``world_size == 1``: an ordinary run)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    group: object = None

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_zero(self) -> bool:
        return self.rank == 0

    def device(self, requested: str = "auto") -> torch.device:
        """``cuda:LOCAL_RANK`` for ``auto``/``cuda`` when CUDA is present, else as asked."""
        if self.distributed and requested in ("auto", "cuda") and torch.cuda.is_available():
            return torch.device("cuda", self.local_rank % torch.cuda.device_count())
        return resolve_device(requested)

    # -- collectives (no-ops in a one-process run) ---------------------------------------
    def broadcast(self, value):
        """Rank 0's ``value`` on every rank."""
        if not self.distributed:
            return value
        box = [value]
        torch.distributed.broadcast_object_list(box, src=0, group=self.group)
        return box[0]

    def all_gather(self, value) -> list:
        """Every rank's ``value``, in rank order, on every rank."""
        if not self.distributed:
            return [value]
        out = [None] * self.world_size
        torch.distributed.all_gather_object(out, value, group=self.group)
        return out

    def barrier(self) -> None:
        if self.distributed:
            torch.distributed.barrier(group=self.group)

    def decide(self, make):
        """Rank 0 runs ``make() -> (local, shared)``; every rank gets ``(local or None,
        shared)``. A FeatlabError on rank 0 is raised, with the same message, on all ranks."""
        local, message = None, None
        if self.is_zero:
            try:
                local, shared = make()
                message = ("ok", shared)
            except FeatlabError as err:
                message = ("error", str(err))
        status, payload = self.broadcast(message)
        if status == "error":
            raise FeatlabError(payload)
        return local, payload

    def first(self, make):
        """``make()`` on rank 0, then (after it succeeded) on the other ranks."""
        value, error = None, None
        if self.is_zero:
            try:
                value = make()
            except FeatlabError as err:
                error = str(err)
        error = self.broadcast(error)
        if error is not None:
            raise FeatlabError(error)
        return make() if not self.is_zero else value

    def agree(self, error: str | None) -> None:
        """Raise on every rank when any rank reports an error (the lowest rank's)."""
        errors = [e for e in self.all_gather(error) if e is not None]
        if errors:
            raise FeatlabError(errors[0])


def _timeout() -> datetime.timedelta:
    raw = os.environ.get(TIMEOUT_ENV, str(12 * 3600))
    try:
        return datetime.timedelta(seconds=float(raw))
    except ValueError:
        raise FeatlabError(f"{TIMEOUT_ENV}={raw!r}: expected a number of seconds") from None


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw else default
    except ValueError:
        raise FeatlabError(f"environment variable {name}={raw!r}: expected an integer "
                           f"(set by torchrun)") from None


@contextlib.contextmanager
def rank_context():
    """The job this process belongs to, from torchrun's environment variables.

    With ``WORLD_SIZE > 1`` a gloo process group is opened for the block (or a gloo group
    is added to one the caller already initialised) and closed after it.
    """
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        yield RankContext()
        return
    dist = torch.distributed
    if not dist.is_available():
        raise FeatlabError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    owned = not dist.is_initialized()
    if owned:
        dist.init_process_group("gloo", timeout=_timeout())
        group = None
    else:
        group = dist.new_group(backend="gloo", timeout=_timeout())
    ctx = RankContext(rank=dist.get_rank(), world_size=dist.get_world_size(),
                      local_rank=_env_int("LOCAL_RANK", 0), group=group)
    log.debug("rank %d of %d (local rank %d)", ctx.rank, ctx.world_size, ctx.local_rank)
    try:
        yield ctx
    finally:
        if owned and dist.is_initialized():
            dist.destroy_process_group()


def assign_chunks(costs: dict, world_size: int, rank: int) -> list[tuple[int, int]]:
    """The chunks rank ``rank`` computes, in row order.

    Parameters
    ----------
    costs : dict (start, stop) -> float — work of each needed chunk (e.g. its number of
        missing conditions)
    world_size, rank : int

    Longest-processing-time greedy: chunks by decreasing cost (ties: lower start first) go
    to the least-loaded rank (ties: lower rank). Deterministic, disjoint, and for equal
    costs the round robin ``chunk i -> rank i % world_size``.
    """
    loads = [0.0] * world_size
    mine = []
    for chunk in sorted(costs, key=lambda c: (-costs[c], c)):
        target = min(range(world_size), key=lambda r: (loads[r], r))
        loads[target] += costs[chunk]
        if target == rank:
            mine.append(chunk)
    return sorted(mine)
