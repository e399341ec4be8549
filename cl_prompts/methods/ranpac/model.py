"""``ranpac``: ridge regression on random ReLU features of the frozen query, solved in closed form."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from cl_prompts.methods.base import ContinualMethod
from cl_prompts.methods.closed_form import one_hot_sums, random_relu_features, solve_spd, unit_rows
from cl_prompts.methods.ranpac.config import RanPACConfig
from cl_prompts.methods.registry import register


@register
class RanPAC(ContinualMethod):
    """Statistics-only: ``observe`` accumulates G = sum h h^T and Q = sum h y^T; ``end_experience`` solves.

    Buffers: ``projection`` (D, M), ``gram`` (M, M) and ``class_feature_sums`` (C, M) in
    float64, ``class_counts`` (C,), and the solved ``readout`` (M, C). G and the sums are
    kept (and saved) so that later experiences can be added exactly.
    """

    name = "ranpac"
    config_class = RanPACConfig
    requires_training = False

    def __init__(self, backbone: Any, num_classes: int, config: RanPACConfig):
        super().__init__(backbone, num_classes, config)
        d, m = self.hidden_size, config.projection_dim
        gen = None if config.projection_seed is None else torch.Generator().manual_seed(config.projection_seed)
        self.register_buffer("projection", torch.randn(d, m, generator=gen))  # (D, M), fixed
        self.register_buffer("gram", torch.zeros(m, m, dtype=torch.float64))
        self.register_buffer("class_feature_sums", torch.zeros(num_classes, m, dtype=torch.float64))
        self.register_buffer("class_counts", torch.zeros(num_classes, dtype=torch.float64))
        self.register_buffer("readout", torch.zeros(m, num_classes))  # (M, C)

    def _grow(self, experience: int, classes: list[int]) -> None:
        pass

    def trainable_parameters(self) -> list[nn.Parameter]:
        return []

    def expand(self, inputs: Any) -> Tensor:
        """(B, M) float64 random features of the frozen query."""
        q = unit_rows(self.backbone.query_features(inputs), self.config.normalize)  # (B, D)
        return random_relu_features(q, self.projection)

    @torch.no_grad()
    def observe(self, inputs: Any, targets: Tensor) -> None:
        """Add a batch to G and to its classes' feature sums."""
        super().observe(inputs, targets)
        h = self.expand(inputs)  # (B, M)
        self.gram.addmm_(h.T, h)
        self.class_feature_sums += one_hot_sums(h, targets, self.num_classes)
        self.class_counts.index_add_(0, targets, torch.ones_like(targets, dtype=torch.float64))

    def _freeze(self, experience: int) -> None:
        if not self._restoring:  # on load the readout comes from the saved tensors
            self.solve()

    @torch.no_grad()
    def solve(self) -> None:
        """readout = (G + ridge I)^-1 Q, with Q (M, C) the class feature sums."""
        w = solve_spd(self.gram, self.class_feature_sums.T, self.config.ridge)  # (M, C)
        self.readout = w.to(self.readout.dtype)

    def _logits(self, inputs: Any) -> Tensor:
        logits = self.expand(inputs).to(self.readout.dtype) @ self.readout  # (B, C)
        return logits.masked_fill(self.class_counts == 0, float("-inf"))
