"""RankShardedKeyIndex: one key index split over the processes of a torch.distributed group.

For pools larger than one machine's (or one GPU's) memory: each rank stores and searches
only its share of the keys, the ids with ``id % world_size == rank`` (so the share does not
depend on the order or the rank the keys are added from). A search is collective: every rank
calls it, each with its own queries (any number, none included); the queries of all ranks
are gathered, every rank searches its share for all of them, and the per-rank top-k lists
are gathered and merged, so each rank gets the top-k over all keys for its own queries.
With an exact spec the result is that of one :class:`KeyIndex` holding every key (up to
the order of equal scores); with an approximate spec each share is its own faiss index.

Each rank's share is an ordinary :class:`KeyIndex` (``local``), so every spec and option
(``"flat"``, ``"torch"`` on a GPU, IVF-PQ without the float copy, ``shards``...) applies
within a rank. gloo groups communicate through CPU tensors, nccl groups through the
current CUDA device.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

from cl_prompts.checks import check_positive
from cl_prompts.index.key_index import KeyIndex


class RankShardedKeyIndex:
    """A :class:`KeyIndex` whose keys are split over the ranks of ``group``.

    Args:
        dim: key width D.
        spec: as :class:`KeyIndex` (``"flat"``, ``"torch"`` or a faiss factory string).
        group: the process group (default: the world); it must be initialised.
        **index_options: passed to each rank's :class:`KeyIndex` (``nprobe``, ``keep_keys``...).
    """

    def __init__(self, dim: int, spec: str = "flat", *, group: Any = None, **index_options: Any) -> None:
        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError("RankShardedKeyIndex needs an initialised torch.distributed process group "
                               "(torchrun / accelerate launch, or dist.init_process_group); "
                               "in one process use KeyIndex")
        self.group = group
        self.rank = dist.get_rank(group)
        self.world_size = dist.get_world_size(group)
        self.local = KeyIndex(dim, spec, **index_options)
        backend = dist.get_backend(group)
        self._comm_device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")

    @property
    def dim(self) -> int:
        return self.local.dim

    @property
    def spec(self) -> str:
        return self.local.spec

    @property
    def local_ntotal(self) -> int:
        """Keys held by this rank."""
        return self.local.ntotal

    @property
    def ntotal(self) -> int:
        """Keys held by all ranks (collective: every rank must ask)."""
        n = torch.tensor([self.local.ntotal], dtype=torch.long, device=self._comm_device)
        dist.all_reduce(n, group=self.group)
        return int(n.item())

    def owner(self, ids: torch.Tensor) -> torch.Tensor:
        """(N,) the rank that holds each id."""
        return ids % self.world_size

    def add(self, keys: torch.Tensor, ids: torch.Tensor) -> None:
        """Add keys (N, D) under ids (N,) that every rank holds (the same on all ranks, as
        after a data-parallel step): this rank keeps those it owns. Not collective."""
        ids = _check_ids(ids)
        mine = self.owner(ids) == self.rank
        self.local.add(keys[mine.to(keys.device)], ids[mine])

    def add_from_ranks(self, keys: torch.Tensor, ids: torch.Tensor) -> None:
        """Add keys (N, D) that only this rank holds; N may differ between ranks (collective:
        every rank must call). The keys of all ranks are gathered and each rank keeps those it
        owns, so add in chunks to bound the memory a call takes (W * N * D floats)."""
        ids = _check_ids(ids)
        if keys.dim() != 2 or keys.shape[1] != self.dim or keys.shape[0] != ids.numel():
            raise ValueError(f"keys must have shape ({ids.numel()}, {self.dim}), got {tuple(keys.shape)}")
        all_keys, _ = self._gather_rows(keys.detach().float())
        all_ids, _ = self._gather_rows(ids)
        mine = self.owner(all_ids) == self.rank
        self.local.add(all_keys[mine].to(keys.device), all_ids[mine].to(keys.device))

    def reset(self) -> None:
        """Remove this rank's keys."""
        self.local.reset()

    def memory_bytes(self) -> int:
        """Bytes of this rank's share."""
        return self.local.memory_bytes()

    def search(
        self, queries: torch.Tensor, k: int, id_ranges: list[tuple[int, int]] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k inner products over the keys of every rank (collective: every rank must call).

        Args:
            queries: (B, D) this rank's queries; B may differ between ranks (0 included).
            k: as :meth:`KeyIndex.search`.
            id_ranges: as :meth:`KeyIndex.search`.
        Returns:
            scores (B, k) and ids (B, k) on the queries' device, best first; empty slots
            hold ``-inf`` / ``-1``.
        """
        if not isinstance(queries, torch.Tensor) or queries.dim() != 2 or queries.shape[1] != self.dim:
            raise ValueError(f"queries must be a (B, {self.dim}) tensor, got {getattr(queries, 'shape', queries)}")
        check_positive("k", k, integer=True)
        device, b = queries.device, queries.shape[0]
        comm = self._comm_device
        everyone, counts = self._gather_rows(queries.detach().float())  # (sum B, D): all ranks' queries
        scores, ids = self.local.search(everyone, k, id_ranges)  # (sum B, k): this rank's share
        start = sum(counts[: self.rank])
        found_s = [s[start : start + b] for s in self._gather(scores.to(comm))]  # W x (B, k)
        found_i = [i[start : start + b] for i in self._gather(ids.to(comm))]
        scores, ids = torch.cat(found_s, dim=1), torch.cat(found_i, dim=1)  # (B, W * k)
        best_s, best = torch.topk(scores, k, dim=1)  # -inf slots sort last
        return best_s.to(device), ids.gather(1, best).to(device)

    def _gather_rows(self, rows: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
        """Every rank's rows (n_r, ...) concatenated in rank order, and the counts n_r."""
        comm = self._comm_device
        counts = [int(c.item()) for c in self._gather(torch.tensor([rows.shape[0]], device=comm))]
        padded = torch.zeros((max(counts), *rows.shape[1:]), dtype=rows.dtype, device=comm)
        padded[: rows.shape[0]] = rows.to(comm)
        return torch.cat([r[:n] for r, n in zip(self._gather(padded), counts, strict=True)]), counts

    def _gather(self, t: torch.Tensor) -> list[torch.Tensor]:
        out = [torch.empty_like(t) for _ in range(self.world_size)]
        dist.all_gather(out, t.contiguous(), group=self.group)
        return out


def _check_ids(ids: torch.Tensor) -> torch.Tensor:
    if not isinstance(ids, torch.Tensor) or ids.dtype != torch.long or ids.dim() != 1:
        raise TypeError(f"ids must be a 1-d int64 tensor, got {getattr(ids, 'dtype', type(ids).__name__)}")
    if (ids < 0).any():
        raise ValueError("ids must be >= 0 (-1 marks an empty result slot)")
    return ids
