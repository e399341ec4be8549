"""``ranpac``: ridge regression on random ReLU features of the frozen query, solved in closed form."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from cl_prompts.methods.base import ContinualMethod
from cl_prompts.methods.closed_form import RidgeStatistics
from cl_prompts.methods.ranpac.config import RanPACConfig
from cl_prompts.methods.registry import register


@register
class RanPAC(ContinualMethod):
    """Statistics-only: ``observe`` adds each batch to :class:`RidgeStatistics`; ``end_experience`` solves.

    The statistics (G, class sums) are kept and saved with the method so that later
    experiences are added exactly; ``readout`` (M, C) is the solved classifier.
    """

    name = "ranpac"
    config_class = RanPACConfig
    requires_training = False

    def __init__(self, backbone: Any, num_classes: int, config: RanPACConfig):
        super().__init__(backbone, num_classes, config)
        self.stats = RidgeStatistics(self.hidden_size, num_classes, config.projection_dim,
                                     seed=config.projection_seed, normalize=config.normalize)
        self.register_buffer("readout", torch.zeros(config.projection_dim, num_classes))  # (M, C)

    def _grow(self, experience: int, classes: list[int]) -> None:
        pass

    def trainable_parameters(self) -> list[nn.Parameter]:
        return []

    @torch.no_grad()
    def observe(self, inputs: Any, targets: Tensor) -> None:
        """Add a batch's frozen queries to the statistics."""
        super().observe(inputs, targets)
        self.stats.add(self.backbone.query_features(inputs), targets)

    def _freeze(self, experience: int) -> None:
        if not self._restoring:  # on load the readout comes from the saved tensors
            self.readout = self.stats.solve(self.config.ridge).to(self.readout.dtype)

    def _logits(self, inputs: Any) -> Tensor:
        h = self.stats.expand(self.backbone.query_features(inputs))  # (B, M)
        logits = h.to(self.readout.dtype) @ self.readout  # (B, C)
        return logits.masked_fill(self.stats.class_counts == 0, float("-inf"))
