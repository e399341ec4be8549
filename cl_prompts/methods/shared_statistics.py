"""Statistics shared between the processes of a data-parallel run (cl_prompts.run.distributed).

Methods that accumulate sums over the samples they observe (class sums, Gram matrices,
collected samples) list those buffers in ``statistics()``. Under a data-parallel run
each rank adds only its share of every batch, and the sums are totalled over the ranks
when the experience ends, before anything is solved from them.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import Tensor

from cl_prompts.data.tensors import take_rows


class RankShare(Protocol):
    """This process's place in a data-parallel run (:class:`cl_prompts.run.distributed.Workers`)."""

    rank: int
    world_size: int

    @property
    def is_main(self) -> bool: ...

    def sum_(self, values: Tensor) -> Tensor: ...


class SharedStatistics:
    """Mixin of :class:`~cl_prompts.methods.base.ContinualMethod`: observing a share of the samples."""

    _ranks: RankShare | None = None  # set by a data-parallel run: see share_observations
    _statistics_summed: bool = False

    def statistics(self) -> list[Tensor]:
        """The buffers that observing samples adds to (sums and counts), [] if none.

        In a data-parallel run (:meth:`share_observations`) each rank adds only its share
        of the samples; ``_sum_statistics`` makes them totals on every rank.
        """
        return []

    def share_observations(self, ranks: RankShare | None) -> None:
        """Observe only this process's share of each batch (None: every sample, the default).

        A sample belongs to the rank its content hashes to, so a sample seen in several
        batches or epochs is always kept by the same rank, and the union of the ranks'
        shares is the set a single process keeps. Rank 0 keeps the statistics of earlier
        experiences, the others only this experience's increments, until
        ``end_experience`` sums them over the ranks: the solved classifiers then equal a
        single process's, up to the order of floating-point sums.
        """
        self._ranks = ranks if ranks is not None and ranks.world_size > 1 else None

    def _observed_rows(self, inputs: Any, targets: Tensor) -> tuple[Any, Tensor]:
        """The rows of a batch this process adds to its statistics: all, or its share (may be empty)."""
        if self._ranks is None:
            return inputs, targets
        from cl_prompts.methods.features import row_keys

        owner = [int.from_bytes(k[:8], "little") % self._ranks.world_size for k in row_keys(inputs)]
        keep = torch.tensor([o == self._ranks.rank for o in owner], dtype=torch.bool, device=targets.device)
        return take_rows(inputs, keep), targets[keep]

    def _sum_statistics(self) -> None:
        """Totals of ``statistics()`` on every rank (a collective: every rank calls it); a no-op alone."""
        self._statistics_summed = True
        if self._ranks is not None:
            for t in self.statistics():
                self._ranks.sum_(t)

    def _open_statistics(self) -> None:
        """At ``begin_experience``: rank 0 keeps the totals so far, the other ranks count increments."""
        if self._ranks is not None and not self._ranks.is_main:
            for t in self.statistics():
                t.zero_()
        self._statistics_summed = False

    def _check_statistics_summed(self) -> None:
        """At ``end_experience``: a method that keeps statistics must have summed them."""
        if self._ranks is not None and self.statistics() and not self._statistics_summed:
            raise RuntimeError(f"{type(self).__name__}._freeze must call self._sum_statistics() before solving: "
                               "in a data-parallel run each rank holds only its share of the statistics")
