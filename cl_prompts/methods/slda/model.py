"""``slda``: streaming linear discriminant analysis on the frozen query (closed form)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from cl_prompts.methods.closed_form import (
    StatisticsMethod,
    add_to_class_sums,
    max_cosine_to_means,
    register_class_sums,
    unit_rows,
)
from cl_prompts.methods.registry import register
from cl_prompts.methods.slda.config import SLDAConfig
from cl_prompts.methods.spd_solve import solve_spd


@register
class SLDA(StatisticsMethod):
    """Statistics-only: per-class sums and the sum of x x^T; the discriminant is solved per experience.

    Buffers (float64): ``class_sums`` (C, D), ``class_counts`` (C,), ``second_moment``
    (D, D) = sum x x^T; solved: ``weight`` (D, C) and ``bias`` (C,).
    """

    name = "slda"
    config_class = SLDAConfig

    def __init__(self, backbone: Any, num_classes: int, config: SLDAConfig):
        super().__init__(backbone, num_classes, config)
        d = self.feature_dim
        register_class_sums(self, num_classes, d)
        self.register_buffer("second_moment", torch.zeros(d, d, dtype=torch.float64))
        self.register_buffer("weight", torch.zeros(d, num_classes, dtype=torch.float64))
        self.register_buffer("bias", torch.zeros(num_classes, dtype=torch.float64))

    @torch.no_grad()
    def observe(self, inputs: Any, targets: Tensor) -> None:
        """Add a batch to the class sums and the second moment."""
        super().observe(inputs, targets)
        inputs, targets = self._observed_rows(inputs, targets)
        if not len(targets):
            return
        x = unit_rows(self.query(inputs), self.config.normalize)  # (B, D)
        add_to_class_sums(self, x, targets)
        self.second_moment.addmm_(x.T, x)

    def statistics(self) -> list[Tensor]:
        return [self.class_sums, self.class_counts, self.second_moment]

    @torch.no_grad()
    def solve(self) -> None:
        """Shared covariance S = (sum x x^T - sum_c n_c mu_c mu_c^T) / n, then the discriminant."""
        n = self.class_counts.sum().clamp_min(1)
        means = self.class_sums / self.class_counts.clamp_min(1)[:, None]  # (C, D)
        between = (means * self.class_counts[:, None]).T @ means  # sum_c n_c mu_c mu_c^T
        cov = (self.second_moment - between) / n
        s = self.config.shrinkage
        weight = solve_spd((1 - s) * cov, means.T, s)  # P mu^T, (D, C)
        self.weight = weight
        self.bias = -0.5 * (means * weight.T).sum(dim=1)

    @torch.no_grad()
    def class_similarity(self, inputs: Any) -> Tensor:
        """(B,) cosine to the nearest class mean of the (unit-normalised) features."""
        x = unit_rows(self.query(inputs), self.config.normalize)
        return max_cosine_to_means(x, self.class_sums, self.class_counts)

    def _logits(self, inputs: Any) -> Tensor:
        x = unit_rows(self.query(inputs), self.config.normalize)
        logits = (x @ self.weight + self.bias).to(torch.float32)  # (B, C)
        return logits.masked_fill(self.class_counts == 0, float("-inf"))
