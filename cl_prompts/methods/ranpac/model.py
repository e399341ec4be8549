"""``ranpac``: ridge regression on random ReLU features of the frozen query, solved in closed form."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from cl_prompts.methods.closed_form import RidgeStatistics, StatisticsMethod, solve_ridges
from cl_prompts.methods.ranpac.config import RanPACConfig
from cl_prompts.methods.registry import register


@register
class RanPAC(StatisticsMethod):
    """Statistics-only: ``observe`` adds each batch to :class:`RidgeStatistics`; ``end_experience`` solves.

    The statistics (G, class sums) are kept and saved with the method so that later
    experiences are added exactly; ``readout`` (M, C) is the solved classifier. With
    ``ensemble`` N > 1, ``more_stats`` and ``more_readouts`` (N - 1, M, C) are the other
    projections' (drawn after the first, from the same generator or RNG).
    """

    name = "ranpac"
    config_class = RanPACConfig

    def __init__(self, backbone: Any, num_classes: int, config: RanPACConfig):
        super().__init__(backbone, num_classes, config)
        c = config
        seeds = [None if c.projection_seed is None else c.projection_seed + i for i in range(c.ensemble)]
        stats = [RidgeStatistics(self.feature_dim, num_classes, c.projection_dim, seed=s, normalize=c.normalize)
                 for s in seeds]
        self.stats = stats[0]
        self.more_stats = nn.ModuleList(stats[1:])
        self.register_buffer("readout", torch.zeros(c.projection_dim, num_classes))  # (M, C)
        more = torch.zeros(c.ensemble - 1, c.projection_dim, num_classes)  # (N - 1, M, C)
        if c.ensemble > 1:  # a single projection saves what it always saved
            self.register_buffer("more_readouts", more)
        else:
            self.more_readouts = more

    @torch.no_grad()
    def observe(self, inputs: Any, targets: Tensor) -> None:
        """Add a batch's frozen queries to the statistics."""
        super().observe(inputs, targets)
        inputs, targets = self._observed_rows(inputs, targets)
        if len(targets):
            q = self.query(inputs)
            for stats in self._all_stats():
                stats.add(q, targets)

    def _all_stats(self) -> list[RidgeStatistics]:
        return [self.stats, *self.more_stats]

    def statistics(self) -> list[Tensor]:
        return [t for stats in self._all_stats() for t in stats.sums()]

    @torch.no_grad()
    def solve(self) -> None:
        """readout = (G + ridge I)^-1 S^T from the statistics (each projection's, side by side)."""
        first, *more = solve_ridges([(stats, self.config.ridge) for stats in self._all_stats()])
        self.readout = first.to(self.readout.dtype)
        for i, readout in enumerate(more):
            self.more_readouts[i] = readout.to(self.readout.dtype)

    def class_similarity(self, inputs: Any) -> Tensor:
        """(B,) cosine to the nearest class mean, in the random-feature space of the readout."""
        return self.stats.class_similarity(self.query(inputs))

    def _logits(self, inputs: Any) -> Tensor:
        q = self.query(inputs)
        readouts = [self.readout, *self.more_readouts]
        logits = sum(stats.expand_for_scoring(q).to(r.dtype) @ r for stats, r in zip(self._all_stats(), readouts, strict=True))
        logits = logits / len(readouts)  # (B, C)
        return logits.masked_fill(self.stats.class_counts == 0, float("-inf"))
