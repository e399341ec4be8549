"""Data-parallel runs under ``torchrun`` / ``accelerate launch`` (torch.distributed).

Every rank holds the whole stream and the same model; what is split is the work:

- training: each global batch (``--batch-size`` rows, drawn exactly as a single process
  draws it) is cut into one contiguous slice per rank; each rank computes the loss of
  its slice, and the gradients of the trainable tensors are summed over ranks with
  weights (slice size / batch size), so the step is the single-process step of the
  global batch (up to the order of floating-point sums). The frozen backbone is never
  wrapped or synchronised: it has no gradient.
- statistics: each rank adds its share of every batch's samples (those whose content
  hashes to it: a sample repeated in several batches or epochs always goes to the same
  rank) to the method's sums (class sums, Gram matrices, collected samples), so the
  frozen query passes and growing_pool's end-of-experience pass are split too; the
  sums are all-reduced when the experience ends, before the classifiers are solved and
  the key index rebuilt, so every rank then holds the same totals
  (``ContinualMethod.share_observations``).
- evaluation: test batches are dealt round-robin to the ranks and the correct counts
  summed, so the accuracy matrix counts the batches a single process would form.
- files: only rank 0 writes (results, plots, checkpoints, logs); the others read a
  checkpoint to resume. The run folder must be on a file system every rank sees.

The launcher's environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``...) is all that is
read: ``torchrun --nproc-per-node N -m cl_prompts.cli run ...`` and ``accelerate launch
-m cl_prompts.cli run ...`` both set it. gloo serves CPU runs, nccl CUDA ones.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

# How long a collective waits for a rank before failing (a rank that died).
TIMEOUT = datetime.timedelta(minutes=10)


@dataclass(frozen=True)
class Workers:
    """This process's place among the run's processes (rank 0 of 1 when not launched distributed)."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def slice_of(self, n: int) -> slice:
        """This rank's contiguous part of ``n`` rows (the first ranks get one more; may be empty)."""
        base, extra = divmod(n, self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (self.rank < extra))

    def mine(self, items: Sequence[Any]) -> Iterator[Any]:
        """The items dealt to this rank, round-robin."""
        return (item for i, item in enumerate(items) if i % self.world_size == self.rank)

    def sum_(self, values: Tensor) -> Tensor:
        """Sum ``values`` over the ranks, in place (returned for chaining)."""
        if self.active:
            torch.distributed.all_reduce(values, op=torch.distributed.ReduceOp.SUM)
        return values

    def reduce_gradients(self, params: Sequence[torch.nn.Parameter], weight: float) -> None:
        """grad <- sum over ranks of ``weight`` * grad, for every trainable tensor (one flat all-reduce).

        A tensor without a gradient on this rank (an empty slice) counts as zeros, so every
        rank joins the same collective.
        """
        if not self.active or not params:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads]) * weight
        self.sum_(flat)
        offset = 0
        for p in params:
            n = p.numel()
            p.grad = flat[offset : offset + n].view_as(p).clone()
            offset += n

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (picklable objects)."""
        if not self.active:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()


def launched_world_size() -> int:
    """WORLD_SIZE of the launcher's environment (1 without a launcher)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError as exc:
        raise ValueError(f"WORLD_SIZE must be an int, got {os.environ['WORLD_SIZE']!r}") from exc


def init_workers(device: str) -> Workers:
    """Join the process group the launcher described (once per process); Workers() without one.

    ``device`` cuda: each rank takes GPU ``LOCAL_RANK`` (nccl); cpu: gloo.
    """
    world = launched_world_size()
    if world <= 1:
        return Workers()
    dist = torch.distributed
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    if not dist.is_initialized():
        missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
        if missing:
            raise RuntimeError(f"WORLD_SIZE={world} but {missing} are not set: launch with "
                               "torchrun or accelerate launch")
        cuda = str(device).startswith("cuda")
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if cuda else "gloo", timeout=TIMEOUT)
    return Workers(rank=dist.get_rank(), world_size=dist.get_world_size())


def rank_device(device: str) -> str:
    """``cuda`` becomes this rank's GPU (``cuda:LOCAL_RANK``) under a launcher; anything else is kept."""
    if str(device) == "cuda" and launched_world_size() > 1:
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return device
