"""``ranpac``: ridge regression on random ReLU features of the frozen query, solved in closed form."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from cl_prompts.methods.closed_form import RidgeStatistics, StatisticsMethod
from cl_prompts.methods.ranpac.config import RanPACConfig
from cl_prompts.methods.registry import register


@register
class RanPAC(StatisticsMethod):
    """Statistics-only: ``observe`` adds each batch to :class:`RidgeStatistics`; ``end_experience`` solves.

    The statistics (G, class sums) are kept and saved with the method so that later
    experiences are added exactly; ``readout`` (M, C) is the solved classifier.
    """

    name = "ranpac"
    config_class = RanPACConfig

    def __init__(self, backbone: Any, num_classes: int, config: RanPACConfig):
        super().__init__(backbone, num_classes, config)
        self.stats = RidgeStatistics(self.feature_dim, num_classes, config.projection_dim,
                                     seed=config.projection_seed, normalize=config.normalize)
        self.register_buffer("readout", torch.zeros(config.projection_dim, num_classes))  # (M, C)

    @torch.no_grad()
    def observe(self, inputs: Any, targets: Tensor) -> None:
        """Add a batch's frozen queries to the statistics."""
        super().observe(inputs, targets)
        inputs, targets = self._observed_rows(inputs, targets)
        if len(targets):
            self.stats.add(self.query(inputs), targets)

    def statistics(self) -> list[Tensor]:
        return self.stats.sums()

    @torch.no_grad()
    def solve(self) -> None:
        """readout = (G + ridge I)^-1 S^T from the statistics."""
        self.readout = self.stats.solve(self.config.ridge).to(self.readout.dtype)

    def class_similarity(self, inputs: Any) -> Tensor:
        """(B,) cosine to the nearest class mean, in the random-feature space of the readout."""
        return self.stats.class_similarity(self.query(inputs))

    def _logits(self, inputs: Any) -> Tensor:
        h = self.stats.expand(self.query(inputs))  # (B, M)
        logits = h.to(self.readout.dtype) @ self.readout  # (B, C)
        return logits.masked_fill(self.stats.class_counts == 0, float("-inf"))
